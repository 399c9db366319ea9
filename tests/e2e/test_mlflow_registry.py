"""The real, unchanged `mlflow` client (3.x) against a live Steward's model registry:
registered models in the default namespace, versions registered from a logged model (files
copied server-side), aliases, stages, tags, search, rename and delete, and what a second user
without grants sees.

The artifact upload is not part of this test: the logged model's files are written straight
into Steward's artifact store at the logged model's location, where `log_model` would have
PUT them through the artifact proxy, before the version is created.
"""

from __future__ import annotations

import mlflow  # noqa: E402  (a dev dependency: fail loudly if missing)
import pytest
from django.core.files.base import ContentFile
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import LoggedModelStatus  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from tests.registry.conftest import MLMODEL

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def logged_model_with_files(client: MlflowClient, experiment_id: str) -> str:
    """A finalized logged model whose files are in the artifact store; returns its id."""
    from registry.storage import artifact_storage, join

    run = client.create_run(experiment_id)
    model = client.create_logged_model(
        experiment_id=experiment_id, name="model", source_run_id=run.info.run_id
    )
    # Written directly, as the artifact proxy would have stored log_model's uploads.
    prefix = model.artifact_location.removeprefix("mlflow-artifacts:/")
    for name, content in {"MLmodel": MLMODEL.encode(), "model.skops": b"weights"}.items():
        artifact_storage.save(join(prefix, name), ContentFile(content))
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model.model_id


def test_registry_flow_with_the_real_client(login, tree, grant, make_user):
    from registry.models import ModelVersion

    tree("main.default")
    alice = make_user("alice")
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "CREATE MODEL")
    client = login(alice)
    experiment_id = client.create_experiment("wine-registry")

    created = client.create_registered_model("wine", tags={"team": "ml"}, description="red wines")
    assert created.name == "main.default.wine"
    with pytest.raises(MlflowException) as exists:
        client.create_registered_model("wine")
    assert exists.value.error_code == "RESOURCE_ALREADY_EXISTS"

    model_id = logged_model_with_files(client, experiment_id)
    mv = client.create_model_version("wine", source=f"models:/{model_id}", model_id=model_id)
    assert (mv.name, str(mv.version), mv.status) == ("main.default.wine", "1", "READY")
    assert mv.current_stage == "None" and mv.source == f"models:/{model_id}"
    logged = client.get_logged_model(model_id)
    assert mv.run_id == logged.source_run_id
    stored = ModelVersion.objects.get(version=1)
    assert stored.artifact_digest and stored.logged_model_id == model_id

    # register_model: "already exists" on create is how the client learns to add a version.
    second_id = logged_model_with_files(client, experiment_id)
    mv2 = mlflow.register_model(f"models:/{second_id}", "main.default.wine")
    assert (str(mv2.version), mv2.status) == ("2", "READY")

    client.set_registered_model_alias("wine", "champion", "1")
    champion = client.get_model_version_by_alias("wine", "champion")
    assert str(champion.version) == "1" and champion.aliases == ["champion"]
    got = client.get_registered_model("wine")
    assert got.aliases == {"champion": "1"} and got.tags == {"team": "ml"}
    assert got.description == "red wines"

    found = client.search_registered_models()
    assert [m.name for m in found] == ["main.default.wine"]
    assert [m.name for m in client.search_registered_models("name LIKE 'wi%'")] == [
        "main.default.wine"
    ]
    assert client.search_registered_models("tags.team = 'other'") == []
    versions = client.search_model_versions("name='wine'")
    assert [str(v.version) for v in versions] == ["2", "1"]
    assert [str(v.version) for v in client.search_model_versions(f"run_id='{mv.run_id}'")] == ["1"]

    staged = client.transition_model_version_stage("wine", "1", "Staging")
    assert staged.current_stage == "Staging"
    latest = client.get_latest_versions("wine", stages=["Staging"])
    assert [str(v.version) for v in latest] == ["1"]
    assert {str(v.version) for v in client.get_latest_versions("wine")} == {"1", "2"}

    client.set_registered_model_tag("wine", "owner", "alice")
    client.delete_registered_model_tag("wine", "team")
    client.set_model_version_tag("wine", "1", "validation", "passed")
    assert client.get_model_version("wine", "1").tags == {"validation": "passed"}
    client.delete_model_version_tag("wine", "1", "validation")
    client.update_registered_model("wine", description="still red")
    client.update_model_version("wine", "1", description="first")
    assert client.get_model_version("wine", "1").description == "first"
    assert client.get_registered_model("wine").tags == {"owner": "alice"}

    uri = client.get_model_version_download_uri("wine", "1")
    assert uri == f"mlflow-artifacts:/models/{stored.model_id}/versions/1"

    # A second user without grants sees nothing and can change nothing.
    bob = make_user("bob")
    stranger = login(bob)
    with pytest.raises(MlflowException) as hidden:
        stranger.get_registered_model("wine")
    assert hidden.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as hidden_version:
        stranger.get_model_version("main.default.wine", "1")
    assert hidden_version.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert stranger.search_registered_models() == []
    assert stranger.search_model_versions("name='wine'") == []
    with pytest.raises(MlflowException) as no_delete:
        stranger.delete_registered_model("wine")
    assert no_delete.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client = login(alice)
    client.delete_registered_model_alias("wine", "champion")
    client.rename_registered_model("wine", "rouge")  # the client returns nothing here
    assert client.get_registered_model("rouge").name == "main.default.rouge"
    client.delete_model_version("rouge", "2")
    assert [str(v.version) for v in client.search_model_versions("name='rouge'")] == ["1"]
    client.delete_registered_model("rouge")
    with pytest.raises(MlflowException) as gone:
        client.get_registered_model("rouge")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
