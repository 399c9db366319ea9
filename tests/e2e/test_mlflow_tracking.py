"""The real, unchanged `mlflow` client (3.x) against a live Steward: experiments, runs, params,
metrics, tags, history, search and MLflow 3 logged models, plus what a second user sees before
and after the experiment is shared (SECURITY_CASES 12, 14).

Artifacts are out of scope here, so `log_model` is not called; the logged-model calls it makes
(create, outputs, finalize, tags) are made through MlflowClient directly.
"""

from __future__ import annotations

import math
import time

import mlflow  # noqa: E402  (a dev dependency: fail loudly if missing)
import pytest
import requests
import sklearn  # noqa: E402,F401
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import LoggedModelStatus, Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from audit.models import AuditEvent
from tests.conftest import token_for
from tests.e2e.conftest import _wait_for_request_threads
from tests.e2e.mlflow_support import close_client_connections  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class LiveMlflow:
    """Switches the mlflow client between users (the token is read from the environment on
    every request) and makes the native calls the client has no method for."""

    def __init__(self, url: str, monkeypatch):
        self.url = url
        self.monkeypatch = monkeypatch
        self.tokens: dict[str, str] = {}

    def login(self, user) -> MlflowClient:
        if user.username not in self.tokens:
            self.tokens[user.username] = token_for(user)
        self.monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", self.tokens[user.username])
        return MlflowClient(tracking_uri=self.url)

    def share(self, owner, experiment_id: str, principal: str, level: str) -> dict:
        response = requests.post(
            f"{self.url}/api/v1/experiments/{experiment_id}/permissions",
            json={"principal": principal, "level": level},
            headers={"Authorization": f"Bearer {token_for(owner)}", "Connection": "close"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def live_mlflow(live_server, monkeypatch):
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    # Forget whatever URI and experiment an earlier test set in this process.
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(live_server.url)

    yield LiveMlflow(live_server.url, monkeypatch)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    close_client_connections(live_server.url)
    _wait_for_request_threads()


def error_code(exc: MlflowException) -> str:
    return exc.error_code


def test_tracking_flow_with_the_real_client(live_mlflow, make_user):
    alice = make_user("alice")
    live_mlflow.login(alice)

    experiment = mlflow.set_experiment("wine-quality")
    assert experiment.experiment_id.isdigit()
    assert experiment.lifecycle_stage == "active"
    # set_experiment again finds it by name instead of creating another.
    assert mlflow.set_experiment("wine-quality").experiment_id == experiment.experiment_id

    features, target = load_wine(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
    train_accuracy = float(pipeline.fit(features, target).score(features, target))
    classifier = pipeline[-1]

    with mlflow.start_run() as run:
        run_id = run.info.run_id
        assert len(run_id) == 32 and run.info.run_name  # a name was invented
        assert run.info.artifact_uri == (
            f"mlflow-artifacts:/{experiment.experiment_id}/{run_id}/artifacts"
        )
        mlflow.log_param("C", classifier.C)
        mlflow.log_metric("train_accuracy", train_accuracy)
        mlflow.log_params({"solver": "lbfgs", "max_iter": 100})
        for step, value in enumerate([0.5, 0.7, 0.9]):
            mlflow.log_metric("acc", value, step=step)
        mlflow.log_metrics({"f1": 0.8, "loss": float("nan")})
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"team": "ml", "purpose": "e2e"})
        client = MlflowClient()
        client.log_batch(
            run_id,
            metrics=[Metric("rmse", 0.25, int(time.time() * 1000), 0)],
            params=[Param("alpha", "0.1")],
            tags=[RunTag("batch", "yes")],
        )
        # Params are immutable: the same value again is fine, another one is refused.
        mlflow.log_param("C", classifier.C)
        with pytest.raises(MlflowException) as changed:
            mlflow.log_param("C", 2.0)
        assert changed.value.error_code == "INVALID_PARAMETER_VALUE"

    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED" and finished.info.end_time
    assert finished.info.user_id == "alice"
    assert finished.data.params == {
        "C": "1.0",
        "solver": "lbfgs",
        "max_iter": "100",
        "alpha": "0.1",
    }
    assert finished.data.metrics["acc"] == 0.9
    assert finished.data.metrics["train_accuracy"] == pytest.approx(train_accuracy)
    assert math.isnan(finished.data.metrics["loss"])
    assert finished.data.tags["stage"] == "dev" and finished.data.tags["batch"] == "yes"
    assert finished.data.tags["mlflow.runName"] == finished.info.run_name
    assert finished.data.tags["mlflow.user"] == "alice"

    history = client.get_metric_history(run_id, "acc")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.7), (2, 0.9)]

    # Search, through the fluent API (pandas) and the client, with filters and order.
    frame = mlflow.search_runs(experiment_ids=[experiment.experiment_id])
    assert list(frame["run_id"]) == [run_id]
    found = client.search_runs(
        [experiment.experiment_id],
        filter_string="metrics.acc > 0.8 and params.C = '1.0' and tags.stage = 'dev' "
        "and attributes.status = 'FINISHED'",
        order_by=["metrics.acc DESC"],
    )
    assert [r.info.run_id for r in found] == [run_id]
    assert client.search_runs([experiment.experiment_id], "metrics.acc > 0.95") == []
    with pytest.raises(MlflowException) as bad_filter:
        client.search_runs([experiment.experiment_id], "metrics.acc > 1 OR params.C = '1'")
    assert bad_filter.value.error_code == "INVALID_PARAMETER_VALUE"

    experiments = client.search_experiments(filter_string="name LIKE 'wine%'")
    assert [e.name for e in experiments] == ["wine-quality"]

    # A second run, renamed and failed, then deleted and restored.
    with mlflow.start_run(run_name="second") as second:
        mlflow.log_metric("acc", 0.1)
    client.set_terminated(second.info.run_id, status="FAILED")
    client.update_run(second.info.run_id, name="renamed")
    assert client.get_run(second.info.run_id).info.run_name == "renamed"
    client.delete_run(second.info.run_id)
    assert [r.info.run_id for r in client.search_runs([experiment.experiment_id])] == [run_id]
    client.restore_run(second.info.run_id)
    assert len(client.search_runs([experiment.experiment_id])) == 2

    # MLflow 3 logged models: what log_model does, minus the artifact upload.
    model = client.create_logged_model(
        experiment_id=experiment.experiment_id,
        name="model",
        source_run_id=run_id,
        params={"C": "1.0"},
        tags={"framework": "sklearn"},
        model_type="classifier",
    )
    assert model.model_id.startswith("m-") and model.status == LoggedModelStatus.PENDING
    assert model.artifact_location == (
        f"mlflow-artifacts:/{experiment.experiment_id}/models/{model.model_id}/artifacts"
    )
    client.log_outputs(run_id, [mlflow.entities.LoggedModelOutput(model.model_id, step=0)])
    ready = client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert ready.status == LoggedModelStatus.READY
    client.set_logged_model_tags(model.model_id, {"mlflow.modelVersions": "[]"})
    fetched = client.get_logged_model(model.model_id)
    assert fetched.tags["framework"] == "sklearn" and fetched.tags["mlflow.modelVersions"] == "[]"
    assert fetched.params == {"C": "1.0"} and fetched.source_run_id == run_id
    assert fetched.model_type == "classifier"
    client.delete_logged_model_tag(model.model_id, "framework")
    assert "framework" not in client.get_logged_model(model.model_id).tags
    models = client.search_logged_models(
        experiment_ids=[experiment.experiment_id], filter_string="name = 'model'"
    )
    assert [m.model_id for m in models] == [model.model_id]
    outputs = client.get_run(run_id).outputs
    assert [o.model_id for o in outputs.model_outputs] == [model.model_id]

    actions = set(AuditEvent.objects.filter(actor="alice").values_list("action", flat=True))
    assert {
        "experiment.create",
        "run.create",
        "run.log_param",
        "run.log_metric",
        "run.log_batch",
        "run.set_tag",
        "run.update",
        "logged_model.create",
        "logged_model.finalize",
    } <= actions


def test_second_user_sees_nothing_until_shared(live_mlflow, make_user):
    alice = make_user("alice")
    bob = make_user("bob")

    owner = live_mlflow.login(alice)
    experiment_id = owner.create_experiment("private")
    run = owner.create_run(experiment_id)
    owner.log_metric(run.info.run_id, "acc", 0.5)

    stranger = live_mlflow.login(bob)
    assert stranger.get_experiment_by_name("private") is None
    with pytest.raises(MlflowException) as hidden:
        stranger.get_experiment(experiment_id)
    assert error_code(hidden.value) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as hidden_run:
        stranger.get_run(run.info.run_id)
    assert error_code(hidden_run.value) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as hidden_write:
        stranger.log_metric(run.info.run_id, "acc", 0.99)
    assert error_code(hidden_write.value) == "RESOURCE_DOES_NOT_EXIST"
    assert stranger.search_runs([experiment_id]) == []
    assert "private" not in [e.name for e in stranger.search_experiments()]
    # Names are global (as in MLflow): bob cannot create or take over "private". The fluent
    # set_experiment swallows RESOURCE_ALREADY_EXISTS and answers None (a client quirk).
    with pytest.raises(MlflowException) as taken:
        stranger.create_experiment("private")
    assert error_code(taken.value) == "RESOURCE_ALREADY_EXISTS"
    assert mlflow.set_experiment("private") is None

    live_mlflow.share(alice, experiment_id, "bob", "CAN_READ")
    reader = live_mlflow.login(bob)
    assert reader.get_experiment_by_name("private").experiment_id == experiment_id
    assert reader.get_run(run.info.run_id).data.metrics == {"acc": 0.5}
    assert [r.info.run_id for r in reader.search_runs([experiment_id])] == [run.info.run_id]
    with pytest.raises(MlflowException) as read_only:
        reader.log_metric(run.info.run_id, "acc", 0.99)
    assert error_code(read_only.value) == "PERMISSION_DENIED"

    live_mlflow.share(alice, experiment_id, "bob", "CAN_EDIT")
    editor = live_mlflow.login(bob)
    editor.log_metric(run.info.run_id, "acc", 0.99, step=1)
    own_run = editor.create_run(experiment_id)
    assert own_run.info.user_id == "bob"
    with pytest.raises(MlflowException) as no_delete:
        editor.delete_run(run.info.run_id)
    assert error_code(no_delete.value) == "PERMISSION_DENIED"

    owner = live_mlflow.login(alice)
    assert owner.get_run(run.info.run_id).data.metrics == {"acc": 0.99}
    denied = AuditEvent.objects.filter(actor="bob", outcome="DENIED")
    assert denied.filter(action="run.log_metric").count() == 2
