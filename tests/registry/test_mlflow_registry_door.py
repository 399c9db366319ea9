"""The MLflow model-registry door (/api/2.0/mlflow/registered-models/..., model-versions/...):
wire shapes, the default namespace, MLflow's search filters, visibility and clean 400s."""

from __future__ import annotations

import os

import pytest
from django.core.files.base import ContentFile

from audit.models import AuditEvent
from registry.models import ModelVersion, RegisteredModel
from registry.storage import artifact_storage, join
from tests.registry.conftest import MLMODEL

ML = "/api/2.0/mlflow"
PROMPT_FILTER = "tag.`mlflow.prompt.is_prompt` != 'true'"


@pytest.fixture
def dana(tree, make_user, grant):
    """A data scientist who may create models in main (and owns what she creates)."""
    tree("main.default", "main.ml", "main.ml.secret", "other.s.hidden")
    user = make_user("dana")
    grant("catalog", "main", "dana", "USE CATALOG", "USE SCHEMA", "CREATE MODEL")
    return user


@pytest.fixture
def api(dana, api_as):
    return api_as(dana)


def put_logged_model_files(source: str) -> None:
    """Files where the client's log_model would have uploaded them (the logged model's
    artifact location), so that registration has something to copy."""
    from tracking.models import LoggedModel

    model = LoggedModel.objects.get(model_id=source.removeprefix("models:/"))
    prefix = model.artifact_location.removeprefix("mlflow-artifacts:/")
    for name, content in {"MLmodel": MLMODEL.encode(), "model.skops": b"bytes"}.items():
        artifact_storage.save(join(prefix, name), ContentFile(content))


def create_model(api, name="wine", **extra):
    return api.post(f"{ML}/registered-models/create", {"name": name, **extra}, format="json")


def create_version(api, source, name="wine", **extra):
    return api.post(
        f"{ML}/model-versions/create", {"name": name, "source": source, **extra}, format="json"
    )


@pytest.fixture
def ready_version(api, dana, logged_model, django_capture_on_commit_callbacks):
    """main.default.wine with version 1, READY (files copied by the task on commit)."""

    def make(name="wine"):
        source = logged_model(dana)
        put_logged_model_files(source)
        if not RegisteredModel.objects.filter(full_name=f"main.default.{name}").exists():
            assert create_model(api, name).status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            created = create_version(api, source, name=name, model_id=source[len("models:/") :])
        assert created.status_code == 200, created.content
        return created.json()["model_version"], source

    return make


# --- registered models -----------------------------------------------------------------------


@pytest.mark.django_db
def test_create_uses_default_namespace_and_renders_full_name(api):
    r = create_model(api, "wine", description="red", tags=[{"key": "team", "value": "ml"}])
    assert r.status_code == 200, r.content
    body = r.json()["registered_model"]
    assert body["name"] == "main.default.wine"
    assert body["description"] == "red"
    assert body["tags"] == [{"key": "team", "value": "ml"}]
    assert body["aliases"] == [] and body["latest_versions"] == []
    assert isinstance(body["creation_timestamp"], int)
    assert RegisteredModel.objects.filter(full_name="main.default.wine").exists()
    # A full three-part name works as is.
    full = create_model(api, "main.ml.cheese").json()["registered_model"]
    assert full["name"] == "main.ml.cheese"


@pytest.mark.django_db
def test_create_twice_answers_resource_already_exists(api):
    create_model(api)
    r = create_model(api, "main.default.wine")
    assert r.status_code == 409 and r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.django_db
def test_create_of_an_existing_model_without_create_model(api, make_user, grant, api_as):
    """register_model always tries a create first: a user who may add versions (MODIFY on the
    model, no CREATE MODEL on its schema) must get ALREADY_EXISTS and so go on to the version;
    a user who cannot see the model gets the privilege refusal, which names nothing of it."""
    create_model(api, "wine")
    erin = make_user("erin")
    grant("catalog", "main", "erin", "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "main.default.wine", "erin", "MODIFY")
    r = create_model(api_as(erin), "wine")
    assert r.status_code == 409 and r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"

    frank = make_user("frank")
    grant("catalog", "main", "frank", "USE CATALOG", "USE SCHEMA")
    r = create_model(api_as(frank), "wine")
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert "CREATE MODEL" in r.json()["message"] and "wine" not in r.json()["message"]


@pytest.mark.django_db
def test_create_with_a_bad_tag_among_good_ones_creates_nothing(api):
    r = create_model(
        api, "wine", tags=[{"key": "team", "value": "ml"}, {"key": "x" * 10_000, "value": "v"}]
    )
    assert r.status_code == 400, r.content
    assert not RegisteredModel.objects.filter(name="wine").exists()
    assert not AuditEvent.objects.filter(
        action="registered_model.create", securable="main.default.wine", outcome="SUCCESS"
    ).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["a.b", "a.b.c.d", "", "bad name", 7, None, ["wine"], "main..wine", ".wine"]
)
def test_bad_names_are_invalid_parameter(api, name):
    r = create_model(api, name)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.django_db
def test_bad_create_bodies_are_clean_400s(api):
    for body in (
        {"name": "wine", "tags": "x"},
        {"name": "wine", "tags": [{"key": 1, "value": "v"}]},
        {"name": "wine", "description": 5},
    ):
        r = api.post(f"{ML}/registered-models/create", body, format="json")
        assert r.status_code == 400, body
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not RegisteredModel.objects.filter(name="wine").exists()
    r = api.post(f"{ML}/registered-models/create", "[1]", content_type="application/json")
    assert r.status_code == 400
    r = api.post(f"{ML}/registered-models/create", "{bad", content_type="application/json")
    assert r.status_code == 400 and r.json()["error_code"] == "MALFORMED_REQUEST"


@pytest.mark.django_db
def test_get_update_rename_tags_delete(api):
    create_model(api)
    got = api.get(f"{ML}/registered-models/get", {"name": "wine"}).json()["registered_model"]
    assert got["name"] == "main.default.wine"
    r = api.patch(
        f"{ML}/registered-models/update", {"name": "wine", "description": "new"}, format="json"
    )
    assert r.json()["registered_model"]["description"] == "new"
    r = api.post(
        f"{ML}/registered-models/set-tag",
        {"name": "wine", "key": "k", "value": "v"},
        format="json",
    )
    assert (r.status_code, r.json()) == (200, {})
    got = api.get(f"{ML}/registered-models/get", {"name": "wine"}).json()["registered_model"]
    assert got["tags"] == [{"key": "k", "value": "v"}]
    r = api.delete(
        f"{ML}/registered-models/delete-tag", {"name": "wine", "key": "k"}, format="json"
    )
    assert r.status_code == 200
    r = api.delete(
        f"{ML}/registered-models/delete-tag", {"name": "wine", "key": "k"}, format="json"
    )
    assert r.status_code == 404
    r = api.post(
        f"{ML}/registered-models/rename", {"name": "wine", "new_name": "rouge"}, format="json"
    )
    assert r.json()["registered_model"]["name"] == "main.default.rouge"
    r = api.post(
        f"{ML}/registered-models/rename",
        {"name": "rouge", "new_name": "main.ml.rouge"},
        format="json",
    )
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = api.delete(f"{ML}/registered-models/delete", {"name": "rouge"}, format="json")
    assert (r.status_code, r.json()) == (200, {})
    r = api.get(f"{ML}/registered-models/get", {"name": "rouge"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"registered_model.create", "registered_model.update", "registered_model.delete"} <= (
        actions
    )


@pytest.mark.django_db
def test_hidden_models_are_not_found(api, dana):
    for path, params in [
        ("registered-models/get", {"name": "main.ml.secret"}),
        ("registered-models/get", {"name": "other.s.hidden"}),
        ("model-versions/get", {"name": "main.ml.secret", "version": "1"}),
        ("model-versions/get-download-uri", {"name": "main.ml.secret", "version": "1"}),
        ("registered-models/alias", {"name": "main.ml.secret", "alias": "champion"}),
    ]:
        r = api.get(f"{ML}/{path}", params)
        assert r.status_code == 404, path
        assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = api.post(
        f"{ML}/registered-models/set-tag",
        {"name": "main.ml.secret", "key": "k", "value": "v"},
        format="json",
    )
    assert r.status_code == 404
    r = api.delete(f"{ML}/registered-models/delete", {"name": "other.s.hidden"}, format="json")
    assert r.status_code == 404
    assert RegisteredModel.objects.filter(full_name="other.s.hidden").exists()


@pytest.mark.django_db
def test_anonymous_is_refused(api_as):
    r = api_as(None).get(f"{ML}/registered-models/search")
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"


# --- search ----------------------------------------------------------------------------------


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [m["name"] for m in response.json().get("registered_models", [])]


@pytest.mark.django_db
def test_search_shows_only_visible_models_and_applies_the_prompt_filter(api):
    create_model(api, "wine", tags=[{"key": "team", "value": "red"}])
    create_model(api, "main.ml.cheese")
    create_model(api, "prompt", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
    everything = names(api.get(f"{ML}/registered-models/search"))
    assert everything == ["main.default.prompt", "main.default.wine", "main.ml.cheese"]
    # main.ml.secret (admin's, no grant) and other.s.hidden (another catalog) never show.
    r = api.get(f"{ML}/registered-models/search", {"filter": PROMPT_FILTER, "max_results": 100})
    assert names(r) == ["main.default.wine", "main.ml.cheese"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filter_string, expected",
    [
        ("name = 'wine'", ["main.default.wine"]),
        ("name='main.default.wine'", ["main.default.wine"]),
        ("name = 'main.ml.cheese'", ["main.ml.cheese"]),
        ("name LIKE '%ee%'", ["main.ml.cheese"]),
        ("name LIKE 'wi%'", ["main.default.wine"]),
        ("name ILIKE 'WI%'", ["main.default.wine"]),
        ("name LIKE 'main.%'", ["main.default.wine", "main.ml.cheese"]),
        ("tag.team = 'red'", ["main.default.wine"]),
        ("tags.`team` != 'red'", ["main.ml.cheese"]),
        (f"name LIKE '%e%' AND {PROMPT_FILTER}", ["main.default.wine", "main.ml.cheese"]),
        ("name = 'secret'", []),
        ("name = 'main.ml.secret'", []),
    ],
)
def test_registered_model_filters(api, filter_string, expected):
    create_model(api, "wine", tags=[{"key": "team", "value": "red"}])
    create_model(api, "main.ml.cheese")
    r = api.get(f"{ML}/registered-models/search", {"filter": filter_string})
    assert names(r) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"filter": "name = 'a' OR name = 'b'"},
        {"filter": "description = 'x'"},
        {"filter": "metrics.acc > 1"},
        {"filter": "name = "},
        {"filter": "name = 'unterminated"},
        {"filter": "name > 3"},
        {"order_by": "tag.team"},
        {"order_by": "bogus DESC"},
        {"max_results": "many"},
        {"page_token": "not-a-token"},
    ],
)
def test_bad_search_input_is_invalid_parameter(api, params):
    r = api.get(f"{ML}/registered-models/search", params)
    assert r.status_code == 400, r.content
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.django_db
def test_search_pages_and_orders(api):
    for name in ("a1", "a2", "a3"):
        create_model(api, name)
    first = api.get(f"{ML}/registered-models/search", {"max_results": 2}).json()
    assert [m["name"] for m in first["registered_models"]] == ["main.default.a1", "main.default.a2"]
    rest = api.get(
        f"{ML}/registered-models/search",
        {"max_results": 2, "page_token": first["next_page_token"]},
    ).json()
    assert [m["name"] for m in rest["registered_models"]] == ["main.default.a3"]
    assert "next_page_token" not in rest
    desc = api.get(f"{ML}/registered-models/search", {"order_by": "name DESC"})
    assert names(desc)[0] == "main.default.a3"


# --- model versions --------------------------------------------------------------------------


@pytest.mark.django_db
def test_version_create_copies_files_and_renders_mlflow_shape(api, ready_version):
    created, source = ready_version()
    assert created["version"] == "1" and created["name"] == "main.default.wine"
    assert created["source"] == source and created["run_id"]
    assert created["current_stage"] == "None" and created["aliases"] == []
    assert created["status"] in ("PENDING_REGISTRATION", "READY")
    got = api.get(f"{ML}/model-versions/get", {"name": "wine", "version": "1"}).json()
    mv = got["model_version"]
    assert mv["status"] == "READY" and mv["version"] == "1" and mv["run_link"] == ""
    assert mv["run_id"] == created["run_id"]
    version = ModelVersion.objects.get()
    assert artifact_storage.exists(f"models/{version.model_id}/versions/1/MLmodel")
    uri = api.get(f"{ML}/model-versions/get-download-uri", {"name": "wine", "version": "1"})
    assert uri.json() == {"artifact_uri": f"mlflow-artifacts:/models/{version.model_id}/versions/1"}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["local", "storage"])
def test_copy_that_breaks_halfway_fails_the_version_and_leaves_nothing(
    api, dana, logged_model, monkeypatch, django_capture_on_commit_callbacks, path
):
    """The server-side copy of a version's files dies after the first file (a full disk, a
    store that goes away): the version becomes FAILED_REGISTRATION with the reason, the file
    already copied is removed, nothing is downloadable, and the audit trail says so. Both
    copies: local disk's one pass, and the storage API's (any other store, or a source with
    a symbolic link)."""
    from registry import artifacts

    source = logged_model(dana)
    put_logged_model_files(source)
    create_model(api)
    saved: list = []  # absolute paths of the files written before the break

    if path == "local":
        real_copy = artifacts._copy_file_local

        def copy_then_break(source_path, target, file_mode):
            if saved:
                raise OSError(28, "No space left on device")
            digest = real_copy(source_path, target, file_mode)
            saved.append(target)
            return digest

        monkeypatch.setattr(artifacts, "_copy_file_local", copy_then_break)
    else:
        real_save = artifacts.artifact_storage.save

        def save_then_break(name, content, *args, **kwargs):
            if saved:
                raise OSError(28, "No space left on device")
            stored = real_save(name, content, *args, **kwargs)
            saved.append(artifact_storage.path(stored))
            return stored

        monkeypatch.setattr(artifacts, "local_files", lambda prefix: None)
        monkeypatch.setattr(artifacts.artifact_storage, "save", save_then_break)
    with django_capture_on_commit_callbacks(execute=True):
        created = create_version(api, source, model_id=source[len("models:/") :])
    monkeypatch.undo()
    assert created.status_code == 200, created.content
    assert len(saved) == 1  # it really did break half-way

    version = ModelVersion.objects.get()
    assert version.status == ModelVersion.Status.FAILED_REGISTRATION
    assert "No space left" in version.status_message
    assert not os.path.exists(saved[0])
    assert not list(artifacts.walk(f"models/{version.model_id}/versions/1"))
    mv = api.get(f"{ML}/model-versions/get", {"name": "wine", "version": "1"}).json()
    assert mv["model_version"]["status"] == "FAILED_REGISTRATION"
    assert "No space left" in mv["model_version"]["status_message"]
    download = api.get(
        "/api/2.0/mlflow-artifacts/artifacts/" + f"models/{version.model_id}/versions/1/MLmodel"
    )
    assert download.status_code in (400, 404), download.content
    assert AuditEvent.objects.filter(action="model_version.failed", outcome="FAILURE").exists()


@pytest.mark.django_db
def test_version_create_refuses_bad_input(api, dana, logged_model):
    create_model(api)
    source = logged_model(dana)
    for body in (
        {"name": "wine"},
        {"name": "wine", "source": 5},
        {"name": "wine", "source": "file:///etc/passwd"},
        {"name": "wine", "source": source, "model_id": "m-" + "0" * 32},
        {"name": "wine", "source": source, "model_id": "../m-1"},
        {"name": "wine", "source": source, "model_id": 7},
        {"name": "wine", "source": source, "run_id": 7},
        {"name": "wine", "source": source, "tags": "x"},
        {"name": "wine", "source": source, "description": ["x"]},
    ):
        r = api.post(f"{ML}/model-versions/create", body, format="json")
        assert r.status_code == 400, body
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_version_model_id_of_another_principal_is_refused(
    api, dana, logged_model, make_user, api_as
):
    """model_id beside a runs:/ source is recorded only if the actor may read that logged
    model: naming someone else's must not link (or leak) it."""
    from tracking.models import LoggedModel

    create_model(api)
    own = LoggedModel.objects.get(model_id=logged_model(dana).removeprefix("models:/"))
    theirs = logged_model(make_user("mallory"), "mallory-exp").removeprefix("models:/")
    r = create_version(api, f"runs:/{own.source_run.run_id}/model", model_id=theirs)
    assert r.status_code in (403, 404), r.content
    assert theirs not in r.json()["message"] or r.status_code == 404
    assert not ModelVersion.objects.exists()
    r = create_version(api, f"runs:/{own.source_run.run_id}/model", model_id=own.model_id)
    assert r.status_code == 200, r.content
    assert ModelVersion.objects.get().logged_model_id == own.model_id


@pytest.mark.django_db
def test_alias_stage_tags_latest_search_and_delete(api, ready_version):
    ready_version()
    ready_version()  # version 2
    r = api.post(
        f"{ML}/registered-models/alias",
        {"name": "wine", "alias": "champion", "version": "1"},
        format="json",
    )
    assert (r.status_code, r.json()) == (200, {})
    by_alias = api.get(f"{ML}/registered-models/alias", {"name": "wine", "alias": "champion"})
    assert by_alias.json()["model_version"]["version"] == "1"
    assert by_alias.json()["model_version"]["aliases"] == ["champion"]
    model = api.get(f"{ML}/registered-models/get", {"name": "wine"}).json()["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "1"}]
    assert [v["version"] for v in model["latest_versions"]] == ["2"]

    r = api.post(
        f"{ML}/model-versions/transition-stage",
        {"name": "wine", "version": "1", "stage": "Staging", "archive_existing_versions": False},
        format="json",
    )
    assert r.json()["model_version"]["current_stage"] == "Staging"
    latest = api.post(
        f"{ML}/registered-models/get-latest-versions", {"name": "wine"}, format="json"
    ).json()["model_versions"]
    assert [(v["version"], v["current_stage"]) for v in latest] == [("2", "None"), ("1", "Staging")]
    staging = api.get(
        f"{ML}/registered-models/get-latest-versions", {"name": "wine", "stages": ["staging"]}
    ).json()["model_versions"]
    assert [v["version"] for v in staging] == ["1"]

    r = api.post(
        f"{ML}/model-versions/set-tag",
        {"name": "wine", "version": "2", "key": "validation", "value": "passed"},
        format="json",
    )
    assert r.status_code == 200
    r = api.patch(
        f"{ML}/model-versions/update",
        {"name": "wine", "version": "2", "description": "better"},
        format="json",
    )
    assert r.json()["model_version"]["description"] == "better"

    def search(**params):
        r = api.get(f"{ML}/model-versions/search", params)
        assert r.status_code == 200, r.content
        return [v["version"] for v in r.json()["model_versions"]]

    assert search(filter="name='wine'") == ["2", "1"]
    assert search(filter="name = 'main.default.wine'", order_by="version_number ASC") == ["1", "2"]
    assert search(filter="tag.validation = 'passed'") == ["2"]
    assert search(filter="name = 'wine' AND version_number = 1") == ["1"]
    v1 = ModelVersion.objects.get(version=1)
    assert search(filter=f"run_id = '{v1.run_id}'") == ["1"]
    assert search(filter=f"source_path = '{v1.source}'") == ["1"]
    assert search(filter="name = 'main.ml.secret'") == []
    assert search(filter="name = 'wine'", max_results=1) == ["2"]
    for bad in ("version_number > 'x'", "status = 'READY'", "name = 'a' OR name = 'b'"):
        r = api.get(f"{ML}/model-versions/search", {"filter": bad})
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    r = api.delete(
        f"{ML}/model-versions/delete-tag",
        {"name": "wine", "version": "2", "key": "validation"},
        format="json",
    )
    assert r.status_code == 200
    r = api.delete(
        f"{ML}/registered-models/alias", {"name": "wine", "alias": "champion"}, format="json"
    )
    assert (r.status_code, r.json()) == (200, {})
    r = api.delete(f"{ML}/model-versions/delete", {"name": "wine", "version": "1"}, format="json")
    assert (r.status_code, r.json()) == (200, {})
    r = api.get(f"{ML}/model-versions/get", {"name": "wine", "version": "1"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert search(filter="name='wine'") == ["2"]


@pytest.mark.django_db
def test_version_bad_input_is_clean_400(api, ready_version):
    ready_version()
    cases = [
        ("get", "model-versions/get", {"name": "wine", "version": "abc"}),
        ("get", "model-versions/get", {"name": "wine"}),
        ("get", "model-versions/get", {"name": "wine", "version": "-1"}),
        ("post", "model-versions/transition-stage", {"name": "wine", "version": "1"}),
        (
            "post",
            "model-versions/transition-stage",
            {"name": "wine", "version": "1", "stage": "Prod"},
        ),
        (
            "post",
            "model-versions/transition-stage",
            {"name": "wine", "version": "1", "stage": "Staging", "archive_existing_versions": "y"},
        ),
        ("post", "model-versions/set-tag", {"name": "wine", "version": True, "key": "k"}),
        ("post", "model-versions/set-tag", {"name": "wine", "version": 1.5, "key": "k"}),
        ("post", "registered-models/alias", {"name": "wine", "alias": "v2", "version": "1"}),
        ("post", "registered-models/alias", {"name": "wine", "alias": "x y", "version": "1"}),
        ("post", "registered-models/get-latest-versions", {"name": "wine", "stages": ["Gold"]}),
        ("post", "registered-models/get-latest-versions", {"name": "wine", "stages": "None"}),
        ("patch", "model-versions/update", {"name": "wine", "version": "1", "description": 3}),
    ]
    for method, path, body in cases:
        if method == "get":
            r = api.get(f"{ML}/{path}", body)
        else:
            r = getattr(api, method)(f"{ML}/{path}", body, format="json")
        assert r.status_code == 400, (path, body, r.content)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (path, body)
    r = api.get(f"{ML}/model-versions/get", {"name": "wine", "version": "9"})
    assert r.status_code == 404


@pytest.mark.django_db
def test_other_user_cannot_see_or_touch_versions(api, ready_version, make_user, api_as, grant):
    ready_version()
    eve = api_as(make_user("eve"))
    grant("catalog", "main", "eve", "USE CATALOG", "USE SCHEMA")
    assert names(eve.get(f"{ML}/registered-models/search")) == []
    r = eve.get(f"{ML}/model-versions/search", {"filter": "name = 'wine'"})
    assert r.json().get("model_versions", []) == []
    r = eve.get(f"{ML}/model-versions/get-download-uri", {"name": "wine", "version": "1"})
    assert r.status_code == 404
    r = eve.delete(f"{ML}/model-versions/delete", {"name": "wine", "version": "1"}, format="json")
    assert r.status_code == 404
    # A read grant makes it visible, but not writable.
    grant("registered_model", "main.default.wine", "eve", "EXECUTE")
    assert names(eve.get(f"{ML}/registered-models/search")) == ["main.default.wine"]
    r = eve.post(
        f"{ML}/model-versions/transition-stage",
        {"name": "wine", "version": "1", "stage": "Production"},
        format="json",
    )
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"


@pytest.mark.django_db
def test_default_namespace_setting(api, settings, tree):
    tree("main.ml")
    settings.STEWARD_DEFAULT_NAMESPACE = "main.ml"
    r = create_model(api, "pinot")
    assert r.json()["registered_model"]["name"] == "main.ml.pinot"
    r = api.get(f"{ML}/registered-models/search", {"filter": "name = 'pinot'"})
    assert names(r) == ["main.ml.pinot"]


@pytest.mark.django_db(transaction=True)  # real commits: on_commit runs as in production
def test_small_sources_are_copied_in_the_request_large_ones_queued(
    api, dana, logged_model, settings, monkeypatch
):
    """With a real queue (not eager), a small version is READY in the create answer itself
    (the mlflow client would otherwise poll a PENDING version for 3 s); above the threshold
    the copy goes to the Celery queue."""
    from registry import tasks

    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued = []
    monkeypatch.setattr(
        tasks.register_version_files,
        "apply_async",
        lambda args=(), kwargs=None, **options: queued.append(args),
    )
    create_model(api)
    source = logged_model(dana)
    put_logged_model_files(source)
    small = create_version(api, source, model_id=source[len("models:/") :])
    assert small.json()["model_version"]["status"] == "READY" and queued == []

    settings.STEWARD_INLINE_COPY_MAX_BYTES = 10  # the MLmodel file alone is larger
    large = create_version(api, source, model_id=source[len("models:/") :])
    assert large.json()["model_version"]["status"] == "PENDING_REGISTRATION"
    assert len(queued) == 1 and queued[0][0] == str(ModelVersion.objects.get(version=2).pk)


@pytest.mark.django_db
def test_version_create_with_bad_tags_copies_nothing(api, dana, logged_model):
    """Tags are checked before a small source is copied in the creating transaction: a
    refused create leaves no version and no files where version 1 would have lived."""
    from registry import artifacts

    create_model(api)
    source = logged_model(dana)
    put_logged_model_files(source)
    model_id = RegisteredModel.objects.get(full_name="main.default.wine").pk
    for tags in (
        [{"key": "", "value": "x"}],
        [{"key": "k", "value": "x" * 6000}],
        [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}],
    ):
        r = create_version(api, source, model_id=source[len("models:/") :], tags=tags)
        assert r.status_code == 400, (tags, r.content)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert not ModelVersion.objects.exists()
        assert not list(artifacts.walk(f"models/{model_id}/versions/1"))
    ok = create_version(api, source, model_id=source[len("models:/") :], tags=[{"key": "k"}])
    assert ok.status_code == 200, ok.content
    assert ok.json()["model_version"]["version"] == "1"
    assert ok.json()["model_version"]["status"] == "READY"
    assert ok.json()["model_version"]["tags"] == [{"key": "k", "value": ""}]


@pytest.mark.django_db
def test_model_create_with_a_repeated_tag_key_is_refused(api):
    tags = [{"key": "team", "value": "a"}, {"key": "team", "value": "b"}]
    r = create_model(api, "dup", tags=tags)
    assert r.status_code == 400, r.content
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "team" in r.json()["message"]
    assert not RegisteredModel.objects.filter(name="dup").exists()
