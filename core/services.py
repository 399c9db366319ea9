"""The wrapper every service and selector goes through: one transaction, actor context for
django-auditlog, and an audit event for every denied attempt (written after the rollback)."""

from __future__ import annotations

import functools
from contextvars import ContextVar

from auditlog.context import auditlog_value, set_actor
from django.db import transaction

from core.actor import Actor

_depth: ContextVar[int] = ContextVar("steward_service_depth", default=0)
_request_id: ContextVar[str | None] = ContextVar("steward_request_id", default=None)


def current_request_id() -> str | None:
    """django-auditlog's correlation id: its LogEntry rows carry the request id of the event."""
    return _request_id.get()


def governed(action: str, *, atomic: bool = True):
    """Decorate a service (atomic=True) or selector (atomic=False) taking `actor=` by keyword."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, actor: Actor, **kwargs):
            depth_token = _depth.set(_depth.get() + 1)
            rid_token = _request_id.set(actor.request_id)
            # django-auditlog's set_actor disconnects whatever context is current when it exits,
            # so a nested one would leave the outer receiver connected for the life of the
            # process (jazzband/django-auditlog#846); restore the outer context ourselves.
            outer_context = auditlog_value.get(None)
            try:
                with set_actor(
                    actor.user if actor.user.is_authenticated else None,
                    remote_addr=actor.source_address or None,
                ):
                    if atomic:
                        with transaction.atomic():
                            return fn(*args, actor=actor, **kwargs)
                    return fn(*args, actor=actor, **kwargs)
            except Exception as exc:
                denied = getattr(exc, "denied", None)
                if denied and _depth.get() == 1 and not getattr(exc, "audited", False):
                    from audit.services import audit_event_write

                    exc.audited = True  # type: ignore[attr-defined]
                    audit_event_write(
                        actor=actor,
                        action=action,
                        outcome="DENIED",
                        securable_type=denied.get("securable_type", ""),
                        securable=denied.get("securable", ""),
                        details={"reason": getattr(exc, "message", str(exc)), **denied},
                    )
                raise
            finally:
                if outer_context is not None:
                    auditlog_value.set(outer_context)
                _request_id.reset(rid_token)
                _depth.reset(depth_token)

        wrapper.action = action  # type: ignore[attr-defined]
        return wrapper

    return decorator
