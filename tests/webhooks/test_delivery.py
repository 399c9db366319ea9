"""Emitting and delivering: outbox rows in the change's transaction (a rollback notifies
nobody), delivery after commit, MLflow's signature on every attempt, retries with
exponential backoff (time travel, not sleeping), no resend once SUCCEEDED, REFUSED without
retries, and who receives what (scope, the creator's visibility)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction

from audit.models import AuditEvent
from core.actor import Actor
from webhooks import payloads, services, tasks
from webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-tests"


def hook_for(actor, url, events=("model_version_tag.set",), **kwargs) -> Webhook:
    return services.webhook_create(
        actor=actor, name="ci", url=url, events=list(events), secret=SECRET, **kwargs
    )


def tag(actor, version=1, key="k", value="v"):
    from registry import services as registry

    registry.model_version_tag_set(
        actor=actor, full_name="c.s.m", version=version, key=key, value=value
    )


@pytest.fixture
def version(model_tree, admin_user, ready_version):
    return ready_version(admin_user, "c.s.m")


def test_an_event_is_delivered_after_commit_signed_as_mlflow_signs(
    admin_actor, version, receiver, allow, django_capture_on_commit_callbacks
):
    r = receiver()
    allow(r)
    hook = hook_for(admin_actor, r.url())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tag(admin_actor, key="validation", value="passed")
        delivery = WebhookDelivery.objects.get(webhook=hook)
        assert delivery.status == "PENDING" and r.requests == []
    for callback in callbacks:
        callback()
    delivery.refresh_from_db()
    assert delivery.status == "SUCCEEDED" and delivery.attempts == 1
    assert delivery.last_status_code == 200 and delivery.completed_at is not None
    (got,) = r.requests
    assert got.signed_with(SECRET)
    assert got.delivery_id == str(delivery.id) and got.body == delivery.payload
    assert got.headers["Content-Type"] == "application/json"
    body = got.json
    assert (body["entity"], body["action"]) == ("model_version_tag", "set")
    assert body["data"] == {"name": "c.s.m", "version": "1", "key": "validation", "value": "passed"}


def test_the_signature_is_mlflows_own(admin_actor, version, receiver, allow):
    """The receiver's check is recomputed with mlflow's own signing function."""
    from mlflow.webhooks.delivery import _generate_hmac_signature

    r = receiver()
    allow(r)
    hook = hook_for(admin_actor, r.url())
    tag(admin_actor)
    services.delivery_attempt(WebhookDelivery.objects.get(webhook=hook).pk)
    (got,) = r.requests
    assert got.headers["X-MLflow-Signature"] == _generate_hmac_signature(
        SECRET, got.delivery_id, got.timestamp, got.body
    )


def test_a_webhook_without_secret_sends_no_signature(admin_actor, version, receiver, allow):
    r = receiver()
    allow(r)
    hook = services.webhook_create(
        actor=admin_actor, name="open", url=r.url(), events=["model_version_tag.set"]
    )
    tag(admin_actor)
    services.delivery_attempt(WebhookDelivery.objects.get(webhook=hook).pk)
    assert "X-MLflow-Signature" not in r.requests[0].headers
    assert r.requests[0].headers["X-MLflow-Delivery-Id"]


def test_a_rolled_back_change_notifies_nobody(admin_actor, version, receiver, allow):
    r = receiver()
    allow(r)
    hook_for(admin_actor, r.url())
    with pytest.raises(RuntimeError), transaction.atomic():
        tag(admin_actor)
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the surrounding work failed")
    assert WebhookDelivery.objects.count() == 0
    assert r.requests == []


def test_retries_back_off_then_succeed_and_are_never_resent(
    admin_actor, version, receiver, allow, clock
):
    r = receiver(fail_first=2)
    allow(r)
    hook = hook_for(admin_actor, r.url())
    tag(admin_actor)
    delivery = WebhookDelivery.objects.get(webhook=hook)

    assert services.delivery_attempt(delivery.pk) == "PENDING"
    delivery.refresh_from_db()
    first_retry = delivery.next_attempt_at
    assert delivery.attempts == 1 and delivery.last_status_code == 500
    assert delivery.last_error == "HTTP 500" and "try later" in delivery.last_response
    # Not due yet: nothing is sent, however often the task runs.
    assert services.delivery_attempt(delivery.pk) == "skipped"
    assert tasks.retry_due_deliveries() == 0
    assert len(r.requests) == 1

    clock.advance(30)  # first backoff: 30 s
    assert tasks.retry_due_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.status == "PENDING" and delivery.attempts == 2
    assert delivery.next_attempt_at - first_retry >= timedelta(seconds=59)  # then 60 s

    clock.advance(30)
    assert tasks.retry_due_deliveries() == 0  # only half-way through the second backoff
    clock.advance(31)
    assert tasks.retry_due_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.status == "SUCCEEDED" and delivery.attempts == 3
    assert [e["status_code"] for e in delivery.attempt_log] == [500, 500, 200]

    # Idempotent: a duplicate task (acks_late redelivery) or a later sweep sends nothing.
    clock.advance(3600)
    assert services.delivery_attempt(delivery.pk) == "skipped"
    assert tasks.retry_due_deliveries() == 0
    assert len(r.requests) == 3
    assert {q.delivery_id for q in r.requests} == {str(delivery.pk)}
    assert all(q.signed_with(SECRET) for q in r.requests)


def test_retries_stop_after_the_last_attempt(admin_actor, version, receiver, allow, clock):
    r = receiver(fail_first=100)
    allow(r)
    hook = hook_for(admin_actor, r.url())
    tag(admin_actor)
    delivery = WebhookDelivery.objects.get(webhook=hook)
    for _ in range(10):
        services.delivery_attempt(delivery.pk)
        clock.advance(services.MAX_BACKOFF_SECONDS)
    delivery.refresh_from_db()
    assert delivery.status == "FAILED" and delivery.attempts == 4  # STEWARD_WEBHOOK_MAX_ATTEMPTS
    assert len(r.requests) == 4 and delivery.next_attempt_at is None


def test_a_client_error_fails_at_once(admin_actor, version, receiver, allow):
    r = receiver(status=401)
    allow(r)
    hook = hook_for(admin_actor, r.url())
    tag(admin_actor)
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert services.delivery_attempt(delivery.pk) == "FAILED"
    assert WebhookDelivery.objects.get(pk=delivery.pk).last_status_code == 401


def test_an_unreachable_receiver_is_retried(admin_actor, version, receiver, allow):
    r = receiver()
    allow(r)
    hook = hook_for(admin_actor, r.url())
    r.close()  # nothing listens there any more
    tag(admin_actor)
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert services.delivery_attempt(delivery.pk) == "PENDING"
    assert "connect" in WebhookDelivery.objects.get(pk=delivery.pk).last_error


def test_a_refused_address_is_refused_once_audited_and_never_reached(
    admin_actor, version, receiver, allow, clock
):
    """`localhost` resolves to loopback; only the allowed receiver's port is let through.
    The other receiver on the same address sees nothing, ever."""
    allowed, other = receiver(), receiver()
    allow(allowed)
    good = hook_for(admin_actor, allowed.url())
    bad = hook_for(admin_actor, other.url(host="localhost"))
    metadata = hook_for(admin_actor, allowed.url("/meta"))
    allowed.redirects["/meta"] = "http://169.254.169.254/latest/meta-data/"
    tag(admin_actor)
    assert tasks.retry_due_deliveries() == 3
    outcome = {d.webhook_id: d for d in WebhookDelivery.objects.all()}
    assert outcome[good.pk].status == "SUCCEEDED"
    assert outcome[bad.pk].status == "REFUSED"
    assert "localhost resolves to" in outcome[bad.pk].last_error
    assert "loopback" in outcome[bad.pk].last_error
    assert outcome[metadata.pk].status == "REFUSED"
    assert "169.254.169.254 is a link-local" in outcome[metadata.pk].last_error
    clock.advance(services.MAX_BACKOFF_SECONDS * 10)
    assert tasks.retry_due_deliveries() == 0  # REFUSED is final
    assert other.requests == []
    assert [q.path for q in allowed.requests] == ["/hook", "/meta"]
    refusals = AuditEvent.objects.filter(action="webhook.delivery_refused", outcome="DENIED")
    assert {e.details["webhook"] for e in refusals} == {str(bad.pk), str(metadata.pk)}


def test_a_literal_private_address_is_refused_when_created(admin_actor, settings):
    from core.errors import InvalidParameter

    settings.STEWARD_WEBHOOK_ALLOWED_SCHEMES = ["http", "https"]
    for url in ("http://127.0.0.1:8000/", "http://[::ffff:169.254.169.254]/", "http://10.0.0.1/"):
        with pytest.raises(InvalidParameter, match="refused"):
            services.webhook_create(
                actor=admin_actor, name="x", url=url, events=["model_version.created"]
            )
    assert Webhook.objects.count() == 0


def test_a_disabled_webhook_gets_no_events_and_pending_ones_are_dropped(
    admin_actor, version, receiver, allow
):
    r = receiver()
    allow(r)
    hook = hook_for(admin_actor, r.url())
    tag(admin_actor)
    services.webhook_update(actor=admin_actor, webhook_id=hook.pk, status="DISABLED")
    tag(admin_actor, key="again")
    (delivery,) = WebhookDelivery.objects.all()  # none for the second tag
    assert services.delivery_attempt(delivery.pk) == "FAILED"
    assert "disabled" in WebhookDelivery.objects.get(pk=delivery.pk).last_error
    assert r.requests == []


def test_an_unreadable_secret_fails_the_delivery(admin_actor, version, receiver, allow, settings):
    r = receiver()
    allow(r)
    hook = hook_for(admin_actor, r.url())
    tag(admin_actor)
    settings.SECRET_KEY = "another-key-entirely-0123456789-0123456789"
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert services.delivery_attempt(delivery.pk) == "FAILED"
    assert "SECRET_KEY" in WebhookDelivery.objects.get(pk=delivery.pk).last_error
    assert r.requests == []


def test_the_management_command_sends_what_is_due(admin_actor, version, receiver, allow, capsys):
    r = receiver()
    allow(r)
    hook_for(admin_actor, r.url())
    tag(admin_actor)
    call_command("deliver_webhooks")
    assert "Attempted 1 deliveries. succeeded: 1" in capsys.readouterr().out
    assert len(r.requests) == 1


def test_a_claimed_attempt_is_not_sent_twice(admin_actor, version, receiver, allow):
    """Two workers racing for one due delivery: the conditional claim lets one through."""
    r = receiver()
    allow(r)
    hook = hook_for(admin_actor, r.url())
    tag(admin_actor)
    delivery = WebhookDelivery.objects.get(webhook=hook)
    from django.utils import timezone

    # Worker A claimed it (lease set) and is still sending: worker B finds nothing to do.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=60), attempts=1
    )
    assert services.delivery_attempt(delivery.pk) == "skipped"
    assert r.requests == []


# --- who receives what -----------------------------------------------------------------------


def test_scopes_receive_events_about_their_subtree_only(admin_actor, version, receiver, allow):
    r = receiver()
    allow(r)
    on = {
        "metastore": hook_for(admin_actor, r.url("/all")),
        "catalog c": hook_for(admin_actor, r.url("/c"), securable_type="catalog", full_name="c"),
        "schema c.s": hook_for(admin_actor, r.url("/cs"), securable_type="schema", full_name="c.s"),
        "model c.s.m": hook_for(
            admin_actor, r.url("/csm"), securable_type="registered_model", full_name="c.s.m"
        ),
        "model c.s.other": hook_for(
            admin_actor, r.url("/other"), securable_type="registered_model", full_name="c.s.other"
        ),
        "catalog d": hook_for(admin_actor, r.url("/d"), securable_type="catalog", full_name="d"),
    }
    tag(admin_actor)
    got = set(WebhookDelivery.objects.values_list("webhook_id", flat=True))
    assert got == {on[k].pk for k in ("metastore", "catalog c", "schema c.s", "model c.s.m")}


def test_only_subscribed_events_are_delivered(admin_actor, version, receiver, allow):
    r = receiver()
    allow(r)
    hook_for(admin_actor, r.url(), events=["model_version_alias.created"])
    tag(admin_actor)
    assert WebhookDelivery.objects.count() == 0


def test_no_event_about_a_model_the_creator_cannot_see(
    make_user, grant, admin_actor, version, receiver, allow
):
    """A creator's webhook hears about a model only while the creator can see it (checked
    when each event happens), and nobody subscribes to what they cannot see."""
    from core.errors import NotFound, PermissionDenied

    r = receiver()
    allow(r)
    bob = make_user("bob")
    grant("catalog", "c", "bob", "USE CATALOG", "USE SCHEMA", "MANAGE")
    bob_hook = hook_for(Actor.system(bob), r.url(), securable_type="catalog", full_name="c")
    tag(admin_actor)
    assert WebhookDelivery.objects.filter(webhook=bob_hook).count() == 1

    # Bob loses USE SCHEMA: c.s.m is hidden from him, so his webhook reveals nothing more.
    from catalog.services import permissions_update

    permissions_update(
        actor=admin_actor,
        securable_type="catalog",
        full_name="c",
        changes=[{"principal": "bob", "add": [], "remove": ["USE SCHEMA"]}],
    )
    tag(admin_actor, key="second")
    assert WebhookDelivery.objects.filter(webhook=bob_hook).count() == 1

    # Carol, who may see nothing in c, cannot subscribe to it at all.
    carol = make_user("carol")
    with pytest.raises((NotFound, PermissionDenied)):
        hook_for(Actor.system(carol), r.url(), securable_type="catalog", full_name="c")


def test_a_deactivated_creator_hears_nothing(make_user, admin_user, version, receiver, allow):
    r = receiver()
    allow(r)
    second_admin = make_user("second", admin=True)
    hook_for(Actor.system(second_admin), r.url())
    second_admin.is_active = False
    second_admin.save()
    tag(Actor.system(admin_user))
    assert WebhookDelivery.objects.count() == 0


def test_emit_refuses_unknown_events(version):
    with pytest.raises(ValueError):
        services.emit("model_version.exploded", {}, securable=version.model)


def test_emit_payload_is_the_exact_body(admin_actor, version, receiver, allow):
    r = receiver()
    allow(r)
    hook = hook_for(admin_actor, r.url(), events=["model_version.archived"])
    assert (
        services.emit(
            "model_version.archived",
            payloads.model_version_lifecycle(version, "retention: older than 90 days"),
            securable=version.model,
        )
        == 1
    )
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert json.loads(delivery.payload)["data"] == {
        "name": "c.s.m",
        "version": "1",
        "reason": "retention: older than 90 days",
    }


def test_a_deleted_model_takes_its_webhooks_along(admin_actor, version, tree):
    """Delete c.s.m and create it again: no webhook carries over (SECURITY_CASES 8)."""
    from registry import services as registry

    hook = hook_for(
        admin_actor,
        "https://hooks.example.com/x",
        securable_type="registered_model",
        full_name="c.s.m",
    )
    registry.registered_model_delete(actor=admin_actor, full_name="c.s.m", force=True)
    assert not Webhook.objects.filter(pk=hook.pk).exists()
    tree("c.s.m")
    assert Webhook.objects.filter(model__full_name="c.s.m").count() == 0


# --- a resolver that does not answer ------------------------------------------------------------


def test_a_dns_lookup_that_hangs_fails_the_attempt_which_is_retried(
    admin_actor, version, receiver, allow, clock, stuck_resolver, monkeypatch, settings
):
    """The resolver never answers (socket.getaddrinfo replaced by a blocking call, see
    StuckResolver: no slow resolver can run here): the attempt fails within
    STEWARD_WEBHOOK_TIMEOUT with a clear error and the delivery waits for its retry like any
    other failed attempt; once the name resolves again, the retry gets through."""
    import socket
    import time

    r = receiver()
    allow(r)
    settings.STEWARD_WEBHOOK_TIMEOUT = 1
    hook = hook_for(admin_actor, f"http://hooks.example.com:{r.port}/hook")
    tag(admin_actor)
    delivery = WebhookDelivery.objects.get(webhook=hook)
    started = time.monotonic()
    assert services.delivery_attempt(delivery.pk) == "PENDING"
    assert time.monotonic() - started < 10  # bounded by the 1 s timeout (generous margin)
    delivery.refresh_from_db()
    assert delivery.status == "PENDING" and delivery.attempts == 1
    assert delivery.last_error == "DNS lookup of hooks.example.com timed out after 1 s"
    assert delivery.last_status_code is None and r.requests == []
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=30) <= wait < timedelta(seconds=40)  # the normal backoff
    assert stuck_resolver.calls == ["hooks.example.com"]

    def resolves(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolves)
    clock.advance(30)
    assert tasks.retry_due_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.status == "SUCCEEDED" and delivery.attempts == 2
    assert [e["error"] for e in delivery.attempt_log] == [
        "DNS lookup of hooks.example.com timed out after 1 s",
        "",
    ]
    assert len(r.requests) == 1 and r.requests[0].signed_with(SECRET)


# --- Retry-After --------------------------------------------------------------------------------


def _first_failure(admin_actor, r) -> WebhookDelivery:
    """Emit one event and let its first attempt fail; the delivery as it stands then."""
    hook = hook_for(admin_actor, r.url())
    tag(admin_actor)
    delivery = WebhookDelivery.objects.get(webhook=hook)
    assert services.delivery_attempt(delivery.pk) == "PENDING"
    delivery.refresh_from_db()
    assert delivery.attempts == 1, delivery.last_error
    return delivery


def _wait(delivery: WebhookDelivery) -> timedelta:
    return delivery.next_attempt_at - delivery.last_attempt_at


def test_retry_after_seconds_on_429_puts_off_the_next_attempt(
    admin_actor, version, receiver, allow, clock
):
    r = receiver(fail_first=1, fail_status=429, fail_headers={"Retry-After": "120"})
    allow(r)
    delivery = _first_failure(admin_actor, r)
    assert delivery.last_status_code == 429
    assert timedelta(seconds=120) <= _wait(delivery) < timedelta(seconds=125)
    clock.advance(60)  # the backoff (30 s) alone would have been due by now
    assert tasks.retry_due_deliveries() == 0
    clock.advance(59)
    assert tasks.retry_due_deliveries() == 0
    clock.advance(6)
    assert tasks.retry_due_deliveries() == 1
    delivery.refresh_from_db()
    assert delivery.status == "SUCCEEDED"
    assert [e["status_code"] for e in delivery.attempt_log] == [429, 200]
    assert r.requests[1].at - r.requests[0].at < 60  # time travel, not waiting


def test_retry_after_as_an_http_date_on_503_is_honoured(
    admin_actor, version, receiver, allow, clock
):
    from email.utils import format_datetime

    from django.utils import timezone

    when = (timezone.now() + timedelta(seconds=600)).replace(microsecond=0)
    r = receiver(
        fail_first=1, fail_status=503, fail_headers={"Retry-After": format_datetime(when, True)}
    )
    allow(r)
    delivery = _first_failure(admin_actor, r)
    assert delivery.last_status_code == 503
    assert when <= delivery.next_attempt_at < when + timedelta(seconds=5)
    clock.advance(590)
    assert tasks.retry_due_deliveries() == 0
    clock.advance(20)
    assert tasks.retry_due_deliveries() == 1
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "SUCCEEDED"


def test_retry_after_is_capped(admin_actor, version, receiver, allow, settings):
    settings.STEWARD_WEBHOOK_RETRY_AFTER_MAX = 600
    r = receiver(fail_first=1, fail_status=429, fail_headers={"Retry-After": "86400"})
    allow(r)
    delivery = _first_failure(admin_actor, r)
    assert timedelta(seconds=600) <= _wait(delivery) < timedelta(seconds=605)


@pytest.mark.parametrize(
    ("status", "value"),
    [
        (429, "soon"),
        (429, "-120"),
        (503, "1.5e3"),
        (503, "120 s"),
        (429, "Fri, 31 Feb 2099 25:61:00 GMT"),
        (503, ""),
        (429, "0"),  # asks for less than the backoff: the backoff stands
        (503, "Thu, 01 Jan 1998 00:00:00 GMT"),  # a date already past: likewise
        (500, "3000"),  # only 429 and 503 carry a Retry-After that counts here
        (502, "3000"),
    ],
)
def test_an_invalid_or_short_retry_after_leaves_the_normal_backoff(
    admin_actor, version, receiver, allow, status, value
):
    r = receiver(fail_first=1, fail_status=status, fail_headers={"Retry-After": value})
    allow(r)
    delivery = _first_failure(admin_actor, r)
    assert delivery.last_status_code == status
    assert timedelta(seconds=30) <= _wait(delivery) < timedelta(seconds=35)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120),
        (" 7 ", 7),
        ("0", 0),
        ("99999999999999999999", 3600),
        ("Sat, 01 Jan 2000 00:02:00 GMT", 120),
        ("Sat, 01 Jan 2000 00:02:00 -0000", 120),  # no zone: UTC, as HTTP dates are
        ("Saturday, 01-Jan-00 00:01:00 GMT", 60),  # RFC 850, which HTTP still accepts
        ("Fri, 31 Dec 1999 23:00:00 GMT", 0),
        ("Sat, 01 Jan 2000 00:00:00.5 GMT", None),
        ("-1", None),
        ("1.5", None),
        ("", None),
        ("tomorrow", None),
    ],
)
def test_retry_after_values(value, seconds, settings):
    from datetime import UTC, datetime

    settings.STEWARD_WEBHOOK_RETRY_AFTER_MAX = 3600
    now = datetime(2000, 1, 1, tzinfo=UTC)
    assert services.retry_after_seconds(value, now) == seconds
