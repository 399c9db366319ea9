"""Webhook deliveries sent by a real Celery worker process through a real Redis broker, on
PostgreSQL (issue 6), not by the eager in-process runs the other webhook tests use.

1. A registry change made through the MLflow API of the live server writes its deliveries in
   the change's transaction; after commit they are enqueued the ordinary way (`.delay()`),
   travel through Redis, and the worker sends them to a receiver started here, which checks
   MLflow's signature on each.
2. A receiver that fails its first answer: the worker records the failure and leaves the
   delivery PENDING; the retry sweep (webhooks.tasks.retry_due_deliveries), sent to the worker
   through the broker as Celery beat would send it, finds the delivery due and the worker
   sends it again. The worker's own clock cannot be moved from here (another process), so the
   test makes the retry due by moving the delivery's next attempt time back to now: what the
   sweep sees once the backoff has passed. The backoff is an hour in that worker, so the retry
   the worker scheduled for itself cannot be what delivers it.
3. With a one-second backoff, the retry the worker schedules itself (a countdown on the broker)
   delivers it, no sweep involved.

The test process publishes to the workers' own queue only while `workers.publishing()` is open
(tests/e2e/workers.py); the workers are started with the webhook settings in their environment,
allowing exactly the receiver's address and port, as production would configure them.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from core.actor import Actor
from tests.e2e.test_mlflow_registry import logged_model_with_files
from tests.e2e.workers import Workers
from tests.webhooks.receiver import Receiver
from webhooks import services as webhook_services
from webhooks.models import WebhookDelivery

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "whsec-worker-0123456789"


@pytest.fixture
def receiver(settings):
    """A receiver on 127.0.0.1, allowed by exact address and port in this process (creating
    the webhook checks its URL) and, through worker_env, in the workers (which deliver)."""
    r = Receiver()
    settings.STEWARD_WEBHOOK_ALLOWED_SCHEMES = ["http", "https"]
    settings.STEWARD_WEBHOOK_ALLOW_PRIVATE = False
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{r.port}"]
    yield r
    r.close()


def worker_env(r: Receiver, **extra) -> dict:
    return {
        "STEWARD_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "STEWARD_WEBHOOK_ALLOW_PRIVATE": "false",
        "STEWARD_WEBHOOK_ALLOWED_TARGETS": f"127.0.0.1:{r.port}",
        "STEWARD_WEBHOOK_TIMEOUT": 5,
        **extra,
    }


@pytest.fixture
def admin(admin_user, tree):
    tree("main.default")
    return admin_user


def wait_for(condition, workers: Workers, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}\n{workers.logs()}")


def metastore_hook(admin, r: Receiver, events: list[str]):
    return webhook_services.webhook_create(
        actor=Actor.system(admin), name="worker", url=r.url(), events=events, secret=SECRET
    )


def test_an_mlflow_change_is_delivered_by_the_worker_signed(
    workers, receiver, login, admin, live_server
):
    # `workers` first: torn down last, once the live server's request threads have closed
    # their database sessions (login's teardown), so that only the workers' are waited for.
    worker = workers.start("deliver", **worker_env(receiver))
    client = login(admin)
    hook = client.create_webhook(
        name="ci-notifier",
        url=receiver.url("/mlflow"),
        events=["registered_model.created", "model_version.created"],
        secret=SECRET,
    )
    with workers.publishing():
        client.create_registered_model("wine")
        experiment_id = client.create_experiment("webhooks")
        model_id = logged_model_with_files(client, experiment_id)
        mv = client.create_model_version("wine", source=f"models:/{model_id}", model_id=model_id)
        wait_for(lambda: len(receiver.requests) >= 2, workers, "both deliveries")

    deliveries = {str(d.pk): d for d in WebhookDelivery.objects.filter(webhook_id=hook.webhook_id)}
    assert len(deliveries) == 2 and len(receiver.requests) == 2
    for got in receiver.requests:
        assert got.path == "/mlflow" and got.signed_with(SECRET)
        delivery = deliveries[got.delivery_id]
        assert (delivery.status, delivery.attempts) == ("SUCCEEDED", 1)
        assert got.body == delivery.payload
    by_event = {(r.json["entity"], r.json["action"]): r.json["data"] for r in receiver.requests}
    assert set(by_event) == {("registered_model", "created"), ("model_version", "created")}
    created = by_event[("model_version", "created")]
    assert (created["name"], created["version"]) == ("main.default.wine", str(mv.version))
    # The worker sent them, not this process (which runs no task eagerly while publishing).
    log = workers.log("deliver")
    assert log.count("webhooks.tasks.deliver_webhook[") >= 4, log  # received and succeeded
    assert f"{worker} ready." in log
    assert "SUCCEEDED" in log


def test_a_failed_delivery_is_retried_by_the_sweep_sent_to_the_worker(admin, receiver, workers):
    receiver.fail_first = 1
    workers.start("sweep", **worker_env(receiver, STEWARD_WEBHOOK_RETRY_BACKOFF=3600))
    hook = metastore_hook(admin, receiver, ["registered_model.created"])
    from registry.services import registered_model_create

    with workers.publishing():
        registered_model_create(
            actor=Actor.system(admin), catalog_name="main", schema_name="default", name="flaky"
        )
        delivery = WebhookDelivery.objects.get(webhook=hook)
        wait_for(
            lambda: (
                WebhookDelivery.objects.filter(pk=delivery.pk, attempts=1)
                .exclude(next_attempt_at=None)
                .exclude(last_status_code=None)
                .exists()
            ),
            workers,
            "the first attempt",
        )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("PENDING", 500)
    # The worker's backoff: an hour (give or take the attempt's duration).
    assert delivery.next_attempt_at - delivery.last_attempt_at >= timedelta(seconds=3599)
    assert len(receiver.requests) == 1

    # Nothing is due yet: a sweep now sends nothing.
    from webhooks.tasks import retry_due_deliveries

    first_sweep = workers.send(retry_due_deliveries)
    wait_for(
        lambda: f"retry_due_deliveries[{first_sweep}] succeeded" in workers.log("sweep"),
        workers,
        "the first sweep",
    )
    assert len(receiver.requests) == 1

    # The hour has passed (see the module's docstring): the next sweep finds it due.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    sweep = workers.send(retry_due_deliveries)
    wait_for(
        lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status="SUCCEEDED").exists(),
        workers,
        "the swept retry",
    )
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.completed_at is not None
    assert [e["status_code"] for e in delivery.attempt_log] == [500, 200]
    assert len(receiver.requests) == 2
    assert {r.delivery_id for r in receiver.requests} == {str(delivery.pk)}
    assert all(r.signed_with(SECRET) for r in receiver.requests)
    assert receiver.requests[0].body == receiver.requests[1].body
    log = workers.log("sweep")
    assert f"retry_due_deliveries[{first_sweep}] succeeded" in log
    assert f"retry_due_deliveries[{sweep}] succeeded" in log


def test_the_worker_schedules_the_retry_itself_after_the_backoff(admin, receiver, workers):
    receiver.fail_first = 1
    workers.start("countdown", **worker_env(receiver, STEWARD_WEBHOOK_RETRY_BACKOFF=1))
    hook = metastore_hook(admin, receiver, ["registered_model.created"])
    from registry.services import registered_model_create

    with workers.publishing():
        registered_model_create(
            actor=Actor.system(admin), catalog_name="main", schema_name="default", name="again"
        )
        delivery = WebhookDelivery.objects.get(webhook=hook)
        wait_for(
            lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status="SUCCEEDED").exists(),
            workers,
            "the retry the worker scheduled",
        )
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert [e["status_code"] for e in delivery.attempt_log] == [500, 200]
    first, second = receiver.requests
    assert second.at - first.at >= 0.9  # not before the one-second backoff
    assert first.delivery_id == second.delivery_id == str(delivery.pk)
    assert "retry_due_deliveries[" not in workers.log("countdown")  # no sweep ran
