"""The wrapper every service and selector goes through: one transaction, actor context for
django-auditlog, and an audit event for every denied attempt (written after the rollback).

It lives in the audit app because auditing is what it adds: every app's services import it
from here (core stays free of apps; see docs/architecture.md)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from audit.services import audit_event_write
from core.actor import Actor
from core.errors import StewardError

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
_log_actor: ContextVar[tuple[AbstractBaseUser | None, str | None] | None] = ContextVar(
    "steward_log_actor", default=None
)

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def log_actor(user: AbstractBaseUser | None, remote_addr: str | None) -> Iterator[None]:
    """LogEntry rows written inside name this user (None: none) and address."""
    token = _log_actor.set((user, remote_addr or None))
    try:
        yield
    finally:
        _log_actor.reset(token)


def fill_log_entry(sender: type[Any], instance: Any, **kwargs: Any) -> None:
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


def governed(action: str, *, atomic: bool = True) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a service (atomic=True) or selector (atomic=False) taking `actor=` by keyword."""

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        call: Callable[..., R] = fn  # called with `actor` taken out of and put back in kwargs

        @functools.wraps(fn)
        def wrapper(*args: Any, actor: Actor, **kwargs: Any) -> R:
            depth_token = _depth.set(_depth.get() + 1)
            rid_token = _request_id.set(actor.request_id)
            try:
                with log_actor(
                    actor.user if actor.user.is_authenticated else None, actor.source_address
                ):
                    if atomic:
                        with transaction.atomic():
                            return call(*args, actor=actor, **kwargs)
                    return call(*args, actor=actor, **kwargs)
            except Exception as exc:
                if (
                    isinstance(exc, StewardError)
                    and exc.denied is not None
                    and _depth.get() == 1
                    and not exc.audited
                ):
                    exc.audited = True
                    denied = exc.denied
                    audit_event_write(
                        actor=actor,
                        action=action,
                        outcome="DENIED",
                        securable_type=denied.securable_type,
                        securable=denied.securable,
                        details={"reason": exc.message, **denied.details()},
                    )
                raise
            finally:
                _request_id.reset(rid_token)
                _depth.reset(depth_token)

        wrapper.action = action  # type: ignore[attr-defined]
        # The wrapper takes exactly what `fn` takes (`actor` by keyword, as every service and
        # selector does); a ParamSpec cannot name a keyword-only parameter it passes through.
        return cast(Callable[P, R], wrapper)

    return decorator
