"""Files of model versions in the artifact store: walk, copy, digest, inspect, delete.

Nothing here unpickles or imports a model: the MLmodel file is read with YAML's safe loader and
only its signature and input example are kept as metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import yaml
from django.utils.functional import LazyObject, empty

from core.errors import FailedPrecondition
from registry.storage import SafeFileSystemStorage, artifact_storage, canonical_relpath, join

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


def _local_storage() -> SafeFileSystemStorage | None:
    """The store itself when it is local disk (the lazy object set up if need be)."""
    lazy = artifact_storage
    assert isinstance(lazy, LazyObject)  # typed as the Storage it stands for
    if lazy._wrapped is empty:
        lazy._setup()
    wrapped = lazy._wrapped
    return wrapped if isinstance(wrapped, SafeFileSystemStorage) else None


def local_files(prefix: str) -> list[tuple[str, str, int]] | None:
    """On local disk: every file below `prefix` as (relative path, absolute path, size),
    sorted by relative path, from one `scandir` per directory and one resolved-path check of
    `prefix` itself (SafeFileSystemStorage.path). None when the store is not local disk, or
    when anything below is a symbolic link or neither a file nor a directory: callers then go
    through the storage API, which resolves and checks every path on its own."""
    storage = _local_storage()
    if storage is None:
        return None
    root = storage.path(prefix)  # refuses a prefix resolving outside the store
    out: list[tuple[str, str, int]] = []
    stack = [("", root)]
    while stack:
        relative, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            name = f"{relative}/{entry.name}" if relative else entry.name
            if entry.is_symlink():
                return None
            if entry.is_dir(follow_symlinks=False):
                stack.append((name, entry.path))
            elif entry.is_file(follow_symlinks=False):
                out.append((name, entry.path, entry.stat(follow_symlinks=False).st_size))
            else:
                return None
    out.sort()
    return out


def tree_within(prefix: str, limit: int) -> bool:
    """Do the files below `prefix` add up to at most `limit` bytes? Stops counting past it."""
    local = local_files(prefix)
    if local is not None:
        return sum(size for _, _, size in local) <= limit
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


def copy_and_inspect(source_prefix: str, target_prefix: str) -> tuple[int, VersionFacts]:
    """Copy every file below `source_prefix` to `target_prefix`, then digest and inspect the
    copy as `inspect_version_files` does (same digest, same facts). On local disk in one pass:
    each file is read once and hashed while it is written, with no per-file path resolution
    (`local_files` checked the tree); elsewhere `copy_tree`, then `inspect_version_files`."""
    local = local_files(source_prefix)
    if local is None:
        copied = copy_tree(source_prefix, target_prefix)
        if copied == 0:
            raise FileNotFoundError(f"no files under the source ({source_prefix})")
        return copied, inspect_version_files(target_prefix)
    if not local:
        raise FileNotFoundError(f"no files under the source ({source_prefix})")
    storage = _local_storage()
    assert storage is not None  # local_files answered: the store is local disk
    target_root = storage.path(target_prefix)  # refuses a target outside the store
    dir_mode = storage.directory_permissions_mode
    file_mode = storage.file_permissions_mode
    hashes = []
    for relative, source, _ in local:
        target = os.path.join(target_root, *relative.split("/"))
        folder = os.path.dirname(target)
        if dir_mode is not None:
            old_umask = os.umask(0o777 & ~dir_mode)
            try:
                os.makedirs(folder, dir_mode, exist_ok=True)
            finally:
                os.umask(old_umask)
        else:
            os.makedirs(folder, exist_ok=True)
        hashes.append((relative, _copy_file_local(source, target, file_mode)))
    tree = hashlib.sha256()
    for relative, file_hash in hashes:
        tree.update(f"{relative}\0{file_hash}\n".encode())
    files = [relative for relative, _ in hashes]
    written = {relative: os.path.join(target_root, *relative.split("/")) for relative in files}

    def read(relative: str) -> bytes | None:  # only what was just copied, never via a link
        path = written.get(relative)
        if path is None:
            return None
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_METADATA_BYTES:
                return None
            return f.read()

    return len(files), _facts(target_prefix, tree.hexdigest(), files, read)


def _copy_file_local(source: str, target: str, file_mode: int | None) -> str:
    """Copy one file on local disk, hashing what it writes; returns the SHA-256. Neither end
    is opened through a symbolic link (one put in place after `local_files` looked fails the
    copy rather than reading or writing outside the store)."""
    digest = hashlib.sha256()
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | nofollow
    reader = os.fdopen(os.open(source, os.O_RDONLY | nofollow), "rb")
    with reader, os.fdopen(os.open(target, flags, 0o666), "wb") as out:
        for chunk in iter(lambda: reader.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
    if file_mode is not None:
        os.chmod(target, file_mode)
    return digest.hexdigest()


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
    return _facts(prefix, digest, files)


def _facts(prefix: str, digest: str, files: list[str], read=None) -> VersionFacts:
    """The facts of a version's files: `read(relative path)` gives a file's bytes, or None
    when it is missing or larger than MAX_METADATA_BYTES (default: through the storage API)."""
    if not files:
        raise FailedPrecondition("The version's storage location holds no files yet.")
    if read is None:

        def read(relative: str) -> bytes | None:
            return _read_small(join(prefix, relative))

    signature = input_example = None
    mlmodel_path = next((f for f in files if f == "MLmodel" or f.endswith("/MLmodel")), None)
    if mlmodel_path is not None:
        raw = read(mlmodel_path)
        try:
            meta = yaml.load(raw, Loader=_SafeLoader) if raw else None
        except yaml.YAMLError:
            meta = None
        if isinstance(meta, dict):
            signature = _signature(meta.get("signature"))
            input_example = _input_example(read, mlmodel_path, meta)
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


def _input_example(read, mlmodel_path: str, meta: dict):
    info = meta.get("saved_input_example_info")
    if not isinstance(info, dict) or not isinstance(info.get("artifact_path"), str):
        return None

    folder = mlmodel_path.rpartition("/")[0]
    try:
        relative = canonical_relpath(info["artifact_path"])
    except Exception:  # a hostile MLmodel must not break registration
        return None
    raw = read(join(folder, relative) if folder else relative)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
