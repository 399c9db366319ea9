"""Whichever writer stores an audit event (one event or many; the ORM, PostgreSQL's one
statement, COPY), the hash it stores is the one the verifier recomputes from the stored row,
for any value of any field: text with non-ASCII, control characters, NUL, quotes and
backslashes; numbers large and small, NaN; None; nested details."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from unittest import mock

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from audit import canonical, services
from audit.models import AuditEvent
from audit.services import audit_event_write, audit_events_append, audit_events_write
from audit.verify import verify_chain
from core.actor import Actor

pytestmark = pytest.mark.django_db

# Text that stresses the encoders: escapes, control characters, NUL, non-ASCII, astral.
_TRICKY = st.sampled_from(['"', "\\", "\\u0000", "\x00", "\x1f", "\x7f", "é", "\u2028", "✓", "𝄞"])
TEXT = st.text(max_size=12) | st.lists(_TRICKY | st.text(max_size=2), max_size=6).map("".join)
NUMBER = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()  # NaN and the infinities included
    | st.sampled_from([1e16, 1.5e300, -0.0, 1e-7, 0.1, 2**63, -(2**63) - 1])
)
SCALAR = st.none() | st.booleans() | TEXT | NUMBER
DETAILS = st.none() | st.dictionaries(
    TEXT,
    st.recursive(
        SCALAR | st.datetimes() | st.uuids(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)
MOMENT = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@st.composite
def events(draw):
    """One event's arguments and the moment it occurs at."""
    user = draw(
        st.none()
        | st.builds(
            SimpleNamespace,
            pk=st.integers(min_value=-(2**63), max_value=2**63 - 1),
            username=TEXT,
            is_authenticated=st.just(True),
        )
    )
    actor = None
    if user is not None:
        actor = Actor(user=user, auth_method=draw(TEXT), source_address=draw(TEXT))
        actor.request_id = draw(TEXT)
    spec = {
        "actor": actor,
        "action": draw(TEXT),
        "details": draw(DETAILS),
        "outcome": draw(st.sampled_from(AuditEvent.Outcome.values) | TEXT),
        "securable_type": draw(TEXT),
        "securable": draw(TEXT | st.uuids()),
    }
    for name in ("actor_name", "auth_method", "source_address", "request_id"):
        if draw(st.booleans()):
            spec[name] = draw(TEXT)
    return spec, draw(MOMENT)


class _Rollback(Exception):
    pass


WRITERS = [
    "single",  # audit_event_write: the ORM, or PostgreSQL's one statement
    "bulk",  # audit_events_write: bulk_create, or PostgreSQL's one statement for many rows
    pytest.param("copy", marks=pytest.mark.postgres),  # audit_events_write(copy=True): COPY
    "append",  # audit_events_append (retention): COPY on PostgreSQL, bulk_create elsewhere
]


def write(writer: str, specs: list[dict]) -> None:
    if writer == "single":
        for spec in specs:
            audit_event_write(**spec)
    elif writer == "append":
        assert audit_events_append(specs) == len(specs)
    else:
        audit_events_write(specs, copy=writer == "copy")


@pytest.mark.parametrize("writer", WRITERS)
@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=st.lists(events(), min_size=1, max_size=3))
def test_every_writer_stores_the_hash_the_verifier_recomputes(writer, drawn):
    specs = [spec for spec, _ in drawn]
    moments = iter([moment for _, moment in drawn])
    # One savepoint per example, always rolled back: every example starts a fresh chain.
    try:
        with (
            transaction.atomic(),
            mock.patch.object(services.timezone, "now", lambda: next(moments)),
        ):
            write(writer, specs)
            stored = list(AuditEvent.objects.order_by("id"))
            assert len(stored) == len(specs)
            prev = canonical.GENESIS
            for event in stored:
                assert event.prev_hash == prev
                assert canonical.digest(prev, canonical.event_payload(event)) == event.hash
                prev = event.hash
            assert verify_chain().ok
            raise _Rollback
    except _Rollback:
        pass


@pytest.mark.postgres
@hsettings(max_examples=60, deadline=None)
@given(prev=st.text(max_size=64), payload=st.text())
def test_postgresqls_digest_is_pythons(prev, payload):
    """The SQL half of the hash (`digest_sql`, used by the one-statement writer) is
    `digest` for any text, the payload's non-ASCII included (PostgreSQL text has no NUL)."""
    prev, payload = prev.replace("\x00", ""), payload.replace("\x00", "")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {canonical.digest_sql('%s::text', '%s::text')}", [prev, payload])
        assert cursor.fetchone()[0] == canonical.digest(prev, payload)


def test_the_payload_is_the_json_the_original_definition_wrote():
    """The generated encoder writes exactly what `json.dumps(fields, sort_keys=True,
    separators=(",", ":"), default=str)` wrote, so chains written before it still verify."""
    import json

    values = {
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=UTC),
        "actor_id": 7,
        "actor": 'a"\\é\x01',
        "auth_method": "token",
        "source_address": "10.0.0.1",
        "action": "x.y",
        "securable_type": "registered_model",
        "securable": "c.s.m",
        "outcome": "SUCCESS",
        "request_id": uuid.uuid4().hex,
        "details": {"b": [1, None, True, "ü"], "a": {"z": 1.5}},
    }
    old = json.dumps(
        {**values, "occurred_at": values["occurred_at"].isoformat()},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    assert canonical.payload(values, canonical.CANONICAL_JSON(values["details"])) == old
    assert canonical.payload({**values, "actor_id": None}, "{}") == json.dumps(
        {
            **values,
            "actor_id": None,
            "details": {},
            "occurred_at": values["occurred_at"].isoformat(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def test_a_nul_in_a_refused_requests_path_is_audited_not_a_500(client):
    """The failed-authentication event records the request's path; PostgreSQL holds no NUL,
    so the writer stores U+FFFD for it (before: a 500 on PostgreSQL and no event)."""
    answer = client.get("/api/2.1/unity-catalog/catalogs/a%00b", HTTP_AUTHORIZATION="Bearer x")
    assert answer.status_code == 401
    event = AuditEvent.objects.get(action="auth.failure")
    assert event.details["path"] == "/api/2.1/unity-catalog/catalogs/a\ufffdb"
    assert verify_chain().ok
