"""Files of model versions in the artifact store: walk, copy, digest, inspect, delete.

Nothing here unpickles or imports a model: the MLmodel file is read with YAML's safe loader and
only its signature and input example are kept as metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from core.errors import FailedPrecondition
from registry.storage import artifact_storage, join

# libyaml's safe loader when PyYAML was built with it (same safe subset, ~10x faster).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_METADATA_BYTES = 1_000_000


def walk(prefix: str) -> Iterator[str]:
    """Every file below `prefix`, as paths relative to it, in sorted order."""
    stack = [""]
    while stack:
        relative = stack.pop()
        base = join(prefix, relative)
        try:
            dirs, files = artifact_storage.listdir(base)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in sorted(files):
            yield f"{relative}/{name}" if relative else name
        for name in sorted(dirs, reverse=True):
            stack.append(f"{relative}/{name}" if relative else name)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with artifact_storage.open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(prefix: str) -> tuple[str, list[str]]:
    """SHA-256 over every (relative path, file SHA-256) pair: changes if any file changes."""
    files = sorted(walk(prefix))
    digest = hashlib.sha256()
    for relative in files:
        digest.update(f"{relative}\0{file_sha256(join(prefix, relative))}\n".encode())
    return digest.hexdigest(), files


def tree_within(prefix: str, limit: int) -> bool:
    """Do the files below `prefix` add up to at most `limit` bytes? Stops counting past it."""
    total = 0
    for relative in walk(prefix):
        total += artifact_storage.size(join(prefix, relative))
        if total > limit:
            return False
    return True


def copy_tree(source_prefix: str, target_prefix: str) -> int:
    """Copy every file below one prefix to another; returns the count."""
    count = 0
    for relative in walk(source_prefix):
        with artifact_storage.open(join(source_prefix, relative), "rb") as handle:
            target = join(target_prefix, relative)
            if artifact_storage.exists(target):
                artifact_storage.delete(target)
            artifact_storage.save(target, handle)
        count += 1
    return count


def delete_tree(prefix: str) -> int:
    count = 0
    for relative in list(walk(prefix)):
        artifact_storage.delete(join(prefix, relative))
        count += 1
    return count


def _read_small(path: str) -> bytes | None:
    if not artifact_storage.exists(path) or artifact_storage.size(path) > MAX_METADATA_BYTES:
        return None
    with artifact_storage.open(path, "rb") as handle:
        return handle.read()


@dataclass
class VersionFacts:
    digest: str
    files: list[str]
    signature: dict | None
    input_example: object | None


def inspect_version_files(prefix: str) -> VersionFacts:
    """Digest the version's files and read signature and input example from its MLmodel."""
    digest, files = tree_digest(prefix)
    if not files:
        raise FailedPrecondition("The version's storage location holds no files yet.")
    signature = input_example = None
    mlmodel_path = next((f for f in files if f == "MLmodel" or f.endswith("/MLmodel")), None)
    if mlmodel_path is not None:
        raw = _read_small(join(prefix, mlmodel_path))
        try:
            meta = yaml.load(raw, Loader=_SafeLoader) if raw else None
        except yaml.YAMLError:
            meta = None
        if isinstance(meta, dict):
            signature = _signature(meta.get("signature"))
            input_example = _input_example(prefix, mlmodel_path, meta)
    return VersionFacts(digest, files, signature, input_example)


def _signature(value) -> dict | None:
    if not isinstance(value, dict):
        return None
    out = {}
    for key in ("inputs", "outputs", "params"):
        item = value.get(key)
        if isinstance(item, str):
            try:
                out[key] = json.loads(item)
            except ValueError:
                out[key] = item
        elif item is not None:
            out[key] = item
    return out or None


def _input_example(prefix: str, mlmodel_path: str, meta: dict):
    info = meta.get("saved_input_example_info")
    if not isinstance(info, dict) or not isinstance(info.get("artifact_path"), str):
        return None
    from registry.storage import canonical_relpath

    folder = mlmodel_path.rpartition("/")[0]
    try:
        relative = canonical_relpath(info["artifact_path"])
    except Exception:  # a hostile MLmodel must not break registration
        return None
    raw = _read_small(join(prefix, join(folder, relative) if folder else relative))
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
