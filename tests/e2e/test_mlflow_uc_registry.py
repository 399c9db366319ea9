"""The same governed flow through MLflow's Unity Catalog OSS registry: `set_registry_uri("uc:...")`.

The mlflow client keeps tracking (experiments, runs, logged models and their files) on the
tracking URI and talks to `/api/2.1/unity-catalog` for the registry, with the token from
`MLFLOW_UC_OSS_TOKEN`. For a `file://` storage location it writes the version's files itself
and then finalizes the version, so this only works where client and server share a disk (the
embedded default, or this test). MLflow's OSS UC store implements no aliases, tags or stages
(docs/research/mlflow-client-wire.md §6): those go through Steward's other doors, and a version
loads as `models:/catalog.schema.model/<version>`.

What holds here: registration lands as a READY version with the signature read from the files
the client wrote; get, search and update work; `unitycatalog-client` lists the version; a user
without MODIFY cannot register and a user without EXECUTE cannot fetch credentials; deletion
leaves a tombstone and the number is never reused; each step is in the audit trail.
"""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from audit.models import AuditEvent
from registry.models import ModelVersion
from tests.conftest import token_for
from tests.e2e.conftest import UC_PREFIX

# PostgreSQL only, for the reason given in test_mlflow_governed_model.py (parallel downloads).
pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NAME = "main.ml.wine_uc"


@pytest.fixture
def uc_login(login, live_server, monkeypatch):
    """uc_login(user): tracking on the live server as `user`, registry through `uc:`."""
    from mlflow import MlflowClient

    def make(user):
        login(user)
        monkeypatch.setenv("MLFLOW_UC_OSS_TOKEN", token_for(user))
        registry = "uc:" + live_server.url
        mlflow.set_registry_uri(registry)
        return MlflowClient(tracking_uri=live_server.url, registry_uri=registry)

    return make


def _train():
    X, y = load_wine(return_X_y=True, as_frame=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(max_iter=500).fit(X, y)
    return model, X


def test_uc_registry_register_get_search_load_delete(uc_login, live_uc, tree, grant, make_user):
    tree("main.ml")
    alice = make_user("alice")
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "CREATE MODEL")
    client = uc_login(alice)
    model, X = _train()
    expected = model.predict(X[:10])

    mlflow.set_experiment("wine-uc")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=NAME,
            input_example=X[:2],
            pip_requirements=["scikit-learn"],
        )
    # The OSS UC store answers versions as ints.
    assert info.registered_model_version == 1

    stored = ModelVersion.objects.get(model__full_name=NAME, version=1)
    assert stored.status == ModelVersion.Status.READY
    assert stored.source == info.model_uri  # models:/m-<logged model id>
    assert stored.artifact_digest
    assert stored.signature and stored.signature.get("inputs")
    assert stored.storage_location.startswith("file:///")

    got = client.get_model_version(NAME, 1)
    assert (got.name, got.version, got.status) == (NAME, 1, "READY")
    assert [v.version for v in client.search_model_versions(f"name = '{NAME}'")] == [1]
    assert NAME in {m.name for m in client.search_registered_models()}
    client.update_model_version(NAME, 1, description="trained on load_wine")
    assert client.get_model_version(NAME, 1).description == "trained on load_wine"

    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    assert np.array_equal(np.asarray(loaded.predict(X[:10])), expected)

    # The official unitycatalog-client lists the version too.
    from unitycatalog.client import ModelVersionsApi

    async def listing(uc):
        page = await ModelVersionsApi(uc.api).list_model_versions(full_name=NAME)
        return [(v.version, v.status.value) for v in page.model_versions]

    assert live_uc.run(token_for(alice), listing) == [(1, "READY")]

    # A second registration gets the next number; after deleting both, numbers are not reused.
    with mlflow.start_run():
        again = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=NAME, pip_requirements=["scikit-learn"]
        )
    assert again.registered_model_version == 2
    client.delete_model_version(NAME, 2)
    assert ModelVersion.objects.get(model__full_name=NAME, version=2).lifecycle == "DELETED"
    with pytest.raises(MlflowException, match="(?i)not.*found|does not exist"):
        client.get_model_version(NAME, 2)
    assert [v.version for v in client.search_model_versions(f"name = '{NAME}'")] == [1]

    actions = [
        (e.action, e.outcome) for e in AuditEvent.objects.filter(securable=NAME).order_by("id")
    ]
    for expected_action in (
        "model_version.create",
        "model_version.finalize",
        "model_version.update",
        "model_version.delete",
    ):
        assert (expected_action, "SUCCESS") in actions, actions


def test_uc_registry_refuses_without_privileges(uc_login, live_uc, tree, grant, make_user):
    tree("main.ml")
    alice = make_user("alice")
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "CREATE MODEL")
    uc_login(alice)
    model, X = _train()
    mlflow.set_experiment("wine-uc")
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=NAME, pip_requirements=["scikit-learn"]
        )

    # Bob can see the model but not modify it: his registration is refused, nothing is created.
    bob = make_user("bob")
    grant("catalog", "main", "bob", "USE CATALOG", "USE SCHEMA", "BROWSE")
    uc_login(bob)
    mlflow.set_experiment("bob-uc")
    with mlflow.start_run():
        logged = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    with pytest.raises(MlflowException, match="does not have MODIFY"):
        mlflow.register_model(logged.model_uri, NAME)
    assert ModelVersion.objects.filter(model__full_name=NAME).count() == 1

    assert AuditEvent.objects.filter(actor="bob", outcome="DENIED", securable=NAME).exists()

    # Without EXECUTE the server hands out no read credentials for the version's files.
    response = live_uc.raw(
        "POST",
        f"{UC_PREFIX}/temporary-model-version-credentials",
        token_for(bob),
        json={
            "catalog_name": "main",
            "schema_name": "ml",
            "model_name": "wine_uc",
            "version": 1,
            "operation": "READ_MODEL_VERSION",
        },
    )
    assert response.status_code == 403, response.text
    assert "EXECUTE" in response.json()["message"]
