"""Writing audit events. Called by services in the same transaction as the change they record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
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


def _event(
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
    """An unsaved, unchained event (occurred now)."""
    user = actor.user if actor is not None else None
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    return AuditEvent(
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


def _locked_head() -> AuditChainHead:
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        id=1, defaults={"last_hash": GENESIS}
    )
    return head


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
    event = _event(
        actor=actor,
        action=action,
        outcome=outcome,
        securable_type=securable_type,
        securable=securable,
        details=details,
        actor_name=actor_name,
        auth_method=auth_method,
        source_address=source_address,
        request_id=request_id,
    )
    # No savepoint: an audit write that fails must fail the change it records, and every
    # request that writes pays for one (two statements fewer than a nested atomic block).
    with transaction.atomic(savepoint=False):
        event.prev_hash = _locked_head_hash()
        event.hash = event_digest(event.prev_hash, hashed_fields(event))
        event.save(force_insert=True)
        with connection.cursor() as cursor:
            cursor.execute(_SET_HEAD_SQL, [event.hash])
    return event


_HEAD_TABLE = AuditChainHead._meta.db_table
_SET_HEAD_SQL = f"UPDATE {_HEAD_TABLE} SET last_hash = %s WHERE id = 1"


def _locked_head_hash() -> str:
    """The chain head's hash, its row locked to the end of the transaction (one raw SELECT;
    the row is created on the very first write)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_hash FROM {_HEAD_TABLE} WHERE id = 1{lock}")
        row = cursor.fetchone()
    return row[0] if row is not None else _locked_head().last_hash


# Rows per INSERT statement of a bulk write (bounds the statement's size, not the lock).
BULK_INSERT_ROWS = 1000


def audit_events_write(events: Iterable[dict[str, Any]], *, copy: bool = False) -> list[AuditEvent]:
    """Append several events, in order, to the chain (inside the caller's transaction, if
    any): each item holds the keyword arguments of `audit_event_write`. The chain is exactly
    the one writing them one by one would give (same fields, same prev_hash/hash links), but
    the chain head is locked and updated once and the rows go in with multi-row INSERTs,
    instead of three statements and a savepoint per event. For system work that records many
    events at once (a retention batch). `copy`: on PostgreSQL, load the rows with COPY (the
    events returned then carry no id), much cheaper than INSERT for thousands of rows."""
    built = [_event(**spec) for spec in events]
    if not built:
        return []
    with transaction.atomic():
        head = _locked_head()
        prev = head.last_hash
        for event in built:
            event.prev_hash = prev
            event.hash = prev = event_digest(prev, hashed_fields(event))
        if copy and connection.vendor == "postgresql":
            _copy_events(built)
        else:
            AuditEvent.objects.bulk_create(built, batch_size=BULK_INSERT_ROWS)
        head.last_hash = prev
        head.save(update_fields=["last_hash"])
    return built


def _copy_events(events: list[AuditEvent]) -> None:
    """COPY these (chained) events into the audit table, in order."""
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    table = AuditEvent._meta.db_table
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as out,
    ):
        for event in events:
            out.write_row(
                [
                    json.dumps(event.details) if f.name == "details" else getattr(event, f.attname)
                    for f in fields
                ]
            )
