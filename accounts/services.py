"""Writes about principals: API tokens (issue, revoke), groups and their nesting."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import ApiToken, GroupNesting, User
from accounts.principals import group_closure, is_admin
from audit.governance import governed
from audit.services import audit_event_write
from core.actor import Actor
from core.errors import InvalidParameter, NotFound, PermissionDenied

TOKEN_PREFIX = "stw_"


def hash_token(raw: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is a safe lookup key."""
    return hashlib.sha256(raw.encode()).hexdigest()


@governed("token.issue")
def api_token_issue(
    *, actor: Actor, user: User, name: str = "", days: int | None = None, scope: str = "all"
) -> tuple[ApiToken, str]:
    """Issue a token for `user` (oneself, or anyone for an admin); returns it and the secret,
    which is never stored and never shown again."""
    if user.pk != actor.user.pk and not is_admin(actor):
        raise PermissionDenied("Only admins issue tokens for other principals.")
    # For anyone, an admin included: a read-only token never writes.
    if actor.read_only:
        raise PermissionDenied("A read-only token cannot issue tokens.")
    days = settings.STEWARD_TOKEN_DEFAULT_DAYS if days is None else days
    if (
        not isinstance(days, int)
        or isinstance(days, bool)
        or not 1 <= days <= settings.STEWARD_TOKEN_MAX_DAYS
    ):
        raise InvalidParameter(f"days must be between 1 and {settings.STEWARD_TOKEN_MAX_DAYS}.")
    if scope not in ApiToken.Scope.values:
        raise InvalidParameter(f"scope must be one of {', '.join(ApiToken.Scope.values)}.")
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidParameter("name must be a string of at most 200 characters.")
    secret = secrets.token_urlsafe(32)
    raw = f"{TOKEN_PREFIX}{secret}"
    token = ApiToken.objects.create(
        user=user,
        name=name or "token",
        prefix=raw[:12],
        token_hash=hash_token(raw),
        scope=scope,
        expires_at=timezone.now() + timedelta(days=days),
    )
    audit_event_write(
        actor=actor,
        action="token.issue",
        securable_type="token",
        securable=f"{user.username}/{token.pk}",
        details={
            "name": token.name,
            "prefix": token.prefix,
            "scope": scope,
            "days": days,
            "for": user.username,
        },
    )
    return token, raw


@governed("token.revoke")
def api_token_revoke(*, actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token: its owner or an admin. Someone else's token answers 404."""
    token = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if token is None or (token.user_id != actor.user.pk and not is_admin(actor)):
        raise NotFound(f"Token {token_id} does not exist.")
    if actor.read_only:
        # Else a leaked read-only token could revoke every token of its user, CI's included.
        raise PermissionDenied("A read-only token cannot revoke tokens.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    audit_event_write(
        actor=actor,
        action="token.revoke",
        securable_type="token",
        securable=f"{token.user.username}/{token.pk}",
        details={"name": token.name, "prefix": token.prefix},
    )
    return token


def group_add_member_group(*, parent: Group, child: Group) -> None:
    """Nest `child` in `parent`, refusing cycles (callers are admin-only doors)."""
    if parent.pk == child.pk:
        raise InvalidParameter("A group cannot contain itself.")
    if child.pk in group_closure(group_ids=[parent.pk]):
        raise InvalidParameter(f"Nesting '{child.name}' in '{parent.name}' would create a cycle.")
    GroupNesting.objects.get_or_create(parent=parent, child=child)
