"""MLflow's artifact proxy (/api/2.0/mlflow-artifacts/artifacts): round trips for run and
logged-model artifacts, authorization by path prefix, traversal in every encoding
(SECURITY_CASES 1), immutable READY versions (6), and uploads that are too big or break off
leave nothing behind."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.utils.functional import empty

from audit.models import AuditEvent
from core.actor import Actor
from registry import services
from registry.models import ModelVersion
from registry.storage import artifact_storage, join, version_prefix
from tracking import services as tracking
from tracking.models import LoggedModel

URL = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(autouse=True)
def store(tmp_path, settings):
    """A fresh artifact store per test, inside a directory we can watch as a whole."""
    settings.STEWARD_ARTIFACT_ROOT = str(tmp_path / "store")
    artifact_storage._wrapped = empty
    yield tmp_path / "store"
    artifact_storage._wrapped = empty


def snapshot(base: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()
    }


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def run_root(alice):
    actor = Actor.system(alice)
    exp = tracking.experiment_create(actor=actor, name="wine")
    run = tracking.run_create(actor=actor, experiment_id=str(exp.pk))
    return f"{exp.pk}/{run.run_id}/artifacts"


@pytest.fixture
def model_root(alice, run_root):
    actor = Actor.system(alice)
    exp_id, run_id = run_root.split("/")[:2]
    model = tracking.logged_model_create(
        actor=actor, experiment_id=exp_id, name="model", source_run_id=run_id
    )
    return f"{exp_id}/models/{model.model_id}/artifacts"


def put(api, path: str, data: bytes = b"hello", **extra):
    return api.generic(
        "PUT", f"{URL}/{path}", data, content_type="application/octet-stream", **extra
    )


def listing(api, path: str):
    return api.get(URL, {"path": path})


def content(response) -> bytes:
    return b"".join(response.streaming_content)


def round_trip(api, root: str, store: Path) -> None:
    assert put(api, f"{root}/a.txt", b"first").status_code == 200
    assert put(api, f"{root}/extra/sub/b.txt", b"bee").status_code == 200
    assert put(api, f"{root}/extra/empty", b"").status_code == 200
    assert content(api.get(f"{URL}/{root}/extra/empty")) == b""
    r = listing(api, root)
    assert r.status_code == 200
    assert r.json() == {
        "files": [
            {"path": "a.txt", "is_dir": False, "file_size": 5},
            {"path": "extra", "is_dir": True},
        ]
    }
    assert listing(api, f"{root}/extra").json() == {
        "files": [
            {"path": "empty", "is_dir": False, "file_size": 0},
            {"path": "sub", "is_dir": True},
        ]
    }
    assert listing(api, f"{root}/extra/sub").json() == {
        "files": [{"path": "b.txt", "is_dir": False, "file_size": 3}]
    }
    got = api.get(f"{URL}/{root}/a.txt")
    assert got.status_code == 200 and got["Content-Type"] == "application/octet-stream"
    assert content(got) == b"first"
    # PUT replaces, as in MLflow.
    assert put(api, f"{root}/a.txt", b"second!").status_code == 200
    assert content(api.get(f"{URL}/{root}/a.txt")) == b"second!"
    # A directory and a missing file are not downloadable; a missing directory lists empty.
    assert api.get(f"{URL}/{root}/extra").status_code == 404
    missing = api.get(f"{URL}/{root}/nope.txt")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert listing(api, f"{root}/nope").json() == {}
    assert listing(api, f"{root}/a.txt").json() == {}
    # Delete one file, then a whole directory.
    assert api.delete(f"{URL}/{root}/a.txt").status_code == 200
    assert api.get(f"{URL}/{root}/a.txt").status_code == 404
    assert api.delete(f"{URL}/{root}/extra").status_code == 200
    assert listing(api, root).json() == {}
    assert not (store / root / "extra").exists()
    # Nothing stray from the uploads is left anywhere.
    assert [p for p in store.rglob("*.part")] == []


@pytest.mark.django_db
def test_run_artifact_round_trip(alice, run_root, api_as, store):
    round_trip(api_as(alice), run_root, store)
    actions = list(AuditEvent.objects.values_list("action", "securable_type", "outcome"))
    assert ("artifact.upload", "run", "SUCCESS") in actions
    assert ("artifact.delete", "run", "SUCCESS") in actions


@pytest.mark.django_db
def test_logged_model_artifact_round_trip(alice, model_root, api_as, store):
    round_trip(api_as(alice), model_root, store)


@pytest.mark.django_db
def test_finalized_logged_model_files_are_immutable(alice, model_root, api_as):
    api = api_as(alice)
    assert put(api, f"{model_root}/MLmodel", b"flavors: {}").status_code == 200
    tracking.logged_model_finalize(
        actor=Actor.system(alice),
        model_id=model_root.split("/")[2],
        status=LoggedModel.Status.READY,
    )
    for response in (
        put(api, f"{model_root}/MLmodel", b"changed"),
        put(api, f"{model_root}/new.txt"),
        api.delete(f"{URL}/{model_root}/MLmodel"),
    ):
        assert response.status_code == 409, response.content
        assert response.json()["error_code"] == "RESOURCE_CONFLICT"
    assert content(api.get(f"{URL}/{model_root}/MLmodel")) == b"flavors: {}"


# --- traversal (SECURITY_CASES 1) ------------------------------------------------------------

TRAVERSALS = [
    "../../../escape.txt",
    "../../../../escape.txt",
    "sub/../../../../escape.txt",
    "%2e%2e/%2e%2e/%2e%2e/escape.txt",
    "%252e%252e/%252e%252e/%252e%252e/escape.txt",
    "%25252e%25252e/%25252e%25252e/escape.txt",
    "..%2f..%2f..%2fescape.txt",
    "..%252f..%252fescape.txt",
    "..\\..\\..\\escape.txt",
    "..%5c..%5c..%5cescape.txt",
    "a%00b.txt",
    "a%2500b.txt",
    "\uff0e\uff0e/\uff0e\uff0e/\uff0e\uff0e/escape.txt",
    "\uff0e\uff0e\uff0fescape.txt",
    "./a.txt",
]
ABSOLUTE = ["/etc/passwd", "%2fetc%2fpasswd", "C:/Windows/escape.txt", "c:%5cescape.txt", "~/x"]


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", TRAVERSALS)
def test_traversal_below_a_root_is_refused_everywhere(alice, run_root, api_as, tmp_path, suffix):
    api = api_as(alice)
    assert put(api, f"{run_root}/keep.txt", b"keep").status_code == 200
    before = snapshot(tmp_path)
    path = f"{run_root}/{suffix}"
    responses = {
        "PUT": put(api, path, b"owned"),
        "GET": api.get(f"{URL}/{path}"),
        "DELETE": api.delete(f"{URL}/{path}"),
        "LIST": listing(api, path),
    }
    for method, response in responses.items():
        assert response.status_code == 400, (method, response.status_code, response.content)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE", method
    assert snapshot(tmp_path) == before


@pytest.mark.django_db
@pytest.mark.parametrize("path", ABSOLUTE + [f"{p}/x" for p in TRAVERSALS[:4]])
def test_absolute_and_rootless_paths_are_refused(alice, run_root, api_as, tmp_path, path):
    api = api_as(alice)
    before = snapshot(tmp_path)
    for response in (
        put(api, path),
        api.get(f"{URL}/{path}"),
        api.delete(f"{URL}/{path}"),
        listing(api, path),
    ):
        assert response.status_code == 400, (path, response.status_code, response.content)
    assert snapshot(tmp_path) == before


@pytest.mark.django_db
def test_a_symlink_out_of_the_store_is_refused(alice, run_root, api_as, store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (store / run_root).mkdir(parents=True)
    os.symlink(outside, store / run_root / "link")
    api = api_as(alice)
    assert api.get(f"{URL}/{run_root}/link/secret.txt").status_code == 400
    assert put(api, f"{run_root}/link/new.txt").status_code == 400
    assert listing(api, f"{run_root}/link").status_code == 400
    assert api.delete(f"{URL}/{run_root}/link/secret.txt").status_code == 400
    assert sorted(os.listdir(outside)) == ["secret.txt"]


# --- authorization by prefix -----------------------------------------------------------------


@pytest.mark.django_db
def test_another_users_run_does_not_exist(alice, run_root, model_root, api_as, make_user):
    owner = api_as(alice)
    assert put(owner, f"{run_root}/a.txt").status_code == 200
    assert put(owner, f"{model_root}/MLmodel").status_code == 200
    mallory = api_as(make_user("mallory"))
    for root, name in ((run_root, "a.txt"), (model_root, "MLmodel")):
        for response in (
            mallory.get(f"{URL}/{root}/{name}"),
            put(mallory, f"{root}/{name}", b"evil"),
            mallory.delete(f"{URL}/{root}/{name}"),
            listing(mallory, root),
        ):
            assert response.status_code == 404, response.content
            assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert content(owner.get(f"{URL}/{run_root}/a.txt")) == b"hello"
    assert AuditEvent.objects.filter(
        action="artifact.upload", outcome="DENIED", actor="mallory"
    ).exists()


@pytest.mark.django_db
def test_reader_can_read_but_not_write(alice, run_root, model_root, api_as, make_user):
    owner = api_as(alice)
    assert put(owner, f"{run_root}/a.txt").status_code == 200
    make_user("rhea")
    tracking.experiment_permission_set(
        actor=Actor.system(alice),
        experiment_id=run_root.split("/")[0],
        principal="rhea",
        level="CAN_READ",
    )
    from accounts.models import User

    readers = [api_as(User.objects.get(username="rhea")), api_as(alice, scope="read")]
    for reader in readers:
        assert content(reader.get(f"{URL}/{run_root}/a.txt")) == b"hello"
        assert listing(reader, run_root).status_code == 200
        for response in (
            put(reader, f"{run_root}/a.txt", b"changed"),
            put(reader, f"{model_root}/MLmodel"),
            reader.delete(f"{URL}/{run_root}/a.txt"),
        ):
            assert response.status_code == 403, response.content
            assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert content(owner.get(f"{URL}/{run_root}/a.txt")) == b"hello"


@pytest.mark.django_db
def test_paths_outside_the_known_prefixes_do_not_exist(alice, run_root, model_root, api_as):
    api = api_as(alice)
    exp_id, run_id = run_root.split("/")[:2]
    model_id = model_root.split("/")[2]
    other_exp = tracking.experiment_create(actor=Actor.system(alice), name="other").pk
    for path in [
        "unknown/x.txt",
        f"{exp_id}/x.txt",
        f"{exp_id}/{run_id}/x.txt",
        f"{exp_id}/{run_id}/notartifacts/x.txt",
        f"{other_exp}/{run_id}/artifacts/x.txt",  # the run is in another experiment
        f"{other_exp}/models/{model_id}/artifacts/x.txt",
        f"{exp_id}/models/{model_id}/x.txt",
        f"{exp_id}/models/m-{'0' * 32}/artifacts/x.txt",
        f"{exp_id}/{'0' * 32}/artifacts/x.txt",
        "models/not-a-uuid/versions/1/x.txt",
        "models/00000000-0000-0000-0000-000000000001/versions/1/x.txt",
        ".steward-uploads/x.part",
    ]:
        for response in (put(api, path), api.get(f"{URL}/{path}"), api.delete(f"{URL}/{path}")):
            assert response.status_code == 404, (path, response.status_code, response.content)
    assert listing(api, exp_id).status_code == 404
    assert listing(api, f"{exp_id}/{run_id}").status_code == 404
    assert api.get(URL).status_code == 400  # list without a path


@pytest.mark.django_db
def test_anonymous_callers_are_refused_before_anything_is_read(run_root, client, tmp_path):
    before = snapshot(tmp_path)
    r = client.generic("PUT", f"{URL}/{run_root}/a.txt", b"x", content_type="text/plain")
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    assert client.get(f"{URL}/{run_root}/a.txt").status_code == 401
    assert client.get(URL, {"path": run_root}).status_code == 401
    assert snapshot(tmp_path) == before


# --- registered model versions ---------------------------------------------------------------


@pytest.fixture
def pending_version(tree, grant, make_user, admin_actor, logged_model):
    tree("main.ml.wine")
    dana = make_user("dana")
    grant("catalog", "main", "dana", "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "main.ml.wine", "dana", "MODIFY", "EXECUTE")
    version = services.model_version_create(
        actor=Actor.system(dana), full_name="main.ml.wine", source=logged_model(dana)
    )
    return dana, version


@pytest.mark.django_db
def test_version_upload_while_pending_then_immutable_when_ready(pending_version, api_as):
    dana, version = pending_version
    api = api_as(dana)
    root = version_prefix(version)
    assert put(api, f"{root}/MLmodel", b"flavors: {}\n").status_code == 200
    assert put(api, f"{root}/model.skops", b"bytes").status_code == 200
    assert {f["path"] for f in listing(api, root).json()["files"]} == {"MLmodel", "model.skops"}
    services.model_version_finalize(actor=Actor.system(dana), full_name="main.ml.wine", version=1)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.READY
    digest = version.artifact_digest
    for response in (
        put(api, f"{root}/MLmodel", b"tampered"),
        put(api, f"{root}/extra.txt"),
        api.delete(f"{URL}/{root}/MLmodel"),
        api.delete(f"{URL}/{root}"),
    ):
        assert response.status_code == 409, response.content
        assert response.json()["error_code"] == "RESOURCE_CONFLICT"
    assert content(api.get(f"{URL}/{root}/MLmodel")) == b"flavors: {}\n"
    from registry.artifacts import tree_digest

    assert tree_digest(root)[0] == digest


@pytest.mark.django_db
def test_version_download_needs_execute_and_is_audited(pending_version, api_as, make_user, grant):
    dana, version = pending_version
    root = version_prefix(version)
    artifact_storage.save(join(root, "MLmodel"), ContentFile(b"flavors: {}\n"))
    services.model_version_finalize(actor=Actor.system(dana), full_name="main.ml.wine", version=1)

    nobody = api_as(make_user("nobody"))
    assert nobody.get(f"{URL}/{root}/MLmodel").status_code == 404
    assert listing(nobody, root).status_code == 404

    make_user("mo")  # sees the model (MODIFY) but may not execute it
    grant("catalog", "main", "mo", "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "main.ml.wine", "mo", "MODIFY")
    from accounts.models import User

    mo = api_as(User.objects.get(username="mo"))
    denied = mo.get(f"{URL}/{root}/MLmodel")
    assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"

    make_user("eve")
    grant("catalog", "main", "eve", "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "main.ml.wine", "eve", "EXECUTE")
    eve = api_as(User.objects.get(username="eve"))
    got = eve.get(f"{URL}/{root}/MLmodel")
    assert got.status_code == 200 and content(got) == b"flavors: {}\n"
    event = AuditEvent.objects.get(action="model_version.download", actor="eve")
    assert event.outcome == "SUCCESS"
    assert event.securable == "main.ml.wine"
    assert event.details["path"] == "MLmodel" and event.details["version"] == 1
    assert AuditEvent.objects.filter(
        action="artifact.download", outcome="DENIED", actor="mo"
    ).exists()
    # EXECUTE does not allow writing, even while a version is pending.
    services.model_version_create(
        actor=Actor.system(dana), full_name="main.ml.wine", source=version.source
    )
    pending_root = version_prefix(ModelVersion.objects.get(version=2))
    assert put(eve, f"{pending_root}/MLmodel").status_code == 403


# --- size limit and broken uploads -----------------------------------------------------------


@pytest.mark.django_db
def test_oversized_upload_is_refused_and_leaves_nothing(alice, run_root, api_as, settings, store):
    api = api_as(alice)
    assert put(api, f"{run_root}/big.bin", b"small").status_code == 200
    settings.STEWARD_MAX_ARTIFACT_BYTES = 10
    r = put(api, f"{run_root}/big.bin", b"x" * 11)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "STEWARD_MAX_ARTIFACT_BYTES" in r.json()["message"]
    r = put(api, f"{run_root}/other.bin", b"x" * 11)
    assert r.status_code == 400
    # A client that lies about Content-Length is cut off while streaming, too.
    r = put(api, f"{run_root}/liar.bin", b"x" * 50, CONTENT_LENGTH="5")
    assert r.status_code in (200, 400)
    lying = store / run_root / "liar.bin"
    assert not lying.exists() or lying.read_bytes() == b"xxxxx"
    assert put(api, f"{run_root}/ok.bin", b"x" * 10).status_code == 200
    assert (store / run_root / "big.bin").read_bytes() == b"small"  # the old file survives
    assert not (store / run_root / "other.bin").exists()
    assert list(store.rglob("*.part")) == []


class BreaksHalfway(io.RawIOBase):
    """A request body that delivers some bytes, then fails like a dropped connection."""

    def __init__(self, good: int):
        self.left = good

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise ConnectionResetError("connection reset by peer")
        n = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= n
        return b"y" * n


@pytest.mark.django_db
def test_upload_that_breaks_halfway_leaves_nothing(alice, run_root, api_as, store, monkeypatch):
    from registry.services import artifact_proxy

    monkeypatch.setattr(artifact_proxy, "CHUNK_BYTES", 1024)
    api = api_as(alice)
    assert put(api, f"{run_root}/model.bin", b"old").status_code == 200
    for name in ("model.bin", "fresh.bin"):
        r = api.generic(
            "PUT",
            f"{URL}/{run_root}/{name}",
            b"",
            content_type="application/octet-stream",
            CONTENT_LENGTH="100000",
            **{"wsgi.input": BreaksHalfway(5000)},
        )
        assert r.status_code == 400, r.content
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "interrupted" in r.json()["message"]
    assert (store / run_root / "model.bin").read_bytes() == b"old"
    assert not (store / run_root / "fresh.bin").exists()
    assert list(store.rglob("*.part")) == []
    assert not AuditEvent.objects.filter(action="artifact.upload", details__path="fresh.bin")


@pytest.mark.django_db
def test_a_directory_cannot_be_replaced_by_a_file(alice, run_root, api_as, store):
    api = api_as(alice)
    assert put(api, f"{run_root}/d/f.txt").status_code == 200
    r = put(api, f"{run_root}/d", b"file over dir")
    assert r.status_code == 409
    r = put(api, f"{run_root}/d/f.txt/under-a-file.txt")
    assert r.status_code == 409
    assert (store / run_root / "d" / "f.txt").read_bytes() == b"hello"
    assert list(store.rglob("*.part")) == []
