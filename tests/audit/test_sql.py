"""audit.sql, statement by statement, on the database the suite runs on (SQLite by default,
PostgreSQL with DATABASE_URL): the chain head's locked read and move everywhere; the
one-statement chained write and COPY on PostgreSQL, the ORM's INSERTs elsewhere."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit import canonical, services
from audit import sql as audit_sql
from audit.models import AuditChainHead, AuditEvent
from audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def prepared(n: int, tag: str = "x") -> list:
    return services.audit_events_prepare(
        [{"actor": None, "action": f"test.{tag}{i}", "details": {"i": i}} for i in range(n)]
    )


def test_head_hash_is_none_before_the_first_write_then_follows_set_head():
    with transaction.atomic():
        assert audit_sql.head_hash() is None
        AuditChainHead.objects.create(id=1, last_hash=canonical.GENESIS)
        assert audit_sql.head_hash() == canonical.GENESIS
        audit_sql.set_head("a" * 64)
        assert audit_sql.head_hash() == "a" * 64
    assert AuditChainHead.objects.get(id=1).last_hash == "a" * 64


def test_the_head_statements_name_the_models_columns_and_lock_where_the_database_can():
    read, move = audit_sql._head_sql(connection.vendor)
    head = AuditChainHead._meta
    for statement in (read, move):
        assert connection.ops.quote_name(head.db_table) in statement
        assert connection.ops.quote_name(head.get_field("last_hash").column) in statement
    assert read.endswith(" FOR UPDATE") == connection.features.has_select_for_update


def test_a_single_write_is_one_statement_on_postgresql_and_three_elsewhere(admin_actor):
    services.audit_event_write(actor=admin_actor, action="test.warm")  # the head exists
    with CaptureQueriesContext(connection) as queries:
        services.audit_event_write(actor=admin_actor, action="test.one")
    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        assert len(statements) == 1 and statements[0].startswith("WITH RECURSIVE head")
    else:  # the locked read, the ORM's INSERT, the move
        assert len(statements) == 3, statements
        assert statements[0].startswith("SELECT") and statements[2].startswith("UPDATE")
    assert verify_chain().ok


def test_every_column_is_written_once():
    """The row layout every writer uses covers the table: every column but the id."""
    columns = [f.attname for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    assert list(audit_sql.ROW_FIELDS) == columns
    assert set(audit_sql.INPUT_FIELDS) == {name for name, _ in canonical.FIELDS}


@pytest.mark.postgres
def test_the_chained_statement_writes_nothing_without_a_head_then_links_in_order():
    chunk = prepared(3)
    with connection.cursor() as cursor:
        assert audit_sql.write_chained(chunk, cursor) == []  # no head row: nothing written
        assert not AuditEvent.objects.exists()
        AuditChainHead.objects.create(id=1, last_hash=canonical.GENESIS)
        written = audit_sql.write_chained(chunk, cursor)
    ids = [pk for pk, _, _ in written]
    assert ids == sorted(ids) and len(ids) == 3
    prev = canonical.GENESIS
    for (_, prev_hash, digest), (_, payload) in zip(written, chunk, strict=True):
        assert prev_hash == prev and digest == canonical.digest(prev, payload)
        prev = digest
    assert AuditChainHead.objects.get(id=1).last_hash == prev
    stored = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in stored] == ["test.x0", "test.x1", "test.x2"]
    assert [e.hash for e in stored] == [h for _, _, h in written]
    assert verify_chain().ok


@pytest.mark.postgres
def test_copy_loads_rows_in_order_as_given():
    AuditChainHead.objects.create(id=1, last_hash=canonical.GENESIS)
    rows = services._chain(prepared(4, "copy"), canonical.GENESIS)
    audit_sql.copy_rows(rows)
    audit_sql.set_head(rows[-1][services._HASH])
    assert [e.action for e in AuditEvent.objects.order_by("id")] == [
        f"test.copy{i}" for i in range(4)
    ]
    assert audit_sql.copy_sql().startswith(f'COPY "{AuditEvent._meta.db_table}" (')
    assert verify_chain().ok
