"""The audit trail: events for writes and denials, the hash chain, append-only storage."""

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.services import audit_event_write
from audit.verify import verify_chain
from catalog.services import catalog_create
from core.actor import Actor
from core.errors import NotFound

UC = "/api/2.1/unity-catalog"


@pytest.mark.django_db
def test_write_leaves_event_with_actor_address_and_request_id(admin_user, api_as):
    api = api_as(admin_user)
    response = api.post(
        f"{UC}/catalogs",
        {"name": "sales"},
        format="json",
        HTTP_X_REQUEST_ID="req-123",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 200
    assert response["X-Request-Id"] == "req-123"
    event = AuditEvent.objects.get(action="catalog.create")
    assert (event.actor, event.auth_method, event.securable, event.outcome) == (
        "root",
        "token",
        "sales",
        "SUCCESS",
    )
    assert event.source_address == "10.1.2.3"
    assert event.request_id == "req-123"


@pytest.mark.django_db
def test_field_diffs_from_auditlog_share_the_request_id(admin_user, api_as):
    from auditlog.models import LogEntry

    api = api_as(admin_user)
    api.post(f"{UC}/catalogs", {"name": "sales"}, format="json", HTTP_X_REQUEST_ID="req-9")
    api.patch(f"{UC}/catalogs/sales", {"comment": "new"}, format="json", HTTP_X_REQUEST_ID="req-10")
    entry = LogEntry.objects.filter(cid="req-10").get()
    assert entry.actor == admin_user
    assert "comment" in entry.changes_dict


@pytest.mark.django_db
def test_denied_write_is_audited_and_nothing_changes(make_user, api_as):
    user = make_user("mallory")
    response = api_as(user).post(f"{UC}/catalogs", {"name": "evil"}, format="json")
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="catalog.create")
    assert (event.actor, event.outcome) == ("mallory", "DENIED")
    assert "CREATE CATALOG" in event.details["reason"]
    from catalog.models import Catalog

    assert not Catalog.objects.filter(name="evil").exists()


@pytest.mark.django_db
def test_hidden_read_is_audited_as_denied_but_answers_404(make_user, api_as, tree):
    tree("secret.s.m")
    response = api_as(make_user("eve")).get(f"{UC}/models/secret.s.m")
    assert response.status_code == 404
    event = AuditEvent.objects.get(action="registered_model.get")
    assert (event.actor, event.outcome, event.securable) == ("eve", "DENIED", "secret.s.m")


@pytest.mark.django_db
def test_missing_object_is_not_a_denial(admin_actor):
    from catalog.selectors import catalog_get

    with pytest.raises(NotFound):
        catalog_get(actor=admin_actor, name="nothing_here")
    assert not AuditEvent.objects.filter(outcome="DENIED").exists()


@pytest.mark.django_db
def test_change_rolls_back_with_a_failing_audit_write(admin_actor, monkeypatch):
    from catalog import services
    from catalog.models import Catalog

    def broken(*args, **kwargs):
        raise DatabaseError("audit store unavailable")

    monkeypatch.setattr(services, "audit_event_write", broken)
    with pytest.raises(DatabaseError):
        catalog_create(actor=admin_actor, name="lost")
    assert not Catalog.objects.filter(name="lost").exists()


@pytest.mark.django_db
def test_chain_verifies_and_detects_edit_removal_and_cut_tail(admin_actor):
    for i in range(5):
        audit_event_write(actor=admin_actor, action=f"test.{i}")
    assert verify_chain().ok
    call_command("verify_audit")

    third = AuditEvent.objects.order_by("id")[2]
    original = third.details
    _raw_update(third.id, "details", '{"forged": true}')
    report = verify_chain()
    assert not report.ok and f"event {third.id}" in report.problem
    _raw_update(third.id, "details", _json(original))
    assert verify_chain().ok

    last = AuditEvent.objects.order_by("-id").first()
    _raw_delete(last.id)
    assert "cut off" in verify_chain().problem

    with pytest.raises(Exception, match="broken"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_removed_event_in_the_middle_breaks_the_chain(admin_actor):
    for i in range(4):
        audit_event_write(actor=admin_actor, action=f"test.{i}")
    second = AuditEvent.objects.order_by("id")[1]
    _raw_delete(second.id)
    report = verify_chain()
    assert not report.ok and "previous hash" in report.problem


@pytest.mark.postgres
@pytest.mark.django_db
def test_database_refuses_update_and_delete_of_audit_rows(admin_actor):
    event = audit_event_write(actor=admin_actor, action="test.append_only")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.append_only"


@pytest.mark.django_db
def test_audit_api_is_admin_only_and_filters(admin_user, make_user, api_as, tree):
    tree("a.b.c")
    bob = make_user("bob")
    assert api_as(bob).get("/api/v1/audit-events").status_code == 403
    assert api_as(None).get("/api/v1/audit-events").status_code == 401
    api = api_as(admin_user)
    data = api.get("/api/v1/audit-events?action=schema.create").json()
    assert [e["securable"] for e in data["events"]] == ["a.b"]
    data = api.get("/api/v1/audit-events?securable=a.b.c&outcome=SUCCESS").json()
    assert [e["action"] for e in data["events"]] == ["registered_model.create"]
    assert api.get("/api/v1/audit-events?outcome=MAYBE").status_code == 400
    assert api.get("/api/v1/audit-events?since=yesterday").status_code == 400
    future = api.get("/api/v1/audit-events?since=2999-01-01T00:00:00Z").json()
    assert future["events"] == []


@pytest.mark.django_db
def test_audit_api_pages_newest_first(admin_user, api_as, admin_actor):
    for i in range(7):
        audit_event_write(actor=admin_actor, action="test.page", details={"i": i})
    api = api_as(admin_user)
    seen, token = [], None
    while True:
        url = "/api/v1/audit-events?action=test.page&max_results=3"
        data = api.get(url + (f"&page_token={token}" if token else "")).json()
        seen += [e["details"]["i"] for e in data["events"]]
        token = data["next_page_token"]
        if not token:
            break
    assert seen == [6, 5, 4, 3, 2, 1, 0]


def _json(value) -> str:
    import json

    return json.dumps(value)


def _raw_update(pk: int, column: str, value: str) -> None:
    """Tamper below the ORM, as an attacker with table access would (SQLite only path)."""
    _tamper(f"UPDATE audit_auditevent SET {column} = %s WHERE id = %s", [value, pk])


def _raw_delete(pk: int) -> None:
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [pk])


def _tamper(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


def test_actor_dataclass_has_a_request_id():
    assert len(Actor(user=None).request_id) == 32  # type: ignore[arg-type]


def test_auditlog_is_registered_on_every_model():
    from auditlog.registry import auditlog
    from django.apps import apps

    ours = [
        m for m in apps.get_models() if m._meta.app_label in {"accounts", "catalog", "registry"}
    ]
    # Append-only history tables are their own record; a LogEntry per row would repeat it.
    exempt = {"AliasHistory"}
    missing = [m.__name__ for m in ours if not auditlog.contains(m) and m.__name__ not in exempt]
    assert missing == []
    assert not any(auditlog.contains(m) for m in ours if m.__name__ in exempt)


@pytest.mark.django_db
def test_requests_leave_no_auditlog_receivers_behind(admin_user, api_as, tree):
    """Nested actor contexts (middleware + service + selector) must not leak signal receivers."""
    from auditlog.models import LogEntry
    from django.db.models.signals import pre_save

    tree("a.b.c")
    api = api_as(admin_user)
    api.get(f"{UC}/models/a.b.c")
    before = len(pre_save._live_receivers(LogEntry)[0])
    for _ in range(20):
        assert api.get(f"{UC}/models/a.b.c").status_code == 200
        api.patch(f"{UC}/models/a.b.c", {"comment": "x"}, format="json")
    assert len(pre_save._live_receivers(LogEntry)[0]) == before


@pytest.mark.django_db
def test_logentries_name_the_service_caller_and_the_console_user(admin_user, make_user, api_as):
    """django-auditlog's rows take actor and address from audit.governance.log_actor: inside a
    service call its actor, in a console/admin request (AuditlogActorMiddleware) the session
    user and the trusted client address, and nothing outside either."""
    from auditlog.models import LogEntry
    from django.test import RequestFactory

    from audit.middleware import AuditlogActorMiddleware
    from catalog.models import Catalog

    api_as(admin_user).post(
        f"{UC}/catalogs", {"name": "svc"}, format="json", REMOTE_ADDR="10.9.8.7"
    )
    entry = LogEntry.objects.filter(object_repr__contains="svc").latest("id")
    assert entry.actor == admin_user and entry.actor_email == admin_user.email

    clerk = make_user("clerk", email="clerk@example.com")
    request = RequestFactory().post("/console/catalogs")
    request.user, request.client_address = clerk, "192.0.2.5"

    def change(_request):
        Catalog.objects.create(name="console_made")
        return None

    AuditlogActorMiddleware(change)(request)
    entry = LogEntry.objects.filter(object_repr__contains="console_made").get()
    assert (entry.actor, entry.actor_email, entry.remote_addr) == (
        clerk,
        "clerk@example.com",
        "192.0.2.5",
    )
    Catalog.objects.create(name="no_context")
    entry = LogEntry.objects.filter(object_repr__contains="no_context").get()
    assert entry.actor is None and entry.remote_addr is None
