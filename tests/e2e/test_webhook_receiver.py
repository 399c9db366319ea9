"""Webhooks end to end: the real, unchanged mlflow client (3.x) manages webhooks on a live
Steward and registers a model version through the MLflow API; an HTTP receiver started here
checks every signature the way MLflow documents it, fails its first answers so that retries
happen, and a second receiver, at an address the policy refuses, sees nothing at all.

How retries run here. Celery is eager in the tests, so the first attempt of each delivery
runs in the live server's request, right after the change commits (transaction.on_commit).
An eager retry scheduled with a countdown would run at once, in that same request, ignoring
the backoff; so Steward never schedules eager retries: a failed attempt leaves the delivery
PENDING with its next attempt time, and the periodic sweep (webhooks.tasks.retry_due_deliveries,
run by Celery beat every minute, or `manage.py deliver_webhooks`) sends what is due. The test
runs that sweep itself and moves webhooks' clock forward past each backoff instead of
sleeping: the same code a beat-driven worker runs, with the time honestly advanced.

The receivers listen on 127.0.0.1, which the policy refuses; the test allows exactly the good
receiver's address and port (STEWARD_WEBHOOK_ALLOWED_TARGETS), not private addresses at large,
so the refused one on another port of the same address (named `localhost`) stays refused.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import token_for
from tests.e2e.test_mlflow_registry import logged_model_with_files
from tests.webhooks.receiver import Clock, Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "whsec-e2e-0123456789"


@pytest.fixture
def receivers(settings):
    good, refused = Receiver(), Receiver()
    settings.STEWARD_WEBHOOK_ALLOWED_SCHEMES = ["http", "https"]
    settings.STEWARD_WEBHOOK_ALLOW_PRIVATE = False
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{good.port}"]
    settings.STEWARD_WEBHOOK_TIMEOUT = 5
    settings.STEWARD_WEBHOOK_RETRY_BACKOFF = 30
    yield good, refused
    good.close()
    refused.close()


@pytest.fixture
def admin(admin_user, tree):
    tree("main.default")
    return admin_user


def deliveries(live_server, user, hook_id: str) -> list[dict]:
    response = requests.get(
        f"{live_server.url}/api/v1/webhooks/{hook_id}/deliveries",
        headers={"Authorization": f"Bearer {token_for(user)}", "Connection": "close"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


def test_mlflow_client_webhooks_signed_deliveries_and_a_refused_address(
    login, admin, receivers, live_server
):
    good, refused = receivers
    client = login(admin)

    hook = client.create_webhook(
        name="ci-notifier",
        url=good.url("/mlflow"),
        events=["registered_model.created", "model_version.created"],
        description="tell CI",
        secret=SECRET,
    )
    assert hook.name == "ci-notifier" and hook.status == "ACTIVE"
    assert [str(e) for e in hook.events] == ["registered_model.created", "model_version.created"]
    assert hook.secret is None  # never answered
    blocked = client.create_webhook(
        name="sneaky",
        url=refused.url("/steal", host="localhost"),
        events=["model_version.created"],
        secret=SECRET,
    )
    listed = client.list_webhooks()
    assert {w.webhook_id for w in listed} == {hook.webhook_id, blocked.webhook_id}
    assert client.get_webhook(hook.webhook_id).description == "tell CI"
    updated = client.update_webhook(hook.webhook_id, description="tell CI and Slack")
    assert updated.description == "tell CI and Slack"

    result = client.test_webhook(hook.webhook_id)
    assert result.success and result.response_status == 200
    (test_call,) = good.requests
    assert test_call.signed_with(SECRET) and test_call.json["data"]["name"].startswith("example")
    refused_test = client.test_webhook(blocked.webhook_id)
    assert not refused_test.success and "loopback" in refused_test.error_message

    # Register a model and a version through the MLflow API.
    experiment_id = client.create_experiment("webhooks")
    client.create_registered_model("wine")
    model_id = logged_model_with_files(client, experiment_id)
    mv = client.create_model_version("wine", source=f"models:/{model_id}", model_id=model_id)
    assert str(mv.version) == "1"

    events = [r for r in good.requests if r is not test_call]
    assert [(r.json["entity"], r.json["action"]) for r in events] == [
        ("registered_model", "created"),
        ("model_version", "created"),
    ]
    assert all(r.signed_with(SECRET) for r in events)
    assert all(r.path == "/mlflow" for r in events)
    created = events[1].json["data"]
    assert (created["name"], created["version"]) == ("main.default.wine", "1")
    assert created["source"] == f"models:/{model_id}" and created["run_id"] == mv.run_id

    # The refused receiver saw nothing, ever; its deliveries are REFUSED, not retried.
    assert refused.requests == []
    outcome = deliveries(live_server, admin, blocked.webhook_id)
    assert [d["status"] for d in outcome] == ["REFUSED", "REFUSED"]  # the version, the test
    assert all("localhost resolves to" in d["last_error"] for d in outcome)
    ok = deliveries(live_server, admin, hook.webhook_id)
    assert [d["status"] for d in ok] == ["SUCCEEDED"] * 3

    client.delete_webhook(blocked.webhook_id)
    assert [w.webhook_id for w in client.list_webhooks()] == [hook.webhook_id]


def test_a_failing_receiver_gets_retries_with_backoff(
    login, admin, receivers, live_server, monkeypatch
):
    good, _ = receivers
    good.fail_first = 2
    clock = Clock(monkeypatch)
    client = login(admin)
    hook = client.create_webhook(
        name="flaky", url=good.url(), events=["registered_model.created"], secret=SECRET
    )
    client.create_registered_model("flaky_model")
    assert len(good.requests) == 1  # the first attempt, at once: answered 500
    (delivery,) = deliveries(live_server, admin, hook.webhook_id)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "PENDING",
        1,
        500,
    )

    from webhooks.tasks import retry_due_deliveries

    assert retry_due_deliveries() == 0  # backoff: not due yet
    clock.advance(30)
    assert retry_due_deliveries() == 1  # second attempt: 500 again
    clock.advance(30)
    assert retry_due_deliveries() == 0  # the second backoff is 60 s
    clock.advance(31)
    assert retry_due_deliveries() == 1  # third attempt: 200
    clock.advance(3600)
    assert retry_due_deliveries() == 0  # SUCCEEDED is never resent

    assert len(good.requests) == 3
    assert len({r.delivery_id for r in good.requests}) == 1  # one delivery, three attempts
    assert all(r.signed_with(SECRET) for r in good.requests)
    assert good.requests[0].body == good.requests[2].body
    (delivery,) = deliveries(live_server, admin, hook.webhook_id)
    assert (delivery["status"], delivery["attempts"]) == ("SUCCEEDED", 3)
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
