"""The official `unitycatalog-client` (0.7.0) against a live Steward: what a UC user really runs.

Covers the catalog, schema and registered-model lifecycle with paging, grants through GrantsApi,
what a second user sees before and after grants (SECURITY_CASES 12), a USE-only user trying to
delete (11), duplicates (7), an owner transfer (only possible as a raw PATCH: the typed update
models have no `owner`), and the audit trail of it all.
"""

from __future__ import annotations

import json

import pydantic
import pytest
from unitycatalog.client import ApiException
from unitycatalog.client.exceptions import (
    BadRequestException,
    ForbiddenException,
    NotFoundException,
    UnauthorizedException,
)
from unitycatalog.client.models import (
    CatalogInfo,
    CreateCatalog,
    CreateRegisteredModel,
    CreateSchema,
    PermissionsChange,
    PermissionsList,
    Privilege,
    RegisteredModelInfo,
    SchemaInfo,
    SecurableType,
    UpdateCatalog,
    UpdatePermissions,
    UpdateRegisteredModel,
    UpdateSchema,
)

from tests.e2e.conftest import UC_PREFIX, collect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def change(principal: str, add=(), remove=()) -> UpdatePermissions:
    return UpdatePermissions(
        changes=[PermissionsChange(principal=principal, add=list(add), remove=list(remove))]
    )


def privileges_of(permissions: PermissionsList, principal: str) -> set[Privilege]:
    for assignment in permissions.privilege_assignments:
        if assignment.principal == principal:
            return set(assignment.privileges)
    return set()


def error_of(exc: ApiException) -> dict:
    body = json.loads(exc.body)
    assert set(body) == {"error_code", "message"}, body
    return body


async def raises(exc_type, awaitable) -> ApiException:
    """Await and expect exactly `exc_type` (ApiException means the plain class, e.g. 409)."""
    try:
        await awaitable
    except ApiException as exc:
        assert type(exc) is exc_type, (type(exc).__name__, exc.status, exc.body)
        return exc
    raise AssertionError(f"expected {exc_type.__name__}")


@pytest.fixture
def admin_token(live_uc, admin_user) -> str:
    return live_uc.token(admin_user)


@pytest.fixture
def seeded(live_uc, admin_token):
    """c1.s1.{m1,m2}, c1.s2.m3 and c2.s3.m4, created through the client."""

    async def scenario(uc):
        for catalog in ["c1", "c2"]:
            await uc.catalogs.create_catalog(CreateCatalog(name=catalog))
        for catalog, schema in [("c1", "s1"), ("c1", "s2"), ("c2", "s3")]:
            await uc.schemas.create_schema(CreateSchema(name=schema, catalog_name=catalog))
        for catalog, schema, model in [
            ("c1", "s1", "m1"),
            ("c1", "s1", "m2"),
            ("c1", "s2", "m3"),
            ("c2", "s3", "m4"),
        ]:
            await uc.models.create_registered_model(
                CreateRegisteredModel(name=model, catalog_name=catalog, schema_name=schema)
            )

    live_uc.run(admin_token, scenario)


# --- lifecycle -------------------------------------------------------------------------------


def test_catalog_lifecycle(live_uc, admin_user, admin_token):
    async def scenario(uc):
        created = await uc.catalogs.create_catalog(
            CreateCatalog(name="Sales", comment="quarterly", properties={"team": "bi", "k": ""})
        )
        assert isinstance(created, CatalogInfo)  # None would mean a non-200 success status
        assert created.name == "sales"
        assert created.comment == "quarterly"
        assert created.properties == {"team": "bi", "k": ""}
        assert created.owner == created.created_by == admin_user.username
        assert isinstance(created.created_at, int) and created.created_at > 1_600_000_000_000
        assert created.id

        got = await uc.catalogs.get_catalog("sales")
        assert (got.id, got.name, got.comment) == (created.id, "sales", "quarterly")
        assert (await uc.catalogs.get_catalog("SALES")).id == created.id

        updated = await uc.catalogs.update_catalog(
            "sales", UpdateCatalog(comment="yearly", properties={"team": "finance"})
        )
        assert (updated.comment, updated.properties) == ("yearly", {"team": "finance"})
        assert updated.updated_by == admin_user.username
        assert updated.updated_at >= created.updated_at

        unchanged = await uc.catalogs.update_catalog("sales", UpdateCatalog())
        assert (unchanged.comment, unchanged.properties) == ("yearly", {"team": "finance"})

        renamed = await uc.catalogs.update_catalog("sales", UpdateCatalog(new_name="revenue"))
        assert (renamed.name, renamed.id, renamed.comment) == ("revenue", created.id, "yearly")
        await raises(NotFoundException, uc.catalogs.get_catalog("sales"))
        assert (await uc.catalogs.get_catalog("revenue")).id == created.id

        await uc.schemas.create_schema(CreateSchema(name="s", catalog_name="revenue"))
        exc = await raises(BadRequestException, uc.catalogs.delete_catalog("revenue"))
        assert error_of(exc)["error_code"] == "FAILED_PRECONDITION"
        exc = await raises(BadRequestException, uc.catalogs.delete_catalog("revenue", force=False))
        assert (await uc.catalogs.get_catalog("revenue")).id == created.id

        assert await uc.catalogs.delete_catalog("revenue", force=True) == {}
        exc = await raises(NotFoundException, uc.catalogs.get_catalog("revenue"))
        assert error_of(exc)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        await raises(NotFoundException, uc.schemas.get_schema("revenue.s"))
        await raises(NotFoundException, uc.catalogs.delete_catalog("revenue", force=True))

    live_uc.run(admin_token, scenario)


def test_duplicate_create_is_a_plain_409(live_uc, admin_token, seeded):
    async def scenario(uc):
        for name in ["c1", "C1"]:
            exc = await raises(ApiException, uc.catalogs.create_catalog(CreateCatalog(name=name)))
            assert exc.status == 409
            assert error_of(exc)["error_code"] == "RESOURCE_ALREADY_EXISTS"
        exc = await raises(
            ApiException, uc.schemas.create_schema(CreateSchema(name="S1", catalog_name="c1"))
        )
        assert exc.status == 409
        exc = await raises(
            ApiException,
            uc.models.create_registered_model(
                CreateRegisteredModel(name="m1", catalog_name="C1", schema_name="s1")
            ),
        )
        assert exc.status == 409
        exc = await raises(
            ApiException, uc.catalogs.update_catalog("c2", UpdateCatalog(new_name="c1"))
        )
        assert exc.status == 409
        assert (await uc.catalogs.get_catalog("c2")).name == "c2"

    live_uc.run(admin_token, scenario)


def test_catalog_paging_sees_everything_exactly_once(live_uc, admin_token):
    names = {f"cat_{i:02d}" for i in range(11)}

    async def scenario(uc):
        for name in sorted(names, reverse=True):
            await uc.catalogs.create_catalog(CreateCatalog(name=name))
        items, pages = await collect(uc.catalogs.list_catalogs, "catalogs", max_results=3)
        seen = [c.name for c in items]
        assert len(seen) == len(set(seen)) == 11 and set(seen) == names
        assert pages == 4  # 3 + 3 + 3 + 2
        assert seen == sorted(seen)
        items, pages = await collect(uc.catalogs.list_catalogs, "catalogs", max_results=11)
        assert pages == 1 and len(items) == 11
        items, pages = await collect(uc.catalogs.list_catalogs, "catalogs")
        assert pages == 1 and {c.name for c in items} == names
        items, pages = await collect(uc.catalogs.list_catalogs, "catalogs", max_results=1)
        assert pages == 11 and [c.name for c in items] == sorted(names)

    live_uc.run(admin_token, scenario)


def test_schema_lifecycle_and_paging(live_uc, admin_user, admin_token):
    async def scenario(uc):
        await uc.catalogs.create_catalog(CreateCatalog(name="lake"))
        created = await uc.schemas.create_schema(
            CreateSchema(name="raw", catalog_name="lake", comment="c", properties={"a": "b"})
        )
        assert isinstance(created, SchemaInfo)
        assert (created.name, created.catalog_name, created.full_name) == (
            "raw",
            "lake",
            "lake.raw",
        )
        assert created.schema_id and created.owner == admin_user.username
        assert created.properties == {"a": "b"}

        got = await uc.schemas.get_schema("lake.raw")
        assert got.schema_id == created.schema_id

        updated = await uc.schemas.update_schema(
            "lake.raw", UpdateSchema(comment="new", properties={"x": "y"})
        )
        assert (updated.comment, updated.properties) == ("new", {"x": "y"})

        await uc.models.create_registered_model(
            CreateRegisteredModel(name="m", catalog_name="lake", schema_name="raw")
        )
        renamed = await uc.schemas.update_schema("lake.raw", UpdateSchema(new_name="bronze"))
        assert (renamed.full_name, renamed.schema_id) == ("lake.bronze", created.schema_id)
        await raises(NotFoundException, uc.schemas.get_schema("lake.raw"))
        assert (await uc.models.get_registered_model("lake.bronze.m")).full_name == "lake.bronze.m"
        await raises(NotFoundException, uc.models.get_registered_model("lake.raw.m"))

        names = {f"s{i}" for i in range(7)}
        for name in names:
            await uc.schemas.create_schema(CreateSchema(name=name, catalog_name="lake"))
        items, pages = await collect(
            uc.schemas.list_schemas, "schemas", catalog_name="lake", max_results=2
        )
        seen = [s.full_name for s in items]
        assert len(seen) == len(set(seen)) == 8 and pages == 4
        assert set(seen) == {f"lake.{n}" for n in names} | {"lake.bronze"}

        await raises(BadRequestException, uc.schemas.delete_schema("lake.bronze"))
        assert await uc.schemas.delete_schema("lake.bronze", force=True) == {}
        await raises(NotFoundException, uc.schemas.get_schema("lake.bronze"))
        await raises(NotFoundException, uc.models.get_registered_model("lake.bronze.m"))
        assert await uc.schemas.delete_schema("lake.s0") == {}  # empty: no force needed
        items, _ = await collect(uc.schemas.list_schemas, "schemas", catalog_name="lake")
        assert len(items) == 6

    live_uc.run(admin_token, scenario)


def test_model_lifecycle_and_paging(live_uc, admin_user, admin_token):
    async def scenario(uc):
        await uc.catalogs.create_catalog(CreateCatalog(name="ml"))
        for schema in ["prod", "dev"]:
            await uc.schemas.create_schema(CreateSchema(name=schema, catalog_name="ml"))
        created = await uc.models.create_registered_model(
            CreateRegisteredModel(name="churn", catalog_name="ml", schema_name="prod", comment="v")
        )
        assert isinstance(created, RegisteredModelInfo)
        assert created.full_name == "ml.prod.churn"
        assert (created.catalog_name, created.schema_name, created.name) == ("ml", "prod", "churn")
        assert created.comment == "v" and created.owner == admin_user.username and created.id

        got = await uc.models.get_registered_model("ml.prod.churn")
        assert got.id == created.id

        updated = await uc.models.update_registered_model(
            "ml.prod.churn", UpdateRegisteredModel(comment="better")
        )
        assert updated.comment == "better"
        renamed = await uc.models.update_registered_model(
            "ml.prod.churn", UpdateRegisteredModel(new_name="attrition")
        )
        assert (renamed.full_name, renamed.id) == ("ml.prod.attrition", created.id)
        await raises(NotFoundException, uc.models.get_registered_model("ml.prod.churn"))

        prod = {f"ml.prod.p{i}" for i in range(6)} | {"ml.prod.attrition"}
        dev = {f"ml.dev.d{i}" for i in range(3)}
        for full_name in sorted(prod | dev):
            if full_name == "ml.prod.attrition":
                continue
            catalog, schema, name = full_name.split(".")
            await uc.models.create_registered_model(
                CreateRegisteredModel(name=name, catalog_name=catalog, schema_name=schema)
            )
        items, pages = await collect(
            uc.models.list_registered_models,
            "registered_models",
            catalog_name="ml",
            schema_name="prod",
            max_results=4,
        )
        seen = [m.full_name for m in items]
        assert len(seen) == len(set(seen)) and set(seen) == prod and pages == 2
        items, pages = await collect(
            uc.models.list_registered_models, "registered_models", catalog_name="ml", max_results=3
        )
        seen = [m.full_name for m in items]
        assert len(seen) == len(set(seen)) and set(seen) == prod | dev and pages == 4
        items, _ = await collect(uc.models.list_registered_models, "registered_models")
        assert {m.full_name for m in items} == prod | dev
        items, _ = await collect(
            uc.models.list_registered_models, "registered_models", max_results=50
        )
        assert len(items) == len(prod | dev)

        assert await uc.models.delete_registered_model("ml.prod.attrition", force=True) == {}
        await raises(NotFoundException, uc.models.get_registered_model("ml.prod.attrition"))
        assert await uc.models.delete_registered_model("ml.dev.d0") == {}
        items, _ = await collect(uc.models.list_registered_models, "registered_models")
        assert len(items) == len(prod | dev) - 2

    live_uc.run(admin_token, scenario)


# --- grants and what others see --------------------------------------------------------------


def test_grants_round_trip(live_uc, admin_token, make_user, seeded):
    make_user("bob")
    make_user("carol")

    async def scenario(uc):
        listed = await uc.grants.get(SecurableType.CATALOG, "c1")
        assert listed.privilege_assignments == []

        got = await uc.grants.update(
            SecurableType.CATALOG, "c1", change("bob", [Privilege.USE_CATALOG])
        )
        assert privileges_of(got, "bob") == {Privilege.USE_CATALOG}
        got = await uc.grants.update(
            SecurableType.SCHEMA,
            "c1.s1",
            change("bob", [Privilege.USE_SCHEMA, Privilege.CREATE_MODEL]),
        )
        assert privileges_of(got, "bob") == {Privilege.USE_SCHEMA, Privilege.CREATE_MODEL}
        got = await uc.grants.update(
            SecurableType.REGISTERED_MODEL, "c1.s1.m1", change("bob", [Privilege.EXECUTE])
        )
        assert privileges_of(got, "bob") == {Privilege.EXECUTE}
        await uc.grants.update("catalog", "c1", change("carol", [Privilege.CREATE_SCHEMA]))

        listed = await uc.grants.get(SecurableType.CATALOG, "c1")
        assert {a.principal for a in listed.privilege_assignments} == {"bob", "carol"}
        only_bob = await uc.grants.get(SecurableType.CATALOG, "c1", principal="bob")
        assert [a.principal for a in only_bob.privilege_assignments] == ["bob"]
        assert privileges_of(await uc.grants.get("schema", "C1.S1"), "bob") == {
            Privilege.USE_SCHEMA,
            Privilege.CREATE_MODEL,
        }

        got = await uc.grants.update(
            SecurableType.SCHEMA, "c1.s1", change("bob", remove=[Privilege.CREATE_MODEL])
        )
        assert privileges_of(got, "bob") == {Privilege.USE_SCHEMA}
        got = await uc.grants.update(
            SecurableType.REGISTERED_MODEL, "c1.s1.m1", change("bob", remove=[Privilege.EXECUTE])
        )
        assert privileges_of(got, "bob") == set()
        # Revoking what is not held is harmless.
        await uc.grants.update(
            SecurableType.REGISTERED_MODEL, "c1.s1.m1", change("bob", remove=[Privilege.EXECUTE])
        )

        exc = await raises(
            BadRequestException,
            uc.grants.update(
                SecurableType.REGISTERED_MODEL, "c1.s1.m1", change("bob", [Privilege.USE_CATALOG])
            ),
        )
        assert error_of(exc)["error_code"] == "INVALID_PARAMETER_VALUE"
        await raises(
            BadRequestException,
            uc.grants.update(
                SecurableType.CATALOG, "c1", change("nobody", [Privilege.USE_CATALOG])
            ),
        )
        await raises(
            BadRequestException,
            uc.grants.update(SecurableType.CATALOG, "c1", change("bob", [Privilege.SELECT])),
        )
        await raises(BadRequestException, uc.grants.get(SecurableType.TABLE, "c1.s1.t"))
        await raises(NotFoundException, uc.grants.get(SecurableType.CATALOG, "nope"))

    live_uc.run(admin_token, scenario)


def test_second_user_sees_only_what_is_granted(live_uc, admin_token, make_user, seeded):
    bob_token = live_uc.token(make_user("bob"))
    make_user("carol")

    async def nothing_visible(uc):
        await raises(NotFoundException, uc.catalogs.get_catalog("c1"))
        await raises(NotFoundException, uc.schemas.get_schema("c1.s1"))
        await raises(NotFoundException, uc.models.get_registered_model("c1.s1.m1"))
        await raises(NotFoundException, uc.grants.get(SecurableType.CATALOG, "c1"))
        await raises(NotFoundException, uc.schemas.list_schemas(catalog_name="c1"))
        await raises(NotFoundException, uc.models.list_registered_models(catalog_name="c1"))
        # A hidden catalog and a missing one answer alike.
        hidden = await raises(NotFoundException, uc.catalogs.get_catalog("c2"))
        missing = await raises(NotFoundException, uc.catalogs.get_catalog("zz"))
        assert error_of(hidden)["message"].replace("c2", "X") == error_of(missing)[
            "message"
        ].replace("zz", "X")
        assert (await collect(uc.catalogs.list_catalogs, "catalogs", max_results=1)) == ([], 1)
        listed = await collect(uc.models.list_registered_models, "registered_models", max_results=1)
        assert listed == ([], 1)

    live_uc.run(bob_token, nothing_visible)

    async def grant(uc):
        await uc.grants.update("catalog", "c1", change("bob", [Privilege.USE_CATALOG]))
        await uc.grants.update("schema", "c1.s1", change("bob", [Privilege.USE_SCHEMA]))
        await uc.grants.update("registered_model", "c1.s1.m1", change("bob", [Privilege.EXECUTE]))
        await uc.grants.update("registered_model", "c1.s1.m2", change("carol", [Privilege.EXECUTE]))
        await uc.grants.update("registered_model", "c1.s2.m3", change("bob", [Privilege.EXECUTE]))

    live_uc.run(admin_token, grant)

    async def exactly_granted(uc):
        catalogs, _ = await collect(uc.catalogs.list_catalogs, "catalogs", max_results=1)
        assert [c.name for c in catalogs] == ["c1"]
        schemas, _ = await collect(
            uc.schemas.list_schemas, "schemas", catalog_name="c1", max_results=1
        )
        assert [s.full_name for s in schemas] == ["c1.s1"]
        models, pages = await collect(
            uc.models.list_registered_models, "registered_models", max_results=1
        )
        # m3 has EXECUTE but no USE SCHEMA on c1.s2: the gate shows nothing (case 10).
        assert [m.full_name for m in models] == ["c1.s1.m1"] and pages == 1
        models, _ = await collect(
            uc.models.list_registered_models,
            "registered_models",
            catalog_name="c1",
            schema_name="s1",
        )
        assert [m.full_name for m in models] == ["c1.s1.m1"]
        assert (await uc.models.get_registered_model("c1.s1.m1")).full_name == "c1.s1.m1"
        assert (await uc.catalogs.get_catalog("c1")).name == "c1"
        for hidden in ["c1.s1.m2", "c1.s2.m3", "c2.s3.m4"]:
            await raises(NotFoundException, uc.models.get_registered_model(hidden))
        await raises(NotFoundException, uc.schemas.get_schema("c1.s2"))
        await raises(NotFoundException, uc.catalogs.get_catalog("c2"))
        # Without MANAGE, bob sees his own grants only, not carol's.
        listed = await uc.grants.get(SecurableType.REGISTERED_MODEL, "c1.s1.m1")
        assert [(a.principal, a.privileges) for a in listed.privilege_assignments] == [
            ("bob", [Privilege.EXECUTE])
        ]

    live_uc.run(bob_token, exactly_granted)


def test_use_only_user_cannot_delete_or_change(live_uc, admin_token, make_user, seeded):
    carol_token = live_uc.token(make_user("carol"))

    async def grant(uc):
        await uc.grants.update("catalog", "c1", change("carol", [Privilege.USE_CATALOG]))
        await uc.grants.update("schema", "c1.s1", change("carol", [Privilege.USE_SCHEMA]))
        await uc.grants.update("registered_model", "c1.s1.m1", change("carol", [Privilege.EXECUTE]))
        return await uc.catalogs.get_catalog("c1")

    before = live_uc.run(admin_token, grant)

    async def attempts(uc):
        exc = await raises(ForbiddenException, uc.catalogs.delete_catalog("c1", force=True))
        assert error_of(exc)["error_code"] == "PERMISSION_DENIED"
        await raises(ForbiddenException, uc.catalogs.delete_catalog("c1"))
        await raises(ForbiddenException, uc.schemas.delete_schema("c1.s1", force=True))
        await raises(ForbiddenException, uc.models.delete_registered_model("c1.s1.m1", force=True))
        await raises(
            ForbiddenException, uc.catalogs.update_catalog("c1", UpdateCatalog(comment="mine"))
        )
        await raises(
            ForbiddenException, uc.catalogs.update_catalog("c1", UpdateCatalog(new_name="x"))
        )
        await raises(
            ForbiddenException,
            uc.models.update_registered_model("c1.s1.m1", UpdateRegisteredModel(comment="x")),
        )
        # No granting oneself more.
        await raises(
            ForbiddenException,
            uc.grants.update("catalog", "c1", change("carol", [Privilege.CREATE_SCHEMA])),
        )
        await raises(
            ForbiddenException,
            uc.schemas.create_schema(CreateSchema(name="mine", catalog_name="c1")),
        )
        # Things carol cannot see are 404, not 403: no existence leak.
        await raises(NotFoundException, uc.models.delete_registered_model("c1.s1.m2", force=True))
        await raises(NotFoundException, uc.catalogs.delete_catalog("c2", force=True))

    live_uc.run(carol_token, attempts)

    async def survived(uc):
        after = await uc.catalogs.get_catalog("c1")
        assert (after.id, after.comment, after.updated_at) == (
            before.id,
            before.comment,
            before.updated_at,
        )
        assert (await uc.schemas.get_schema("c1.s1")).full_name == "c1.s1"
        models, _ = await collect(uc.models.list_registered_models, "registered_models")
        assert {m.full_name for m in models} == {"c1.s1.m1", "c1.s1.m2", "c1.s2.m3", "c2.s3.m4"}
        assert privileges_of(await uc.grants.get("catalog", "c1"), "carol") == {
            Privilege.USE_CATALOG
        }

    live_uc.run(admin_token, survived)

    events = live_uc.raw(
        "GET", "/api/v1/audit-events?actor=carol&outcome=DENIED&max_results=100", admin_token
    ).json()["events"]
    denied = {(e["action"], e["securable"]) for e in events}
    assert ("catalog.delete", "c1") in denied
    assert ("registered_model.delete", "c1.s1.m1") in denied


def test_anonymous_and_bad_tokens_are_401(live_uc, seeded):
    async def scenario(uc):
        exc = await raises(UnauthorizedException, uc.catalogs.list_catalogs())
        assert error_of(exc)["error_code"] == "UNAUTHENTICATED"
        await raises(UnauthorizedException, uc.catalogs.get_catalog("c1"))
        await raises(UnauthorizedException, uc.catalogs.delete_catalog("c1", force=True))

    live_uc.run(None, scenario)
    live_uc.run("not-a-real-token", scenario)


# --- owner transfer (raw PATCH) and audit ----------------------------------------------------


def test_owner_transfer_through_a_raw_patch(live_uc, admin_user, admin_token, make_user, seeded):
    bob_token = live_uc.token(make_user("bob"))
    carol_token = live_uc.token(make_user("carol"))
    # The typed update models cannot carry an owner; the client drops it silently.
    assert UpdateCatalog(owner="bob").to_dict() == {}

    # Carol, who cannot see c1, cannot take it either.
    response = live_uc.raw(
        "PATCH", f"{UC_PREFIX}/catalogs/c1", carol_token, json={"owner": "carol"}
    )
    assert (
        response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    )

    response = live_uc.raw("PATCH", f"{UC_PREFIX}/catalogs/c1", admin_token, json={"owner": "bob"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["owner"] == "bob"
    CatalogInfo.from_dict(response.json())  # the raw answer is a valid CatalogInfo
    response = live_uc.raw(
        "PATCH", f"{UC_PREFIX}/models/c1.s1.m1", admin_token, json={"owner": "carol"}
    )
    assert response.status_code == 200 and response.json()["owner"] == "carol"

    async def as_bob(uc):
        catalog = await uc.catalogs.get_catalog("c1")
        assert catalog.owner == "bob"
        # The owner holds everything below: schemas and models of c1 are his to see and change.
        schemas, _ = await collect(uc.schemas.list_schemas, "schemas", catalog_name="c1")
        assert {s.full_name for s in schemas} == {"c1.s1", "c1.s2"}
        updated = await uc.catalogs.update_catalog("c1", UpdateCatalog(comment="bob's now"))
        assert updated.comment == "bob's now"
        await uc.grants.update("catalog", "c1", change("carol", [Privilege.USE_CATALOG]))
        await raises(NotFoundException, uc.catalogs.get_catalog("c2"))

    live_uc.run(bob_token, as_bob)

    # Bob, now owner, hands c1 on to carol; he keeps nothing of it.
    response = live_uc.raw("PATCH", f"{UC_PREFIX}/catalogs/c1", bob_token, json={"owner": "carol"})
    assert response.status_code == 200 and response.json()["owner"] == "carol"

    async def bob_after(uc):
        await raises(NotFoundException, uc.catalogs.get_catalog("c1"))

    live_uc.run(bob_token, bob_after)

    response = live_uc.raw(
        "PATCH", f"{UC_PREFIX}/catalogs/c1", admin_token, json={"owner": "nobody"}
    )
    assert (
        response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    )

    events = live_uc.raw(
        "GET", "/api/v1/audit-events?action=catalog.update&securable=c1", admin_token
    ).json()["events"]
    owners = [e["details"].get("owner") for e in events if "owner" in e["details"]]
    assert {"from": admin_user.username, "to": "bob"} in owners
    assert {"from": "bob", "to": "carol"} in owners


def test_audit_shows_catalog_creation_with_its_actor(live_uc, admin_user, admin_token, make_user):
    dana = make_user("dana")
    dana_token = live_uc.token(dana)

    async def create(uc):
        await uc.catalogs.create_catalog(CreateCatalog(name="audited", comment="x"))

    live_uc.run(admin_token, create)

    async def grant(uc):
        # Dana may create catalogs: CREATE CATALOG on the metastore.
        await uc.grants.update("metastore", "steward", change("dana", [Privilege.CREATE_CATALOG]))

    live_uc.run(admin_token, grant)

    async def create_as_dana(uc):
        created = await uc.catalogs.create_catalog(CreateCatalog(name="danas"))
        assert created.owner == "dana"

    live_uc.run(dana_token, create_as_dana)

    response = live_uc.raw("GET", "/api/v1/audit-events?action=catalog.create", admin_token)
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    by_securable = {e["securable"]: e for e in events}
    assert set(by_securable) == {"audited", "danas"}
    assert all(e["action"] == "catalog.create" for e in events)
    assert by_securable["audited"]["actor"] == admin_user.username
    assert by_securable["audited"]["outcome"] == "SUCCESS"
    assert by_securable["audited"]["auth_method"] == "token"
    assert by_securable["danas"]["actor"] == "dana"

    # The audit trail is for metastore admins only.
    response = live_uc.raw("GET", "/api/v1/audit-events?action=catalog.create", dana_token)
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert live_uc.raw("GET", "/api/v1/audit-events", None).status_code == 401


def test_typed_client_cannot_parse_steward_only_privileges(live_uc, admin_token, seeded):
    """Documented limit (README): client 0.7.0's Privilege enum lacks MANAGE, BROWSE, APPLY TAG
    and ALL PRIVILEGES. Steward still reports such grants (hiding them would mislead auditors);
    the typed client fails to parse them, and plain HTTP reads them."""
    body = {"changes": [{"principal": "root", "add": ["MANAGE"], "remove": []}]}
    response = live_uc.raw("PATCH", f"{UC_PREFIX}/permissions/catalog/c1", admin_token, json=body)
    assert response.status_code == 200
    assert {"principal": "root", "principal_type": "USER", "privileges": ["MANAGE"]} in (
        response.json()["privilege_assignments"]
    )

    async def scenario(uc):
        await uc.grants.get(SecurableType.CATALOG, "c1")

    with pytest.raises(pydantic.ValidationError):
        live_uc.run(admin_token, scenario)
