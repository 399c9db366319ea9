"""Reads of the audit trail (admins only; the door checks the role, the query lives here)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from accounts.principals import is_admin
from audit.models import AuditEvent
from core.actor import Actor
from core.errors import InvalidParameter, PermissionDenied


def _time(value: str | None, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None and value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    if parsed is None:
        raise InvalidParameter(f"{field} must be an ISO 8601 time or epoch milliseconds.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def audit_event_search(
    *,
    actor: Actor,
    actor_name: str | None = None,
    action: str | None = None,
    securable: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> QuerySet[AuditEvent]:
    """Filtered events, newest first. Metastore admins only."""
    if not is_admin(actor):
        raise PermissionDenied("Only metastore admins may read the audit trail.")
    qs = AuditEvent.objects.all()
    if actor_name:
        qs = qs.filter(actor=actor_name)
    if action:
        qs = (
            qs.filter(action__startswith=action)
            if action.endswith(".")
            else qs.filter(action=action)
        )
    if securable:
        qs = qs.filter(securable=securable.lower())
    if outcome:
        if outcome.upper() not in AuditEvent.Outcome.values:
            raise InvalidParameter(
                f"outcome must be one of {', '.join(AuditEvent.Outcome.values)}."
            )
        qs = qs.filter(outcome=outcome.upper())
    start, end = _time(since, "since"), _time(until, "until")
    if start:
        qs = qs.filter(occurred_at__gte=start)
    if end:
        qs = qs.filter(occurred_at__lt=end)
    return qs.order_by("-id")
