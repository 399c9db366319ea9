"""Who a principal is: a user (or group) with every group it belongs to, transitively, and
whether that makes it a metastore admin. Identity facts, computed once per request; every
permission decision built on them is made in catalog.authz."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, Group

from accounts.models import User
from accounts.sql import group_closure as group_closure  # the one closure statement
from core.actor import Actor


@dataclass(frozen=True)
class Principals:
    """A user (or group) and every group it belongs to, transitively."""

    user_id: int | None
    group_ids: frozenset[int]
    is_admin: bool


AnyUser = User | AnonymousUser | None


def _active(user: AnyUser) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def principals_for_user(user: AnyUser) -> Principals:
    if user is None or not _active(user):
        return _principals(user, {})
    return _principals(user, group_closure(user_id=user.pk))


def _principals(user: AnyUser, groups: dict[int, str]) -> Principals:
    """A user's principal set from its group closure (`groups`: id -> name)."""
    if user is None or not _active(user):
        return Principals(None, frozenset(), False)
    admin = user.is_superuser or settings.STEWARD_ADMIN_GROUP in groups.values()
    return Principals(user.pk, frozenset(groups), admin)


def principals_for_group(group: Group) -> Principals:
    groups = group_closure(group_ids=[group.pk])
    return Principals(None, frozenset(groups), settings.STEWARD_ADMIN_GROUP in groups.values())


def principals(actor: Actor) -> Principals:
    """The actor's principal set, computed once per actor (i.e. once per request); for a
    token, from the group closure its authentication loaded with it."""
    cached: Principals | None = actor.cache.get("principals")
    if cached is None:
        token = actor.token
        closure = getattr(token, "group_closure", None)  # set by token authentication
        if token is not None and closure is not None and token.user_id == actor.user.pk:
            cached = _principals(actor.user, closure)
        else:
            cached = principals_for_user(actor.user)
        actor.cache["principals"] = cached
    return cached


def is_admin(actor: Actor) -> bool:
    return principals(actor).is_admin
