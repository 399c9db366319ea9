"""`artifacts.copy_and_inspect`: the one-pass local copy that registers a small source gives
the same files, digest and facts as the storage API's copy followed by inspection, and
leaves the storage API (which checks every path) to anything unusual: a symbolic link in the
source, inside the store or escaping it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.utils.functional import empty

from core.errors import InvalidParameter
from registry import artifacts
from registry.storage import artifact_storage
from tests.registry.conftest import MLMODEL

FILES = {
    "model/MLmodel": MLMODEL.encode(),
    "model/input_example.json": b'{"columns": ["alcohol"], "data": [[13.2]]}',
    "model/model.skops": b"weights" * 1000,
    "model/sub/dir/extra.txt": b"",
    "model/a b%.txt": b"odd name",
}


@pytest.fixture
def store(tmp_path, settings):
    settings.STEWARD_ARTIFACT_ROOT = str(tmp_path / "store")
    artifact_storage._wrapped = empty
    root = tmp_path / "store"
    for name, content in FILES.items():
        path = root / "runs" / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    yield root
    artifact_storage._wrapped = empty


def tree(base: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()
    }


def test_local_pass_equals_copy_then_inspect(store):
    assert artifacts.local_files("runs/src/model") is not None  # the fast path is taken
    copied, facts = artifacts.copy_and_inspect("runs/src/model", "models/x/versions/1")
    assert artifacts.copy_tree("runs/src/model", "models/x/versions/2") == copied == len(FILES)
    reference = artifacts.inspect_version_files("models/x/versions/2")
    assert facts == reference
    assert facts.signature and facts.input_example == {"columns": ["alcohol"], "data": [[13.2]]}
    assert tree(store / "models/x/versions/1") == tree(store / "runs/src/model")
    assert facts.digest == artifacts.tree_digest("models/x/versions/1")[0]


def test_tree_within_counts_the_same_on_both_paths(store):
    total = sum(len(c) for c in FILES.values())
    assert artifacts.tree_within("runs/src/model", total)
    assert not artifacts.tree_within("runs/src/model", total - 1)
    os.symlink(store / "runs/src/model/model.skops", store / "runs/src/model/link")
    assert artifacts.local_files("runs/src/model") is None  # the storage API counts now
    assert artifacts.tree_within("runs/src/model", total + len(FILES["model/model.skops"]))
    assert not artifacts.tree_within("runs/src/model", total)


def test_a_symlink_inside_the_store_takes_the_checked_path(store):
    os.symlink(store / "runs/src/model/model.skops", store / "runs/src/model/link")
    assert artifacts.local_files("runs/src/model") is None
    copied, facts = artifacts.copy_and_inspect("runs/src/model", "models/x/versions/1")
    assert copied == len(FILES) + 1
    assert (store / "models/x/versions/1/link").read_bytes() == FILES["model/model.skops"]
    assert not (store / "models/x/versions/1/link").is_symlink()
    assert "link" in facts.files


def test_a_symlink_escaping_the_store_is_refused_and_nothing_is_read(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink(outside, store / "runs/src/model/escape")
    with pytest.raises(InvalidParameter):
        artifacts.copy_and_inspect("runs/src/model", "models/x/versions/1")
    copied = tree(store / "models/x/versions/1") if (store / "models/x").exists() else {}
    assert "escape/secret" not in copied


def test_a_source_prefix_resolving_outside_the_store_is_refused(store, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "MLmodel").write_text("x")
    os.symlink(outside, store / "runs/evil")
    with pytest.raises(InvalidParameter):
        artifacts.copy_and_inspect("runs/evil", "models/x/versions/1")
    assert not (store / "models").exists()


def test_an_empty_source_is_an_error(store):
    (store / "runs/empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no files under the source"):
        artifacts.copy_and_inspect("runs/empty", "models/x/versions/1")


def test_a_link_swapped_in_after_the_scan_is_not_followed(store, tmp_path, monkeypatch):
    """A file replaced by a symbolic link between the tree's check and the copy (a race on
    the disk) fails the copy instead of reading what the link points at."""
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    real_scan = artifacts.local_files

    def scan_then_swap(prefix):
        found = real_scan(prefix)
        victim = store / "runs/src/model/model.skops"
        victim.unlink()
        os.symlink(outside, victim)
        return found

    monkeypatch.setattr(artifacts, "local_files", scan_then_swap)
    with pytest.raises(OSError):
        artifacts.copy_and_inspect("runs/src/model", "models/x/versions/1")
    copied = store / "models/x/versions/1/model.skops"
    assert not copied.exists() or copied.read_bytes() != b"secret"


@pytest.mark.parametrize("example_path", ["missing.json", "../../escape.json", "/etc/hostname"])
def test_an_input_example_outside_the_copied_files_is_not_read(store, tmp_path, example_path):
    (store / "runs/escape.json").write_text('{"stolen": true}')
    mlmodel = MLMODEL.replace("artifact_path: input_example.json", f"artifact_path: {example_path}")
    (store / "runs/src/model/MLmodel").write_text(mlmodel)
    _, fast = artifacts.copy_and_inspect("runs/src/model", "models/x/versions/1")
    artifacts.copy_tree("runs/src/model", "models/x/versions/2")
    assert fast == artifacts.inspect_version_files("models/x/versions/2")
    assert fast.input_example is None and fast.signature
