"""The real, unchanged `mlflow` client (3.x) uploading and downloading artifacts through
Steward's artifact proxy: run artifacts (log_artifact, log_text, log_dict, list, download)
and an MLflow 3 logged model (sklearn log_model, then pyfunc load_model and predict).

Registration (`registered_model_name=`) belongs to the registry tests, so it is not used.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow  # noqa: E402  (a dev dependency: fail loudly if missing)
import numpy as np
import pytest
import requests
import sklearn  # noqa: E402,F401
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import LoggedModelStatus  # noqa: E402
from mlflow.store.artifact.artifact_repository_registry import (  # noqa: E402
    get_artifact_repository,
)
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from audit.models import AuditEvent
from tests.conftest import token_for
from tests.e2e.conftest import _wait_for_request_threads
from tests.e2e.mlflow_support import close_client_connections  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live_mlflow(live_server, monkeypatch):
    """The mlflow client pointed at the live server; `login(user)` switches the token."""
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    for name in (
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_RUN_ID",
        "MLFLOW_REGISTRY_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(live_server.url)

    def login(user) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for(user))
        return MlflowClient(tracking_uri=live_server.url)

    yield login
    while mlflow.active_run() is not None:
        mlflow.end_run()
    close_client_connections(live_server.url)
    _wait_for_request_threads()


def test_run_artifacts_round_trip(live_mlflow, make_user, tmp_path):
    alice = make_user("alice")
    client = live_mlflow(alice)
    mlflow.set_experiment("artifacts")

    local = tmp_path / "upload"
    (local / "nested").mkdir(parents=True)
    (local / "notes.txt").write_text("hello artifacts\n")
    (local / "nested" / "data.bin").write_bytes(bytes(range(256)) * 40)

    with mlflow.start_run() as run:
        run_id = run.info.run_id
        mlflow.log_artifact(str(local / "notes.txt"))
        mlflow.log_artifact(str(local / "nested" / "data.bin"), artifact_path="blobs")
        mlflow.log_artifacts(str(local / "nested"), artifact_path="tree/deeper")
        mlflow.log_text("some text", "texts/hello.txt")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "config.json")

    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [
        ("blobs", True),
        ("config.json", False),
        ("notes.txt", False),
        ("texts", True),
        ("tree", True),
    ]
    assert {f.path: f.file_size for f in top if not f.is_dir} == {
        "config.json": len(json.dumps({"a": 1, "b": [1, 2]}, indent=2)),
        "notes.txt": 16,
    }
    assert [f.path for f in client.list_artifacts(run_id, "tree/deeper")] == [
        "tree/deeper/data.bin"
    ]
    assert client.list_artifacts(run_id, "missing") == []

    out = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl")))
    assert (out / "notes.txt").read_text() == "hello artifacts\n"
    assert (out / "blobs" / "data.bin").read_bytes() == bytes(range(256)) * 40
    assert (out / "tree" / "deeper" / "data.bin").read_bytes() == bytes(range(256)) * 40
    assert (out / "texts" / "hello.txt").read_text() == "some text"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json") == {"a": 1, "b": [1, 2]}
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/texts/hello.txt") == "some text"

    # Someone else can neither list, read nor write the run's artifacts through the proxy.
    bob = make_user("bob")
    live_mlflow(bob)
    repo = get_artifact_repository(run.info.artifact_uri)
    (tmp_path / "bob").mkdir()
    attempts = [
        lambda: repo.list_artifacts(),
        lambda: repo.download_artifacts("notes.txt", str(tmp_path / "bob")),
        lambda: repo.log_artifact(str(local / "notes.txt")),
        lambda: repo.delete_artifacts("notes.txt"),
    ]
    for attempt in attempts:
        with pytest.raises(requests.HTTPError) as hidden:
            attempt()
        assert hidden.value.response.status_code == 404
        assert "RESOURCE_DOES_NOT_EXIST" in str(hidden.value)
    assert AuditEvent.objects.filter(actor="bob", outcome="DENIED").exists()
    assert AuditEvent.objects.filter(actor="alice", action="artifact.upload").count() == 5


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_logged_model_round_trip(live_mlflow, make_user):
    alice = make_user("alice")
    live_mlflow(alice)
    mlflow.set_experiment("wine-models")
    features, target = load_wine(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, target)

    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=features[:2], pip_requirements=["scikit-learn"]
        )
    assert info.model_uri.startswith("models:/m-")
    logged = mlflow.get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    names = {f.path for f in MlflowClient().list_logged_model_artifacts(info.model_id)}
    assert {"MLmodel", "requirements.txt", "input_example.json"} <= names

    loaded = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))

    # The finalized model's files are immutable through the proxy.
    repo = get_artifact_repository(logged.artifact_location)
    with pytest.raises(requests.HTTPError) as refused:
        repo.log_artifact(__file__, "extra")
    assert refused.value.response.status_code == 409
    assert "RESOURCE_CONFLICT" in str(refused.value)
