"""The audit writers on PostgreSQL insert the events and move the chain head in one statement;
what they store, what they return and the chain are the same on every database."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import services
from audit.models import AuditChainHead, AuditEvent
from audit.services import audit_event_write, audit_events_write
from audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def head() -> str:
    return AuditChainHead.objects.get(id=1).last_hash


def test_the_first_write_creates_the_head_and_moves_it():
    assert not AuditChainHead.objects.exists()
    event = audit_event_write(actor=None, action="test.first", actor_name="system")
    assert event.prev_hash == services.GENESIS
    assert head() == event.hash
    assert verify_chain().ok


def test_written_events_carry_the_ids_and_values_stored(admin_actor):
    one = audit_event_write(actor=admin_actor, action="test.one", details={"n": [1, None]})
    many = audit_events_write(
        [{"actor": admin_actor, "action": f"test.many{i}", "details": {"i": i}} for i in range(3)]
    )
    written = [one, *many]
    stored = list(AuditEvent.objects.order_by("id"))
    assert [e.pk for e in written] == [e.pk for e in stored]
    assert all(not e._state.adding and e._state.db == "default" for e in written)
    fields = [f.attname for f in AuditEvent._meta.concrete_fields]
    assert [[getattr(e, f) for f in fields] for e in written] == [
        [getattr(e, f) for f in fields] for e in stored
    ]
    assert head() == many[-1].hash
    assert verify_chain().ok


def test_a_bulk_write_over_several_statements_moves_the_head_to_its_last_event(
    admin_actor, monkeypatch
):
    monkeypatch.setattr(services, "BULK_INSERT_ROWS", 2)
    audit_event_write(actor=admin_actor, action="test.before")
    written = audit_events_write(
        [{"actor": admin_actor, "action": f"test.bulk{i}"} for i in range(5)]
    )
    stored = list(AuditEvent.objects.order_by("id")[1:])
    assert [e.pk for e in written] == [e.pk for e in stored]
    assert [e.action for e in stored] == [f"test.bulk{i}" for i in range(5)]
    assert head() == written[-1].hash == stored[-1].hash
    assert verify_chain().ok


@pytest.mark.parametrize("writer", ["single", "bulk"])
def test_a_securable_that_is_not_text_is_stored_as_its_text(admin_actor, writer):
    """As the ORM's CharField stored it (`str(value)`), and hashed as the same text."""
    key = uuid.uuid4()
    spec = {"actor": admin_actor, "action": "test.uuid", "securable": key}
    if writer == "single":
        audit_event_write(**spec)
    else:
        audit_events_write([spec, {**spec, "securable": "plain"}])
    assert AuditEvent.objects.order_by("id").first().securable == str(key)
    assert verify_chain().ok


@pytest.mark.postgres
def test_on_postgresql_the_insert_moves_the_head_in_the_same_statement(admin_actor):
    audit_event_write(actor=admin_actor, action="test.warm")  # the head row exists
    with CaptureQueriesContext(connection) as single:
        audit_event_write(actor=admin_actor, action="test.one")
    with CaptureQueriesContext(connection) as bulk:
        audit_events_write([{"actor": admin_actor, "action": f"test.{i}"} for i in range(3)])
    for captured in (single, bulk):
        sql = [q["sql"] for q in captured.captured_queries]
        assert len(sql) == 2, sql
        assert sql[0].endswith("FOR UPDATE")
        assert sql[1].startswith("WITH head AS (UPDATE audit_auditchainhead")
    assert verify_chain().ok
