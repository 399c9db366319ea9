"""Bad input through the Unity Catalog door (SECURITY_CASES 7, 8, 12, 13).

Every case must answer a clear error in {"error_code", "message"} form, never a 500, and leave
everything stored exactly as it was.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from accounts.models import User
from catalog.models import (
    Catalog,
    CatalogGroupGrant,
    CatalogUserGrant,
    MetastoreGroupGrant,
    MetastoreUserGrant,
    Schema,
    SchemaGroupGrant,
    SchemaUserGrant,
)
from registry.models import ModelGroupGrant, ModelUserGrant, RegisteredModel

UC = "/api/2.1/unity-catalog"
JSON = "application/json"

pytestmark = pytest.mark.django_db

GRANT_TABLES = [
    MetastoreUserGrant,
    MetastoreGroupGrant,
    CatalogUserGrant,
    CatalogGroupGrant,
    SchemaUserGrant,
    SchemaGroupGrant,
    ModelUserGrant,
    ModelGroupGrant,
]


def snapshot() -> dict:
    """Everything a bad request could damage (timestamps aside, which a no-op may touch)."""
    fields = ("id", "name", "comment", "properties", "owner_user_id", "owner_group_id")
    grants = {}
    for table in GRANT_TABLES:
        principal = "user_id" if "User" in table.__name__ else "group_id"
        grants[table.__name__] = sorted(
            (str(a), str(b), c)
            for a, b, c in table.objects.values_list(
                "content_object_id", principal, "permission__codename"
            )
        )
    return {
        "catalogs": sorted(map(repr, Catalog.objects.values_list(*fields))),
        "schemas": sorted(map(repr, Schema.objects.values_list(*fields, "full_name"))),
        "models": sorted(map(repr, RegisteredModel.objects.values_list(*fields, "full_name"))),
        "grants": grants,
    }


def assert_error(response, status: int, code: str | None = None, where=None) -> dict:
    assert response.status_code == status, (where, response.status_code, response.content[:400])
    assert response["Content-Type"].startswith(JSON), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["error_code"] == code, body
    return body


def send(
    api,
    method: str,
    path: str,
    body=None,
    *,
    raw: str | bytes | None = None,
    content_type: str = JSON,
):
    data = raw if raw is not None else ("" if body is None else json.dumps(body))
    return api.generic(method, path, data, content_type=content_type)


def token_of(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


@pytest.fixture
def world(admin_user, make_user, tree, grant):
    """main.ml.churn and other.s.m as the admin; bob holds a few grants, carol none."""
    tree("main.ml.churn", "other.s.m")
    make_user("bob")
    make_user("carol")
    grant("catalog", "main", "bob", "USE CATALOG")
    grant("schema", "main.ml", "bob", "USE SCHEMA")
    grant("registered_model", "main.ml.churn", "bob", "EXECUTE")
    return admin_user


@pytest.fixture
def admin(world, api_as):
    return api_as(world)


# --- bodies that are not a JSON object -------------------------------------------------------

WRITES = [
    ("POST", f"{UC}/catalogs"),
    ("PATCH", f"{UC}/catalogs/main"),
    ("POST", f"{UC}/schemas"),
    ("PATCH", f"{UC}/schemas/main.ml"),
    ("POST", f"{UC}/models"),
    ("PATCH", f"{UC}/models/main.ml.churn"),
    ("PATCH", f"{UC}/permissions/catalog/main"),
]

MALFORMED = [
    '{"name": "x",',
    "{name: x}",
    "{'name': 'x'}",
    '{"name": "x"} trailing',
    '{"name": NaN}',
    '{"name": "x", "comment": Infinity}',
    '{"name": "x", "name": "y"}',  # duplicate keys: which one would a proxy have checked?
    '{"comment": "a", "comment": "b"}',
    "[" * 100_000 + "]" * 100_000,  # absurd nesting must not become a RecursionError 500
    b"\xff\xfe{\x00}",  # not UTF-8
]


def test_malformed_json_is_400_and_changes_nothing(admin):
    before = snapshot()
    for raw in MALFORMED:
        for method, path in WRITES:
            response = send(admin, method, path, raw=raw)
            assert_error(response, 400, "MALFORMED_REQUEST", where=(method, path, raw[:40]))
    assert snapshot() == before


NOT_OBJECTS = ['[{"name": "x"}]', "[]", '"x"', '""', "42", "0", "true", "false", "null"]


def test_body_that_is_not_an_object_is_refused(admin):
    before = snapshot()
    for raw in NOT_OBJECTS:
        for method, path in WRITES:
            response = send(admin, method, path, raw=raw)
            assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=(method, path, raw))
    assert snapshot() == before


def test_an_empty_body_is_an_empty_object(admin):
    """The typed client sends no body for UpdateCatalog() with no fields: a no-op, not an error."""
    before = snapshot()
    response = send(admin, "PATCH", f"{UC}/catalogs/main", raw="")
    assert response.status_code == 200 and response.json()["name"] == "main"
    assert snapshot() == before
    assert_error(send(admin, "POST", f"{UC}/catalogs", raw=""), 400, "INVALID_PARAMETER_VALUE")


# --- wrong types and JSON null ------------------------------------------------------------------

WRONG_TYPES = [
    ("POST", f"{UC}/catalogs", {"name": 123}),
    ("POST", f"{UC}/catalogs", {"name": True}),
    ("POST", f"{UC}/catalogs", {"name": ["x"]}),
    ("POST", f"{UC}/catalogs", {"name": {"x": "y"}}),
    ("POST", f"{UC}/catalogs", {"name": 1.5}),
    ("POST", f"{UC}/catalogs", {"name": "x", "properties": {"k": 1}}),
    ("POST", f"{UC}/catalogs", {"name": "x", "properties": {"k": True}}),
    ("POST", f"{UC}/catalogs", {"name": "x", "properties": {"k": None}}),
    ("POST", f"{UC}/catalogs", {"name": "x", "properties": {"k": {"a": "b"}}}),
    ("POST", f"{UC}/catalogs", {"name": "x", "properties": {"k": ["v"]}}),
    ("POST", f"{UC}/catalogs", {"name": "x", "properties": ["k", "v"]}),
    ("POST", f"{UC}/catalogs", {"name": "x", "properties": "k=v"}),
    ("POST", f"{UC}/catalogs", {"name": "x", "comment": {}}),
    ("POST", f"{UC}/catalogs", {"name": "x", "comment": 5}),
    ("POST", f"{UC}/catalogs", {"name": "x", "comment": ["a"]}),
    ("POST", f"{UC}/catalogs", {"name": "x", "comment": "a\x00b"}),
    ("POST", f"{UC}/catalogs", {"name": "x", "storage_root": "/etc"}),
    ("PATCH", f"{UC}/catalogs/main", {"comment": {}}),
    ("PATCH", f"{UC}/catalogs/main", {"comment": False}),
    ("PATCH", f"{UC}/catalogs/main", {"properties": {"k": 1}}),
    ("PATCH", f"{UC}/catalogs/main", {"properties": {"": "v"}}),
    ("PATCH", f"{UC}/catalogs/main", {"properties": []}),
    ("PATCH", f"{UC}/catalogs/main", {"new_name": 5}),
    ("PATCH", f"{UC}/catalogs/main", {"new_name": ["other"]}),
    ("PATCH", f"{UC}/catalogs/main", {"owner": 5}),
    ("PATCH", f"{UC}/catalogs/main", {"owner": "nobody"}),
    ("PATCH", f"{UC}/catalogs/main", {"comment": "ok", "owner": "nobody"}),  # all or nothing
    ("PATCH", f"{UC}/schemas/main.ml", {"properties": {"k": 1}}),
    ("PATCH", f"{UC}/schemas/main.ml", {"comment": {}}),
    ("PATCH", f"{UC}/models/main.ml.churn", {"comment": 1}),
    ("PATCH", f"{UC}/models/main.ml.churn", {"new_name": {}}),
    ("POST", f"{UC}/schemas", {"name": "s2", "catalog_name": 1}),
    ("POST", f"{UC}/schemas", {"name": 1, "catalog_name": "main"}),
    ("POST", f"{UC}/schemas", {"name": "s2", "catalog_name": "main", "properties": {"a": 2}}),
    ("POST", f"{UC}/models", {"name": "m2", "catalog_name": "main", "schema_name": ["ml"]}),
    ("POST", f"{UC}/models", {"name": 7, "catalog_name": "main", "schema_name": "ml"}),
    (
        "POST",
        f"{UC}/models",
        {
            "name": "m2",
            "catalog_name": "main",
            "schema_name": "ml",
            "storage_location": "file:///etc",
        },
    ),
    ("PATCH", f"{UC}/permissions/catalog/main", {"changes": "x"}),
    ("PATCH", f"{UC}/permissions/catalog/main", {"changes": {}}),
    ("PATCH", f"{UC}/permissions/catalog/main", {"changes": []}),
    ("PATCH", f"{UC}/permissions/catalog/main", {"changes": [5]}),
    (
        "PATCH",
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": "carol", "add": "USE CATALOG"}]},
    ),
    ("PATCH", f"{UC}/permissions/catalog/main", {"changes": [{"principal": "carol", "add": [5]}]}),
    (
        "PATCH",
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": 5, "add": ["USE CATALOG"]}]},
    ),
    (
        "PATCH",
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": ["carol"], "add": ["USE CATALOG"]}]},
    ),
]


def test_wrong_types_are_400_and_change_nothing(admin):
    before = snapshot()
    for method, path, body in WRONG_TYPES:
        response = send(admin, method, path, body)
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=(method, path, body))
    assert snapshot() == before


NULL_REFUSED = [
    ("POST", f"{UC}/catalogs", {"name": None}),
    ("POST", f"{UC}/schemas", {"name": "s2", "catalog_name": None}),
    ("POST", f"{UC}/schemas", {"name": None, "catalog_name": "main"}),
    ("POST", f"{UC}/models", {"name": "m2", "catalog_name": "main", "schema_name": None}),
    ("PATCH", f"{UC}/permissions/catalog/main", {"changes": None}),
    ("PATCH", f"{UC}/permissions/catalog/main", {"changes": [None]}),
    (
        "PATCH",
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": None, "add": ["USE CATALOG"]}]},
    ),
    (
        "PATCH",
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": "carol", "add": [None]}]},
    ),
]


def test_null_where_a_value_is_required_is_400(admin):
    before = snapshot()
    for method, path, body in NULL_REFUSED:
        response = send(admin, method, path, body)
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=(method, path, body))
    assert snapshot() == before


@pytest.mark.parametrize(
    "path",
    [f"{UC}/catalogs/main", f"{UC}/schemas/main.ml", f"{UC}/models/main.ml.churn"],
)
def test_null_optional_fields_mean_not_given(admin, path):
    """UC clients never send null; a null optional field changes nothing (it does not clear)."""
    admin.patch(
        path,
        {"comment": "keep", **({"properties": {"k": "v"}} if "models" not in path else {})},
        format="json",
    )
    before = snapshot()
    body = {"comment": None, "properties": None, "new_name": None, "owner": None}
    response = send(admin, "PATCH", path, body)
    assert response.status_code == 200, response.content
    assert response.json()["comment"] == "keep"
    assert snapshot() == before


def test_null_add_and_remove_grant_nothing(admin):
    before = snapshot()
    body = {"changes": [{"principal": "carol", "add": None, "remove": None}]}
    response = send(admin, "PATCH", f"{UC}/permissions/catalog/main", body)
    assert response.status_code == 200
    assert "carol" not in {a["principal"] for a in response.json()["privilege_assignments"]}
    assert snapshot() == before


# --- names: one canonical form, or 400 ------------------------------------------------------

BAD_NAMES = [
    "a.b",
    "a b",
    " main",
    "main ",
    "m\u0430in",  # Cyrillic a
    "\uff4d\uff41\uff49\uff4e",  # fullwidth "main"
    "\u212aey",  # Kelvin sign: "\u212a".lower() == "k"
    "stra\u00dfe",  # sharp s: upper() is "SS"
    "\u0131tem",  # dotless i: upper() is "I"
    "main\u200b",  # zero-width space
    "mai\u0301n",  # combining accent
    "ma\x00in",
    "ma\nin",
    "main\n",
    "ma\tin",
    "ma\rin",
    "\x7f",
    "\x1b[31m",
    "",
    "   ",
    "a-b",
    "a/b",
    "../x",
    "%2e%2e",
    "a" * 256,
    "a" * 10_000,
]


def test_bad_names_are_refused_everywhere(admin):
    before = snapshot()
    for name in BAD_NAMES:
        _bad_name_in_bodies(admin, name)
    assert snapshot() == before


def _bad_name_in_bodies(admin, name: str) -> None:
    bodies = [
        ("POST", f"{UC}/catalogs", {"name": name}),
        ("POST", f"{UC}/schemas", {"name": name, "catalog_name": "main"}),
        ("POST", f"{UC}/schemas", {"name": "fresh", "catalog_name": name}),
        ("POST", f"{UC}/models", {"name": name, "catalog_name": "main", "schema_name": "ml"}),
        ("POST", f"{UC}/models", {"name": "fresh", "catalog_name": "main", "schema_name": name}),
        ("PATCH", f"{UC}/catalogs/other", {"new_name": name}),
        ("PATCH", f"{UC}/schemas/other.s", {"new_name": name}),
        ("PATCH", f"{UC}/models/other.s.m", {"new_name": name}),
    ]
    for method, path, body in bodies:
        response = send(admin, method, path, body)
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=(method, path, name[:40]))


def test_bad_names_in_the_path_are_400_never_an_alias(admin):
    """A confusable never resolves to the ASCII object it imitates."""
    before = snapshot()
    for name in BAD_NAMES:
        if name.strip() and "/" not in name:
            _bad_name_in_paths(admin, quote(name, safe=""))
    assert snapshot() == before


def _bad_name_in_paths(admin, q: str) -> None:
    for path in [
        f"{UC}/catalogs/{q}",
        f"{UC}/schemas/main.{q}",
        f"{UC}/schemas/{q}.ml",
        f"{UC}/models/main.ml.{q}",
        f"{UC}/permissions/catalog/{q}",
        f"{UC}/permissions/registered_model/main.{q}.churn",
        f"{UC}/schemas?catalog_name={q}",
        f"{UC}/models?catalog_name=main&schema_name={q}",
    ]:
        assert_error(admin.get(path), 400, "INVALID_PARAMETER_VALUE", where=path[:120])
    for path in [f"{UC}/catalogs/{q}", f"{UC}/schemas/main.{q}", f"{UC}/models/main.ml.{q}"]:
        response = admin.delete(f"{path}?force=true")
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=path[:120])


def test_full_names_of_the_wrong_shape_are_400(admin):
    for path in [
        "schemas/main",
        "schemas/main.ml.churn",
        "schemas/main..ml",
        "schemas/.main.ml",
        "schemas/main.ml.",
        "models/main.ml",
        "models/main.ml.churn.x",
        "models/main..churn",
        "permissions/schema/main",
        "permissions/registered_model/main.ml",
    ]:
        assert_error(admin.get(f"{UC}/{path}"), 400, "INVALID_PARAMETER_VALUE", where=path)


def test_longest_name_is_accepted(admin):
    name = "n" * 255
    response = admin.post(f"{UC}/catalogs", {"name": name}, format="json")
    assert response.status_code == 200 and response.json()["name"] == name


def test_names_differing_only_by_case_are_one_name(admin):
    main_id = admin.get(f"{UC}/catalogs/main").json()["id"]
    before = snapshot()
    for name in ["MAIN", "Main", "mAIN"]:
        body = assert_error(
            admin.post(f"{UC}/catalogs", {"name": name}, format="json"),
            409,
            "RESOURCE_ALREADY_EXISTS",
        )
        assert "main" in body["message"]
    assert_error(
        admin.post(f"{UC}/schemas", {"name": "ML", "catalog_name": "Main"}, format="json"),
        409,
        "RESOURCE_ALREADY_EXISTS",
    )
    assert_error(
        admin.post(
            f"{UC}/models",
            {"name": "Churn", "catalog_name": "MAIN", "schema_name": "Ml"},
            format="json",
        ),
        409,
        "RESOURCE_ALREADY_EXISTS",
    )
    assert_error(
        admin.patch(f"{UC}/catalogs/other", {"new_name": "MAIN"}, format="json"),
        409,
        "RESOURCE_ALREADY_EXISTS",
    )
    assert snapshot() == before
    # Every spelling reaches the one object.
    for spelling in ["MAIN", "Main", "main"]:
        got = admin.get(f"{UC}/catalogs/{spelling}").json()
        assert (got["name"], got["id"]) == ("main", main_id)
    assert admin.get(f"{UC}/models/MAIN.ML.CHURN").json()["full_name"] == "main.ml.churn"
    # A case-only rename of a thing to itself changes nothing.
    response = admin.patch(f"{UC}/models/other.s.m", {"new_name": "M"}, format="json")
    assert response.status_code == 200 and response.json()["full_name"] == "other.s.m"
    assert snapshot() == before


def test_grants_through_another_spelling_land_on_the_one_object(admin):
    response = admin.patch(
        f"{UC}/permissions/catalog/MAIN",
        {"changes": [{"principal": "carol", "add": ["USE CATALOG"], "remove": []}]},
        format="json",
    )
    assert response.status_code == 200
    got = admin.get(f"{UC}/permissions/catalog/main?principal=carol").json()
    assert got["privilege_assignments"][0]["privileges"] == ["USE CATALOG"]


# --- content type and query parameters ------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/html",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/octet-stream",
    ],
)
def test_wrong_content_type_is_415(admin, content_type):
    before = snapshot()
    body = json.dumps({"name": "x", "comment": "c", "catalog_name": "main", "schema_name": "ml"})
    for method, path in WRITES:
        response = send(admin, method, path, raw=body, content_type=content_type)
        assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE", where=(method, path))
    assert snapshot() == before


def test_json_with_charset_is_fine(admin):
    response = send(
        admin,
        "POST",
        f"{UC}/catalogs",
        {"name": "x"},
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 200 and response.json()["name"] == "x"


DUPLICATED = [
    ("DELETE", f"{UC}/catalogs/main?force=true&force=false"),
    ("DELETE", f"{UC}/catalogs/main?force=false&force=true"),
    ("DELETE", f"{UC}/schemas/main.ml?force=true&force=true"),
    ("DELETE", f"{UC}/models/main.ml.churn?force=true&force=false"),
    ("GET", f"{UC}/catalogs?max_results=1&max_results=2"),
    ("GET", f"{UC}/catalogs?page_token=a&page_token=b"),
    ("GET", f"{UC}/schemas?catalog_name=main&catalog_name=other"),
    ("GET", f"{UC}/models?catalog_name=main&catalog_name=other"),
    ("GET", f"{UC}/models?catalog_name=main&schema_name=ml&schema_name=s"),
    ("GET", f"{UC}/permissions/catalog/main?principal=bob&principal=carol"),
]


def test_duplicated_query_parameters_are_400(admin):
    before = snapshot()
    for method, path in DUPLICATED:
        response = send(admin, method, path)
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=(method, path))
    assert snapshot() == before


def test_force_must_be_a_boolean(admin):
    before = snapshot()
    for value in ["maybe", "2", "TRUE!", "null", "%00"]:
        response = admin.delete(f"{UC}/catalogs/main?force={value}")
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=value)
    assert snapshot() == before


LISTS = [f"{UC}/catalogs?", f"{UC}/schemas?catalog_name=main&", f"{UC}/models?"]
BAD_TOKENS = [
    "garbage",
    "!!!!",
    "%25%25%25",
    "%C3%A9",
    token_of("just a string"),
    token_of([1, 2]),
    token_of({"k": 5}),
    token_of({"k": None}),
    token_of({"x": "main"}),
    token_of({"k": "\x00"}),  # a NUL reached PostgreSQL and answered 500
    token_of({"k": "main\x00"}),
    token_of({"k": "a\nb"}),
    token_of({"k": ""}),
    base64.urlsafe_b64encode(b"not json").decode(),
    "a" * 5000,
]


def test_invalid_page_token_is_400(admin):
    for token in BAD_TOKENS:
        for path in LISTS:
            response = admin.get(f"{path}page_token={token}")
            assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=(path, token[:40]))


def test_a_forged_page_token_reveals_nothing(world, api_as, make_user, tree):
    """Keyset tokens are positions, not capabilities: bob still sees only his own things."""
    tree("aaa.x.y", "zzz.x.y")
    bob = api_as(make_user("bob2"))
    admin = api_as(world)
    for name in ["aaa", "main"]:
        admin.patch(
            f"{UC}/permissions/catalog/{name}",
            {"changes": [{"principal": "bob2", "add": ["USE CATALOG"], "remove": []}]},
            format="json",
        )
    for key in ["", "a", "m", "main", "mzzz", "o"]:
        token = f"&page_token={token_of({'k': key})}" if key else ""
        got = bob.get(f"{UC}/catalogs?max_results=1000{token}").json()
        names = [c["name"] for c in got["catalogs"]]
        assert set(names) <= {"aaa", "main"} and not got["next_page_token"]
        models = bob.get(f"{UC}/models?max_results=1000{token}").json()
        assert models["registered_models"] == []


@pytest.mark.parametrize("value,count", [("0", 2), ("100000", 2), ("1", 1)])
def test_max_results_is_clamped(admin, value, count):
    # 0 is Unity Catalog's "let the server choose"; negative sizes are refused (below).
    response = admin.get(f"{UC}/catalogs?max_results={value}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["catalogs"]) == count  # main and other: nothing hidden from the admin
    assert bool(body["next_page_token"]) == (count == 1)


def test_max_results_must_be_an_integer(admin):
    for value in ["abc", "1.5", "1e3", "0x10", "%00", "ten", "-1", str(2**63), "+5", " 5", ""]:
        for path in LISTS:
            response = admin.get(f"{path}max_results={value}")
            assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=(path, value))


def test_schema_list_needs_catalog_name(admin):
    assert_error(admin.get(f"{UC}/schemas"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.get(f"{UC}/models?schema_name=ml"), 400, "INVALID_PARAMETER_VALUE")


# --- grants ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "securable_type",
    ["foo", "table", "function", "volume", "tables", "registered%20model", "catalog.", "%00"],
)
def test_unknown_securable_type_is_400(admin, securable_type):
    before = snapshot()
    for door in ["permissions", "effective-permissions"]:
        response = admin.get(f"{UC}/{door}/{securable_type}/main")
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=door)
    body = {"changes": [{"principal": "carol", "add": ["USE CATALOG"], "remove": []}]}
    response = send(admin, "PATCH", f"{UC}/permissions/{securable_type}/main", body)
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert snapshot() == before


NOT_GRANTABLE = [
    ("registered_model", "main.ml.churn", "USE CATALOG"),
    ("registered_model", "main.ml.churn", "USE SCHEMA"),
    ("registered_model", "main.ml.churn", "CREATE MODEL"),
    ("registered_model", "main.ml.churn", "CREATE SCHEMA"),
    ("registered_model", "main.ml.churn", "CREATE CATALOG"),
    ("schema", "main.ml", "USE CATALOG"),
    ("schema", "main.ml", "CREATE SCHEMA"),
    ("schema", "main.ml", "CREATE CATALOG"),
    ("catalog", "main", "CREATE CATALOG"),
    ("metastore", "steward", "USE CATALOG"),
    ("metastore", "steward", "EXECUTE"),
    # Real UC privileges Steward has no use for, and nonsense.
    ("catalog", "main", "SELECT"),
    ("catalog", "main", "CREATE TABLE"),
    ("catalog", "main", "READ VOLUME"),
    ("catalog", "main", "FLY"),
    ("catalog", "main", ""),
    ("catalog", "main", "USE\x00CATALOG"),
    ("catalog", "main", "OWNER"),
]


def test_privileges_not_grantable_there_are_400(admin):
    before = snapshot()
    for securable_type, full_name, privilege in NOT_GRANTABLE:
        path = f"{UC}/permissions/{securable_type}/{full_name}"
        for change in [
            {"principal": "carol", "add": [privilege], "remove": []},
            {"principal": "carol", "add": [], "remove": [privilege]},
        ]:
            response = send(admin, "PATCH", path, {"changes": [change]})
            assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=(path, change))
    assert snapshot() == before


def test_one_bad_change_applies_none_of_the_request(admin):
    before = snapshot()
    body = {
        "changes": [
            {"principal": "carol", "add": ["EXECUTE"], "remove": []},
            {"principal": "carol", "add": ["USE CATALOG"], "remove": []},
        ]
    }
    response = send(admin, "PATCH", f"{UC}/permissions/registered_model/main.ml.churn", body)
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    body = {
        "changes": [
            {"principal": "carol", "add": ["EXECUTE"], "remove": []},
            {"principal": "nobody", "add": ["EXECUTE"], "remove": []},
        ]
    }
    response = send(admin, "PATCH", f"{UC}/permissions/registered_model/main.ml.churn", body)
    assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert snapshot() == before


def test_unknown_principal_is_400(admin):
    before = snapshot()
    # "BOB" is bob (principal names compare case-insensitively): tests/core/test_door_consistency.py
    for principal in ["nobody", "", "   ", "bob ", " bob", "b\u043eb", "bob\x00", "x" * 300]:
        body = {"changes": [{"principal": principal, "add": ["USE CATALOG"], "remove": []}]}
        response = send(admin, "PATCH", f"{UC}/permissions/catalog/main", body)
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=principal[:40])
        # Not as an owner either.
        response = send(admin, "PATCH", f"{UC}/catalogs/main", {"owner": principal})
        assert_error(response, 400, "INVALID_PARAMETER_VALUE", where=principal[:40])
    assert snapshot() == before


def test_inactive_user_is_not_a_principal(admin, make_user):
    make_user("gone", is_active=False)
    before = snapshot()
    body = {"changes": [{"principal": "gone", "add": ["USE CATALOG"], "remove": []}]}
    assert_error(
        send(admin, "PATCH", f"{UC}/permissions/catalog/main", body), 400, "INVALID_PARAMETER_VALUE"
    )
    assert snapshot() == before


# --- the same parameter in path, query and body (case 13) -----------------------------------


def test_body_cannot_redirect_the_object_named_in_the_path(admin):
    other_before = admin.get(f"{UC}/catalogs/other").json()
    response = admin.patch(
        f"{UC}/catalogs/main",
        {"name": "other", "full_name": "other", "id": other_before["id"], "comment": "x"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["name"] == "main"
    assert admin.get(f"{UC}/catalogs/main").json()["comment"] == "x"
    assert admin.get(f"{UC}/catalogs/other").json() == other_before


def test_query_cannot_redirect_a_create(admin):
    response = admin.post(
        f"{UC}/schemas?catalog_name=other", {"name": "fresh", "catalog_name": "main"}, format="json"
    )
    assert response.status_code == 200 and response.json()["full_name"] == "main.fresh"
    assert admin.get(f"{UC}/schemas/other.fresh").status_code == 404


def test_force_in_a_delete_body_is_not_force(admin):
    before = snapshot()
    response = send(admin, "DELETE", f"{UC}/catalogs/main", {"force": True})
    assert_error(response, 400, "FAILED_PRECONDITION")
    response = send(admin, "DELETE", f"{UC}/catalogs/main?force=false", {"force": True})
    assert_error(response, 400, "FAILED_PRECONDITION")
    assert snapshot() == before


def test_weak_holder_with_bad_input_learns_nothing(world, api_as):
    """Carol holds nothing: hidden objects answer 404 and bad names 400, never a 500 or 403."""
    carol = api_as(User.objects.get(username="carol"))
    before = snapshot()
    assert_error(carol.get(f"{UC}/catalogs/main"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(carol.get(f"{UC}/catalogs/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(carol.delete(f"{UC}/catalogs/main?force=true"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(carol.patch(f"{UC}/catalogs/main", {"comment": "x"}, format="json"), 404)
    body = {"changes": [{"principal": "carol", "add": ["USE CATALOG"], "remove": []}]}
    assert_error(send(carol, "PATCH", f"{UC}/permissions/catalog/main", body), 404)
    assert carol.get(f"{UC}/catalogs").json()["catalogs"] == []
    assert snapshot() == before


# --- delete and recreate c.s.m (case 8) -----------------------------------------------------


def _assignments(api, securable_type: str, full_name: str) -> list:
    response = api.get(f"{UC}/permissions/{securable_type}/{full_name}")
    assert response.status_code == 200, response.content
    return response.json()["privilege_assignments"]


def test_recreated_catalog_schema_model_carry_no_grants(world, api_as, grant):
    admin, bob = api_as(world), api_as(User.objects.get(username="bob"))
    grant("registered_model", "main.ml.churn", "bob", "MODIFY")
    grant("catalog", "main", "carol", "CREATE SCHEMA")
    assert bob.get(f"{UC}/models/main.ml.churn").status_code == 200
    assert admin.delete(f"{UC}/catalogs/main?force=true").status_code == 200
    for model_class in (Catalog, Schema, RegisteredModel):
        assert not model_class.objects.filter(name__in=["main", "ml", "churn"]).exists()
    for table in GRANT_TABLES[2:]:
        assert not table.objects.exists(), table.__name__

    admin.post(f"{UC}/catalogs", {"name": "main"}, format="json")
    admin.post(f"{UC}/schemas", {"name": "ml", "catalog_name": "main"}, format="json")
    response = admin.post(
        f"{UC}/models",
        {"name": "churn", "catalog_name": "main", "schema_name": "ml"},
        format="json",
    )
    assert response.status_code == 200
    assert _assignments(admin, "catalog", "main") == []
    assert _assignments(admin, "schema", "main.ml") == []
    assert _assignments(admin, "registered_model", "main.ml.churn") == []
    assert_error(bob.get(f"{UC}/models/main.ml.churn"), 404)
    assert_error(bob.get(f"{UC}/catalogs/main"), 404)
    assert bob.get(f"{UC}/catalogs").json()["catalogs"] == []
    assert bob.get(f"{UC}/models").json()["registered_models"] == []


def test_recreated_model_alone_carries_no_grants(world, api_as):
    admin, bob = api_as(world), api_as(User.objects.get(username="bob"))
    assert bob.get(f"{UC}/models/main.ml.churn").status_code == 200
    assert admin.delete(f"{UC}/models/main.ml.churn").status_code == 200
    response = admin.post(
        f"{UC}/models",
        {"name": "CHURN", "catalog_name": "main", "schema_name": "ml"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["full_name"] == "main.ml.churn"
    assert _assignments(admin, "registered_model", "main.ml.churn") == []
    # The catalog and schema grants were never deleted, so they still stand...
    assert [a["principal"] for a in _assignments(admin, "schema", "main.ml")] == ["bob"]
    # ...but USE gates alone show nothing: bob's EXECUTE on the old model is gone.
    assert_error(bob.get(f"{UC}/models/main.ml.churn"), 404)
    assert bob.get(f"{UC}/models?catalog_name=main").json()["registered_models"] == []
