"""audit_events_write and audit_events_append (the bulk writer retention uses) build exactly the
chain that writing the same events one by one with audit_event_write builds."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction

from audit import services
from audit.models import AuditChainHead, AuditEvent
from audit.services import audit_event_write, audit_events_append, audit_events_write
from audit.verify import verify_chain


class Rollback(Exception):
    pass


@pytest.fixture
def clock(monkeypatch):
    """A deterministic clock for audit.services: 1 ms per call, restartable."""
    state = {"t": datetime(2026, 1, 1, tzinfo=UTC)}

    def now():
        state["t"] += timedelta(milliseconds=1)
        return state["t"]

    def restart():
        state["t"] = datetime(2026, 1, 1, tzinfo=UTC)

    monkeypatch.setattr(services.timezone, "now", now)
    return restart


class Name(str):
    pass


def specs(admin_actor, n=7):
    out = []
    for i in range(n):
        spec = {
            "actor": admin_actor if i % 2 else None,
            "action": f"model_version.{'archive' if i % 3 else 'delete'}",
            "securable_type": "registered_model",
            # A text subclass (as TextChoices are) takes the encoder's general path.
            "securable": Name(f"main.ml.m{i}") if i == 3 else f"main.ml.m{i}",
            # Odd: what only the JSON round trip settles (a date, nested objects); even: plain
            # values, which the bulk writers encode once.
            "details": {
                "version": i,
                "reasons": ["old", i],
                "when": datetime(2025, 1, i + 1),
                "note": "café ✓\ttab\nline \\ back",  # escaping in JSON and in COPY
                "nested": {"b": [1, None, True], "a": {"z": 1.5, "y": ""}},
            }
            if i % 2
            else {
                "version": i,
                "reasons": ["old", "ü\t\n\\", i, 0.5, True, None],
                "zz": "café ✓",
                "a": None,
                "flag": False,
            },
        }
        if spec["actor"] is None:
            spec.update(actor_name="system", auth_method="task")
        out.append(spec)
    return out


def chain(events) -> list[tuple]:
    keep = ("prev_hash", "hash", "action", "securable", "actor", "details", "occurred_at")
    return [tuple(getattr(e, k) for k in keep) for e in events]


@pytest.mark.django_db
# copy: COPY on PostgreSQL; append: rows only, no instances (retention's path)
@pytest.mark.parametrize("writer", ["insert", "copy", "append"])
def test_bulk_and_one_by_one_give_identical_hashes(admin_actor, clock, writer):
    audit_event_write(actor=admin_actor, action="test.before")  # the chain has a head already
    head_before = AuditChainHead.objects.get(id=1).last_hash

    clock()
    one_by_one = []
    with pytest.raises(Rollback), transaction.atomic():
        for spec in specs(admin_actor):
            audit_event_write(**spec)
        one_by_one = chain(AuditEvent.objects.order_by("id")[1:])
        raise Rollback  # undo, so the bulk write starts from the same head
    assert AuditChainHead.objects.get(id=1).last_hash == head_before

    clock()
    if writer == "append":
        assert audit_events_append(iter(specs(admin_actor))) == 7
    else:
        written = audit_events_write(specs(admin_actor), copy=writer == "copy")
        assert chain(written) == one_by_one
    stored = chain(AuditEvent.objects.order_by("id")[1:])
    assert len(one_by_one) == len(stored) == 7
    assert stored == one_by_one
    assert stored[0][0] == head_before
    assert AuditChainHead.objects.get(id=1).last_hash == stored[-1][1]
    assert verify_chain().ok
    call_command("verify_audit")


@pytest.mark.django_db
def test_bulk_writes_interleave_with_single_writes_and_empty_is_a_no_op(admin_actor):
    assert audit_events_write([]) == []
    assert AuditEvent.objects.count() == 0
    audit_event_write(actor=admin_actor, action="test.a")
    audit_events_write(specs(admin_actor, 3))
    audit_event_write(actor=admin_actor, action="test.b")
    audit_events_write(iter(specs(admin_actor, 2)))  # any iterable, generators included
    assert audit_events_append([]) == 0
    assert audit_events_append(specs(admin_actor, 2)) == 2
    audit_event_write(actor=admin_actor, action="test.c")
    assert AuditEvent.objects.count() == 10
    assert verify_chain().ok


@pytest.mark.django_db
def test_bulk_write_rolls_back_with_the_callers_transaction(admin_actor):
    audit_event_write(actor=admin_actor, action="test.a")
    head = AuditChainHead.objects.get(id=1).last_hash
    with pytest.raises(Rollback), transaction.atomic():
        audit_events_write(specs(admin_actor, 3))
        raise Rollback
    assert AuditEvent.objects.count() == 1
    assert AuditChainHead.objects.get(id=1).last_hash == head
    assert verify_chain().ok


@pytest.mark.django_db
def test_bulk_writers_refuse_an_argument_the_single_writer_does_not_take(admin_actor):
    # The failed write fails the caller's transaction (no savepoint of its own).
    with pytest.raises(TypeError), transaction.atomic():
        audit_events_append([{"actor": admin_actor, "action": "test.a", "colour": "red"}])
    assert AuditEvent.objects.count() == 0
