"""Model versions and aliases through the Unity Catalog door and the services under it."""

import threading

import pytest
from django.db import connection

from audit.models import AuditEvent
from core.actor import Actor
from registry import services
from registry.models import AliasHistory, ModelVersion
from tests.registry.conftest import upload_version_files

UC = "/api/2.1/unity-catalog"


@pytest.fixture
def setup(tree, make_user, grant):
    tree("main.ml.wine")
    ds = make_user("dana")
    grant("catalog", "main", "dana", "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "main.ml.wine", "dana", "MODIFY", "MANAGE", "EXECUTE")
    return ds


def create(api, source, model="wine"):
    return api.post(
        f"{UC}/models/versions",
        {"model_name": model, "catalog_name": "main", "schema_name": "ml", "source": source},
        format="json",
    )


@pytest.mark.django_db
def test_create_upload_finalize_get_and_list(setup, api_as, logged_model):
    api = api_as(setup)
    source = logged_model(setup)
    created = create(api, source).json()
    assert (created["version"], created["status"]) == (1, "PENDING_REGISTRATION")
    assert created["storage_location"].startswith("file:///")
    assert created["storage_location"].endswith("/versions/1")
    assert created["source"] == source and created["run_id"]
    version = ModelVersion.objects.get(version=1)
    upload_version_files(version)
    final = api.patch(f"{UC}/models/main.ml.wine/versions/1/finalize", {}, format="json").json()
    assert final["status"] == "READY"
    version.refresh_from_db()
    assert len(version.artifact_digest) == 64
    assert version.signature["inputs"] == [{"type": "double", "name": "alcohol"}]
    assert version.input_example == {"columns": ["alcohol"], "data": [[13.2]]}
    got = api.get(f"{UC}/models/main.ml.wine/versions/1").json()
    assert got["status"] == "READY" and got["version"] == 1
    listed = api.get(f"{UC}/models/main.ml.wine/versions?max_results=10000").json()
    assert [v["version"] for v in listed["model_versions"]] == [1]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"model_version.create", "model_version.finalize"} <= actions


@pytest.mark.django_db
def test_finalize_without_files_is_refused(setup, api_as, logged_model):
    api = api_as(setup)
    create(api, logged_model(setup))
    r = api.patch(f"{UC}/models/main.ml.wine/versions/1/finalize", {}, format="json")
    assert r.status_code == 400 and r.json()["error_code"] == "FAILED_PRECONDITION"
    assert ModelVersion.objects.get(version=1).status == "PENDING_REGISTRATION"


@pytest.mark.django_db
def test_pending_version_fails_after_its_deadline(setup, api_as, logged_model, settings):
    from datetime import timedelta

    from django.utils import timezone

    api = api_as(setup)
    create(api, logged_model(setup))
    from audit.models import AuditEvent
    from registry.tasks import expire_pending_versions

    ModelVersion.objects.update(pending_deadline=timezone.now() - timedelta(seconds=1))
    got = api.get(f"{UC}/models/main.ml.wine/versions/1").json()
    assert got["status"] == "FAILED_REGISTRATION"
    r = api.patch(f"{UC}/models/main.ml.wine/versions/1/finalize", {}, format="json")
    assert r.status_code == 400
    # Reads never write: the row is settled by the beat task, with its audit event, once.
    assert ModelVersion.objects.get(version=1).status == "PENDING_REGISTRATION"
    assert expire_pending_versions() == 1 and expire_pending_versions() == 0
    assert ModelVersion.objects.get(version=1).status == "FAILED_REGISTRATION"
    assert AuditEvent.objects.filter(action="model_version.expired").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/passwd",
        "/etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        "mlflow-artifacts:/1/../../../etc",
        "mlflow-artifacts:/1/x?y=../../etc",
        "s3://other-bucket/model",
    ],
)
def test_sources_outside_the_store_are_refused(setup, api_as, source):
    r = create(api_as(setup), source)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_source_of_another_principals_run_is_refused(setup, api_as, logged_model, make_user):
    other = make_user("olga")
    source = logged_model(other, experiment="olgas")
    r = create(api_as(setup), source)
    assert r.status_code == 404
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_without_modify_creating_a_version_is_refused(tree, make_user, grant, api_as, logged_model):
    tree("main.ml.wine")
    ro = make_user("rita")
    grant("catalog", "main", "rita", "USE CATALOG", "USE SCHEMA", "EXECUTE")
    r = create(api_as(ro), logged_model(ro))
    assert r.status_code == 403
    assert AuditEvent.objects.filter(action="model_version.create", outcome="DENIED").exists()


@pytest.mark.django_db
def test_numbers_grow_and_are_never_reused(setup, api_as, logged_model):
    api = api_as(setup)
    source = logged_model(setup)
    for _ in range(3):
        create(api, source)
    assert api.delete(f"{UC}/models/main.ml.wine/versions/3").status_code == 200
    assert api.get(f"{UC}/models/main.ml.wine/versions/3").status_code == 404
    assert create(api, source).json()["version"] == 4
    tomb = ModelVersion.objects.get(version=3)
    assert tomb.lifecycle == "DELETED"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_version_creation_gets_distinct_numbers(setup, logged_model):
    source = logged_model(setup)
    numbers, errors = [], []

    def worker():
        try:
            v = services.model_version_create(
                actor=Actor.system(setup), full_name="main.ml.wine", source=source
            )
            numbers.append(v.version)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(numbers) == list(range(1, 9))


def _ready(api, setup, logged_model, n=1):
    source = logged_model(setup)
    for _ in range(n):
        create(api, source)
    for version in ModelVersion.objects.all():
        upload_version_files(version)
        api.patch(
            f"{UC}/models/main.ml.wine/versions/{version.version}/finalize", {}, format="json"
        )


@pytest.mark.django_db
def test_alias_set_get_move_delete_with_history(setup, api_as, logged_model):
    api = api_as(setup)
    _ready(api, setup, logged_model, n=2)
    url = f"{UC}/models/main.ml.wine/aliases/Champion"
    assert api.put(url, {"version_num": 1}, format="json").json()["version"] == 1
    assert api.put(url, {"version_num": 2}, format="json").json()["aliases"] == [
        {"alias_name": "champion", "version_num": 2}
    ]
    assert api.get(url).json()["version"] == 2
    assert api.delete(url).status_code == 200
    assert api.get(url).status_code == 404
    moves = list(AliasHistory.objects.values_list("from_version", "to_version", "actor"))
    assert moves == [(None, 1, "dana"), (1, 2, "dana"), (2, None, "dana")]
    assert AuditEvent.objects.filter(action="alias.set").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("alias", ["v3", "V12", "latest", "7", "bad alias", "", "a/b", "x" * 300])
def test_version_like_or_malformed_aliases_are_refused(setup, api_as, logged_model, alias):
    api = api_as(setup)
    _ready(api, setup, logged_model)
    r = api.put(f"{UC}/models/main.ml.wine/aliases/{alias}", {"version_num": 1}, format="json")
    assert r.status_code in (400, 404)
    assert not AliasHistory.objects.exists()


@pytest.mark.django_db
def test_alias_needs_a_ready_version_and_manage(setup, api_as, logged_model, make_user, grant):
    api = api_as(setup)
    create(api, logged_model(setup))
    r = api.put(f"{UC}/models/main.ml.wine/aliases/champion", {"version_num": 1}, format="json")
    assert r.status_code == 400 and "not READY" in r.json()["message"]
    eve = make_user("eve")
    grant("catalog", "main", "eve", "USE CATALOG", "USE SCHEMA", "EXECUTE")
    r = api_as(eve).put(
        f"{UC}/models/main.ml.wine/aliases/champion", {"version_num": 1}, format="json"
    )
    assert r.status_code == 403


@pytest.mark.django_db
def test_credentials_for_reading_need_execute_and_are_audited(
    setup, api_as, logged_model, make_user, grant
):
    api = api_as(setup)
    _ready(api, setup, logged_model)
    body = {
        "catalog_name": "main",
        "schema_name": "ml",
        "model_name": "wine",
        "version": 1,
        "operation": "READ_MODEL_VERSION",
    }
    r = api.post(f"{UC}/temporary-model-version-credentials", body, format="json")
    assert r.status_code == 200 and r.json()["expiration_time"] > 0
    assert AuditEvent.objects.filter(action="model_version.download", actor="dana").exists()
    bob = make_user("bob")
    grant("catalog", "main", "bob", "USE CATALOG", "USE SCHEMA", "BROWSE")
    r = api_as(bob).post(f"{UC}/temporary-model-version-credentials", body, format="json")
    assert r.status_code == 403
    body["operation"] = "READ_WRITE_MODEL_VERSION"
    r = api.post(f"{UC}/temporary-model-version-credentials", body, format="json")
    assert r.status_code == 400  # READY files are sealed


@pytest.mark.django_db
def test_hidden_model_versions_answer_404(setup, api_as, logged_model, make_user):
    api = api_as(setup)
    _ready(api, setup, logged_model)
    stranger = api_as(make_user("sam"))
    for url in [
        f"{UC}/models/main.ml.wine/versions/1",
        f"{UC}/models/main.ml.wine/versions",
        f"{UC}/models/main.ml.wine/aliases/champion",
    ]:
        assert stranger.get(url).status_code == 404


@pytest.mark.django_db
def test_model_with_versions_needs_force_to_delete(setup, api_as, logged_model, admin_user):
    api = api_as(setup)
    _ready(api, setup, logged_model)
    admin = api_as(admin_user)
    r = admin.delete(f"{UC}/models/main.ml.wine")
    assert r.status_code == 400 and r.json()["error_code"] == "FAILED_PRECONDITION"
    assert admin.delete(f"{UC}/models/main.ml.wine?force=true").status_code == 200
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_sweep_fails_overdue_pending_versions_once(setup, api_as, logged_model):
    from datetime import timedelta

    from django.utils import timezone

    from registry.tasks import expire_pending_versions

    api = api_as(setup)
    source = logged_model(setup)
    create(api, source)
    create(api, source)
    ModelVersion.objects.filter(version=1).update(
        pending_deadline=timezone.now() - timedelta(seconds=1)
    )
    assert expire_pending_versions.delay().get() == 1
    assert expire_pending_versions.delay().get() == 0  # idempotent
    statuses = dict(ModelVersion.objects.values_list("version", "status"))
    assert statuses == {1: "FAILED_REGISTRATION", 2: "PENDING_REGISTRATION"}
    assert AuditEvent.objects.filter(action="model_version.expired").count() == 1
