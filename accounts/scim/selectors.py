"""Reads for the SCIM door: users and groups as identity providers see them. Admins only.

SCIM manages human users; service principals are Steward's own and are neither listed as
users nor shown (or touched) as group members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from django.contrib.auth.models import Group
from django.db.models import Model, OuterRef, Prefetch, Q, QuerySet, Subquery

from accounts.models import GroupNesting, User
from accounts.principals import is_admin
from accounts.scim.errors import ResourceNotFound
from accounts.scim.filters import Attr, QueryFilter
from accounts.scim.resources import parse_group_id, parse_user_id
from accounts.scim.schema import DEFAULT_COUNT, GROUP_URN, MAX_RESULTS, USER_URN
from audit.governance import governed
from audit.models import AuditEvent
from core.actor import Actor
from core.errors import Denial, PermissionDenied


def scim_require_admin(
    actor: Actor, *, write: bool, securable_type: str, securable: str = ""
) -> None:
    """Only metastore admins use SCIM, and a read-only token of an admin only reads."""
    if is_admin(actor) and not (write and actor.read_only):
        return
    reason = (
        "This token is read-only."
        if is_admin(actor)
        else "Only metastore admins may manage users and groups through SCIM."
    )
    raise PermissionDenied(reason, denied=Denial(securable_type, securable))


def _user_id_q(value: str) -> Q:
    pk = parse_user_id(value)
    return Q(pk=pk) if pk is not None else Q(pk__in=[])


def _group_id_q(value: str) -> Q:
    pk = parse_group_id(value)
    return Q(pk=pk) if pk is not None else Q(pk__in=[])


def _group_member_q(value: str) -> Q:
    user_pk, group_pk = parse_user_id(value), parse_group_id(value)
    if user_pk is not None:
        links = User.groups.through.objects.filter(user_id=user_pk, user__kind=User.Kind.USER)
        return Q(pk__in=links.values("group_id"))
    if group_pk is not None:
        return Q(pk__in=GroupNesting.objects.filter(child_id=group_pk).values("parent_id"))
    return Q(pk__in=[])


USER_FILTER = QueryFilter(
    {
        ("userName", None): Attr("username", "str"),
        ("externalId", None): Attr("external_id", "str_exact"),
        ("displayName", None): Attr("display_name", "str"),
        ("active", None): Attr("is_active", "bool"),
        ("emails", None): Attr("email", "str"),
        ("emails", "value"): Attr("email", "str"),
        ("name", "givenName"): Attr("first_name", "str"),
        ("name", "familyName"): Attr("last_name", "str"),
        ("id", None): Attr("pk", "id"),
    },
    USER_URN,
    id_q=_user_id_q,
)

GROUP_FILTER = QueryFilter(
    {
        ("displayName", None): Attr("name", "str"),
        ("externalId", None): Attr("profile__external_id", "str_exact"),
        ("id", None): Attr("pk", "id"),
        ("members", None): Attr("members", "member"),
        ("members", "value"): Attr("members", "member"),
    },
    GROUP_URN,
    id_q=_group_id_q,
    member_q=_group_member_q,
)


def _event_time(securable_type: str, name_field: str, *, first: bool) -> Subquery:
    """When the resource was first or last written, from the audit trail (Django's Group has
    no timestamps; a User only its date_joined). One indexed lookup per row."""
    events = AuditEvent.objects.filter(
        securable_type=securable_type,
        securable=OuterRef(name_field),
        outcome=AuditEvent.Outcome.SUCCESS,
    ).order_by("occurred_at" if first else "-occurred_at")
    return Subquery(events.values("occurred_at")[:1])


def scim_users_queryset() -> QuerySet[User]:
    """SCIM users (not service principals) with what their resource shows."""
    return (
        User.objects.filter(kind=User.Kind.USER)
        .annotate(scim_last_event=_event_time("user", "username", first=False))
        .prefetch_related(Prefetch("groups", queryset=Group.objects.only("id", "name")))
    )


def scim_groups_queryset(*, with_members: bool = True) -> QuerySet[Group]:
    """Groups with their profile, audit timestamps and (optionally) their SCIM members."""
    queryset = Group.objects.select_related("profile").annotate(
        scim_first_event=_event_time("group", "name", first=True),
        scim_last_event=_event_time("group", "name", first=False),
    )
    if with_members:
        queryset = queryset.prefetch_related(
            Prefetch(
                "user_set",
                queryset=User.objects.filter(kind=User.Kind.USER).only(
                    "id", "username", "display_name", "kind"
                ),
            ),
            Prefetch("member_groups", queryset=GroupNesting.objects.select_related("child")),
        )
    return queryset


M = TypeVar("M", bound=Model)


@dataclass
class Page(Generic[M]):
    """One page of a list: the total matching and the items from start_index (1-based)."""

    total: int
    start_index: int
    items: list[M]


def _page(queryset: QuerySet[M], start_index: int, count: int) -> Page[M]:
    start_index = max(1, start_index)
    count = min(max(0, count), MAX_RESULTS)
    total = queryset.count()
    offset = start_index - 1
    items = list(queryset.order_by("pk")[offset : offset + count]) if count else []
    return Page(total=total, start_index=start_index, items=items)


@governed("scim.user.list", atomic=False)
def scim_user_list(
    *,
    actor: Actor,
    filter_text: str | None = None,
    start_index: int = 1,
    count: int = DEFAULT_COUNT,
) -> Page[User]:
    """Users matching a SCIM filter, a page at a time (ordered by id, so pages are stable)."""
    scim_require_admin(actor, write=False, securable_type="user")
    queryset = scim_users_queryset()
    if filter_text is not None:
        queryset = queryset.filter(USER_FILTER.q(filter_text))
    return _page(queryset, start_index, count)


@governed("scim.user.read", atomic=False)
def scim_user_get(*, actor: Actor, user_id: str) -> User:
    """One SCIM user by id; a service principal or an unknown id is 404."""
    scim_require_admin(actor, write=False, securable_type="user")
    pk = parse_user_id(user_id)
    user = scim_users_queryset().filter(pk=pk).first() if pk is not None else None
    if user is None:
        raise ResourceNotFound(f"User {str(user_id)[:40]} not found.")
    return user


@governed("scim.group.list", atomic=False)
def scim_group_list(
    *,
    actor: Actor,
    filter_text: str | None = None,
    start_index: int = 1,
    count: int = DEFAULT_COUNT,
    with_members: bool = True,
) -> Page[Group]:
    """Groups matching a SCIM filter, a page at a time (ordered by id)."""
    scim_require_admin(actor, write=False, securable_type="group")
    queryset = scim_groups_queryset(with_members=with_members)
    if filter_text is not None:
        queryset = queryset.filter(GROUP_FILTER.q(filter_text))
    return _page(queryset, start_index, count)


@governed("scim.group.read", atomic=False)
def scim_group_get(*, actor: Actor, group_id: str, with_members: bool = True) -> Group:
    """One group by SCIM id ("g7"); an unknown id is 404."""
    scim_require_admin(actor, write=False, securable_type="group")
    pk = parse_group_id(group_id)
    queryset = scim_groups_queryset(with_members=with_members)
    group = queryset.filter(pk=pk).first() if pk is not None else None
    if group is None:
        raise ResourceNotFound(f"Group {str(group_id)[:40]} not found.")
    return group
