"""The path canonicalizer and the source-URI policy (SECURITY_CASES 1-4)."""

import os

import pytest

from core.errors import InvalidParameter
from registry.storage import SafeFileSystemStorage, canonical_relpath, parse_source

TRAVERSALS = [
    "../etc/passwd",
    "a/../../b",
    "/etc/passwd",
    "C:/Windows/win.ini",
    "c:\\windows",
    "a\\..\\b",
    "a/\x00b",
    "%2e%2e/secret",
    "%252e%252e%252fsecret",
    "%25252e%25252e/x",
    "a/%2F..%2F../x",
    "\uff0e\uff0e/secret",  # full-width dots
    "a\uff0f..\uff0f..\uff0fb",  # full-width slashes
    "~/x",
    ".",
    "a/./b",
    "x" * 2000,
    "%" + "25" * 10 + "2e",
]


@pytest.mark.parametrize("raw", TRAVERSALS)
def test_canonicalizer_refuses_every_escape(raw):
    with pytest.raises(InvalidParameter):
        canonical_relpath(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("a/b/MLmodel", "a/b/MLmodel"), ("a//b/", "a/b"), ("model%20dir/x", "model dir/x")],
)
def test_canonicalizer_keeps_ordinary_paths(raw, expected):
    assert canonical_relpath(raw) == expected


def test_canonicalizer_refuses_non_strings():
    for raw in (None, 3, ["a"], b"a"):
        with pytest.raises(InvalidParameter):
            canonical_relpath(raw)


def test_symlink_escaping_the_store_is_refused(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink(outside, root / "link")
    storage = SafeFileSystemStorage(location=str(root))
    with pytest.raises(InvalidParameter):
        storage.open("link/secret")
    (root / "ok").write_text("fine")
    assert storage.open("ok").read() == b"fine"


@pytest.mark.parametrize(
    "raw",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        "https://example.com/model",
        "s3://someone-elses-bucket/model",
        "mlflow-artifacts://evil.host/1/x",
        "mlflow-artifacts:/1/../../etc",
        "mlflow-artifacts:/1/x?y=../../etc",
        "mlflow-artifacts:/1/x#../../etc",
        "runs:/notarun/model",
        "runs:/" + "a" * 32 + "/%2e%2e/%2e%2e/x",
        "models:/wine/1",
        "models:/m-xyz",
        "models:m-" + "a" * 32,
        "dbfs:/x",
        "",
        "mlflow-artifacts:/",
        "x" * 3000,
        None,
    ],
)
def test_source_policy_refuses(raw):
    with pytest.raises(InvalidParameter):
        parse_source(raw)


def test_source_policy_accepts_the_three_forms():
    logged = parse_source("models:/m-" + "a" * 32)
    assert (logged.kind, logged.ident) == ("logged_model", "m-" + "a" * 32)
    run = parse_source("runs:/" + "b" * 32 + "/model")
    assert (run.kind, run.ident, run.path) == ("run", "b" * 32, "model")
    art = parse_source("mlflow-artifacts:/1/" + "c" * 32 + "/artifacts/model")
    assert (art.kind, art.path) == ("artifact", "1/" + "c" * 32 + "/artifacts/model")
    assert art.raw == "mlflow-artifacts:/1/" + "c" * 32 + "/artifacts/model"
