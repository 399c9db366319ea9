"""MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`): list, download, upload
and delete files in the artifact store on behalf of the unchanged `mlflow` client.

Every path is canonicalized first (registry.storage.canonical_relpath, SECURITY_CASES 1) and
then authorized by its prefix, which names exactly one securable:

- `<experiment_id>/<run_id>/artifacts/...`: the run; reading needs CAN_READ on its experiment,
  writing and deleting CAN_EDIT (and an active run).
- `<experiment_id>/models/<m-id>/artifacts/...`: an MLflow 3 logged model, same levels; its
  files may change only while it is LOGGED_MODEL_PENDING (the client uploads, then finalizes).
- `models/<model uuid>/versions/<n>/...` (registry.storage.version_prefix): a registered model
  version; reading needs EXECUTE and every download is an audit event; writing needs MODIFY
  and a PENDING_REGISTRATION version: a READY version's files are immutable (SECURITY_CASES 6).
- anything else does not exist (404).

Uploads are streamed, never held in memory, limited to STEWARD_MAX_ARTIFACT_BYTES, and land
under their name only when complete: on local disk the body goes to a temporary file under
`.steward-uploads/` (same filesystem, unreachable through the proxy) that is renamed over the
target; a failed or oversized upload leaves nothing behind. Nothing here extracts an archive
or unpickles a file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from typing import IO, Any, Protocol

from django.conf import settings
from django.core.files import File
from django.db import transaction

from audit.governance import governed
from audit.services import audit_event_write
from catalog import authz
from catalog.privileges import Privilege
from catalog.selectors import model_by_id
from core.actor import Actor
from core.errors import Conflict, FailedPrecondition, InvalidParameter, NotFound
from registry.artifacts import walk
from registry.models import ModelVersion
from registry.services.lookups import version_of
from registry.storage import artifact_storage, canonical_relpath, join, version_prefix
from tracking.models import LoggedModel
from tracking.selectors import logged_model_for_actor, run_for_actor

CHUNK_BYTES = 1 << 20
UPLOAD_DIR = ".steward-uploads"


@dataclass
class Target:
    """An authorized artifact path: its storage name, the securable's artifact root and the
    path below it, and what to name in audit events."""

    name: str
    root: str
    relative: str
    kind: str  # "run" | "logged_model" | "model_version"
    securable_type: str
    securable: str
    version: ModelVersion | None = None
    logged_model_id: str = ""


def _no_such(path: str) -> NotFound:
    return NotFound(f"No such artifact: '{path[:300]}'.")


def resolve(actor: Actor, raw: object, *, write: bool, lock: bool = False) -> Target:
    """Canonicalize `raw`, find the securable its prefix names and check the actor may read
    it (`write=False`) or change it (`write=True`); raises InvalidParameter, NotFound,
    PermissionDenied, Conflict or FailedPrecondition. With `lock`, the state that decides
    whether files may change (logged model status, version status) is read under a row lock,
    so a concurrent finalize cannot slip between the check and the write."""
    path = canonical_relpath(raw, field="path")
    parts = path.split("/")
    if parts[0] == "models":
        return _version_target(actor, path, parts, write=write, lock=lock)
    if not (parts[0].isascii() and parts[0].isdigit()) or len(parts) < 3:
        raise _no_such(path)
    if parts[1] == "models":
        if len(parts) < 4 or parts[3] != "artifacts":
            raise _no_such(path)
        return _logged_model_target(actor, path, parts, write=write, lock=lock)
    if parts[2] != "artifacts":
        raise _no_such(path)
    return _run_target(actor, path, parts, write=write)


def _run_target(actor: Actor, path: str, parts: list[str], *, write: bool) -> Target:
    run = run_for_actor(actor=actor, run_id=parts[1], need="edit" if write else "read")
    if str(run.experiment_id) != parts[0]:
        raise _no_such(path)
    if write and not run.is_active:
        raise InvalidParameter(
            f"The run {run.run_id} must be in the 'active' state. "
            f"Current state is {run.lifecycle_stage}."
        )
    root = "/".join(parts[:3])
    return Target(path, root, "/".join(parts[3:]), "run", "run", run.run_id)


def _logged_model_target(
    actor: Actor, path: str, parts: list[str], *, write: bool, lock: bool
) -> Target:

    model = logged_model_for_actor(actor=actor, model_id=parts[2], need="edit" if write else "read")
    if str(model.experiment_id) != parts[0] or not model.is_active:
        raise _no_such(path)
    if write:
        status = model.status
        if lock:
            status = (
                LoggedModel.objects.select_for_update()
                .values_list("status", flat=True)
                .get(pk=model.pk)
            )
        if status != LoggedModel.Status.PENDING:
            raise Conflict(
                f"Logged model '{model.model_id}' is {status}; its files can no longer change."
            )
    root = "/".join(parts[:4])
    return Target(
        path,
        root,
        "/".join(parts[4:]),
        "logged_model",
        "logged_model",
        model.model_id,
        logged_model_id=model.model_id,
    )


def _version_target(
    actor: Actor, path: str, parts: list[str], *, write: bool, lock: bool
) -> Target:
    if len(parts) < 4 or parts[2] != "versions" or not parts[3].isascii():
        raise _no_such(path)
    try:
        model_pk = uuid.UUID(parts[1])
    except ValueError:
        raise _no_such(path) from None
    if str(model_pk) != parts[1] or not parts[3].isdigit():
        raise _no_such(path)

    model = model_by_id(model_pk)
    if model is None:
        raise _no_such(path)
    authz.require(actor, Privilege.MODIFY if write else Privilege.EXECUTE, model)
    version = version_of(model, parts[3], lock=lock)
    if write:
        if version.status == ModelVersion.Status.READY:
            raise Conflict(f"Model version {version.full_name} is READY; its files are immutable.")
        if version.status != ModelVersion.Status.PENDING_REGISTRATION:
            raise FailedPrecondition(
                f"Model version {version.full_name} is {version.status}; files can be "
                "uploaded only while it is PENDING_REGISTRATION."
            )
    root = version_prefix(version)
    return Target(
        path,
        root,
        "/".join(parts[4:]),
        "model_version",
        str(model.securable_type),
        model.full_name,
        version=version,
    )


def _audit(actor: Actor, action: str, target: Target, **details: Any) -> None:
    if target.version is not None:
        details = {"version": target.version.version, **details}
    audit_event_write(
        actor=actor,
        action=action,
        securable_type=target.securable_type,
        securable=target.securable,
        details={"path": target.relative, **details},
    )


def _local_path(name: str) -> str | None:
    """The file-system path of a storage name, or None for a remote store (S3)."""
    try:
        return artifact_storage.path(name)
    except NotImplementedError:
        return None


# --- reads -----------------------------------------------------------------------------------


@governed("artifact.list", atomic=False)
def artifact_list(*, actor: Actor, path: object) -> list[dict[str, Any]]:
    """The entries directly below `path` as MLflow lists them: basename, is_dir and (files
    only) file_size. A missing directory, or a file, lists as nothing."""
    if path is None:
        raise InvalidParameter("path is required.")
    target = resolve(actor, path, write=False)
    try:
        dirs, files = artifact_storage.listdir(target.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries: list[dict[str, Any]] = [{"path": d, "is_dir": True} for d in dirs]
    for name in files:
        try:
            size = artifact_storage.size(join(target.name, name))
        except FileNotFoundError:  # deleted while listing
            continue
        entries.append({"path": name, "is_dir": False, "file_size": size})
    return sorted(entries, key=lambda entry: entry["path"])


@governed("artifact.download", atomic=False)
def artifact_open(*, actor: Actor, path: object) -> tuple[IO[bytes], str]:
    """An open binary handle on one artifact file and its basename, for streaming. Reading a
    model version's file is audited (`model_version.download`)."""
    target = resolve(actor, path, write=False)
    local = _local_path(target.name)
    if target.relative == "" or (local is not None and not os.path.isfile(local)):
        raise _no_such(target.name)
    try:
        handle = artifact_storage.open(target.name, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise _no_such(target.name) from None
    if target.version is not None:
        try:
            _audit(actor, "model_version.download", target)
        except BaseException:
            handle.close()
            raise
    return handle, target.name.rpartition("/")[2]


# --- writes ----------------------------------------------------------------------------------


class Readable(Protocol):
    """What an upload is read from: a request body, a file."""

    def read(self, size: int = ..., /) -> bytes: ...


class _Limited:
    """A read-only view of a stream that refuses to yield more than `limit` bytes in all."""

    def __init__(self, stream: Readable, limit: int):
        self.stream, self.limit, self.count = stream, limit, 0

    def read(self, size: int = -1) -> bytes:
        want = CHUNK_BYTES if size is None or size < 0 else size
        chunk = self.stream.read(want)
        self.count += len(chunk)
        if self.count > self.limit:
            raise _too_large(self.limit)
        return chunk


def _too_large(limit: int) -> InvalidParameter:
    return InvalidParameter(
        f"The artifact is larger than the server's limit of {limit} bytes "
        "(STEWARD_MAX_ARTIFACT_BYTES)."
    )


def _interrupted(exc: BaseException) -> InvalidParameter:
    return InvalidParameter(f"The upload was interrupted before the body was complete ({exc}).")


def _receive_local(stream: _Limited, temp: str) -> None:
    """Copy the body into the new file `temp` (a path under UPLOAD_DIR); the file is removed
    again if anything fails."""
    os.makedirs(os.path.dirname(temp), exist_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK_BYTES):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        _unlink(temp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _place_local(temp: str, name: str) -> None:
    """Atomically move a received file over `name` (replacing a file, never a directory)."""
    final = artifact_storage.path(name)
    if os.path.isdir(final):
        raise Conflict(f"'{name[:300]}' is a directory.")
    try:
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(temp, final)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise Conflict(f"A file stands where '{name[:300]}' needs a directory.") from None
    mode = getattr(artifact_storage, "file_permissions_mode", None)
    if mode is not None:
        os.chmod(final, mode)


@governed("artifact.upload", atomic=False)
def artifact_upload(
    *, actor: Actor, path: object, stream: Readable, content_length: int | None = None
) -> Target:
    """Store the body of `stream` as the artifact `path`, replacing any file there (MLflow's
    PUT semantics).

    The actor is authorized before a byte is read and again, with the deciding state under a
    row lock, when the file is put in place; the long transfer itself holds no transaction.
    A body over STEWARD_MAX_ARTIFACT_BYTES, or one that breaks off, is refused with
    INVALID_PARAMETER_VALUE and leaves no file behind.
    """
    target = resolve(actor, path, write=True)
    if target.relative == "":
        raise InvalidParameter("path names the artifact root, not a file.")
    limit = int(settings.STEWARD_MAX_ARTIFACT_BYTES)
    if content_length is not None and content_length > limit:
        raise _too_large(limit)
    body = _Limited(stream, limit)
    local = _local_path(target.name)
    temp_name = f"{UPLOAD_DIR}/{uuid.uuid4().hex}.part"
    temp = artifact_storage.path(temp_name) if local is not None else temp_name
    try:
        try:
            if local is not None:
                _receive_local(body, temp)
            else:
                # File wraps any object with read(); the stubs ask for an IO.
                artifact_storage.save(temp, File(body, name=temp))  # type: ignore[arg-type]
        except InvalidParameter:
            raise
        except OSError as exc:  # UnreadablePostError, a reset connection, a full disk
            raise _interrupted(exc) from exc
        with transaction.atomic():
            target = resolve(actor, path, write=True, lock=True)
            _audit(actor, "artifact.upload", target, bytes=body.count)
            if local is not None:
                _place_local(temp, target.name)
            else:
                _place_remote(temp, target.name)
    finally:
        if local is not None:
            _unlink(temp)
        elif artifact_storage.exists(temp):
            artifact_storage.delete(temp)
    return target


def _place_remote(temp: str, name: str) -> None:
    """Remote stores have no rename: copy the received object over the target."""
    if artifact_storage.exists(name):
        artifact_storage.delete(name)
    with artifact_storage.open(temp, "rb") as handle:
        saved = artifact_storage.save(name, handle)
    if saved != name:
        artifact_storage.delete(saved)
        raise Conflict(f"The artifact store did not keep the name '{name[:300]}'.")


@governed("artifact.delete", atomic=False)
def artifact_delete(*, actor: Actor, path: object) -> int:
    """Delete one artifact file, or a directory and everything below it; returns the number
    of files removed (deleting what is not there removes nothing, as in MLflow)."""
    with transaction.atomic():
        target = resolve(actor, path, write=True, lock=True)
        files = list(walk(target.name))
        local = _local_path(target.name)
        is_file = (
            os.path.isfile(local) if local is not None else artifact_storage.exists(target.name)
        )
        count = len(files) + (1 if is_file and not files else 0)
        _audit(actor, "artifact.delete", target, files=count)
        if local is not None:
            if os.path.isdir(local) and not os.path.islink(local):
                shutil.rmtree(local)
            elif os.path.lexists(local):
                os.unlink(local)
        else:
            for relative in files:
                artifact_storage.delete(join(target.name, relative))
            if is_file and not files:
                artifact_storage.delete(target.name)
    return count
