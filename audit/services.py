"""Writing audit events. Called by services in the same transaction as the change they record."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import operator
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
        if connection.vendor == "postgresql":  # one statement: lock, chain, insert, move
            values = {name: getattr(event, name) for name in _ROW_FIELDS}
            values["details"] = _PLAIN(event.details)
            payload = _CANONICAL(hashed_fields(event))  # event_digest's JSON
            ((event.pk, event.prev_hash, event.hash),) = _write_chained([(values, payload)])
            event._state.adding, event._state.db = False, connection.alias
        else:
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

# The columns of a chained row (`_chained_rows`), in this order: every concrete field but the id.
_ROW_FIELDS = tuple(f.attname for f in AuditEvent._meta.concrete_fields if not f.primary_key)
_SPEC_KEYS = frozenset(inspect.signature(_event).parameters)
# `event_digest`'s JSON, and the one of `_event`'s round trip of the details, as reusable
# encoders (json.dumps builds a new encoder per call when given options).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode
_PLAIN = json.JSONEncoder(default=str).encode
_ENCODE_TEXT = json.encoder.encode_basestring_ascii  # a str as the encoder writes it (ASCII)
# In the canonical JSON of the hashed fields, "details" sorts right before "occurred_at".
# No JSON string holds an unescaped quote, so the first `,"occurred_at":` is that key.
_AFTER_DETAILS = ',"occurred_at":'


_SCALARS = frozenset({str, int, float, type(None)})  # bool is a subclass of int


def _plain_json(details: Any) -> bool:
    """Is `details` a dict with text keys whose values are scalars or lists of scalars (what
    system work records)? Then `json.loads(json.dumps(details))` equals it, and so does its
    canonical JSON: no round trip needed. Anything else (dates, tuples, nested objects,
    non-text keys) takes the round trip `_event` does."""
    if type(details) is not dict:
        return False
    for key, value in details.items():
        if type(key) is not str:
            return False
        kind = type(value)
        if kind is list:
            if not all(type(item) in _SCALARS or type(item) is bool for item in value):
                return False
        elif kind not in _SCALARS and kind is not bool:
            return False
    return True


_as_row = operator.itemgetter(*_ROW_FIELDS)
_TEXT_FIELDS = ("action", "actor", "auth_method")
_TAIL_FIELDS = ("outcome", "request_id", "securable", "securable_type", "source_address")


def _payload(values: dict[str, Any], occurred_at: str, canonical_details: str) -> str:
    """`event_digest`'s JSON of the hashed fields (keys sorted, no spaces, ASCII), with the
    details already in canonical JSON. Text values are encoded one by one with the encoder's
    own string function; anything but plain text (and an integer or null actor id) goes
    through the encoder whole, the details spliced in at their place in key order."""
    actor_id = values["actor_id"]
    if (actor_id is None or type(actor_id) is int) and all(
        type(values[name]) is str for name in (*_TEXT_FIELDS, *_TAIL_FIELDS)
    ):
        text = _ENCODE_TEXT
        return (
            f'{{"action":{text(values["action"])},"actor":{text(values["actor"])},'
            f'"actor_id":{"null" if actor_id is None else int.__repr__(actor_id)},'
            f'"auth_method":{text(values["auth_method"])},"details":{canonical_details},'
            f'"occurred_at":{text(occurred_at)},"outcome":{text(values["outcome"])},'
            f'"request_id":{text(values["request_id"])},"securable":{text(values["securable"])},'
            f'"securable_type":{text(values["securable_type"])},'
            f'"source_address":{text(values["source_address"])}}}'
        )
    fields = _CANONICAL(
        {name: values[name] for name in ("actor_id", *_TEXT_FIELDS, *_TAIL_FIELDS)}
        | {"occurred_at": occurred_at}
    )
    at = fields.index(_AFTER_DETAILS)
    return f'{fields[:at]},"details":{canonical_details}{fields[at:]}'


def _chained_rows(specs: Iterable[dict[str, Any]], prev: str) -> list[tuple]:
    """The rows (values in `_ROW_FIELDS` order, `details` as JSON text) of these events chained
    behind `prev`: the same field values as `_event` and the same hashes as `event_digest` over
    `hashed_fields`, built without a model instance (`_unchained` then `_chain`)."""
    return _chain(_unchained(specs), prev)


def _unchained(specs: Iterable[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Each event's field values (but `prev_hash` and `hash`) and the payload its hash is
    taken over: the canonical JSON of the hashed fields, that of the fields but the details
    with the canonical JSON of the details spliced in at their place in key order. Neither
    depends on the chain, so they can be built before its head is locked."""
    loads, now = json.loads, timezone.now
    out = []
    for spec in specs:
        unknown = spec.keys() - _SPEC_KEYS
        if unknown:
            raise TypeError(f"Unknown audit event argument(s): {', '.join(sorted(unknown))}")
        occurred_at = now()  # first, as in _event
        actor = spec.get("actor")
        user = actor.user if actor is not None else None
        authenticated = user is not None and getattr(user, "is_authenticated", False)
        actor_name = spec.get("actor_name")
        details = spec.get("details") or {}
        if _plain_json(details):  # its JSON round trip is itself: canonical text, stored too
            details_text = canonical_details = _CANONICAL(details)
        else:
            details_text = _PLAIN(details)
            canonical_details = _CANONICAL(loads(details_text))
        values = {
            "occurred_at": occurred_at,
            "actor_id": user.pk if authenticated else None,
            "actor": actor_name
            if actor_name is not None
            else (user.username if authenticated else ""),
            "auth_method": spec.get("auth_method") or (actor.auth_method if actor else ""),
            "source_address": spec.get("source_address")
            or (actor.source_address if actor else "")
            or "",
            "action": spec["action"],
            "securable_type": str(spec.get("securable_type") or ""),
            "securable": spec.get("securable") or "",
            "outcome": str(spec.get("outcome", AuditEvent.Outcome.SUCCESS)),
            "request_id": spec.get("request_id") or (actor.request_id if actor else ""),
            "details": details_text,
        }
        out.append((values, _payload(values, occurred_at.isoformat(), canonical_details)))
    return out


def _chain(unchained: list[tuple[dict[str, Any], str]], prev: str) -> list[tuple]:
    """The rows of `_unchained` events, linked behind `prev` (`event_digest`'s hashes)."""
    sha256 = hashlib.sha256
    rows = []
    for values, payload in unchained:
        values["prev_hash"] = prev
        values["hash"] = prev = sha256((prev + payload).encode()).hexdigest()
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
        rows = _chained_rows(specs, _locked_head_hash())
        built = [_instance(row) for row in rows]
        if copy and connection.vendor == "postgresql":
            _copy_rows(rows)
        else:
            AuditEvent.objects.bulk_create(built, batch_size=BULK_INSERT_ROWS)
        with connection.cursor() as cursor:
            cursor.execute(_SET_HEAD_SQL, [rows[-1][_HASH]])
    return built


def audit_events_append(events: Iterable[dict[str, Any]]) -> int:
    """`audit_events_write` for bulk system work: the same rows and chain, loaded with COPY
    on PostgreSQL (multi-row INSERTs elsewhere), with no model instance built or returned;
    returns the number of events written. One lock of the chain head, held to the end of
    the caller's transaction."""
    return audit_events_append_prepared(audit_events_prepare(events))


def audit_events_prepare(events: Iterable[dict[str, Any]]) -> list:
    """The first half of `audit_events_append`: each event's fields and hash payload, which do
    not depend on the chain (no query, no lock). A caller can build them while the database
    works on something else (retention: while its batch's UPDATEs run) and hand them to
    `audit_events_append_prepared`, in the same transaction as the change they record."""
    return _unchained(events)


def audit_events_append_prepared(prepared: list) -> int:
    """The second half of `audit_events_append`: lock the chain head, link the prepared events
    behind it, write them (COPY on PostgreSQL) and move the head; returns the count."""
    if not prepared:
        return 0
    # No savepoint (as audit_event_write): a failed write must fail the change it records.
    with transaction.atomic(savepoint=False):
        rows = _chain(prepared, _locked_head_hash())
        if connection.vendor == "postgresql":
            _copy_rows(rows)
        else:
            AuditEvent.objects.bulk_create(
                [_instance(row) for row in rows], batch_size=BULK_INSERT_ROWS
            )
        with connection.cursor() as cursor:
            cursor.execute(_SET_HEAD_SQL, [rows[-1][_HASH]])
    return len(rows)


_HASH = _ROW_FIELDS.index("hash")
# The columns PostgreSQL fills in `_chained_sql` (all but the id and the two hashes), in order.
_INPUT_FIELDS = tuple(name for name in _ROW_FIELDS if name not in ("prev_hash", "hash"))
_INPUT_TEXT = frozenset(
    i
    for i, name in enumerate(_INPUT_FIELDS)
    if AuditEvent._meta.get_field(name).get_internal_type() == "CharField"
)


@functools.cache
def _chained_sql() -> str:
    """PostgreSQL: write events and link them into the chain in one statement. It locks the
    chain head (FOR UPDATE), computes each event's hash as `event_digest` does (SHA-256, in
    hex, of the previous hash followed by the event's payload: the canonical JSON of its
    hashed fields, ASCII), inserts the rows in order and moves the head to the last hash.
    Parameters: the payloads, then one array per column of `_INPUT_FIELDS` (`details` as JSON
    text): one text, and one plan, for any number of rows. Returns (id, prev_hash, hash) per
    row in order; no row when the head does not exist yet (the very first write)."""
    quote = connection.ops.quote_name
    meta = AuditEvent._meta
    fields = [meta.get_field(name) for name in _INPUT_FIELDS]
    names = [f"c{i}" for i in range(len(fields))]
    # The type without its length (varchar[], not varchar(64)[]): nothing is truncated.
    arrays = ", ".join(f"(%s)::{f.db_type(connection).split('(')[0]}[]" for f in fields)
    digest = "encode(sha256(convert_to({} || i.payload, 'UTF8')), 'hex')"
    head = quote(_HEAD_TABLE)
    return (
        f"WITH RECURSIVE head AS (SELECT last_hash FROM {head} WHERE id = 1 FOR UPDATE), "
        f"input AS (SELECT * FROM UNNEST((%s)::text[], {arrays}) "
        f"WITH ORDINALITY AS t(payload, {', '.join(names)}, n)), "
        "chain AS (SELECT i.n, h.last_hash::text AS prev_hash, "
        f"{digest.format('h.last_hash')} AS hash "
        "FROM head h JOIN input i ON i.n = 1 "
        f"UNION ALL SELECT i.n, c.hash, {digest.format('c.hash')} "
        "FROM chain c JOIN input i ON i.n = c.n + 1), "
        f"ins AS (INSERT INTO {quote(meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}, "
        f"{quote(meta.get_field('prev_hash').column)}, {quote(meta.get_field('hash').column)}) "
        f"SELECT {', '.join('i.' + n for n in names)}, c.prev_hash, c.hash "
        "FROM input i JOIN chain c ON c.n = i.n ORDER BY i.n "
        f"RETURNING {quote(meta.pk.column)}, prev_hash, hash), "
        f"moved AS (UPDATE {head} SET last_hash = (SELECT hash FROM chain ORDER BY n DESC LIMIT 1) "
        "WHERE id = 1) "
        "SELECT * FROM ins ORDER BY 1"
    )


def _write_chained(unchained: list[tuple[dict[str, Any], str]]) -> list[tuple[int, str, str]]:
    """PostgreSQL: write `_unchained` events behind the chain head in one statement per
    BULK_INSERT_ROWS (`_chained_sql`; each moves the head, so the next chunk links behind the
    previous one); (id, prev_hash, hash) per event, in order. The head row is created on the
    very first write."""
    out: list[tuple[int, str, str]] = []
    sql = _chained_sql()
    with connection.cursor() as cursor:
        for start in range(0, len(unchained), BULK_INSERT_ROWS):
            chunk = unchained[start : start + BULK_INSERT_ROWS]
            params = [[payload for _, payload in chunk]]
            for i, name in enumerate(_INPUT_FIELDS):
                column = [values[name] for values, _ in chunk]
                if i in _INPUT_TEXT:  # as Django's CharField would: text
                    column = [v if v is None or isinstance(v, str) else str(v) for v in column]
                params.append(column)
            cursor.execute(sql, params)
            written = cursor.fetchall()
            if not written:  # no head yet: create it (locked), then the same statement
                _locked_head()
                cursor.execute(sql, params)
                written = cursor.fetchall()
            if len(written) != len(chunk):  # an event without its row: fail the change
                raise RuntimeError(f"audit write stored {len(written)} of {len(chunk)} events")
            out.extend(written)
    return out


def _instance(row: tuple) -> AuditEvent:
    """An unsaved AuditEvent of a chained row (details parsed back from its JSON text)."""
    values = dict(zip(_ROW_FIELDS, row, strict=True))
    values["details"] = json.loads(values["details"])
    return AuditEvent(**values)


def _copy_rows(rows: list[tuple]) -> None:
    """COPY these chained rows into the audit table, in order."""
    columns = ", ".join(
        f'"{f.column}"' for f in AuditEvent._meta.concrete_fields if not f.primary_key
    )
    table = AuditEvent._meta.db_table
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as out,
    ):
        for row in rows:
            out.write_row(row)
