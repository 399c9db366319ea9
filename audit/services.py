"""Writing audit events. Called by services in the same transaction as the change they record."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent
from core.actor import Actor

GENESIS = "0" * 64


def event_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and a canonical JSON of the event's fields."""
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()


def hashed_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "occurred_at": event.occurred_at.isoformat(),
        "actor_id": event.actor_id,
        "actor": event.actor,
        "auth_method": event.auth_method,
        "source_address": event.source_address,
        "action": event.action,
        "securable_type": event.securable_type,
        "securable": event.securable,
        "outcome": event.outcome,
        "request_id": event.request_id,
        "details": event.details,
    }


def audit_event_write(
    *,
    actor: Actor | None,
    action: str,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    securable_type: str = "",
    securable: str = "",
    details: dict[str, Any] | None = None,
    actor_name: str | None = None,
    auth_method: str | None = None,
    source_address: str | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    """Append one event to the chain (inside the caller's transaction, if any)."""
    user = actor.user if actor is not None else None
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    event = AuditEvent(
        occurred_at=timezone.now(),
        actor_id=user.pk if authenticated else None,
        actor=actor_name if actor_name is not None else (user.username if authenticated else ""),
        auth_method=auth_method or (actor.auth_method if actor else ""),
        source_address=source_address or (actor.source_address if actor else "") or "",
        action=action,
        securable_type=str(securable_type or ""),
        securable=securable or "",
        outcome=str(outcome),
        request_id=request_id or (actor.request_id if actor else ""),
        details=json.loads(json.dumps(details or {}, default=str)),
    )
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(
            id=1, defaults={"last_hash": GENESIS}
        )
        event.prev_hash = head.last_hash
        event.hash = event_digest(event.prev_hash, hashed_fields(event))
        event.save(force_insert=True)
        head.last_hash = event.hash
        head.save(update_fields=["last_hash"])
    return event
