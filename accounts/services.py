"""Writes about principals: creating users, service principals and groups; API tokens (issue,
revoke); group nesting."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import ApiToken, GroupNesting, User
from accounts.principals import group_closure, is_admin
from audit.governance import governed
from audit.services import audit_event_write
from core.actor import Actor
from core.errors import AlreadyExists, Denial, InvalidParameter, NotFound, PermissionDenied

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


# --- creating principals ------------------------------------------------------------------


@dataclass
class SystemActor(Actor):
    """Steward itself, acting with the installation's own rights rather than a principal's:
    management commands (whoever can run one already holds the server) and the demo bootstrap,
    which creates the first admin. Audited as actor "system"."""

    user: Any = field(default_factory=AnonymousUser)
    auth_method: str = "cli"


SYSTEM = "system"

# Categories no principal name may contain: controls (NUL, newlines), invisible formatting
# (bidirectional overrides, zero-width joiners), separators other than the space, private use,
# surrogates and unassigned code points.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}


def principal_name_check(
    name: Any, *, user_pk: int | None = None, group_pk: int | None = None
) -> None:
    """The rule every door applies to a new or renamed principal (SCIM, commands, bootstrap):
    a name without control or invisible characters, free across users and groups compared
    case-insensitively, since grants name principals by name in one namespace. `user_pk` /
    `group_pk`: the principal being renamed, which may keep its own name."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter("A principal name is required.")
    bad = next((ch for ch in name if unicodedata.category(ch) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise InvalidParameter(
            f"A principal name may not contain control or invisible characters "
            f"(U+{ord(bad):04X} in {name[:100]!r})."
        )
    users = User.objects.filter(username__iexact=name)
    if user_pk is not None:
        users = users.exclude(pk=user_pk)
    if users.exists():
        raise AlreadyExists(f"A user named '{name}' already exists.")
    groups = Group.objects.filter(name__iexact=name)
    if group_pk is not None:
        groups = groups.exclude(pk=group_pk)
    if groups.exists():
        raise AlreadyExists(f"A group named '{name}' already exists; users and groups share names.")


def _require_principal_admin(actor: Actor, what: str, name: str) -> None:
    if isinstance(actor, SystemActor):
        return
    if actor.read_only or not is_admin(actor):
        raise PermissionDenied(
            f"Only metastore admins create {what}s.",
            denied=Denial("group" if what == "group" else "user", name),
        )


def _audit_create(
    actor: Actor, action: str, securable_type: str, name: str, details: dict[str, Any]
) -> None:
    audit_event_write(
        actor=actor,
        action=action,
        securable_type=securable_type,
        securable=name,
        details=details,
        actor_name=SYSTEM if isinstance(actor, SystemActor) else None,
    )


def _groups_named(names: Sequence[str]) -> list[Group]:
    """The existing groups of these names (exact, else the one that matches up to case)."""
    groups = []
    for name in dict.fromkeys(names):
        group = Group.objects.filter(name=name).first()
        if group is None:
            matches = list(Group.objects.filter(name__iexact=name)[:2])
            group = matches[0] if len(matches) == 1 else None
        if group is None:
            raise InvalidParameter(f"Group '{str(name)[:100]}' does not exist; create it first.")
        groups.append(group)
    return groups


def _user_create(
    actor: Actor,
    *,
    kind: str,
    username: str,
    email: str,
    display_name: str,
    password: str | None,
    groups: Sequence[str],
    superuser: bool,
) -> User:
    what = "service principal" if kind == User.Kind.SERVICE_PRINCIPAL else "user"
    _require_principal_admin(actor, what, str(username)[:150])
    if superuser and not isinstance(actor, SystemActor):
        raise PermissionDenied("Only the installation itself creates Django superusers.")
    principal_name_check(username)
    user = User(
        username=username,
        kind=kind,
        email=email,
        display_name=display_name,
        is_staff=superuser,
        is_superuser=superuser,
    )
    try:
        user.full_clean(exclude=["password"])  # the model's username rule, as SCIM applies it
        if password is not None:
            validate_password(password, user)
    except ValidationError as exc:
        raise InvalidParameter(" ".join(exc.messages)) from None
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save()
    members_of = _groups_named(groups)
    user.groups.add(*members_of)
    _audit_create(
        actor,
        f"{kind}.create",
        "user",
        user.username,
        {
            "id": str(user.pk),
            "kind": kind,
            "groups": [g.name for g in members_of],
            "password": "set" if password is not None else "none",
            "superuser": superuser,
        },
    )
    return user


@governed("user.create")
def user_create(
    *,
    actor: Actor,
    username: str,
    email: str = "",
    display_name: str = "",
    password: str | None = None,
    groups: Sequence[str] = (),
    superuser: bool = False,
) -> User:
    """Create a user (metastore admins, or the installation itself), in existing groups. With
    no password the user signs in through tokens (or an identity provider) only. Refuses a
    name taken by any principal up to case, as SCIM does; Django's password validators apply."""
    return _user_create(
        actor,
        kind=User.Kind.USER,
        username=username,
        email=email,
        display_name=display_name,
        password=password,
        groups=groups,
        superuser=superuser,
    )


@governed("service_principal.create")
def service_principal_create(*, actor: Actor, name: str, groups: Sequence[str] = ()) -> User:
    """Create a service principal (token-only, for CI/CD) in existing groups; same rules and
    rights as user_create."""
    return _user_create(
        actor,
        kind=User.Kind.SERVICE_PRINCIPAL,
        username=name,
        email="",
        display_name="",
        password=None,
        groups=groups,
        superuser=False,
    )


@governed("group.create")
def group_create(*, actor: Actor, name: str) -> Group:
    """Create a group (metastore admins, or the installation itself). Group names follow the
    principal rule (principal_name_check) and Django's 150 characters."""
    _require_principal_admin(actor, "group", str(name)[:150])
    principal_name_check(name)
    group = Group(name=name)
    try:
        group.full_clean()
    except ValidationError as exc:
        raise InvalidParameter(" ".join(exc.messages)) from None
    group.save()
    _audit_create(actor, "group.create", "group", group.name, {"id": group.pk})
    return group
