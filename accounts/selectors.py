"""Reads about principals."""

from __future__ import annotations

from django.contrib.auth.models import Group

from accounts.models import User
from core.errors import InvalidParameter


def principal_by_name(name) -> User | Group:
    """A user (by username) or else a group (by name); refuses unknown names."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255 or "\x00" in name:
        raise InvalidParameter("A principal name is required.")
    user = User.objects.filter(username=name, is_active=True).first()
    if user is not None:
        return user
    group = Group.objects.filter(name=name).first()
    if group is not None:
        return group
    raise InvalidParameter(f"Principal '{name[:100]}' does not exist.")


def principal_name(principal: User | Group) -> str:
    return principal.username if isinstance(principal, User) else principal.name
