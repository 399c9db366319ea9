"""Visibility filtering costs a constant number of queries whatever the size of the tree.

One tree pattern (every way a non-admin can come to see something: catalog grants, schema
grants, model grants, group grants through nesting, ownership of a catalog, schema or model,
plus hidden branches) is built once, measured, then grown to five times its size and measured
again. The number of queries must be the same, and at most a fixed bound, for the list
selectors, the UC API list endpoints and a single check().
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import GroupNesting
from catalog import authz
from catalog.privileges import Privilege
from catalog.selectors import catalog_list, model_lookup, schema_list
from catalog.services import catalog_update, schema_update
from core.actor import Actor
from registry.selectors import registered_model_list
from registry.services import registered_model_update

UC = "/api/2.1/unity-catalog"
COPIES_SMALL, COPIES_LARGE = 1, 5

# Fixed bounds (today's exact costs: a regression to N+1 would break them at once).
MAX_MODEL_LIST = 5  # principals, catalog grants+ownerships, schema grants+ownerships (with
#                     their catalogs), the page's keys, the page's rows
MAX_CATALOG_LIST = 2  # principals, the page
MAX_SCHEMA_LIST = 5  # lookup, principals, grants on the catalog (require_visible), catalog
#                      grants+ownerships, the page
MAX_CHECK = 4  # principals, grants on the catalog, the schema, the model
MAX_API_EXTRA = 1  # the bearer token lookup (last_used_at was just refreshed by a warm-up call)

pytestmark = pytest.mark.django_db


class World:
    """The pattern below, repeated `copies` times (catalogs f, g, h, o numbered per copy; the
    catalog `shared` gains one schema per copy so that a single schema list grows too)."""

    def __init__(self, make_user, tree, grant, admin_actor):
        self.tree, self.grant, self.admin = tree, grant, admin_actor
        self.alice = make_user("alice", groups=("sub",))
        GroupNesting.objects.create(
            parent=Group.objects.create(name="team"), child=Group.objects.get(name="sub")
        )
        self.copies = 0
        tree("shared")
        grant("catalog", "shared", "alice", "USE CATALOG")

    def grow(self, copies: int) -> None:
        tree, grant = self.tree, self.grant
        for i in range(self.copies, copies):
            # Full catalog: everything in it is visible.
            tree(f"f{i}.a.m1", f"f{i}.a.m2", f"f{i}.b.m1")
            grant("catalog", f"f{i}", "alice", "USE CATALOG", "USE SCHEMA", "EXECUTE")
            # Gated catalog: USE SCHEMA through a nested group; a model grant, a schema grant, an
            # owned schema, an owned model; one model and one schema stay hidden.
            tree(f"g{i}.a.m1", f"g{i}.a.m2", f"g{i}.a.m3", f"g{i}.b.m1", f"g{i}.c.m1")
            tree(f"g{i}.hid.m1")
            grant("catalog", f"g{i}", "alice", "USE CATALOG")
            grant("catalog", f"g{i}", "team", "USE SCHEMA")
            grant("registered_model", f"g{i}.a.m1", "alice", "EXECUTE")
            registered_model_update(actor=self.admin, full_name=f"g{i}.a.m3", owner="alice")
            grant("schema", f"g{i}.b", "team", "MODIFY")
            schema_update(actor=self.admin, full_name=f"g{i}.c", owner="alice")
            # Hidden catalog: grants below it, but no USE CATALOG.
            tree(f"h{i}.a.m1")
            grant("schema", f"h{i}.a", "alice", "USE SCHEMA", "EXECUTE")
            grant("registered_model", f"h{i}.a.m1", "alice", "EXECUTE")
            # Owned catalog.
            tree(f"o{i}.a.m1")
            catalog_update(actor=self.admin, name=f"o{i}", owner="team")
            # A schema of the shared catalog: USE SCHEMA, one owned model, one hidden.
            tree(f"shared.s{i}.mine", f"shared.s{i}.other", f"shared.z{i}.m")
            grant("schema", f"shared.s{i}", "alice", "USE SCHEMA")
            registered_model_update(actor=self.admin, full_name=f"shared.s{i}.mine", owner="alice")
        self.copies = copies

    def actor(self) -> Actor:
        """A fresh actor, as every request gets (its per-request cache starts empty)."""
        return Actor.system(self.alice)


@pytest.fixture
def world(make_user, tree, grant, admin_actor) -> World:
    return World(make_user, tree, grant, admin_actor)


def count_queries(fn) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as ctx:
        result = fn()
    return len(ctx.captured_queries), result


def at_both_sizes(world: World, fn) -> list[tuple[int, object]]:
    """Measure fn on the small tree, grow it five times, measure again."""
    world.grow(COPIES_SMALL)
    small = count_queries(fn)
    world.grow(COPIES_LARGE)
    large = count_queries(fn)
    return [small, large]


# --- models -----------------------------------------------------------------------------------


def test_model_list_selector_costs_constant_queries(world, django_assert_max_num_queries):
    def run():
        items, _ = registered_model_list(actor=world.actor(), max_results=1000)
        return sorted(m.full_name for m in items)

    (n_small, small), (n_large, large) = at_both_sizes(world, run)
    assert "g0.a.m1" in small and "g0.a.m3" in small and "g0.c.m1" in small
    assert "g0.a.m2" not in small and "g0.hid.m1" not in small and "h0.a.m1" not in small
    assert len(large) == 5 * len(small)
    assert n_small == n_large <= MAX_MODEL_LIST
    with django_assert_max_num_queries(MAX_MODEL_LIST):
        registered_model_list(actor=world.actor(), max_results=1000)
    # Narrowed to one catalog (+ its lookup and visibility check), and paged.
    with django_assert_max_num_queries(MAX_MODEL_LIST + 2):
        registered_model_list(actor=world.actor(), catalog_name="shared", max_results=2)


def test_model_list_api_costs_constant_queries(world, api_as, django_assert_max_num_queries):
    api = api_as(world.alice)

    def run():
        api.get(f"{UC}/models?max_results=1")  # warm-up: refreshes the token's last_used_at
        with CaptureQueriesContext(connection) as ctx:
            body = api.get(f"{UC}/models?max_results=1000").json()
        return len(ctx.captured_queries), [m["full_name"] for m in body["registered_models"]]

    world.grow(COPIES_SMALL)
    n_small, small = run()
    world.grow(COPIES_LARGE)
    n_large, large = run()
    assert len(large) == 5 * len(small) > 0
    assert n_small == n_large <= MAX_MODEL_LIST + MAX_API_EXTRA
    # Narrowed to one catalog: + the catalog lookup and its visibility check.
    with django_assert_max_num_queries(MAX_MODEL_LIST + 2 + MAX_API_EXTRA):
        api.get(f"{UC}/models?catalog_name=shared&max_results=1000")


def test_visible_models_alone_is_one_query_after_a_few_small_ones(world):
    world.grow(COPIES_LARGE)
    actor = world.actor()
    n_prepare, qs = count_queries(lambda: authz.visible_models(actor))
    n_evaluate, rows = count_queries(lambda: list(qs))
    assert n_prepare <= MAX_MODEL_LIST - 1 and n_evaluate == 1 and rows


# --- catalogs and schemas ---------------------------------------------------------------------


def test_catalog_list_costs_constant_queries(world, api_as, django_assert_max_num_queries):
    def run():
        items, _ = catalog_list(actor=world.actor(), max_results=1000)
        return [c.name for c in items]

    (n_small, small), (n_large, large) = at_both_sizes(world, run)
    assert len(large) == 1 + 3 * COPIES_LARGE and "h0" not in large  # f, g, o and shared
    assert len(small) == 1 + 3 * COPIES_SMALL
    assert n_small == n_large <= MAX_CATALOG_LIST
    api = api_as(world.alice)
    api.get(f"{UC}/catalogs")
    with django_assert_max_num_queries(MAX_CATALOG_LIST + MAX_API_EXTRA):
        body = api.get(f"{UC}/catalogs?max_results=1000").json()
    assert [c["name"] for c in body["catalogs"]] == sorted(large)


def test_schema_list_costs_constant_queries(world, api_as, django_assert_max_num_queries):
    def run():
        items, _ = schema_list(actor=world.actor(), catalog_name="shared", max_results=1000)
        return [s.full_name for s in items]

    (n_small, small), (n_large, large) = at_both_sizes(world, run)
    assert small == ["shared.s0"]
    assert large == [f"shared.s{i}" for i in range(COPIES_LARGE)]  # never shared.z*
    assert n_small == n_large <= MAX_SCHEMA_LIST
    api = api_as(world.alice)
    for catalog in ("shared", "g0", "f4"):
        api.get(f"{UC}/schemas?catalog_name={catalog}")
        with django_assert_max_num_queries(MAX_SCHEMA_LIST + MAX_API_EXTRA):
            assert api.get(f"{UC}/schemas?catalog_name={catalog}").status_code == 200


# --- a single check ---------------------------------------------------------------------------


def test_single_check_costs_constant_queries(world, django_assert_max_num_queries):
    def run():
        model = model_lookup("g0.a.m1")  # loaded with its schema and catalog, as services do
        actor = world.actor()
        with CaptureQueriesContext(connection) as ctx:
            allowed = authz.check(actor, Privilege.EXECUTE, model)
            denied = authz.check(actor, Privilege.MANAGE, model)  # same request: cached
        return len(ctx.captured_queries), (allowed, denied)

    world.grow(COPIES_SMALL)
    n_small, small = run()
    world.grow(COPIES_LARGE)
    n_large, large = run()
    assert small == large == (True, False)
    assert n_small == n_large <= MAX_CHECK
    hidden = model_lookup("h4.a.m1")
    with django_assert_max_num_queries(MAX_CHECK):
        assert not authz.can_see(world.actor(), hidden)
