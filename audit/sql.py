"""The audit app's hand-written statements, each earned by the write path every request pays for
(bench/README.md), with table and column names from the models' `_meta`.

- `head_hash` / `set_head`: the chain head read (locked) and moved, one raw statement each;
- `write_chained` (PostgreSQL): lock the head, chain, insert and move the head in one
  statement, the hashes computed by PostgreSQL (`canonical.digest_sql`) over payloads built
  by `canonical.payload`;
- `copy_rows` (PostgreSQL): bulk rows loaded with COPY.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection

from audit import canonical
from audit.models import AuditChainHead, AuditEvent
from core.rows import column, concrete_field

_EVENT = AuditEvent._meta
_HEAD = AuditChainHead._meta

# The fields of a written row, in order: every concrete field but the id.
ROW_FIELDS = tuple(f.attname for f in _EVENT.concrete_fields if not f.primary_key)
# The fields `write_chained` is given (all but the two hashes, which it computes), in order.
INPUT_FIELDS = tuple(name for name in ROW_FIELDS if name not in ("prev_hash", "hash"))
# Every field an event is written with is hashed (a new one must join canonical.FIELDS), and
# every text column is one of canonical's TEXT fields (so its values arrive as text).
assert set(INPUT_FIELDS) == {name for name, _ in canonical.FIELDS}, "unhashed audit field"
assert {
    name for name in INPUT_FIELDS if _EVENT.get_field(name).get_internal_type() == "CharField"
} == set(canonical.TEXT_FIELDS), "text columns and canonical TEXT fields differ"


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _array_cast(name: str) -> str:
    """`(%s)::<type>[]` for one input field, the type without its length (varchar[], not
    varchar(64)[]): nothing is truncated."""
    db_type = concrete_field(AuditEvent, name).db_type(connection)
    assert db_type is not None  # a concrete column has a type
    return f"(%s)::{db_type.split('(')[0]}[]"


@functools.cache
def _head_sql(vendor: str) -> tuple[str, str]:
    """(the locked read of the head's hash, the move of the head) for this database."""
    table = _q(_HEAD.db_table)
    last_hash = _q(column(AuditChainHead, "last_hash"))
    key = _q(column(AuditChainHead, _HEAD.pk.name))
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (
        f"SELECT {last_hash} FROM {table} WHERE {key} = 1{lock}",
        f"UPDATE {table} SET {last_hash} = %s WHERE {key} = 1",
    )


def head_hash() -> str | None:
    """The chain head's hash, its row locked to the end of the transaction (where the
    database locks rows); None before the very first write (no head row yet)."""
    with connection.cursor() as cursor:
        cursor.execute(_head_sql(connection.vendor)[0])
        row = cursor.fetchone()
    return row[0] if row is not None else None


def set_head(last_hash: str) -> None:
    """Move the chain head (its row locked by `head_hash` in the same transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(_head_sql(connection.vendor)[1], [last_hash])


@functools.cache
def chained_sql() -> str:
    """PostgreSQL: write events and link them into the chain in one statement. It locks the
    chain head (FOR UPDATE), computes each event's hash as `canonical.digest` does over the
    payload given for it, inserts the rows in order and moves the head to the last hash.
    Parameters: the payloads, then one array per field of INPUT_FIELDS (`details` as JSON
    text): one text, and one plan, for any number of rows. Returns (id, prev_hash, hash) per
    row in order; no row when the head does not exist yet (the very first write)."""
    names = [f"c{i}" for i in range(len(INPUT_FIELDS))]
    arrays = ", ".join(_array_cast(name) for name in INPUT_FIELDS)
    head, last_hash = _q(_HEAD.db_table), _q(column(AuditChainHead, "last_hash"))
    head_key = _q(column(AuditChainHead, _HEAD.pk.name))
    prev_hash, hash_ = _q(column(AuditEvent, "prev_hash")), _q(column(AuditEvent, "hash"))
    return (
        f"WITH RECURSIVE head AS (SELECT {last_hash} AS last_hash FROM {head} "
        f"WHERE {head_key} = 1 FOR UPDATE), "
        f"input AS (SELECT * FROM UNNEST((%s)::text[], {arrays}) "
        f"WITH ORDINALITY AS t(payload, {', '.join(names)}, n)), "
        "chain AS (SELECT i.n, h.last_hash::text AS prev_hash, "
        f"{canonical.digest_sql('h.last_hash', 'i.payload')} AS hash "
        "FROM head h JOIN input i ON i.n = 1 "
        f"UNION ALL SELECT i.n, c.hash, {canonical.digest_sql('c.hash', 'i.payload')} "
        "FROM chain c JOIN input i ON i.n = c.n + 1), "
        f"ins AS (INSERT INTO {_q(_EVENT.db_table)} "
        f"({', '.join(_q(column(AuditEvent, name)) for name in INPUT_FIELDS)}, {prev_hash}, "
        f"{hash_}) "
        f"SELECT {', '.join('i.' + n for n in names)}, c.prev_hash, c.hash "
        "FROM input i JOIN chain c ON c.n = i.n ORDER BY i.n "
        f"RETURNING {_q(column(AuditEvent, _EVENT.pk.name))}, {prev_hash}, {hash_}), "
        f"moved AS (UPDATE {head} SET {last_hash} = "
        f"(SELECT hash FROM chain ORDER BY n DESC LIMIT 1) WHERE {head_key} = 1) "
        "SELECT * FROM ins ORDER BY 1"
    )


def write_chained(
    chunk: list[tuple[dict[str, Any], str]], cursor: Any
) -> list[tuple[int, str, str]]:
    """PostgreSQL: run `chained_sql` for these (values, payload) pairs, the values as
    `canonical` stores them; (id, prev_hash, hash) per event in order, or [] when the head row
    does not exist yet."""
    params: list[list[Any]] = [[payload for _, payload in chunk]]
    params += [[values[name] for values, _ in chunk] for name in INPUT_FIELDS]
    cursor.execute(chained_sql(), params)
    return cursor.fetchall()


@functools.cache
def copy_sql() -> str:
    """PostgreSQL: COPY rows (values in ROW_FIELDS order) into the audit table."""
    columns = ", ".join(_q(column(AuditEvent, name)) for name in ROW_FIELDS)
    return f"COPY {_q(_EVENT.db_table)} ({columns}) FROM STDIN"


def copy_rows(rows: list[tuple]) -> None:
    """PostgreSQL: load these rows (ROW_FIELDS order, details as JSON text) in order."""
    with connection.cursor() as cursor, cursor.cursor.copy(copy_sql()) as out:
        for row in rows:
            out.write_row(row)
