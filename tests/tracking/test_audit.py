"""Every tracking write leaves an audit event with the right actor, action and securable, in
the same transaction (a refused write leaves none but its DENIED event); django-auditlog keeps
the field diffs with the same request id."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry

from audit.models import AuditEvent
from tests.tracking.conftest import error_of

pytestmark = pytest.mark.django_db


def test_each_write_is_an_audit_event(door, alice):
    api = door(alice)
    exp_id = api.post("experiments/create", {"name": "exp"}).json()["experiment_id"]
    run_id = api.post("runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]
    calls = [
        ("experiments/set-experiment-tag", {"experiment_id": exp_id, "key": "k", "value": "v"}),
        ("experiments/delete-experiment-tag", {"experiment_id": exp_id, "key": "k"}),
        ("experiments/update", {"experiment_id": exp_id, "new_name": "exp2"}),
        ("runs/log-metric", {"run_id": run_id, "key": "acc", "value": 1, "timestamp": 1}),
        ("runs/log-parameter", {"run_id": run_id, "key": "C", "value": "1"}),
        ("runs/log-batch", {"run_id": run_id, "params": [{"key": "D", "value": "2"}]}),
        ("runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"}),
        ("runs/delete-tag", {"run_id": run_id, "key": "t"}),
        ("runs/update", {"run_id": run_id, "status": "FINISHED"}),
        ("runs/delete", {"run_id": run_id}),
        ("runs/restore", {"run_id": run_id}),
    ]
    for path, body in calls:
        assert api.post(path, body).status_code == 200, (path, api.post(path, body).content)
    model = api.post("logged-models", {"experiment_id": exp_id, "source_run_id": run_id})
    model_id = model.json()["model"]["info"]["model_id"]
    api.patch(f"logged-models/{model_id}", {"status": "LOGGED_MODEL_READY"})
    api.patch(f"logged-models/{model_id}/tags", {"tags": [{"key": "a", "value": "b"}]})
    api.post(f"logged-models/{model_id}/params", {"params": [{"key": "p", "value": "1"}]})
    api.delete(f"logged-models/{model_id}/tags/a")
    api.post("runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id}]})
    api.post(
        "runs/log-inputs",
        {"run_id": run_id, "datasets": [{"dataset": {"name": "d", "digest": "1"}}]},
    )
    api.delete(f"logged-models/{model_id}")
    api.post("experiments/delete", {"experiment_id": exp_id})
    api.post("experiments/restore", {"experiment_id": exp_id})

    events = AuditEvent.objects.filter(actor="alice", outcome="SUCCESS")
    by_action = {e.action: e for e in events}
    expected = {
        "experiment.create": ("experiment", exp_id),
        "experiment.set_tag": ("experiment", exp_id),
        "experiment.delete_tag": ("experiment", exp_id),
        "experiment.update": ("experiment", exp_id),
        "experiment.delete": ("experiment", exp_id),
        "experiment.restore": ("experiment", exp_id),
        "run.create": ("run", run_id),
        "run.log_metric": ("run", run_id),
        "run.log_param": ("run", run_id),
        "run.log_batch": ("run", run_id),
        "run.set_tag": ("run", run_id),
        "run.delete_tag": ("run", run_id),
        "run.update": ("run", run_id),
        "run.delete": ("run", run_id),
        "run.restore": ("run", run_id),
        "run.log_outputs": ("run", run_id),
        "run.log_inputs": ("run", run_id),
        "logged_model.create": ("logged_model", model_id),
        "logged_model.finalize": ("logged_model", model_id),
        "logged_model.set_tags": ("logged_model", model_id),
        "logged_model.log_params": ("logged_model", model_id),
        "logged_model.delete_tag": ("logged_model", model_id),
        "logged_model.delete": ("logged_model", model_id),
    }
    for action, (securable_type, securable) in expected.items():
        assert action in by_action, action
        event = by_action[action]
        assert (event.securable_type, event.securable) == (securable_type, securable), action
        assert event.auth_method == "token"
    assert by_action["run.log_param"].details["params"] == ["C"]
    assert by_action["experiment.update"].details["name"] == {"from": "exp", "to": "exp2"}


def test_refused_write_leaves_only_its_denied_event(door, alice, carol):
    api = door(alice)
    exp_id = api.post("experiments/create", {"name": "exp"}).json()["experiment_id"]
    run_id = api.post("runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]
    before = AuditEvent.objects.count()
    bad = api.post(
        "runs/log-batch", {"run_id": run_id, "params": [{"key": "bad key!", "value": "1"}]}
    )
    assert error_of(bad) == "INVALID_PARAMETER_VALUE"
    assert AuditEvent.objects.count() == before
    hidden = door(carol).post("runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"})
    assert error_of(hidden) == "RESOURCE_DOES_NOT_EXIST"
    event = AuditEvent.objects.latest("id")
    assert (event.actor, event.action, event.outcome) == ("carol", "run.set_tag", "DENIED")
    assert event.securable == run_id and event.details["privilege"] == "CAN_EDIT"


def test_field_diffs_carry_the_request_id(door, alice):
    api = door(alice)
    response = api.client.post(
        "/api/2.0/mlflow/experiments/create",
        {"name": "exp"},
        format="json",
        HTTP_X_REQUEST_ID="req-track-1",
    )
    assert response.status_code == 200
    entries = LogEntry.objects.filter(cid="req-track-1", content_type__model="experiment")
    assert entries.exists() and {e.actor for e in entries} == {alice}
    event = AuditEvent.objects.get(request_id="req-track-1")
    assert event.action == "experiment.create"
