"""Writing audit events. Called by services in the same transaction as the change they record.

Every writer prepares its events with `_prepare` (values as stored, payload from
`audit.canonical`) and writes them with a statement of `audit.sql` or the ORM."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit import canonical, sql
from audit.models import AuditChainHead, AuditEvent
from core.actor import Actor

# An event prepared for the chain: its stored field values and the payload its hash covers.
Prepared = tuple[dict[str, Any], str]
# An event's row: its values in sql.ROW_FIELDS order.
Row = tuple[Any, ...]

GENESIS = canonical.GENESIS


def _prepare(
    *,
    actor: Actor | None,
    action: str,
    outcome: str = "SUCCESS",
    securable_type: str = "",
    securable: str = "",
    details: dict[str, Any] | None = None,
    actor_name: str | None = None,
    auth_method: str | None = None,
    source_address: str | None = None,
    request_id: str | None = None,
) -> tuple[dict[str, Any], str]:
    """One event (occurred now), not yet in the chain: its field values as stored (all but
    the two hashes; `details` as canonical JSON text) and the payload its hash is taken over
    (`canonical.payload`). Neither depends on the chain, so both can be built before its
    head is locked. The arguments are `audit_event_write`'s."""
    occurred_at = timezone.now()
    user = actor.user if actor is not None else None
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    values = {
        "occurred_at": occurred_at,
        "actor_id": user.pk if user is not None else None,
        "actor": actor_name if actor_name is not None else (user.username if user else ""),
        "auth_method": auth_method or (actor.auth_method if actor else ""),
        "source_address": source_address or (actor.source_address if actor else "") or "",
        "action": action,
        "securable_type": securable_type or "",
        "securable": securable or "",
        "outcome": outcome,
        "request_id": request_id or (actor.request_id if actor else ""),
        "details": canonical.stored_details(details),
    }
    for name in _TEXT_FIELDS:  # anything but plain text (enums, UUIDs, NUL) as stored
        value = values[name]
        if type(value) is not str or "\x00" in value:
            values[name] = canonical.stored_text(value)
    return values, canonical.payload(values, values["details"])


_TEXT_FIELDS = canonical.TEXT_FIELDS


def _locked_head() -> AuditChainHead:
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        id=1, defaults={"last_hash": GENESIS}
    )
    return head


def _locked_head_hash() -> str:
    """The chain head's hash, its row locked to the end of the transaction (one raw SELECT;
    the row is created on the very first write)."""
    found = sql.head_hash()
    return found if found is not None else _locked_head().last_hash


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
    prepared = [
        _prepare(
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
    ]
    # No savepoint: an audit write that fails must fail the change it records, and every
    # request that writes pays for one (two statements fewer than a nested atomic block).
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":  # one statement: lock, chain, insert, move
            ((pk, prev_hash, digest),) = _write_chained(prepared)
            values = prepared[0][0]
            values["prev_hash"], values["hash"] = prev_hash, digest
            event = _instance(_as_row(values))
            event.pk = pk
            event._state.adding, event._state.db = False, connection.alias
        else:
            (row,) = _chain(prepared, _locked_head_hash())
            event = _instance(row)
            event.save(force_insert=True)
            sql.set_head(event.hash)
    return event


# Rows per INSERT statement of a bulk write (bounds the statement's size, not the lock).
BULK_INSERT_ROWS = 1000

_ROW_FIELDS = sql.ROW_FIELDS
_as_row = operator.itemgetter(*_ROW_FIELDS)
_HASH = _ROW_FIELDS.index("hash")


def _unchained(specs: Iterable[dict[str, Any]]) -> list[Prepared]:
    """`_prepare` for each event (each item holds `audit_event_write`'s keyword arguments)."""
    return [_prepare(**spec) for spec in specs]


def _chain(unchained: list[Prepared], prev: str) -> list[Row]:
    """The rows (values in ROW_FIELDS order) of prepared events, linked behind `prev`."""
    digest = canonical.digest
    rows = []
    for values, payload in unchained:
        values["prev_hash"] = prev
        values["hash"] = prev = digest(prev, payload)
        rows.append(_as_row(values))
    return rows


def audit_events_write(events: Iterable[dict[str, Any]], *, copy: bool = False) -> list[AuditEvent]:
    """Append several events, in order, to the chain (inside the caller's transaction, if
    any): each item holds the keyword arguments of `audit_event_write`. The chain is exactly
    the one writing them one by one would give (same fields, same prev_hash/hash links), but
    the chain head is locked and updated once and the rows go in with multi-row INSERTs
    (on PostgreSQL, one statement that also locks and moves the head: `_write_chained`),
    instead of three statements and a savepoint per event. `copy`: on PostgreSQL, load the
    rows with COPY (the events returned then carry no id). System work that records many
    events and needs no instances back (a retention batch) calls `audit_events_append`."""
    specs = list(events)
    if not specs:
        return []
    with transaction.atomic(savepoint=False):  # as audit_event_write: fails with its change
        if connection.vendor == "postgresql" and not copy:
            unchained = _unchained(specs)
            built = []
            for (values, _), (pk, prev_hash, digest) in zip(
                unchained, _write_chained(unchained), strict=True
            ):
                values["prev_hash"], values["hash"] = prev_hash, digest
                event = _instance(_as_row(values))
                event.pk = pk
                event._state.adding, event._state.db = False, connection.alias
                built.append(event)
            return built
        rows = _chain(_unchained(specs), _locked_head_hash())
        built = [_instance(row) for row in rows]
        if copy and connection.vendor == "postgresql":
            sql.copy_rows(rows)
        else:
            AuditEvent.objects.bulk_create(built, batch_size=BULK_INSERT_ROWS)
        sql.set_head(rows[-1][_HASH])
    return built


def audit_events_append(events: Iterable[dict[str, Any]]) -> int:
    """`audit_events_write` for bulk system work: the same rows and chain, loaded with COPY
    on PostgreSQL (multi-row INSERTs elsewhere), with no model instance built or returned;
    returns the number of events written. One lock of the chain head, held to the end of
    the caller's transaction."""
    return audit_events_append_prepared(audit_events_prepare(events))


def audit_events_prepare(events: Iterable[dict[str, Any]]) -> list[Prepared]:
    """The first half of `audit_events_append`: each event's fields and hash payload, which do
    not depend on the chain (no query, no lock). A caller can build them while the database
    works on something else (retention: while its batch's UPDATEs run) and hand them to
    `audit_events_append_prepared`, in the same transaction as the change they record."""
    return _unchained(events)


def audit_events_append_prepared(prepared: list[Prepared]) -> int:
    """The second half of `audit_events_append`: lock the chain head, link the prepared events
    behind it, write them (COPY on PostgreSQL) and move the head; returns the count."""
    if not prepared:
        return 0
    # No savepoint (as audit_event_write): a failed write must fail the change it records.
    with transaction.atomic(savepoint=False):
        rows = _chain(prepared, _locked_head_hash())
        if connection.vendor == "postgresql":
            sql.copy_rows(rows)
        else:
            AuditEvent.objects.bulk_create(
                [_instance(row) for row in rows], batch_size=BULK_INSERT_ROWS
            )
        sql.set_head(rows[-1][_HASH])
    return len(rows)


def _write_chained(unchained: list[Prepared]) -> list[tuple[int, str, str]]:
    """PostgreSQL: write prepared events behind the chain head in one statement per
    BULK_INSERT_ROWS (`sql.chained_sql`; each moves the head, so the next chunk links behind
    the previous one); (id, prev_hash, hash) per event, in order. The head row is created on
    the very first write."""
    out: list[tuple[int, str, str]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(unchained), BULK_INSERT_ROWS):
            chunk = unchained[start : start + BULK_INSERT_ROWS]
            written = sql.write_chained(chunk, cursor)
            if not written:  # no head yet: create it (locked), then the same statement
                _locked_head()
                written = sql.write_chained(chunk, cursor)
            if len(written) != len(chunk):  # an event without its row: fail the change
                raise RuntimeError(f"audit write stored {len(written)} of {len(chunk)} events")
            out.extend(written)
    return out


def _instance(row: Row) -> AuditEvent:
    """An unsaved AuditEvent of a chained row (details parsed back from its JSON text)."""
    values = dict(zip(_ROW_FIELDS, row, strict=True))
    values["details"] = json.loads(values["details"])
    return AuditEvent(**values)
