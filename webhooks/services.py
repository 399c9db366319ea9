"""Webhooks: `emit` (how the rest of Steward reports an event), the subscription services
(create, update, delete, test) and one delivery attempt (run by webhooks.tasks).

emit -- the one call other apps make
----------------------------------------
    from webhooks import payloads
    from webhooks.services import emit

    emit("model_version.archived", payloads.model_version_lifecycle(version, reason),
         securable=version.model)

    emit(event: str, data: dict, *, securable=None) -> int

- `event`: one of webhooks.events.ALL: MLflow's registry events (`registered_model.created`,
  `model_version.created`, `model_version_tag.set|deleted`, `model_version_alias.created|
  deleted`) or Steward's (`promotion_request.created|approved|rejected|applied`,
  `model_version.archived|deleted`). Anything else raises ValueError (a programming error).
- `data`: the event's JSON-serialisable payload, MLflow's shape for MLflow's events
  (webhooks.payloads builds each one); it becomes the envelope's `data`.
- `securable`: the RegisteredModel (or Schema, Catalog) the event concerns; None for a
  metastore-wide event. Subscriptions scoped to it or to any level above it receive the
  event, and only those whose creator (active) can see it at this moment: a webhook never
  reveals a model its creator could not see.

Call it inside the service's transaction, after the change: it writes one PENDING delivery
per matching subscription in that same transaction (a rolled-back change leaves none: it
never notifies) and enqueues them with transaction.on_commit(robust=True), so a broker
outage never fails the change (the periodic sweep, webhooks.tasks.retry_due_deliveries,
sends whatever was not enqueued). Outside a transaction it works too (autocommit). It takes
no actor: it authorizes nothing and is not audited by itself. Returns the number of
deliveries written.

Who may manage a webhook: metastore admins, and holders of MANAGE on its scope (a catalog,
schema or model; MANAGE on the metastore for a metastore-wide one, which in practice means
admins). The MLflow door creates metastore-wide webhooks (MLflow's own server allows only
admins to manage webhooks).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypedDict, Unpack

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from audit.governance import current_request_id, governed
from audit.services import audit_event_write
from catalog import authz
from catalog.models import Metastore, Securable
from catalog.privileges import Privilege, SecurableType
from catalog.securables import Node
from catalog.selectors import metastore, securable_lookup
from catalog.services import audit_write
from core.actor import Actor
from core.errors import Denial, InvalidParameter, NotFound
from core.queue import enqueue
from webhooks import crypto, net, signing
from webhooks import events as event_names
from webhooks.models import Webhook, WebhookDelivery
from webhooks.rules import scope_target

logger = logging.getLogger(__name__)

MAX_DESCRIPTION = 1000
MAX_SECRET = 512
MAX_RESPONSE_KEPT = 1000
MAX_BACKOFF_SECONDS = 3600
# A claimed attempt owns its delivery this long past the request timeout; a worker that dies
# mid-attempt leaves it to the sweep after that.
LEASE_MARGIN_SECONDS = 60
RETRY_STATUSES = {408, 429}
# Answers whose Retry-After header sets the earliest next attempt (RFC 9110 10.2.3, RFC 6585).
RETRY_AFTER_STATUSES = {429, 503}
_DELTA_SECONDS = re.compile(r"^[0-9]+$")
# MLflow's rule for webhook names (mlflow/utils/validation.py, _validate_webhook_name).
_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?$", re.IGNORECASE)
UPDATABLE = {"name", "url", "events", "mlflow_events", "secret", "description", "status"}


# --- emit ------------------------------------------------------------------------------------


def _creator_sees(hook: Webhook, securable: Node | None, actors: dict[Any, Actor]) -> bool:
    user = hook.creator
    if user is None or not user.is_active:
        return False
    actor = actors.get(user.pk)
    if actor is None:
        actor = actors[user.pk] = Actor.system(user)
    if securable is None or securable.securable_type == SecurableType.METASTORE:
        return authz.is_admin(actor)
    return authz.can_see(actor, securable)


@functools.cache
def _any_active_sql() -> str:
    meta = Webhook._meta
    return (
        f'SELECT EXISTS (SELECT 1 FROM "{meta.db_table}" '
        f'WHERE "{meta.get_field("status").column}" = %s)'
    )


def _any_active() -> bool:
    """One indexed EXISTS, its text built once (every audited write asks): most writes happen
    with no webhook to tell, and then cost nothing more (no scope query, no payload)."""
    with connection.cursor() as cursor:
        cursor.execute(_any_active_sql(), [Webhook.Status.ACTIVE.value])
        return bool(cursor.fetchone()[0])


Payload = dict[str, Any]


def emit(
    event: str, data: Payload | Callable[[], Payload], *, securable: Node | None = None
) -> int:
    """Record the event for every matching subscription and send after commit (see the top
    of this module). `data` is the payload, or a callable building it, called only when some
    webhook receives the event."""
    if event not in event_names.ALL:
        raise ValueError(f"unknown webhook event {event!r}")
    if not _any_active():
        return 0
    hooks = [
        h
        for h in Webhook.objects.filter(
            Webhook.around_q(securable, metastore=True), status=Webhook.Status.ACTIVE
        )
        .select_related("creator")
        .order_by("created_at", "id")
        if event in h.events
    ]
    if not hooks:
        return 0
    actors: dict[Any, Actor] = {}
    receivers = [h for h in hooks if _creator_sees(h, securable, actors)]
    if not receivers:
        return 0
    body = event_names.envelope(event, data() if callable(data) else data)
    now = timezone.now()
    rows = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                webhook=h,
                event=event,
                payload=body,
                next_attempt_at=now,
                request_id=current_request_id() or "",
            )
            for h in receivers
        ]
    )
    ids = [str(row.pk) for row in rows]
    transaction.on_commit(lambda: _enqueue(ids), robust=True)
    return len(ids)


def _enqueue(ids: list[str]) -> None:
    for delivery_id in ids:
        try:
            enqueue("webhooks.tasks.deliver_webhook", delivery_id)
        except Exception:  # a broker outage: the periodic sweep sends it later
            logger.exception("Could not enqueue webhook delivery %s", delivery_id)


# --- validation -------------------------------------------------------------------------------


def clean_name(value: object) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidParameter(
            "name must be 1 to 63 letters, digits, '.', '_' or '-', starting and ending with a "
            "letter or digit."
        )
    return value


def clean_url(value: object) -> str:
    try:
        url = net.parse_url(value)
    except net.UrlRejected as exc:
        raise InvalidParameter(str(exc)) from None
    why = net.literal_refusal(url)
    if why is not None:
        raise InvalidParameter(
            f"url is refused: {why}. Webhooks may not target loopback, private, link-local "
            "or other internal addresses (see STEWARD_WEBHOOK_ALLOWED_TARGETS)."
        )
    return url.text  # `value`, now known to be a string


def clean_events(value: object, *, allowed: tuple[str, ...] = event_names.ALL) -> list[str]:
    try:
        return event_names.clean_events(value, allowed=allowed)
    except event_names.EventError as exc:
        raise InvalidParameter(str(exc)) from None


def clean_secret(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_SECRET or "\x00" in value:
        raise InvalidParameter(f"secret must be a string of at most {MAX_SECRET} characters.")
    return value


def clean_description(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or "\x00" in value:
        raise InvalidParameter(
            f"description must be a string of at most {MAX_DESCRIPTION} characters."
        )
    return value


def clean_status(value: object) -> str:
    if value is None:
        return Webhook.Status.ACTIVE
    if not isinstance(value, str) or value not in Webhook.Status.values:
        raise InvalidParameter("status must be ACTIVE or DISABLED.")
    return value


def scope_of(securable_type: object, full_name: object) -> Metastore | Securable:
    """The securable a webhook is scoped to: the metastore when neither is given."""
    if securable_type in (None, "") and full_name in (None, ""):
        return metastore()
    if securable_type in (None, "") or full_name in (None, ""):
        raise InvalidParameter("securable_type and full_name go together.")
    return securable_lookup(securable_type, full_name)


# --- lookups ----------------------------------------------------------------------------------


def webhook_lookup(
    actor: Actor, webhook_id: object, *, write: bool = False, lock: bool = False
) -> Webhook:
    """A webhook the actor may manage (reads: holds MANAGE on its scope, read-only tokens
    included; writes: check); anything else is not found, audited as a denial."""
    try:
        key = uuid.UUID(str(webhook_id))
    except ValueError:
        raise NotFound(f"Webhook {str(webhook_id)[:64]!r} does not exist.") from None
    qs = Webhook.objects.select_related(
        "catalog", "schema__catalog", "model__schema__catalog", "creator"
    )
    if lock:
        qs = qs.select_for_update(of=("self",))
    hook = qs.filter(pk=key).first()
    if hook is None:
        raise NotFound(
            f"Webhook {key} does not exist.",
            denied=Denial("webhook", str(key), str(Privilege.MANAGE)),
        )
    authz.require(actor, Privilege.MANAGE, hook, reading=not write)
    return hook


# --- subscriptions ----------------------------------------------------------------------------


def _audit(actor: Actor, action: str, hook: Webhook, **details: Any) -> None:
    audit_write(
        actor,
        action,
        scope_target(hook),
        {"webhook": str(hook.id), "name": hook.name, **details},
    )


@governed("webhook.create")
def webhook_create(
    *,
    actor: Actor,
    name: object,
    url: object,
    events: object,
    secret: object = None,
    description: object = None,
    status: object = None,
    securable_type: object = None,
    full_name: object = None,
) -> Webhook:
    """Subscribe `url` to `events` about a scope (MANAGE on it; the metastore when none is
    named). The secret is stored encrypted and never shown again."""
    scope = scope_of(securable_type, full_name)
    authz.require(actor, Privilege.MANAGE, scope)
    hook = Webhook(
        name=clean_name(name),
        url=clean_url(url),
        events=clean_events(events),
        secret_encrypted=crypto.encrypt(clean_secret(secret)),
        description=clean_description(description),
        status=clean_status(status),
        creator=actor.user,
        created_by=actor.username,
        updated_by=actor.username,
    )
    if scope.securable_type != SecurableType.METASTORE:
        hook.attach(scope)
    hook.save(force_insert=True)
    _audit(
        actor,
        "webhook.create",
        hook,
        url=hook.url,
        events=hook.events,
        status=hook.status,
        signed=hook.has_secret,
    )
    return hook


@governed("webhook.update")
def webhook_update(*, actor: Actor, webhook_id: object, **fields: object) -> Webhook:
    """Change a webhook (MANAGE on its scope). `secret=""` removes the secret;
    `mlflow_events` replaces only MLflow's events and keeps Steward's (the MLflow door)."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise InvalidParameter(f"Unknown field {sorted(unknown)[0]!r}.")
    hook = webhook_lookup(actor, webhook_id, write=True, lock=True)
    changes: dict[str, Any] = {}
    if fields.get("name") is not None:
        hook.name = changes["name"] = clean_name(fields["name"])
    if fields.get("url") is not None:
        hook.url = changes["url"] = clean_url(fields["url"])
    if fields.get("events") is not None:
        hook.events = changes["events"] = clean_events(fields["events"])
    if fields.get("mlflow_events") is not None:
        kept = [e for e in hook.events if e not in event_names.MLFLOW_EVENTS]
        new = clean_events(fields["mlflow_events"], allowed=event_names.MLFLOW_EVENTS)
        hook.events = changes["events"] = new + kept
    if "description" in fields and fields["description"] is not None:
        hook.description = changes["description"] = clean_description(fields["description"])
    if "secret" in fields and fields["secret"] is not None:
        hook.secret_encrypted = crypto.encrypt(clean_secret(fields["secret"]))
        changes["signed"] = hook.has_secret  # never the secret itself
    if fields.get("status") is not None:
        hook.status = changes["status"] = clean_status(fields["status"])
    if not changes:
        return hook
    hook.updated_by = actor.username
    hook.save()
    _audit(actor, "webhook.update", hook, **changes)
    return hook


@governed("webhook.delete")
def webhook_delete(*, actor: Actor, webhook_id: object) -> None:
    """Remove a webhook and its delivery history (MANAGE on its scope); pending deliveries
    are not sent."""
    hook = webhook_lookup(actor, webhook_id, write=True, lock=True)
    _audit(actor, "webhook.delete", hook, url=hook.url)
    hook.delete()


@governed("webhook.test", atomic=False)
def webhook_test(*, actor: Actor, webhook_id: object, event: object = None) -> WebhookDelivery:
    """Send an example event now (MANAGE on the scope; the webhook's first event unless one
    is named), recorded as a test delivery. The request goes out outside any transaction:
    an audit write holds the audit chain's lock until commit, and a slow receiver must not
    hold up every other write."""
    hook = webhook_lookup(actor, webhook_id, write=True)
    name: str = hook.events[0] if event is None else clean_events([event])[0]
    delivery = WebhookDelivery(
        webhook=hook,
        event=name,
        payload=event_names.envelope(name, event_names.EXAMPLES[name]),
        is_test=True,
        request_id=actor.request_id,
    )
    try:
        secret = crypto.decrypt(hook.secret_encrypted)
    except crypto.SecretUnreadable as exc:
        entry = _log_entry(timezone.now(), error=str(exc))
    else:
        entry = _attempt(hook.url, delivery, secret)
    delivery.attempts = 1
    delivery.last_attempt_at = delivery.completed_at = timezone.now()
    _apply(delivery, entry)
    delivery.status = _final_status(entry)
    with transaction.atomic():
        delivery.save(force_insert=True)
        _audit(
            actor,
            "webhook.test",
            hook,
            event=name,
            delivery=str(delivery.id),
            outcome=delivery.status,
            status_code=delivery.last_status_code,
        )
    return delivery


# --- delivering -------------------------------------------------------------------------------


def backoff_seconds(attempts: int) -> int:
    """Exponential: base, 2 base, 4 base, ... capped at an hour."""
    base = max(1, int(settings.STEWARD_WEBHOOK_RETRY_BACKOFF))
    delay: int = base * 2 ** max(0, attempts - 1)  # int ** int is typed Any (it may be a float)
    return min(delay, MAX_BACKOFF_SECONDS)


def retry_after_seconds(value: str, now: datetime) -> int | None:
    """Seconds from `now` a Retry-After header asks to wait (delta-seconds or an HTTP date),
    rounded up and capped at STEWARD_WEBHOOK_RETRY_AFTER_MAX; None when the value is missing,
    malformed or negative (the normal backoff applies). A date already past asks for 0."""
    value = (value or "").strip()
    if not value:
        return None
    if _DELTA_SECONDS.match(value):
        seconds = float(min(int(value), 10**9))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000": UTC, as HTTP dates always are
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, (when - now).total_seconds())
    cap = max(0, int(settings.STEWARD_WEBHOOK_RETRY_AFTER_MAX))
    return min(math.ceil(seconds), cap)


class _Outcome(TypedDict, total=False):
    """What an attempt found, as `_log_entry` takes it (anything left out keeps its default)."""

    status_code: int | None
    error: str
    address: str
    ms: int
    refused: bool
    retryable: bool
    response: str
    retry_after: str


class LogEntry(TypedDict):
    """One attempt: when, and what it found (the first five go into the delivery's log)."""

    at: str
    status_code: int | None
    error: str
    address: str
    ms: int
    refused: bool
    retryable: bool
    response: str
    retry_after: str


def _log_entry(at: datetime, **values: Unpack[_Outcome]) -> LogEntry:
    return {
        "at": at.isoformat(),
        "status_code": None,
        "error": "",
        "address": "",
        "ms": 0,
        "refused": False,
        "retryable": False,
        "response": "",
        "retry_after": "",
        **values,
    }


def _attempt(url: str, delivery: WebhookDelivery, secret: str) -> LogEntry:
    """Send one attempt (signed now, with this attempt's timestamp); never raises."""
    at = timezone.now()
    started = time.monotonic()
    headers = signing.headers(secret=secret, delivery_id=str(delivery.id), payload=delivery.payload)
    try:
        result = net.post(
            url,
            delivery.payload.encode("utf-8"),
            headers,
            timeout=float(settings.STEWARD_WEBHOOK_TIMEOUT),
        )
    except net.Refused as exc:
        return _log_entry(at, error=str(exc), refused=True, ms=_ms(started))
    except net.TransportError as exc:
        return _log_entry(at, error=str(exc), retryable=True, ms=_ms(started))
    status = result.status
    ok = 200 <= status < 300
    return _log_entry(
        at,
        status_code=status,
        address=result.address,
        ms=_ms(started),
        error="" if ok else f"HTTP {status}",
        retryable=status in RETRY_STATUSES or status >= 500,
        response=result.body.decode("utf-8", "replace")[:MAX_RESPONSE_KEPT],
        retry_after=result.retry_after if status in RETRY_AFTER_STATUSES else "",
    )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _apply(delivery: WebhookDelivery, entry: LogEntry) -> None:
    delivery.last_status_code = entry["status_code"]
    delivery.last_error = entry["error"]
    delivery.last_response = entry["response"]
    log_entry = {k: entry[k] for k in ("at", "status_code", "error", "address", "ms")}
    delivery.attempt_log = [*(delivery.attempt_log or []), log_entry]


def _final_status(entry: LogEntry) -> str:
    if entry["refused"]:
        return WebhookDelivery.Status.REFUSED
    if entry["status_code"] is not None and 200 <= entry["status_code"] < 300:
        return WebhookDelivery.Status.SUCCEEDED
    return WebhookDelivery.Status.FAILED


def delivery_attempt(delivery_id: str) -> str:
    """Make the next attempt of one delivery if it is due; returns the resulting status, or
    "skipped" (not PENDING, not due, another worker holds it, or gone).

    Idempotent: the attempt is claimed by a conditional UPDATE (PENDING and due) that moves
    next_attempt_at to the end of a lease, so two workers never send the same attempt and
    a SUCCEEDED delivery is never resent; the outcome is written only if the claim still
    holds. A retryable failure (no answer, 408, 429, 5xx) is retried with exponential
    backoff up to STEWARD_WEBHOOK_MAX_ATTEMPTS, and never before a 429's or 503's
    Retry-After (capped at STEWARD_WEBHOOK_RETRY_AFTER_MAX); another 4xx fails at once; a
    refused address is REFUSED at once, never retried, and audited."""
    now = timezone.now()
    lease = now + timedelta(seconds=int(settings.STEWARD_WEBHOOK_TIMEOUT) + LEASE_MARGIN_SECONDS)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id,
        status=WebhookDelivery.Status.PENDING,
        next_attempt_at__lte=now,
    ).update(next_attempt_at=lease, attempts=F("attempts") + 1, last_attempt_at=now)
    if not claimed:
        return "skipped"
    delivery = (
        WebhookDelivery.objects.select_related("webhook", "webhook__model__schema__catalog")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return "skipped"
    hook = delivery.webhook
    if hook.status != Webhook.Status.ACTIVE:
        entry = _log_entry(now, error="The webhook was disabled before this delivery went out.")
    else:
        try:
            secret = crypto.decrypt(hook.secret_encrypted)
        except crypto.SecretUnreadable as exc:
            entry = _log_entry(now, error=str(exc))
        else:
            entry = _attempt(hook.url, delivery, secret)
    _apply(delivery, entry)
    status = _final_status(entry)
    retry_in = None
    finished = timezone.now()
    if status == WebhookDelivery.Status.FAILED and entry["retryable"]:
        if delivery.attempts < int(settings.STEWARD_WEBHOOK_MAX_ATTEMPTS):
            status = WebhookDelivery.Status.PENDING
            # The receiver's Retry-After only ever delays the next attempt past the backoff.
            asked = retry_after_seconds(entry["retry_after"], finished)
            retry_in = max(backoff_seconds(delivery.attempts), asked or 0)
    updated = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
    ).update(
        status=status,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        last_response=delivery.last_response,
        attempt_log=delivery.attempt_log,
        next_attempt_at=finished + timedelta(seconds=retry_in) if retry_in else None,
        completed_at=None if retry_in else finished,
    )
    if not updated:  # pragma: no cover - the lease ran out and another worker took over
        return "skipped"
    if status == WebhookDelivery.Status.REFUSED:
        _audit_refusal(delivery, entry)
    if retry_in and not settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            enqueue("webhooks.tasks.deliver_webhook", str(delivery.pk), countdown=retry_in)
        except Exception:  # the periodic sweep picks it up when due
            logger.exception("Could not schedule the retry of delivery %s", delivery.pk)
    return status


def _audit_refusal(delivery: WebhookDelivery, entry: LogEntry) -> None:
    """A refused address is a security event (an SSRF attempt, or a misconfiguration)."""
    hook = delivery.webhook
    scope = scope_target(hook)
    audit_event_write(
        actor=None,
        actor_name="system",
        auth_method="task",
        action="webhook.delivery_refused",
        outcome="DENIED",
        securable_type=str(scope.securable_type),
        securable=scope.full_name,
        request_id=delivery.request_id,
        details={
            "webhook": str(hook.id),
            "delivery": str(delivery.id),
            "event": delivery.event,
            "url": hook.url[:500],
            "reason": entry["error"][:500],
        },
    )


def deliveries_due(limit: int = 500) -> list[str]:
    """Ids of PENDING deliveries whose next attempt is due (oldest first)."""
    return [
        str(pk)
        for pk in WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    ]
