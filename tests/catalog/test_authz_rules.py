"""The six privilege rules of DESIGN.md ("Securables and privileges"), each with its own tests,
and SECURITY_CASES 10-12 and 15: USE gates, weak holders, what lists and page tokens reveal,
grants hammered concurrently with checks.

Unit-level tests call catalog.authz and the services directly; the "door" tests go through the
Unity Catalog API (/api/2.1/unity-catalog) with bearer tokens, one fresh actor per request.
"""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, Group
from django.db import connection

from accounts.models import ApiToken, GroupNesting, User
from audit.models import AuditEvent
from catalog import authz
from catalog.models import Catalog, Schema
from catalog.privileges import APPLICABLE, Privilege, SecurableType
from catalog.selectors import catalog_lookup, metastore, model_lookup, schema_lookup
from catalog.services import (
    catalog_create,
    catalog_update,
    permissions_update,
    schema_create,
    schema_update,
)
from core.actor import Actor
from core.errors import InvalidParameter, PermissionDenied
from core.pagination import encode_token
from registry.models import RegisteredModel
from registry.services import registered_model_update

UC = "/api/2.1/unity-catalog"
P = Privilege
MODEL_LEVEL = set(APPLICABLE[SecurableType.REGISTERED_MODEL])
SCHEMA_LEVEL = set(APPLICABLE[SecurableType.SCHEMA])
CATALOG_LEVEL = set(APPLICABLE[SecurableType.CATALOG])

pytestmark = pytest.mark.django_db


# --- helpers ---------------------------------------------------------------------------------


def actor(user: User, scope: str = "all") -> Actor:
    """A fresh actor (a fresh request): a read-scoped one carries an (unsaved) read token."""
    if scope == "read":
        return Actor(user=user, auth_method="token", token=ApiToken(user=user, scope="read"))
    return Actor.system(user)


def held(user: User, securable, scope: str = "all") -> set[Privilege]:
    a = actor(user, scope)
    return {p for p in Privilege if authz.check(a, p, securable)}


def sees(user: User, securable) -> bool:
    return authz.can_see(actor(user), securable)


def cat(name="c"):
    return catalog_lookup(name)


def sch(full_name="c.s"):
    return schema_lookup(full_name)


def mod(full_name="c.s.m"):
    return model_lookup(full_name)


def visible(user: User) -> tuple[list[str], list[str], list[str]]:
    a = actor(user)
    return (
        sorted(authz.visible_catalogs(a).values_list("name", flat=True)),
        sorted(authz.visible_schemas(a).values_list("full_name", flat=True)),
        sorted(authz.visible_models(a).values_list("full_name", flat=True)),
    )


def group(name: str) -> Group:
    return Group.objects.get_or_create(name=name)[0]


def nest(child: str, parent: str) -> None:
    """Members of `child` hold what `parent` holds."""
    GroupNesting.objects.create(parent=group(parent), child=group(child))


def revoke(admin_actor, securable_type, full_name, principal, *privileges):
    permissions_update(
        actor=admin_actor,
        securable_type=securable_type,
        full_name=full_name,
        changes=[{"principal": principal, "add": [], "remove": list(privileges)}],
    )


def error(response) -> tuple[int, str]:
    return response.status_code, response.json().get("error_code")


def snapshot() -> dict:
    """Everything a denied write must leave untouched."""
    from catalog.selectors import assignments_of

    objects = [*Catalog.objects.all(), *Schema.objects.all(), *RegisteredModel.objects.all()]
    return {
        o.full_name: (
            type(o).__name__,
            o.comment,
            o.properties,
            o.owner_user_id,
            o.owner_group_id,
            o.updated_at,
            o.updated_by,
            [(a.principal, a.principal_type, a.privileges) for a in assignments_of(o)],
        )
        for o in objects
    }


# --- rule 1: deny by default; metastore admins may do everything -----------------------------


def test_deny_by_default(make_user, tree):
    tree("c.s.m")
    alice = make_user("alice")
    for securable in (metastore(), cat(), sch(), mod()):
        assert held(alice, securable) == set(), securable
    assert sees(alice, metastore())  # any authenticated principal sees the metastore itself
    assert not any(sees(alice, s) for s in (cat(), sch(), mod()))
    assert visible(alice) == ([], [], [])


def test_deny_by_default_through_the_api(make_user, tree, api_as):
    tree("c.s.m")
    api = api_as(make_user("alice"))
    assert api.get(f"{UC}/catalogs").json()["catalogs"] == []
    assert api.get(f"{UC}/models").json()["registered_models"] == []
    assert error(api.get(f"{UC}/catalogs/c")) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert error(api.get(f"{UC}/models/c.s.m")) == (404, "RESOURCE_DOES_NOT_EXIST")
    r = api.post(f"{UC}/catalogs", {"name": "mine"}, format="json")
    assert error(r) == (403, "PERMISSION_DENIED")  # CREATE CATALOG is not held by default
    assert not Catalog.objects.filter(name="mine").exists()


def test_admin_group_member_may_do_everything(make_user, tree, api_as):
    tree("c.s.m", "d.t.n")
    boss = make_user("boss", admin=True)
    for securable in (metastore(), cat(), sch(), mod()):
        assert held(boss, securable) == set(APPLICABLE[securable.securable_type])
        assert sees(boss, securable)
    assert visible(boss) == (["c", "d"], ["c.s", "d.t"], ["c.s.m", "d.t.n"])
    api = api_as(boss)
    assert api.delete(f"{UC}/catalogs/c?force=true").status_code == 200
    assert not Catalog.objects.filter(name="c").exists()
    assert not RegisteredModel.objects.filter(full_name="c.s.m").exists()


def test_member_of_a_group_nested_in_the_admin_group_is_admin(make_user, tree):
    tree("c.s.m")
    nest("platform", settings.STEWARD_ADMIN_GROUP)
    nest("sre", "platform")
    carol = make_user("carol", groups=("sre",))
    assert authz.is_admin(actor(carol))
    assert held(carol, mod()) == MODEL_LEVEL
    # The nesting direction matters: a member of the admin group's *parent* is not an admin.
    nest(settings.STEWARD_ADMIN_GROUP, "everyone")
    dave = make_user("dave", groups=("everyone",))
    assert not authz.is_admin(actor(dave))
    assert held(dave, mod()) == set()


def test_superuser_is_metastore_admin(make_user, tree):
    tree("c.s.m")
    su = make_user("su", is_superuser=True)
    assert authz.is_admin(actor(su))
    assert held(su, cat()) == CATALOG_LEVEL


def test_inactive_principal_holds_nothing(make_user, tree, grant):
    tree("c.s.m")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "ALL PRIVILEGES")
    Catalog.objects.filter(name="c").update(owner_user=alice)
    su = make_user("su", is_superuser=True)
    assert held(alice, mod()) == MODEL_LEVEL
    User.objects.filter(pk__in=[alice.pk, su.pk]).update(is_active=False)
    alice.refresh_from_db()
    su.refresh_from_db()
    for user in (alice, su):
        assert held(user, cat()) == set() and held(user, mod()) == set()
        assert not sees(user, cat())
        assert visible(user) == ([], [], [])


def test_metastore_grants_do_not_flow_into_catalogs(make_user, tree, grant):
    tree("c.s.m")
    alice = make_user("alice")
    grant("metastore", metastore().name, "alice", "CREATE CATALOG", "MANAGE")
    assert held(alice, metastore()) == {P.CREATE_CATALOG, P.MANAGE}
    assert held(alice, cat()) == set() and not sees(alice, cat())


def test_privilege_not_grantable_at_a_level_is_refused(make_user, tree, grant):
    tree("c.s.m")
    alice = make_user("alice")
    with pytest.raises(InvalidParameter):
        grant("catalog", "c", "alice", "CREATE CATALOG")
    with pytest.raises(InvalidParameter):
        grant("registered_model", "c.s.m", "alice", "USE SCHEMA")
    assert held(alice, cat()) == set() and held(alice, mod()) == set()


# --- rule 2: grants flow down (catalog -> schemas -> models) ---------------------------------


def test_catalog_grant_reaches_schemas_and_models_created_later(make_user, tree, grant, api_as):
    tree("c")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG", "USE SCHEMA", "EXECUTE")
    tree("c.s.m", "c.t.n")  # created after the grant
    assert held(alice, mod("c.s.m")) == {P.EXECUTE}
    assert held(alice, mod("c.t.n")) == {P.EXECUTE}
    assert held(alice, sch("c.t")) == {P.USE_SCHEMA, P.EXECUTE}
    assert visible(alice) == (["c"], ["c.s", "c.t"], ["c.s.m", "c.t.n"])
    api = api_as(alice)
    assert api.get(f"{UC}/models/c.t.n").status_code == 200
    assert error(api.delete(f"{UC}/models/c.t.n")) == (403, "PERMISSION_DENIED")


def test_schema_grant_reaches_its_models_but_not_sibling_schemas(make_user, tree, grant):
    tree("c.s.m", "c.t.n")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG")
    grant("schema", "c.s", "alice", "USE SCHEMA", "MODIFY")
    tree("c.s.later")
    assert held(alice, mod("c.s.m")) == {P.MODIFY}
    assert held(alice, mod("c.s.later")) == {P.MODIFY}
    assert held(alice, mod("c.t.n")) == set()
    assert not sees(alice, sch("c.t")) and not sees(alice, mod("c.t.n"))
    assert visible(alice) == (["c"], ["c.s"], ["c.s.later", "c.s.m"])


def test_grants_do_not_flow_up(make_user, tree, grant):
    tree("c.s.m")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG")
    grant("schema", "c.s", "alice", "USE SCHEMA")
    grant("registered_model", "c.s.m", "alice", "MANAGE")
    assert P.MANAGE in held(alice, mod())
    assert P.MANAGE not in held(alice, sch()) and P.MANAGE not in held(alice, cat())


def test_all_privileges_implies_every_privilege_applicable_at_each_level(make_user, tree, grant):
    tree("c.s.m")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "ALL PRIVILEGES")
    assert held(alice, cat()) == CATALOG_LEVEL
    assert held(alice, sch()) == SCHEMA_LEVEL
    assert held(alice, mod()) == MODEL_LEVEL
    assert held(alice, metastore()) == set()  # nothing flows up to the metastore


# --- rule 3: USE CATALOG / USE SCHEMA gates --------------------------------------------------


def test_model_grant_without_use_schema_gives_nothing(make_user, tree, grant, api_as):
    tree("c.s.m")
    alice = make_user("alice")
    grant("registered_model", "c.s.m", "alice", "ALL PRIVILEGES")
    grant("catalog", "c", "alice", "USE CATALOG")
    grant("schema", "c.s", "alice", "EXECUTE")  # a schema grant is no USE SCHEMA either
    assert held(alice, mod()) == set()
    assert not sees(alice, mod())
    assert sees(alice, sch())  # EXECUTE is held at schema level; the gate above (c) passes
    assert visible(alice) == (["c"], ["c.s"], [])
    assert error(api_as(alice).get(f"{UC}/models/c.s.m")) == (404, "RESOURCE_DOES_NOT_EXIST")
    grant("schema", "c.s", "alice", "USE SCHEMA")
    assert held(alice, mod()) == MODEL_LEVEL


def test_model_grant_without_use_catalog_gives_nothing(make_user, tree, grant):
    tree("c.s.m")
    alice = make_user("alice")
    grant("registered_model", "c.s.m", "alice", "EXECUTE")
    grant("schema", "c.s", "alice", "USE SCHEMA", "EXECUTE")
    assert held(alice, mod()) == set() and held(alice, sch()) == set()
    assert not sees(alice, sch()) and not sees(alice, mod())
    assert visible(alice) == ([], [], [])
    grant("catalog", "c", "alice", "USE CATALOG")
    assert held(alice, mod()) == {P.EXECUTE}


def test_use_schema_granted_on_the_catalog_opens_every_schema(make_user, tree, grant):
    tree("c.s.m", "c.t.n")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "c.t.n", "alice", "EXECUTE")
    assert held(alice, mod("c.t.n")) == {P.EXECUTE}
    assert held(alice, mod("c.s.m")) == set()
    assert visible(alice) == (["c"], ["c.s", "c.t"], ["c.t.n"])


def test_create_schema_needs_use_catalog_too(make_user, tree, grant):
    tree("c")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "CREATE SCHEMA")
    with pytest.raises(PermissionDenied):  # visible (she holds something), so 403 not 404
        schema_create(actor=actor(alice), catalog_name="c", name="new")
    assert not Schema.objects.filter(full_name="c.new").exists()
    grant("catalog", "c", "alice", "USE CATALOG")
    created = schema_create(actor=actor(alice), catalog_name="c", name="new")
    assert created.owner_user_id == alice.pk  # and so rule 4 applies to it
    assert held(alice, created) == SCHEMA_LEVEL


def test_schema_owner_still_needs_use_catalog(make_user, tree, grant, admin_actor):
    tree("c.s.m")
    alice = make_user("alice")
    schema_update(actor=admin_actor, full_name="c.s", owner="alice")
    assert held(alice, sch()) == set() and held(alice, mod()) == set()
    assert not sees(alice, sch())
    grant("catalog", "c", "alice", "USE CATALOG")
    assert held(alice, sch()) == SCHEMA_LEVEL and held(alice, mod()) == MODEL_LEVEL


# --- rule 4: owners hold ALL PRIVILEGES on the object and below ------------------------------


def test_owner_holds_all_privileges_below(make_user, tree, grant, api_as):
    alice = make_user("alice")
    grant("metastore", metastore().name, "alice", "CREATE CATALOG")
    catalog_create(actor=actor(alice), name="mine")
    assert cat("mine").owner_user_id == alice.pk
    tree("mine.s.m")  # created by the admin (who owns those), below alice's catalog
    assert mod("mine.s.m").owner_user_id != alice.pk
    assert held(alice, cat("mine")) == CATALOG_LEVEL
    assert held(alice, sch("mine.s")) == SCHEMA_LEVEL
    assert held(alice, mod("mine.s.m")) == MODEL_LEVEL
    assert visible(alice) == (["mine"], ["mine.s"], ["mine.s.m"])
    assert api_as(alice).delete(f"{UC}/catalogs/mine?force=true").status_code == 200
    assert not Catalog.objects.filter(name="mine").exists()


def test_group_owner_members_hold_all_privileges_below(make_user, tree, admin_actor):
    tree("c.s.m")
    nest("interns", "team")
    alice = make_user("alice", groups=("team",))
    ivan = make_user("ivan", groups=("interns",))
    bob = make_user("bob")
    catalog_update(actor=admin_actor, name="c", owner="team")
    assert cat().owner_group_id == group("team").pk and cat().owner_user_id is None
    for member in (alice, ivan):
        assert held(member, cat()) == CATALOG_LEVEL
        assert held(member, mod()) == MODEL_LEVEL
    assert held(bob, cat()) == set() and held(bob, mod()) == set()


def test_model_owner_holds_all_on_the_model_but_nothing_above(make_user, tree, grant, admin_actor):
    tree("c.s.m", "c.s.other")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG")
    grant("schema", "c.s", "alice", "USE SCHEMA")
    registered_model_update(actor=admin_actor, full_name="c.s.m", owner="alice")
    assert held(alice, mod()) == MODEL_LEVEL
    assert held(alice, sch()) == {P.USE_SCHEMA}
    assert held(alice, mod("c.s.other")) == set()
    assert visible(alice) == (["c"], ["c.s"], ["c.s.m"])


def test_ownership_transfer_moves_the_privileges(make_user, tree, grant, admin_actor):
    tree("c.s.m")
    alice, bob = make_user("alice"), make_user("bob")
    catalog_update(actor=admin_actor, name="c", owner="alice")
    assert held(alice, mod()) == MODEL_LEVEL
    catalog_update(actor=actor(alice), name="c", owner="bob")  # she holds MANAGE as owner
    assert held(alice, cat()) == set() and held(alice, mod()) == set()
    assert held(bob, mod()) == MODEL_LEVEL


# --- rule 5: groups nest; a user holds what any of their groups holds ------------------------


def test_nested_group_member_inherits_grant(make_user, tree, grant):
    tree("c.s.m")
    nest("ml", "data")
    nest("interns", "ml")
    ivan = make_user("ivan", groups=("interns",))
    grant("catalog", "c", "data", "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "c.s.m", "ml", "EXECUTE")
    assert held(ivan, mod()) == {P.EXECUTE}
    assert visible(ivan) == (["c"], ["c.s"], ["c.s.m"])


def test_grant_to_a_child_group_does_not_reach_members_of_the_parent(make_user, tree, grant):
    tree("c.s.m")
    nest("ml", "data")
    dora = make_user("dora", groups=("data",))
    grant("catalog", "c", "ml", "ALL PRIVILEGES")
    assert held(dora, cat()) == set() and visible(dora) == ([], [], [])


def test_group_nesting_cycle_terminates_and_shares_grants(make_user, tree, grant):
    tree("c.s.m")
    nest("a", "b")
    nest("b", "a")
    alice = make_user("alice", groups=("a",))
    grant("catalog", "c", "b", "USE CATALOG", "USE SCHEMA", "BROWSE")
    assert held(alice, mod()) == {P.BROWSE}


def test_removing_group_membership_takes_effect_on_next_request(make_user, tree, grant, api_as):
    tree("c.s.m")
    alice = make_user("alice", groups=("readers",))
    grant("catalog", "c", "readers", "USE CATALOG", "USE SCHEMA", "EXECUTE")
    api = api_as(alice)
    assert api.get(f"{UC}/models/c.s.m").status_code == 200
    alice.groups.remove(group("readers"))
    assert error(api.get(f"{UC}/models/c.s.m")) == (404, "RESOURCE_DOES_NOT_EXIST")


# --- rule 6: lists show only what the caller may see; hidden is 404, never 403 ---------------


def _same_404(hidden, missing, hidden_name: str, missing_name: str) -> None:
    """A hidden object and one that does not exist answer byte-for-byte alike (but the name)."""
    assert error(hidden) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert hidden.json() == {
        k: v.replace(missing_name, hidden_name) for k, v in missing.json().items()
    }


def test_hidden_model_answers_404_not_403(make_user, tree, grant, api_as):
    tree("c.s.m", "c.s.secret")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG")
    grant("schema", "c.s", "alice", "USE SCHEMA")
    grant("registered_model", "c.s.m", "alice", "BROWSE")
    api = api_as(alice)
    # Visible but lacking the privilege: 403.
    assert api.get(f"{UC}/models/c.s.m").status_code == 200
    assert error(api.delete(f"{UC}/models/c.s.m")) == (403, "PERMISSION_DENIED")
    r = api.patch(f"{UC}/models/c.s.m", {"comment": "x"}, format="json")
    assert error(r) == (403, "PERMISSION_DENIED")
    # Hidden: 404, indistinguishable from a model that does not exist.
    for method, path, body in (
        ("get", "models/{}", None),
        ("delete", "models/{}", None),
        ("patch", "models/{}", {"comment": "x"}),
        ("get", "permissions/registered_model/{}", None),
        (
            "patch",
            "permissions/registered_model/{}",
            {"changes": [{"principal": "alice", "add": ["EXECUTE"]}]},
        ),
        ("get", "effective-permissions/registered_model/{}", None),
    ):
        call = getattr(api, method)
        hidden = call(f"{UC}/{path.format('c.s.secret')}", body, format="json")
        missing = call(f"{UC}/{path.format('c.s.nothere')}", body, format="json")
        _same_404(hidden, missing, "c.s.secret", "c.s.nothere")
    assert mod("c.s.secret").comment == ""
    assert RegisteredModel.objects.filter(full_name="c.s.secret").exists()


def test_hidden_catalog_and_schema_answer_404(make_user, tree, grant, api_as):
    tree("c.s.m", "hid.s.m")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG")
    api = api_as(alice)
    _same_404(api.get(f"{UC}/catalogs/hid"), api.get(f"{UC}/catalogs/nope"), "hid", "nope")
    _same_404(
        api.delete(f"{UC}/catalogs/hid?force=true"),
        api.delete(f"{UC}/catalogs/nope?force=true"),
        "hid",
        "nope",
    )
    _same_404(
        api.get(f"{UC}/schemas?catalog_name=hid"),
        api.get(f"{UC}/schemas?catalog_name=nope"),
        "hid",
        "nope",
    )
    _same_404(
        api.get(f"{UC}/models?catalog_name=hid"),
        api.get(f"{UC}/models?catalog_name=nope"),
        "hid",
        "nope",
    )
    # c is visible but its schema c.s is not (USE CATALOG gives nothing at schema level).
    _same_404(api.get(f"{UC}/schemas/c.s"), api.get(f"{UC}/schemas/c.nope"), "c.s", "c.nope")
    _same_404(
        api.get(f"{UC}/models?catalog_name=c&schema_name=s"),
        api.get(f"{UC}/models?catalog_name=c&schema_name=nope"),
        "c.s",
        "c.nope",
    )
    assert Catalog.objects.filter(name="hid").exists()


@pytest.fixture
def mixed_tree(make_user, tree, grant):
    """alice sees catalogs a, c; schemas a.s, c.s; models a.s.m1, a.s.m3, c.s.m.
    Everything else (catalogs b, d, schemas a.t, c.hid, the other models) is hidden."""
    tree("a.s.m1", "a.s.m2", "a.s.m3", "a.t.x", "b.s.m", "c.s.m", "c.hid.m", "d.s.m")
    alice = make_user("alice")
    grant("catalog", "a", "alice", "USE CATALOG")
    grant("schema", "a.s", "alice", "USE SCHEMA")
    grant("registered_model", "a.s.m1", "alice", "EXECUTE")
    grant("registered_model", "a.s.m3", "alice", "BROWSE")
    grant("registered_model", "a.t.x", "alice", "EXECUTE")  # a.t has no USE SCHEMA: hidden
    grant("registered_model", "b.s.m", "alice", "EXECUTE")  # b has no USE CATALOG: hidden
    grant("catalog", "c", "alice", "USE CATALOG")
    grant("schema", "c.s", "alice", "USE SCHEMA", "EXECUTE")
    grant("schema", "d.s", "alice", "USE SCHEMA", "EXECUTE")  # d has no USE CATALOG
    return alice


def test_lists_reveal_only_visible_objects(mixed_tree, api_as):
    alice = mixed_tree
    assert visible(alice) == (["a", "c"], ["a.s", "c.s"], ["a.s.m1", "a.s.m3", "c.s.m"])
    api = api_as(alice)
    assert [c["name"] for c in api.get(f"{UC}/catalogs").json()["catalogs"]] == ["a", "c"]
    r = api.get(f"{UC}/schemas?catalog_name=a").json()
    assert [s["full_name"] for s in r["schemas"]] == ["a.s"]
    r = api.get(f"{UC}/schemas?catalog_name=c").json()
    assert [s["full_name"] for s in r["schemas"]] == ["c.s"]
    models = api.get(f"{UC}/models").json()["registered_models"]
    assert [m["full_name"] for m in models] == ["a.s.m1", "a.s.m3", "c.s.m"]
    r = api.get(f"{UC}/models?catalog_name=a").json()["registered_models"]
    assert [m["full_name"] for m in r] == ["a.s.m1", "a.s.m3"]
    r = api.get(f"{UC}/models?catalog_name=a&schema_name=s").json()["registered_models"]
    assert [m["full_name"] for m in r] == ["a.s.m1", "a.s.m3"]


def _walk(api, path: str, key: str, field: str) -> list[list[str]]:
    pages, token = [], None
    sep = "&" if "?" in path else "?"
    while True:
        url = f"{UC}/{path}{sep}max_results=1" + (f"&page_token={token}" if token else "")
        body = api.get(url).json()
        pages.append([item[field] for item in body[key]])
        token = body["next_page_token"]
        if not token:
            return pages


def test_page_tokens_reveal_only_visible_objects(mixed_tree, api_as):
    api = api_as(mixed_tree)
    assert _walk(api, "catalogs", "catalogs", "name") == [["a"], ["c"]]
    assert _walk(api, "schemas?catalog_name=a", "schemas", "full_name") == [["a.s"]]
    assert _walk(api, "models", "registered_models", "full_name") == [
        ["a.s.m1"],
        ["a.s.m3"],
        ["c.s.m"],
    ]
    # A forged token naming a hidden object only positions the cursor: nothing hidden leaks.
    for forged, expected in (("a.s.m2", ["a.s.m3", "c.s.m"]), ("b.s.m", ["c.s.m"])):
        r = api.get(f"{UC}/models?page_token={encode_token(forged)}").json()
        assert [m["full_name"] for m in r["registered_models"]] == expected
    r = api.get(f"{UC}/catalogs?page_token={encode_token('a')}").json()
    assert [c["name"] for c in r["catalogs"]] == ["c"]
    # A full-page listing says "no more" exactly when the visible items are exhausted.
    body = api.get(f"{UC}/models?max_results=3").json()
    assert len(body["registered_models"]) == 3 and body["next_page_token"] is None


# --- SECURITY_CASES 10: revokes take effect on the next request ------------------------------


def test_revoke_takes_effect_on_next_request(make_user, tree, grant, api_as, admin_user):
    tree("c.s.m")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG", "USE SCHEMA", "EXECUTE")
    api = api_as(alice)
    assert api.get(f"{UC}/models/c.s.m").status_code == 200
    assert len(api.get(f"{UC}/models").json()["registered_models"]) == 1
    r = api_as(admin_user).patch(
        f"{UC}/permissions/catalog/c",
        {"changes": [{"principal": "alice", "remove": ["USE SCHEMA"]}]},
        format="json",
    )
    assert r.status_code == 200
    assert error(api.get(f"{UC}/models/c.s.m")) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert api.get(f"{UC}/models").json()["registered_models"] == []
    assert api.get(f"{UC}/catalogs/c").status_code == 200  # USE CATALOG is still held


# --- SECURITY_CASES 11: weak holders cannot delete, force-delete or grant --------------------


def test_use_only_user_cannot_force_delete_catalog(make_user, tree, grant, api_as):
    tree("c.s.m")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG", "USE SCHEMA")
    before = snapshot()
    api = api_as(alice)
    assert error(api.delete(f"{UC}/catalogs/c?force=true")) == (403, "PERMISSION_DENIED")
    assert error(api.delete(f"{UC}/schemas/c.s?force=true")) == (403, "PERMISSION_DENIED")
    assert error(api.delete(f"{UC}/models/c.s.m?force=true")) == (404, "RESOURCE_DOES_NOT_EXIST")
    r = api.patch(
        f"{UC}/permissions/catalog/c",
        {"changes": [{"principal": "alice", "add": ["MANAGE", "ALL PRIVILEGES"]}]},
        format="json",
    )
    assert error(r) == (403, "PERMISSION_DENIED")
    r = api.patch(f"{UC}/catalogs/c", {"owner": "alice"}, format="json")
    assert error(r) == (403, "PERMISSION_DENIED")
    assert snapshot() == before
    assert held(alice, cat()) == {P.USE_CATALOG, P.USE_SCHEMA}
    denied = AuditEvent.objects.filter(actor="alice", outcome="DENIED")
    assert denied.count() == 5  # SECURITY_CASES 28: denied attempts are audited too


def test_read_privilege_holder_cannot_delete_grant_or_take_ownership(
    make_user, tree, grant, api_as
):
    tree("c.s.m")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "c.s.m", "alice", "EXECUTE", "BROWSE")
    before = snapshot()
    api = api_as(alice)
    assert error(api.delete(f"{UC}/models/c.s.m?force=true")) == (403, "PERMISSION_DENIED")
    r = api.patch(
        f"{UC}/permissions/registered_model/c.s.m",
        {"changes": [{"principal": "alice", "add": ["MANAGE"]}]},
        format="json",
    )
    assert error(r) == (403, "PERMISSION_DENIED")
    for body in ({"owner": "alice"}, {"comment": "mine"}, {"new_name": "renamed"}):
        r = api.patch(f"{UC}/models/c.s.m", body, format="json")
        assert error(r) == (403, "PERMISSION_DENIED"), body
    assert snapshot() == before


def test_empty_update_by_a_reader_or_read_only_token_changes_nothing(
    make_user, tree, grant, api_as
):
    """An update naming nothing to change needs only visibility, so it must write nothing
    (no updated_by/updated_at stamp, no audit event). Fixed in c8d9b86; kept as a regression."""
    tree("c.s.m")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "ALL PRIVILEGES")
    bob = make_user("bob")
    grant("catalog", "c", "bob", "USE CATALOG", "USE SCHEMA", "BROWSE")
    clients = (api_as(bob), api_as(alice, scope="read"))  # issuing a token is audited
    before = snapshot()
    events = AuditEvent.objects.count()
    for api in clients:
        for path in ("catalogs/c", "schemas/c.s", "models/c.s.m"):
            r = api.patch(f"{UC}/{path}", {}, format="json")
            assert r.status_code == 200, path
    assert snapshot() == before
    assert AuditEvent.objects.count() == events


def test_read_only_token_cannot_write(make_user, tree, grant, api_as):
    alice = make_user("alice")
    grant("metastore", metastore().name, "alice", "CREATE CATALOG")
    tree("c.s.m")
    grant("catalog", "c", "alice", "ALL PRIVILEGES")
    # authz itself: the token keeps only the read privileges.
    assert held(alice, mod(), scope="read") == {P.EXECUTE, P.BROWSE}
    assert held(alice, cat(), scope="read") == {P.USE_CATALOG, P.USE_SCHEMA, P.EXECUTE, P.BROWSE}
    assert held(alice, metastore(), scope="read") == set()
    before = snapshot()
    ro = api_as(alice, scope="read")
    assert ro.get(f"{UC}/models/c.s.m").status_code == 200
    assert [m["full_name"] for m in ro.get(f"{UC}/models").json()["registered_models"]] == ["c.s.m"]
    writes = (
        ("post", "catalogs", {"name": "other"}),
        ("post", "schemas", {"name": "new", "catalog_name": "c"}),
        ("post", "models", {"name": "new", "catalog_name": "c", "schema_name": "s"}),
        ("patch", "catalogs/c", {"comment": "x"}),
        ("patch", "models/c.s.m", {"comment": "x"}),
        ("patch", "models/c.s.m", {"owner": "alice"}),
        ("patch", "permissions/catalog/c", {"changes": [{"principal": "bob", "add": ["BROWSE"]}]}),
        ("delete", "models/c.s.m?force=true", None),
        ("delete", "schemas/c.s?force=true", None),
        ("delete", "catalogs/c?force=true", None),
    )
    for method, path, body in writes:
        r = getattr(ro, method)(f"{UC}/{path}", body, format="json")
        assert error(r) == (403, "PERMISSION_DENIED"), (method, path)
    assert snapshot() == before
    assert not Catalog.objects.filter(name="other").exists()
    # The same user with a full token may do those writes: the scope made the difference.
    rw = api_as(alice)
    r = rw.post(f"{UC}/schemas", {"name": "new", "catalog_name": "c"}, format="json")
    assert r.status_code == 200
    assert rw.delete(f"{UC}/catalogs/c?force=true").status_code == 200


# --- grants as seen by holders: permissions, effective permissions, has_perm -----------------


def test_permissions_get_shows_non_manage_holders_only_their_own_assignments(
    make_user, tree, grant, api_as
):
    tree("c.s.m")
    nest("ml", "data")
    alice = make_user("alice", groups=("ml",))
    manager = make_user("manager")
    make_user("bob")
    grant("catalog", "c", "alice", "USE CATALOG", "BROWSE")
    grant("catalog", "c", "bob", "USE CATALOG", "EXECUTE")
    grant("catalog", "c", "data", "USE SCHEMA")  # alice's group, through nesting
    group("strangers")
    grant("catalog", "c", "strangers", "APPLY TAG")
    grant("catalog", "c", "manager", "USE CATALOG", "MANAGE")

    def shown(user):
        body = api_as(user).get(f"{UC}/permissions/catalog/c").json()
        return {
            (a["principal"], a["principal_type"]): a["privileges"]
            for a in body["privilege_assignments"]
        }

    assert shown(alice) == {
        ("alice", "USER"): ["BROWSE", "USE CATALOG"],
        ("data", "GROUP"): ["USE SCHEMA"],
    }
    everything = shown(manager)
    assert set(everything) == {
        ("alice", "USER"),
        ("bob", "USER"),
        ("manager", "USER"),
        ("data", "GROUP"),
        ("strangers", "GROUP"),
    }
    assert everything[("bob", "USER")] == ["EXECUTE", "USE CATALOG"]
    # Filtering by principal cannot widen what a non-manager sees.
    body = api_as(alice).get(f"{UC}/permissions/catalog/c?principal=bob").json()
    assert body["privilege_assignments"] == []


def test_effective_permissions_report_sources_and_missing_gate(
    make_user, tree, grant, api_as, admin_actor, admin_user
):
    tree("c.s.m")
    alice = make_user("alice", groups=("ml",))
    grant("catalog", "c", "alice", "USE CATALOG")
    grant("schema", "c.s", "ml", "USE SCHEMA", "EXECUTE")
    registered_model_update(actor=admin_actor, full_name="c.s.m", owner="alice")
    api = api_as(alice)
    body = api.get(f"{UC}/effective-permissions/registered_model/c.s.m").json()
    assert body["missing_gate"] is None
    (assignment,) = body["privilege_assignments"]
    assert assignment["principal"] == "alice"
    rows = {
        (
            p["privilege"],
            p["source"],
            p["inherited_from_type"],
            p["inherited_from_name"],
            p["granted_to"],
        )
        for p in assignment["privileges"]
    }
    assert ("EXECUTE", "GRANT", "SCHEMA", "c.s", "ml") in rows
    assert ("MANAGE", "OWNERSHIP", "REGISTERED_MODEL", "c.s.m", "alice") in rows
    assert {p for p, *_ in rows} == {x.value for x in MODEL_LEVEL}
    # Gates are not privileges on a model: USE CATALOG / USE SCHEMA are not reported there.
    assert not any(p.startswith("USE") for p, *_ in rows)

    # Without USE SCHEMA the gate is reported and nothing is effective.
    revoke(admin_actor, "schema", "c.s", "ml", "USE SCHEMA")
    bob = make_user("bob")
    grant("catalog", "c", "bob", "USE CATALOG", "MANAGE")
    grant("schema", "c.s", "bob", "USE SCHEMA")
    body = (
        api_as(bob).get(f"{UC}/effective-permissions/registered_model/c.s.m?principal=alice").json()
    )
    assert body["missing_gate"] == "USE SCHEMA on schema c.s"
    assert body["privilege_assignments"][0]["privileges"] == []
    # Asking about someone else needs MANAGE; alice's own model is hidden from her now: 404.
    carol = make_user("carol")
    grant("catalog", "c", "carol", "USE CATALOG", "BROWSE")
    r = api_as(carol).get(f"{UC}/effective-permissions/catalog/c?principal=bob")
    assert error(r) == (403, "PERMISSION_DENIED")
    r = api.get(f"{UC}/effective-permissions/registered_model/c.s.m")
    assert error(r) == (404, "RESOURCE_DOES_NOT_EXIST")
    # Admins: source ADMIN.
    body = api_as(admin_user).get(f"{UC}/effective-permissions/catalog/c").json()
    sources = {p["source"] for p in body["privilege_assignments"][0]["privileges"]}
    assert sources == {"ADMIN"}


def test_has_perm_answers_with_inheritance_through_the_registered_backend(make_user, tree, grant):
    tree("c.s.m")
    alice = make_user("alice", groups=("ml",))
    grant("catalog", "c", "alice", "USE CATALOG")
    grant("schema", "c.s", "ml", "USE SCHEMA", "EXECUTE")
    model = mod()
    assert alice.has_perm("EXECUTE", model)
    assert alice.has_perm("execute", model)  # guardian codename
    assert alice.has_perm("registry.execute", model)  # app-qualified codename
    assert alice.has_perm("EXECUTE", sch())
    assert not alice.has_perm("MANAGE", model)
    assert not alice.has_perm("EXECUTE", cat())  # grants do not flow up
    assert not alice.has_perm("NOT A PRIVILEGE", model)
    assert not alice.has_perm("EXECUTE")  # no object: no global privileges
    assert not alice.has_perm("EXECUTE", object())
    assert not AnonymousUser().has_perm("EXECUTE", model)
    bob = make_user("bob")
    grant("registered_model", "c.s.m", "bob", "EXECUTE")
    assert not bob.has_perm("EXECUTE", model)  # no USE gates


# --- SECURITY_CASES 15: grants and revokes hammered concurrently with checks -----------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_grants_and_revokes_never_give_a_wrong_answer(make_user, tree, grant):
    tree("c.s.m")
    alice = make_user("alice")
    grant("catalog", "c", "alice", "USE CATALOG", "USE SCHEMA", "EXECUTE")
    admin = User.objects.get(username="root")
    model_id = mod().pk
    errors: list[BaseException] = []
    wrong: list[str] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        try:
            a = Actor.system(admin)
            for i in range(15):
                key = "add" if (i + n) % 2 == 0 else "remove"
                permissions_update(
                    actor=a,
                    securable_type="registered_model",
                    full_name="c.s.m",
                    changes=[{"principal": "alice", key: ["MODIFY", "MANAGE"]}],
                )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    def checker() -> None:
        try:
            while not stop.is_set():
                model = RegisteredModel.objects.select_related("schema__catalog").get(pk=model_id)
                a = actor(User.objects.get(username="alice"))
                if not authz.check(a, P.EXECUTE, model) or not authz.can_see(a, model):
                    wrong.append("lost EXECUTE")
                if authz.check(a, P.CREATE_MODEL, model.schema):
                    wrong.append("gained CREATE MODEL")
                visible_models = list(authz.visible_models(actor(a.user)))
                if [m.pk for m in visible_models] != [model_id]:
                    wrong.append("list changed")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    checkers = [threading.Thread(target=checker) for _ in range(3)]
    for t in checkers + writers:
        t.start()
    for t in writers:
        t.join(60)
    stop.set()
    for t in checkers:
        t.join(60)
    assert errors == [] and wrong == []
    final = held(alice, mod())
    assert {P.EXECUTE} <= final <= {P.EXECUTE, P.MODIFY, P.MANAGE}
