"""The accounts app's hand-written statement: the group closure, the one recursive walk of
group nesting in the project (authorization, token authentication and approver e-mails all
use it), with table and column names from the models' `_meta`.

`GroupNesting(parent, child)` makes the child's members members of the parent. Walking *up*
from a user's groups gives every group whose grants the user holds; walking *down* from a
group gives every group whose members belong to it. UNION (not UNION ALL) ends the walk on a
cycle.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group
from django.db import connection

from accounts.models import GroupNesting, User
from core.rows import any_of, column

UP, DOWN = "up", "down"

_MEMBERSHIP = User.groups.through._meta
_NESTING = GroupNesting._meta
_GROUP = Group._meta


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def closure_cte(seeds: str, direction: str = UP, name: str = "closure") -> str:
    """`WITH RECURSIVE <name>(id) AS (...)`: the groups `seeds` (a SELECT of group ids)
    selects and every group reachable from them, going UP (to the groups they are members
    of) or DOWN (to the groups that are members of them)."""
    parent, child = (_q(column(GroupNesting, f)) for f in ("parent", "child"))
    step, via = (parent, child) if direction == UP else (child, parent)
    return (
        f"WITH RECURSIVE {name}(id) AS ({seeds} "
        f"UNION SELECT n.{step} FROM {_q(_NESTING.db_table)} n "
        f"JOIN {name} ON n.{via} = {name}.id)"
    )


def user_groups_sql(user_id: str) -> str:
    """A SELECT of the ids of the groups a user (an SQL expression: `%s`, `u.id`) is directly
    in: the seeds of the user's closure."""
    group = _q(_MEMBERSHIP.get_field("group").column)
    user = _q(_MEMBERSHIP.get_field("user").column)
    return f"SELECT {group} FROM {_q(_MEMBERSHIP.db_table)} WHERE {user} = {user_id}"


def _groups_sql(vendor: str, n: int) -> str:
    """A SELECT of the ids of n given groups that exist."""
    pk = _q(column(Group, _GROUP.pk.name))
    return f"SELECT {pk} FROM {_q(_GROUP.db_table)} WHERE {pk} {any_of(vendor, n)}"


@functools.cache
def _closure_sql(vendor: str, with_user: bool, n_groups: int, direction: str) -> str:
    seeds = [user_groups_sql("%s")] if with_user else []
    if n_groups:
        seeds.append(_groups_sql(vendor, n_groups))
    pk, name = _q(column(Group, _GROUP.pk.name)), _q(column(Group, "name"))
    return (
        f"{closure_cte(' UNION '.join(seeds), direction)} "
        f"SELECT g.{pk}, g.{name} FROM closure JOIN {_q(_GROUP.db_table)} g ON g.{pk} = closure.id"
    )


def group_closure(
    *, user_id: int | None = None, group_ids: Iterable[int] = (), direction: str = UP
) -> dict[int, str]:
    """Every group reachable (UP by default: whose grants they hold) from a user's groups and
    from `group_ids`, those included, with names ({id: name}); one query."""
    ids = sorted({int(i) for i in group_ids})
    if user_id is None and not ids:
        return {}
    vendor = connection.vendor
    # On PostgreSQL the ids are one array (one statement text for any number of them).
    n = (1 if ids else 0) if vendor == "postgresql" else len(ids)
    params: list[Any] = [user_id] if user_id is not None else []
    if ids:
        params += [ids] if vendor == "postgresql" else ids
    with connection.cursor() as cursor:
        cursor.execute(_closure_sql(vendor, user_id is not None, n, direction), params)
        return {row[0]: row[1] for row in cursor.fetchall()}


def user_closure_json_sql(vendor: str, user_id: str) -> str:
    """A scalar subquery: a user's group closure (UP) as a JSON array of [id, name] pairs
    (NULL or [] for none); `user_id` is an SQL expression, e.g. a column of the outer query,
    so the closure rides along in a statement that loads the user."""
    pk, name = _q(column(Group, _GROUP.pk.name)), _q(column(Group, "name"))
    pair, agg = (
        (f"json_build_array(g.{pk}, g.{name})", "json_agg")
        if vendor == "postgresql"
        else (f"json_array(g.{pk}, g.{name})", "json_group_array")
    )
    return (
        f"({closure_cte(user_groups_sql(user_id))} SELECT {agg}({pair}) FROM closure "
        f"JOIN {_q(_GROUP.db_table)} g ON g.{pk} = closure.id)"
    )


def group_members_closure(group_ids: Iterable[int]) -> set[int]:
    """The groups given (that exist) and every group nested in them at any depth: the groups
    whose members are members of them; one query."""
    return set(group_closure(group_ids=group_ids, direction=DOWN))
