"""accounts.sql: the one group-closure statement, as authorization (up from a user's or a
group's groups), token authentication (the same, inside the token's statement) and approver
e-mails (down from a policy's groups) use it. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import random

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import sql as accounts_sql
from accounts.models import GroupNesting, User

pytestmark = pytest.mark.django_db


def groups(*names: str) -> dict[str, Group]:
    return {name: Group.objects.create(name=name) for name in names}


def nest(child: Group, parent: Group) -> None:
    """`child` is a member of `parent`."""
    GroupNesting.objects.create(child=child, parent=parent)


def user_in(*member_of: Group, name: str = "u") -> User:
    user = User.objects.create_user(username=name, password="x-unused-pw")
    user.groups.add(*member_of)
    return user


def reference(seeds: set[int], edges: list[tuple[int, int]], *, up: bool) -> set[int]:
    """The closure by a plain graph walk (edges are (child, parent))."""
    step: dict[int, set[int]] = {}
    for child, parent in edges:
        a, b = (child, parent) if up else (parent, child)
        step.setdefault(a, set()).add(b)
    seen, todo = set(seeds), list(seeds)
    while todo:
        for nxt in step.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def token_closure(user: User) -> dict[int, str]:
    """The closure the token statement carries: its JSON subquery for this user."""
    sql = accounts_sql.user_closure_json_sql(connection.vendor, "%s")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", [user.pk])
        raw = cursor.fetchone()[0]
    pairs = json.loads(raw) if isinstance(raw, str) else (raw or [])
    return {int(gid): name for gid, name in pairs}


def test_nested_groups_up_from_a_user_and_down_from_a_group():
    g = groups("top", "mid", "leaf", "other", "below_leaf")
    nest(g["mid"], g["top"])
    nest(g["leaf"], g["mid"])
    nest(g["below_leaf"], g["leaf"])
    user = user_in(g["leaf"])
    up = {g[n].pk: n for n in ("leaf", "mid", "top")}
    assert accounts_sql.group_closure(user_id=user.pk) == up
    assert token_closure(user) == up
    assert accounts_sql.group_closure(group_ids=[g["mid"].pk]) == {
        g["mid"].pk: "mid",
        g["top"].pk: "top",
    }
    assert accounts_sql.group_members_closure([g["mid"].pk]) == {
        g[n].pk for n in ("mid", "leaf", "below_leaf")
    }
    # a user's groups and given groups together, each walked up
    assert accounts_sql.group_closure(user_id=user.pk, group_ids=[g["other"].pk]) == {
        **up,
        g["other"].pk: "other",
    }


def test_a_cycle_ends_the_walk():
    g = groups("a", "b", "c")
    nest(g["a"], g["b"])
    nest(g["b"], g["c"])
    nest(g["c"], g["a"])  # a in b in c in a
    everyone = {g[n].pk for n in "abc"}
    user = user_in(g["b"])
    assert set(accounts_sql.group_closure(user_id=user.pk)) == everyone
    assert set(token_closure(user)) == everyone
    assert accounts_sql.group_members_closure([g["a"].pk]) == everyone


def test_a_user_in_no_group_and_no_seeds():
    groups("unrelated")
    user = user_in()
    with CaptureQueriesContext(connection) as queries:
        assert accounts_sql.group_closure(user_id=user.pk) == {}
    assert len(queries) == 1
    assert token_closure(user) == {}
    with CaptureQueriesContext(connection) as queries:
        assert accounts_sql.group_closure() == {}
        assert accounts_sql.group_closure(group_ids=[]) == {}
        assert accounts_sql.group_members_closure([]) == set()
    assert len(queries) == 0  # nothing to ask
    assert accounts_sql.group_members_closure([10**9]) == set()  # no such group


def test_many_groups_in_one_query_match_a_graph_walk():
    rng = random.Random(12)
    made = Group.objects.bulk_create([Group(name=f"g{i:03}") for i in range(300)])
    ids = [g.pk for g in made]
    # a chain 60 deep, and 400 random links (cycles included)
    edges = {(ids[i + 1], ids[i]) for i in range(60)}
    edges |= {(a, b) for a, b in (rng.sample(ids, 2) for _ in range(400))}
    GroupNesting.objects.bulk_create([GroupNesting(child_id=c, parent_id=p) for c, p in edges])
    names = {g.pk: g.name for g in made}
    direct = rng.sample(ids, 120)
    user = user_in(*Group.objects.filter(pk__in=direct))
    seeds = rng.sample(ids, 150)
    edge_list = sorted(edges)
    with CaptureQueriesContext(connection) as queries:
        up = accounts_sql.group_closure(user_id=user.pk)
        up_groups = accounts_sql.group_closure(group_ids=seeds)
        down = accounts_sql.group_members_closure(seeds)
    assert len(queries) == 3
    assert up == {pk: names[pk] for pk in reference(set(direct), edge_list, up=True)}
    assert token_closure(user) == up
    assert set(up_groups) == reference(set(seeds), edge_list, up=True)
    assert down == reference(set(seeds), edge_list, up=False)
    deep = accounts_sql.group_closure(group_ids=[ids[60]])
    assert set(ids[:61]) <= set(deep)  # the whole chain, 60 levels up


def test_callers_use_the_one_statement():
    """Authorization, token authentication and approver e-mails all walk groups through
    accounts.sql (no second recursive statement of their own)."""
    from accounts import authentication, principals
    from registry import notifications

    assert principals.group_closure is accounts_sql.group_closure
    assert notifications.group_descendants is accounts_sql.group_members_closure
    token_sql, _ = authentication._token_sql(connection.vendor)
    assert accounts_sql.user_closure_json_sql(connection.vendor, "u.id") in token_sql
