"""Reads about principals."""

from __future__ import annotations

from django.contrib.auth.models import Group

from accounts.models import User
from core.errors import InvalidParameter


def principal_by_name(name: object) -> User | Group:
    """A user (by username) or else a group (by name); refuses unknown names.

    Principal names share one namespace compared case-insensitively (README, SCIM): "CAROL"
    names carol. An exact match wins; a name that matches several principals only up to case
    (possible for accounts made outside SCIM) is refused rather than guessed at.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 255 or "\x00" in name:
        raise InvalidParameter("A principal name is required.")
    user = User.objects.filter(username=name, is_active=True).first()
    if user is not None:
        return user
    group = Group.objects.filter(name=name).first()
    if group is not None:
        return group
    found: list[User | Group] = [
        *User.objects.filter(username__iexact=name, is_active=True)[:2],
        *Group.objects.filter(name__iexact=name)[:2],
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise InvalidParameter(
            f"Principal name '{name[:100]}' matches several principals that differ only in case;"
            " use the exact name."
        )
    raise InvalidParameter(f"Principal '{name[:100]}' does not exist.")


def principal_name(principal: User | Group) -> str:
    return principal.username if isinstance(principal, User) else principal.name
