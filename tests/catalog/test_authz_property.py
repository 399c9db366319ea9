"""Property: catalog.authz agrees with a brute-force reference of the six rules on random worlds.

Hypothesis draws a small tree (catalogs, schemas, models), users and groups with random acyclic
nesting, random owners (users or groups), random grants (django-guardian's assign_perm, as the
services store them), random superusers, inactive users and sometimes an admin group. For every
user, every securable and every privilege, `check` (full and read-only token) and `can_see`
must match the reference, `visible_catalogs/schemas/models` must list exactly the visible
objects, and `explain` must name the privileges held (or the first missing gate).

The reference below works on the drawn description only (no database, no authz import); its
privilege tables are transcribed from DESIGN.md, not from catalog.privileges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from guardian.shortcuts import assign_perm
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from accounts.models import ApiToken, GroupNesting, User
from catalog import authz
from catalog.models import Catalog, Metastore, Schema
from catalog.privileges import Privilege
from core.actor import Actor
from registry.models import RegisteredModel

# --- the reference: DESIGN.md's vocabulary and six rules, written out independently ---------

MODEL_LEVEL = {"EXECUTE", "MODIFY", "APPLY TAG", "BROWSE", "MANAGE", "ALL PRIVILEGES"}
SCHEMA_LEVEL = MODEL_LEVEL | {"USE SCHEMA", "CREATE MODEL"}
CATALOG_LEVEL = SCHEMA_LEVEL | {"USE CATALOG", "CREATE SCHEMA"}
METASTORE_LEVEL = {"CREATE CATALOG", "MANAGE"}
LEVEL = {
    "metastore": METASTORE_LEVEL,
    "catalog": CATALOG_LEVEL,
    "schema": SCHEMA_LEVEL,
    "model": MODEL_LEVEL,
}
READ = {"USE CATALOG", "USE SCHEMA", "EXECUTE", "BROWSE"}
EVERY = sorted(CATALOG_LEVEL | METASTORE_LEVEL | {"CREATE CATALOG"})
GATE = {"catalog": "USE CATALOG", "schema": "USE SCHEMA"}


@dataclass
class Node:
    kind: str  # metastore, catalog, schema, model
    parent: int | None  # index of the parent node (None for metastore and catalogs)
    owner: tuple[str, int] | None = None  # ("user", i) or ("group", j)


@dataclass
class World:
    nodes: list[Node]
    n_groups: int
    nesting: list[tuple[int, int]]  # (child, parent): members of child hold what parent holds
    users: list[dict]  # {"groups": [...], "superuser": bool, "active": bool}
    admin_group: int | None
    grants: list[tuple[int, tuple[str, int], str]] = field(default_factory=list)


def ref_groups(world: World, u: int) -> set[int]:
    """Rule 5: the user's groups and, transitively, every group those are nested in."""
    reached, todo = set(), list(world.users[u]["groups"])
    while todo:
        g = todo.pop()
        if g in reached:
            continue
        reached.add(g)
        todo.extend(parent for child, parent in world.nesting if child == g)
    return reached


def ref_is_admin(world: World, u: int) -> bool:
    """Rule 1: superusers and members of the admin group (however deep) may do everything."""
    user = world.users[u]
    if not user["active"]:
        return False
    return user["superuser"] or world.admin_group in ref_groups(world, u)


def ref_lineage(world: World, n: int) -> list[int]:
    """The node and its ancestors, from the catalog down (the metastore stands alone)."""
    out = [n]
    while world.nodes[out[0]].parent is not None:
        out.insert(0, world.nodes[out[0]].parent)
    return out


def ref_direct(world: World, u: int, n: int) -> set[str]:
    """What the user was granted on node n (directly or through a group), or owns there."""
    mine = {("user", u)} | {("group", g) for g in ref_groups(world, u)}
    out = {priv for node, who, priv in world.grants if node == n and who in mine}
    if world.nodes[n].owner in mine:  # rule 4
        out.add("ALL PRIVILEGES")
    return out


def ref_held(world: World, u: int, n: int) -> set[str]:
    """Rule 2 (grants flow down) and ALL PRIVILEGES expanding to the node's level."""
    if not world.users[u]["active"]:
        return set()
    level = LEVEL[world.nodes[n].kind]
    if ref_is_admin(world, u):
        return set(level)
    raw = set().union(*(ref_direct(world, u, a) for a in ref_lineage(world, n)))
    return set(level) if "ALL PRIVILEGES" in raw else raw & level


def ref_gates(world: World, u: int, nodes: list[int]) -> bool:
    """Rule 3: USE CATALOG held at each catalog, USE SCHEMA at each schema among `nodes`."""
    return all(
        GATE[world.nodes[a].kind] in ref_held(world, u, a)
        for a in nodes
        if world.nodes[a].kind in GATE
    )


def ref_first_missing_gate(world: World, u: int, n: int) -> int | None:
    for a in ref_lineage(world, n):
        kind = world.nodes[a].kind
        if kind in GATE and GATE[kind] not in ref_held(world, u, a):
            return a
    return None


def ref_check(world: World, u: int, priv: str, n: int, read_only: bool) -> bool:
    if read_only and priv not in READ:
        return False
    held = ref_held(world, u, n)
    if ref_is_admin(world, u):
        return priv in held
    return priv in held and ref_gates(world, u, ref_lineage(world, n))


def ref_visible(world: World, u: int, n: int) -> bool:
    """Rule 6: the gates strictly above pass and something at the node's level is held."""
    if not world.users[u]["active"]:
        return False
    if world.nodes[n].kind == "metastore" or ref_is_admin(world, u):
        return True
    return ref_gates(world, u, ref_lineage(world, n)[:-1]) and bool(ref_held(world, u, n))


# --- random worlds ---------------------------------------------------------------------------

USE_BIAS = ["USE CATALOG", "USE SCHEMA"]  # gates are drawn more often, to open them sometimes


@st.composite
def worlds(draw) -> World:
    nodes = [Node("metastore", None)]
    for _ in range(draw(st.integers(1, 2))):
        nodes.append(Node("catalog", None))
        c = len(nodes) - 1
        for _ in range(draw(st.integers(1, 2))):
            nodes.append(Node("schema", c))
            s = len(nodes) - 1
            for _ in range(draw(st.integers(0, 2))):
                nodes.append(Node("model", s))
    n_users = draw(st.integers(1, 3))
    n_groups = draw(st.sampled_from([3, 2, 1, 0]))
    pairs = [(child, parent) for parent in range(n_groups) for child in range(parent)]
    nesting = (
        draw(st.lists(st.sampled_from(pairs), unique=True, min_size=1, max_size=3)) if pairs else []
    )
    group_ids = st.integers(0, n_groups - 1) if n_groups else st.nothing()
    users = [
        {
            "groups": sorted(set(draw(st.lists(group_ids, min_size=1, max_size=2))))
            if n_groups and draw(st.integers(0, 3)) != 3
            else [],
            "superuser": draw(st.integers(0, 7)) == 7,
            "active": draw(st.integers(0, 7)) != 7,
        }
        for _ in range(n_users)
    ]
    admin_group = draw(group_ids) if n_groups and draw(st.integers(0, 3)) == 3 else None
    principal = st.sampled_from(
        [("user", i) for i in range(n_users)] + [("group", j) for j in range(n_groups)]
    )
    for node in nodes[1:]:  # owners are rarer than grants: one owner opens a whole subtree
        node.owner = draw(principal) if draw(st.integers(0, 3)) == 3 else None
    grants = []
    for n, node in enumerate(nodes):  # each USE gate is opened to someone, often
        if node.kind in GATE and draw(st.integers(0, 2)) < 2:
            grants.append((n, draw(principal), GATE[node.kind]))
    for _ in range(draw(st.integers(0, 10))):
        n = draw(st.integers(0, len(nodes) - 1))
        kind = nodes[n].kind
        choices = sorted(LEVEL[kind]) + [p for p in USE_BIAS if p in LEVEL[kind]] * 2
        grants.append((n, draw(principal), draw(st.sampled_from(choices))))
    return World(nodes, n_groups, nesting, users, admin_group, grants)


def materialize(world: World):
    """Store the world with the real models and guardian; returns (users, securables)."""
    groups = [
        Group.objects.create(
            name=settings.STEWARD_ADMIN_GROUP if j == world.admin_group else f"g{j}"
        )
        for j in range(world.n_groups)
    ]
    for child, parent in world.nesting:
        GroupNesting.objects.create(parent=groups[parent], child=groups[child])
    users = []
    for i, spec in enumerate(world.users):
        user = User.objects.create(
            username=f"u{i}", is_superuser=spec["superuser"], is_active=spec["active"]
        )
        user.groups.set([groups[g] for g in spec["groups"]])
        users.append(user)

    def owner(node: Node) -> dict:
        if node.owner is None:
            return {}
        kind, idx = node.owner
        return {"owner_user": users[idx]} if kind == "user" else {"owner_group": groups[idx]}

    objs: list = []
    for i, node in enumerate(world.nodes):
        if node.kind == "metastore":
            objs.append(Metastore.objects.get_or_create(name=settings.STEWARD_METASTORE_NAME)[0])
        elif node.kind == "catalog":
            objs.append(Catalog.objects.create(name=f"c{i}", **owner(node)))
        elif node.kind == "schema":
            parent = objs[node.parent]
            objs.append(
                Schema.objects.create(
                    catalog=parent, name=f"s{i}", full_name=f"{parent.name}.s{i}", **owner(node)
                )
            )
        else:
            parent = objs[node.parent]
            objs.append(
                RegisteredModel.objects.create(
                    schema=parent, name=f"m{i}", full_name=f"{parent.full_name}.m{i}", **owner(node)
                )
            )
    for n, (kind, idx), priv in world.grants:
        who = users[idx] if kind == "user" else groups[idx]
        assign_perm(Privilege(priv).codename, who, objs[n])
    return users, objs


def reload(objs: list) -> list:
    """Fresh instances from the database (owners and parents as stored, not as drawn)."""
    out = []
    for obj in objs:
        manager = type(obj).objects
        if isinstance(obj, RegisteredModel):
            manager = manager.select_related("schema__catalog")
        elif isinstance(obj, Schema):
            manager = manager.select_related("catalog")
        out.append(manager.get(pk=obj.pk))
    return out


class _Rollback(Exception):
    pass


def compare(world: World) -> None:
    users, objs = materialize(world)
    objs = reload(objs)
    kinds = {"catalog": Catalog, "schema": Schema, "model": RegisteredModel}
    for u, user in enumerate(users):
        user = User.objects.get(pk=user.pk)
        full = Actor.system(user)
        read = Actor(user=user, auth_method="token", token=ApiToken(user=user, scope="read"))
        for n, obj in enumerate(objs):
            where = (u, n, world.nodes[n].kind)
            for priv in EVERY:
                p = Privilege(priv)
                assert authz.check(full, p, obj) == ref_check(world, u, priv, n, False), (
                    where,
                    priv,
                )
                assert authz.check(read, p, obj) == ref_check(world, u, priv, n, True), (
                    where,
                    priv,
                    "read-only",
                )
            assert authz.can_see(full, obj) == ref_visible(world, u, n), where
            if world.nodes[n].kind == "metastore" or not world.users[u]["active"]:
                continue
            # explain: what is held and why, or the first gate that is missing.
            sources, missing = authz.explain(authz.principals_for_user(user), obj)
            gate = ref_first_missing_gate(world, u, n)
            if ref_is_admin(world, u) or gate is None:
                assert missing == "", where
                assert {s.privilege.value for s in sources} == ref_held(world, u, n), where
            else:
                assert missing.endswith(f" {objs[gate].full_name}"), (where, missing)
        expected = {
            kind: {
                objs[n].pk
                for n, node in enumerate(world.nodes)
                if node.kind == kind and ref_visible(world, u, n)
            }
            for kind in kinds
        }
        listed = {
            "catalog": set(authz.visible_catalogs(Actor.system(user)).values_list("pk", flat=True)),
            "schema": set(authz.visible_schemas(Actor.system(user)).values_list("pk", flat=True)),
            "model": set(authz.visible_models(Actor.system(user)).values_list("pk", flat=True)),
        }
        assert listed == expected, u
        if not ref_is_admin(world, u):
            for kind in kinds:  # coverage of the interesting cases (--hypothesis-show-statistics)
                event(f"non-admin sees some {kind}: {bool(expected[kind])}")
        # Narrowed querysets (as the list selectors pass them) are filtered the same way.
        for catalog in (o for o in objs if isinstance(o, Catalog)):
            narrowed = RegisteredModel.objects.filter(schema__catalog=catalog)
            got = set(
                authz.visible_models(Actor.system(user), narrowed).values_list("pk", flat=True)
            )
            assert got == {
                pk for pk in expected["model"] if pk in set(narrowed.values_list("pk", flat=True))
            }


@pytest.mark.django_db
@hsettings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_authz_matches_reference_of_the_six_rules(world):
    # One savepoint per example, always rolled back: every example starts from an empty tree.
    try:
        with transaction.atomic():
            compare(world)
            raise _Rollback
    except _Rollback:
        pass
