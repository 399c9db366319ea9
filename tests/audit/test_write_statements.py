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
def test_on_postgresql_one_statement_locks_chains_inserts_and_moves_the_head(admin_actor):
    """PostgreSQL computes the hashes (the same as canonical.digest: verify_chain recomputes
    them in Python) in the statement that locks the head, inserts and moves the head."""
    audit_event_write(actor=admin_actor, action="test.warm")  # the head row exists
    with CaptureQueriesContext(connection) as single:
        audit_event_write(actor=admin_actor, action="test.one", details={"ü": "naïve ✓"})
    with CaptureQueriesContext(connection) as bulk:
        events = audit_events_write(
            [{"actor": admin_actor, "action": f"test.{i}", "details": {"i": i}} for i in range(3)]
        )
    for captured in (single, bulk):
        sql = [q["sql"] for q in captured.captured_queries]
        assert len(sql) == 1, sql
        assert sql[0].startswith('WITH RECURSIVE head AS (SELECT "last_hash"')
        assert "FOR UPDATE" in sql[0] and 'UPDATE "audit_auditchainhead" SET "last_hash"' in sql[0]
    stored = list(AuditEvent.objects.order_by("id"))
    assert [e.hash for e in stored[-3:]] == [e.hash for e in events]
    assert [e.prev_hash for e in stored[-3:]] == [stored[-4].hash, *[e.hash for e in events[:2]]]
    assert verify_chain().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_postgresql_make_one_unbroken_chain(admin_user):
    """Writers in parallel transactions queue on the head's lock inside the one statement
    and each links behind the hash the previous one committed."""
    import threading

    from django.db import connections

    from core.actor import Actor

    actor = Actor.system(admin_user)
    audit_event_write(actor=actor, action="test.first")
    errors: list = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                if i % 3:
                    audit_event_write(actor=actor, action=f"test.t{n}.{i}")
                else:
                    audit_events_write(
                        [{"actor": actor, "action": f"test.t{n}.{i}.{k}"} for k in range(2)]
                    )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert AuditEvent.objects.count() == 1 + 4 * (10 + 5 * 2)
    assert verify_chain().ok
