"""Artifact storage and the two mechanisms that guard it: one path canonicalizer and one
source-URI policy. Every door that names an artifact path or a version source goes through
them (SECURITY_CASES 1-4): refuse, never repair."""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.functional import LazyObject

from core.errors import InvalidParameter

MAX_PATH = 1024
MAX_SEGMENT = 255
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def canonical_relpath(raw, *, field: str = "path", allow_empty: bool = False) -> str:
    """A relative artifact path in one canonical form, or INVALID_PARAMETER_VALUE.

    Percent-decoding is repeated until the value is stable (so `%252e%252e` is seen as `..`),
    Unicode is NFKC-normalized (so full-width dots and slashes are seen as what they mimic),
    then any absolute path, drive letter, backslash, control character or `.`/`..` segment is
    refused. Empty segments (`a//b`) collapse.
    """
    if not isinstance(raw, str):
        raise InvalidParameter(f"{field} must be a string.")
    value = raw
    for _ in range(6):
        decoded = unquote(value)
        if decoded == value:
            break
        value = decoded
    else:
        raise InvalidParameter(f"{field} is encoded too many times.")
    value = unicodedata.normalize("NFKC", value)
    if len(value) > MAX_PATH:
        raise InvalidParameter(f"{field} is longer than {MAX_PATH} characters.")
    if _CONTROL.search(value):
        raise InvalidParameter(f"{field} contains control characters.")
    if "\\" in value:
        raise InvalidParameter(f"{field} must use '/' separators.")
    if value.startswith("/") or _DRIVE.match(value) or value.startswith("~"):
        raise InvalidParameter(f"{field} must be relative.")
    segments = [s for s in value.split("/") if s != ""]
    for segment in segments:
        if segment in (".", "..") or len(segment) > MAX_SEGMENT:
            raise InvalidParameter(f"{field} may not contain '.' or '..' segments.")
    if not segments and not allow_empty:
        raise InvalidParameter(f"{field} is empty.")
    return "/".join(segments)


def join(prefix: str, relative: str) -> str:
    """Join a trusted prefix and a canonical relative path."""
    return f"{prefix.rstrip('/')}/{relative}" if relative else prefix.rstrip("/")


@functools.lru_cache(maxsize=8)
def _real_root(location: str) -> str:
    """The store's root with its own symlinks resolved (configuration: resolved once; every
    file path below it is still resolved in full on each use)."""
    return os.path.realpath(location)


class SafeFileSystemStorage(FileSystemStorage):
    """Local-disk storage that also refuses paths resolving (through symlinks) outside its root."""

    def path(self, name: str) -> str:
        candidate = super().path(name)
        root = _real_root(str(self.location))  # a str already (an absolute path)
        real = os.path.realpath(candidate)
        if real != root and not real.startswith(root + os.sep):
            raise InvalidParameter("Artifact path resolves outside the artifact store.")
        return candidate


def artifact_root() -> Path:
    return Path(settings.STEWARD_ARTIFACT_ROOT)


class _Storage(LazyObject):
    def _setup(self) -> None:
        backend = settings.STEWARD_ARTIFACT_STORAGE
        if backend == "s3":
            from storages.backends.s3 import S3Storage  # django-storages, optional extra

            self._wrapped = S3Storage(
                bucket_name=settings.STEWARD_S3_BUCKET,
                endpoint_url=settings.STEWARD_S3_ENDPOINT_URL or None,
                location=settings.STEWARD_S3_PREFIX,
            )
        else:
            root = artifact_root()
            root.mkdir(parents=True, exist_ok=True)
            self._wrapped = SafeFileSystemStorage(location=str(root))


artifact_storage: Storage = _Storage()  # type: ignore[assignment]


def model_prefix(model) -> str:
    """Where a registered model's versions live in the store (by id: renames move nothing)."""
    return f"models/{model.id}"


def version_prefix(version) -> str:
    return f"{model_prefix(version.model)}/versions/{version.version}"


def storage_uri(prefix: str) -> str:
    """The storage location as UC reports it: file:// on local disk, s3:// on S3."""
    if settings.STEWARD_ARTIFACT_STORAGE == "s3":
        base = f"s3://{settings.STEWARD_S3_BUCKET}/{settings.STEWARD_S3_PREFIX}".rstrip("/")
        return f"{base}/{prefix}"
    # The root resolved once (_real_root); the prefix below it is Steward's own naming, no link.
    return (Path(_real_root(str(artifact_root()))) / prefix).as_uri()


# --- version sources -------------------------------------------------------------------------

LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
SOURCE_SCHEMES = ("models", "runs", "mlflow-artifacts")


class Source:
    """A validated version source: `models:/m-<id>`, `runs:/<run_id>/<path>` or
    `mlflow-artifacts:/<path>` (this server's proxied store, no host)."""

    def __init__(self, raw: str, kind: str, ident: str = "", path: str = ""):
        self.raw, self.kind, self.ident, self.path = raw, kind, ident, path

    def __repr__(self) -> str:
        return f"Source({self.raw!r})"


def parse_source(raw) -> Source:
    """Validate a version source against the allowlist; store exactly the value validated.

    Local files (`file:`, bare paths), other hosts (`http:`, `s3:` buckets not ours, any
    `scheme://host`) and anything hiding `..`, a query or a fragment are refused.
    """
    if not isinstance(raw, str) or not raw or len(raw) > 2048:
        raise InvalidParameter("source must be a non-empty string of at most 2048 characters.")
    if _CONTROL.search(raw):
        raise InvalidParameter("source contains control characters.")
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in SOURCE_SCHEMES:
        raise InvalidParameter(
            f"source scheme {scheme or '(none)'!r} is not allowed; use one of "
            + ", ".join(f"{s}:/" for s in SOURCE_SCHEMES)
            + "."
        )
    if parts.netloc or parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise InvalidParameter("source may not name a host, a query or a fragment.")
    if not parts.path.startswith("/"):
        raise InvalidParameter(f"source must look like {scheme}:/<path>.")
    path = canonical_relpath(parts.path[1:], field="source") if parts.path.strip("/") else ""
    if not path:
        raise InvalidParameter("source names nothing.")
    if scheme == "models":
        if not LOGGED_MODEL_ID.match(path):
            raise InvalidParameter("source models:/ must name a logged model (models:/m-<id>).")
        return Source(raw, "logged_model", ident=path)
    if scheme == "runs":
        run_id, _, rest = path.partition("/")
        if not _RUN_ID.match(run_id):
            raise InvalidParameter("source runs:/ must start with a run id.")
        return Source(raw, "run", ident=run_id, path=rest)
    return Source(raw, "artifact", path=path)
