"""Writes for the SCIM door: provisioning users and groups from an identity provider.

Each service runs in one transaction (audit.governance.governed), is for metastore admins only,
and writes one audit event (securable_type "user" or "group", securable = the name).

- Users created through SCIM get an unusable password: they sign in through the IdP or tokens.
- DELETE of a user deactivates it (is_active=False) and keeps the row: owners are protected
  foreign keys and the audit trail names it. GET still finds it, with active=false.
- User and group names share one namespace in grants (accounts.selectors.principal_by_name),
  so a userName may not equal a group's displayName and vice versa (409 uniqueness).
- PUT replaces the attributes it carries and clears the optional ones it omits, except
  `active` (users) and `members` (groups), which stay as they are when omitted.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, transaction
from django.db.models import Model, ProtectedError

from accounts.models import GroupNesting, GroupProfile, User
from accounts.scim.errors import InvalidValue, Mutability, ResourceNotFound, Uniqueness
from accounts.scim.patch import PatchOp, apply_group_patch, apply_user_patch
from accounts.scim.resources import (
    GroupAttrs,
    MemberRef,
    UserAttrs,
    group_attrs_from_scim,
    group_external_id,
    group_scim_id,
    parse_group_id,
    parse_user_id,
    user_attrs_from_scim,
    user_state,
)
from accounts.scim.selectors import scim_groups_queryset, scim_require_admin, scim_users_queryset
from accounts.services import group_add_member_group, principal_name_check
from audit.governance import governed
from audit.services import audit_event_write
from core.actor import Actor
from core.errors import AlreadyExists, Conflict, InvalidParameter

# Any constant works: it only has to be the same for every process of this application.
_NESTING_LOCK_KEY = 0x5C1A_6E57

# {attribute: [old, new]} for what a write changed, as its audit event records it.
Changes = dict[str, list[Any]]
# A group's members by SCIM value; each entry has at least "ref" (a MemberRef).
Members = dict[str, dict[str, Any]]


# --- users ------------------------------------------------------------------------------------


def _ensure_name_free(
    name: str, *, user_pk: int | None = None, group_pk: int | None = None
) -> None:
    """The rule every door applies to principal names (accounts.services.principal_name_check:
    no control or invisible characters; userName and displayName unique case-insensitively
    across users and groups), in SCIM's error types."""
    try:
        principal_name_check(name, user_pk=user_pk, group_pk=group_pk)
    except AlreadyExists as exc:
        raise Uniqueness(exc.message) from None
    except InvalidParameter as exc:
        raise InvalidValue(exc.message) from None


def _lock_user(actor: Actor, user_id: str, *, write: bool = True) -> User:
    scim_require_admin(actor, write=write, securable_type="user")
    pk = parse_user_id(user_id)
    user = (
        User.objects.select_for_update().filter(pk=pk, kind=User.Kind.USER).first()
        if pk is not None
        else None
    )
    if user is None:
        raise ResourceNotFound(f"User {str(user_id)[:40]} not found.")
    return user


def _save(obj: Model, *, what: str, name: str) -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise Uniqueness(f"A {what} named '{name}' already exists.") from None


def _refuse_self_deactivation(actor: Actor, user: User) -> None:
    if user.pk == actor.user.pk:
        raise InvalidValue("SCIM cannot deactivate the principal it is acting as.")


def _apply_user(actor: Actor, user: User, attrs: UserAttrs) -> Changes:
    """Set the stored attributes; returns {attribute: [old, new]} for what changed."""
    if attrs.user_name != user.username:
        _ensure_name_free(attrs.user_name, user_pk=user.pk)
    if attrs.active is False and user.is_active:
        _refuse_self_deactivation(actor, user)
    fields: dict[str, object] = {
        "username": attrs.user_name,
        "first_name": attrs.given_name,
        "last_name": attrs.family_name,
        "display_name": attrs.display_name,
        "email": attrs.email,
        "external_id": attrs.external_id,
    }
    if attrs.active is not None:
        fields["is_active"] = attrs.active
    changes: Changes = {}
    for field, value in fields.items():
        if getattr(user, field) != value:
            changes[field] = [getattr(user, field), value]
            setattr(user, field, value)
    if changes:
        user.full_clean(exclude=["password", "username"])
        _save(user, what="user", name=attrs.user_name)
    return changes


def _reload_user(user: User) -> User:
    return scim_users_queryset().get(pk=user.pk)


@governed("scim.user.create")
def scim_user_create(*, actor: Actor, attrs: UserAttrs) -> User:
    """Provision a user from the IdP (unusable password; active unless said otherwise)."""
    scim_require_admin(actor, write=True, securable_type="user", securable=attrs.user_name)
    _ensure_name_free(attrs.user_name)
    user = User(
        username=attrs.user_name,
        first_name=attrs.given_name,
        last_name=attrs.family_name,
        display_name=attrs.display_name,
        email=attrs.email,
        external_id=attrs.external_id,
        kind=User.Kind.USER,
        is_active=True if attrs.active is None else attrs.active,
    )
    user.set_unusable_password()
    user.full_clean(exclude=["password", "username"])
    _save(user, what="user", name=attrs.user_name)
    audit_event_write(
        actor=actor,
        action="scim.user.create",
        securable_type="user",
        securable=user.username,
        details={"id": str(user.pk), "externalId": user.external_id, "active": user.is_active},
    )
    return _reload_user(user)


@governed("scim.user.replace")
def scim_user_replace(*, actor: Actor, user_id: str, attrs: UserAttrs) -> User:
    """PUT: replace a user's attributes (omitted `active` is left as it is)."""
    user = _lock_user(actor, user_id)
    old_name = user.username
    changes = _apply_user(actor, user, attrs)
    audit_event_write(
        actor=actor,
        action="scim.user.replace",
        securable_type="user",
        securable=user.username,
        details={"id": str(user.pk), "changes": changes, "previous_name": old_name},
    )
    return _reload_user(user)


@governed("scim.user.patch")
def scim_user_patch(*, actor: Actor, user_id: str, operations: list[PatchOp]) -> User:
    """PATCH: apply add/replace/remove operations, then validate the result like a PUT."""
    user = _lock_user(actor, user_id)
    old_name = user.username
    attrs = user_attrs_from_scim(apply_user_patch(user_state(user), operations))
    changes = _apply_user(actor, user, attrs)
    audit_event_write(
        actor=actor,
        action="scim.user.patch",
        securable_type="user",
        securable=user.username,
        details={"id": str(user.pk), "changes": changes, "previous_name": old_name},
    )
    return _reload_user(user)


@governed("scim.user.delete")
def scim_user_delete(*, actor: Actor, user_id: str) -> User:
    """DELETE deactivates: is_active=False, row, memberships and ownerships kept (a PATCH
    with active=true brings the user back)."""
    user = _lock_user(actor, user_id)
    _refuse_self_deactivation(actor, user)
    was_active = user.is_active
    if was_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    audit_event_write(
        actor=actor,
        action="scim.user.delete",
        securable_type="user",
        securable=user.username,
        details={"id": str(user.pk), "deactivated": True, "was_active": was_active},
    )
    return user


# --- groups -----------------------------------------------------------------------------------


def _lock_group(actor: Actor, group_id: str) -> Group:
    scim_require_admin(actor, write=True, securable_type="group")
    pk = parse_group_id(group_id)
    group = Group.objects.select_for_update().filter(pk=pk).first() if pk is not None else None
    if group is None:
        raise ResourceNotFound(f"Group {str(group_id)[:40]} not found.")
    return group


def _is_admin_group(group: Group) -> bool:
    return group.name == settings.STEWARD_ADMIN_GROUP


def _current_members(group: Group) -> Members:
    """The group's SCIM members (users, not service principals; nested groups), by value."""
    members: Members = {}
    users = group.user_set.filter(kind=User.Kind.USER).order_by("pk")
    for pk, username, display in users.values_list("pk", "username", "display_name"):
        ref = MemberRef("user", pk)
        members[ref.value] = {
            "value": ref.value,
            "type": "User",
            "display": display or username,
            "ref": ref,
        }
    links = GroupNesting.objects.filter(parent=group).order_by("child_id")
    for child_pk, name in links.values_list("child_id", "child__name"):
        ref = MemberRef("group", child_pk)
        members[ref.value] = {"value": ref.value, "type": "Group", "display": name, "ref": ref}
    return members


def _serialize_nesting() -> None:
    """Nesting changes run one at a time, so two concurrent ones cannot close a cycle that
    each alone would not (SQLite already serializes writers)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_NESTING_LOCK_KEY])


def _change_members(group: Group, add: list[MemberRef], remove: list[MemberRef]) -> None:
    """Add and remove members; unknown ids are 400, nesting that would loop is 400."""
    add_users = {r.pk for r in add if r.kind == "user"}
    add_groups = {r.pk for r in add if r.kind == "group"}
    users = list(User.objects.filter(pk__in=add_users, kind=User.Kind.USER))
    missing = add_users - {u.pk for u in users}
    if missing:
        raise InvalidValue(f"No user with id {sorted(missing)[0]}.")
    children = {g.pk: g for g in Group.objects.filter(pk__in=add_groups)}
    missing = add_groups - set(children)
    if missing:
        raise InvalidValue(f"No group with id {group_scim_id(sorted(missing)[0])}.")
    remove_users = [r.pk for r in remove if r.kind == "user"]
    remove_groups = [r.pk for r in remove if r.kind == "group"]
    if remove_users:
        group.user_set.remove(*User.objects.filter(pk__in=remove_users, kind=User.Kind.USER))
    if remove_groups:
        GroupNesting.objects.filter(parent=group, child_id__in=remove_groups).delete()
    if users:
        group.user_set.add(*users)
    if children:
        _serialize_nesting()
        for pk in sorted(children):
            group_add_member_group(parent=group, child=children[pk])


def _member_diff(old: Members, new: Members) -> tuple[list[MemberRef], list[MemberRef]]:
    add = [item["ref"] for key, item in new.items() if key not in old]
    remove = [item["ref"] for key, item in old.items() if key not in new]
    return add, remove


def _apply_group(group: Group, attrs: GroupAttrs) -> Changes:
    """Set name and externalId; returns {attribute: [old, new]} for what changed."""
    changes: Changes = {}
    if attrs.display_name != group.name:
        if _is_admin_group(group):
            raise Mutability("The metastore admin group cannot be renamed.")
        _ensure_name_free(attrs.display_name, group_pk=group.pk)
        changes["displayName"] = [group.name, attrs.display_name]
        group.name = attrs.display_name
        _save(group, what="group", name=attrs.display_name)
    old_external = group_external_id(group)
    if attrs.external_id != old_external:
        changes["externalId"] = [old_external, attrs.external_id]
        GroupProfile.objects.update_or_create(
            group=group, defaults={"external_id": attrs.external_id}
        )
    return changes


def _reload_group(group: Group) -> Group:
    return scim_groups_queryset().get(pk=group.pk)


def _member_values(refs: list[MemberRef]) -> list[str]:
    return [r.value for r in refs]


@governed("scim.group.create")
def scim_group_create(*, actor: Actor, attrs: GroupAttrs) -> Group:
    """Create a group with its externalId and members (users or nested groups)."""
    scim_require_admin(actor, write=True, securable_type="group", securable=attrs.display_name)
    _ensure_name_free(attrs.display_name)
    group = Group(name=attrs.display_name)
    _save(group, what="group", name=attrs.display_name)
    GroupProfile.objects.create(group=group, external_id=attrs.external_id)
    members = attrs.members or []
    _change_members(group, add=members, remove=[])
    audit_event_write(
        actor=actor,
        action="scim.group.create",
        securable_type="group",
        securable=group.name,
        details={
            "id": group_scim_id(group.pk),
            "externalId": attrs.external_id,
            "added": _member_values(members),
        },
    )
    return _reload_group(group)


@governed("scim.group.replace")
def scim_group_replace(*, actor: Actor, group_id: str, attrs: GroupAttrs) -> Group:
    """PUT: replace name, externalId and (when given) the whole member list."""
    group = _lock_group(actor, group_id)
    old_name = group.name
    changes = _apply_group(group, attrs)
    add: list[MemberRef] = []
    remove: list[MemberRef] = []
    if attrs.members is not None:
        current = _current_members(group)
        wanted: Members = {r.value: {"ref": r} for r in attrs.members}
        add, remove = _member_diff(current, wanted)
        _change_members(group, add=add, remove=remove)
    audit_event_write(
        actor=actor,
        action="scim.group.replace",
        securable_type="group",
        securable=group.name,
        details={
            "id": group_scim_id(group.pk),
            "changes": changes,
            "previous_name": old_name,
            "added": _member_values(add),
            "removed": _member_values(remove),
        },
    )
    return _reload_group(group)


@governed("scim.group.patch")
def scim_group_patch(*, actor: Actor, group_id: str, operations: list[PatchOp]) -> Group:
    """PATCH: rename, set externalId, add/remove/replace members (Okta and Entra styles)."""
    group = _lock_group(actor, group_id)
    old_name = group.name
    current = _current_members(group)
    state = {"displayName": group.name, "externalId": group_external_id(group)}
    state, members = apply_group_patch(state, current, operations)
    attrs = group_attrs_from_scim(state)
    changes = _apply_group(group, attrs)
    add, remove = _member_diff(current, members)
    _change_members(group, add=add, remove=remove)
    audit_event_write(
        actor=actor,
        action="scim.group.patch",
        securable_type="group",
        securable=group.name,
        details={
            "id": group_scim_id(group.pk),
            "changes": changes,
            "previous_name": old_name,
            "added": _member_values(add),
            "removed": _member_values(remove),
        },
    )
    return _reload_group(group)


@governed("scim.group.delete")
def scim_group_delete(*, actor: Actor, group_id: str) -> None:
    """Delete a group with its memberships, nestings and grants. The metastore admin group and
    groups that own securables (transfer ownership first) are refused."""
    group = _lock_group(actor, group_id)
    if _is_admin_group(group):
        raise Mutability("The metastore admin group cannot be deleted.")
    name, scim_id = group.name, group_scim_id(group.pk)
    members = _member_values([item["ref"] for item in _current_members(group).values()])
    try:
        with transaction.atomic():
            group.delete()
    except ProtectedError:
        raise Conflict(
            f"Group '{name}' owns catalog objects; transfer their ownership first."
        ) from None
    audit_event_write(
        actor=actor,
        action="scim.group.delete",
        securable_type="group",
        securable=name,
        details={"id": scim_id, "members": members},
    )
