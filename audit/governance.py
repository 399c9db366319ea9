"""The wrapper every service and selector goes through: one transaction, actor context for
django-auditlog, and an audit event for every denied attempt (written after the rollback).

It lives in the audit app because auditing is what it adds: every app's services import it
from here (core stays free of apps; see docs/architecture.md)."""

from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar

from django.db import transaction

from audit.services import audit_event_write
from core.actor import Actor

_depth: ContextVar[int] = ContextVar("steward_service_depth", default=0)
_request_id: ContextVar[str | None] = ContextVar("steward_request_id", default=None)


def current_request_id() -> str | None:
    """django-auditlog's correlation id: its LogEntry rows carry the request id of the event."""
    return _request_id.get()


# Who django-auditlog's LogEntry rows name: (user or None, source address or None) of the
# current service call, or of the console/admin request (core.middleware). One receiver,
# connected once (AuditConfig.ready), reads it; auditlog's own `set_actor` connects and
# disconnects a receiver per use, which empties every signal's receiver cache each time and,
# nested, leaked receivers (jazzband/django-auditlog#846).
_log_actor: ContextVar[tuple | None] = ContextVar("steward_log_actor", default=None)


@contextlib.contextmanager
def log_actor(user, remote_addr):
    """LogEntry rows written inside name this user (None: none) and address."""
    token = _log_actor.set((user, remote_addr or None))
    try:
        yield
    finally:
        _log_actor.reset(token)


def fill_log_entry(sender, instance, **kwargs) -> None:
    """pre_save of LogEntry: the actor and address of the current context, as auditlog's
    set_actor would have set them (an actor already given is kept)."""
    context = _log_actor.get()
    if context is None:
        return
    user, remote_addr = context
    if user is not None and instance.actor is None:
        instance.actor = user
        instance.actor_email = getattr(user, "email", None)
    instance.remote_addr = remote_addr


def governed(action: str, *, atomic: bool = True):
    """Decorate a service (atomic=True) or selector (atomic=False) taking `actor=` by keyword."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, actor: Actor, **kwargs):
            depth_token = _depth.set(_depth.get() + 1)
            rid_token = _request_id.set(actor.request_id)
            try:
                with log_actor(
                    actor.user if actor.user.is_authenticated else None, actor.source_address
                ):
                    if atomic:
                        with transaction.atomic():
                            return fn(*args, actor=actor, **kwargs)
                    return fn(*args, actor=actor, **kwargs)
            except Exception as exc:
                denied = getattr(exc, "denied", None)
                if denied and _depth.get() == 1 and not getattr(exc, "audited", False):
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
                _request_id.reset(rid_token)
                _depth.reset(depth_token)

        wrapper.action = action  # type: ignore[attr-defined]
        return wrapper

    return decorator
