"""SCIM 2.0 provisioning: users, groups, nested groups, filters, paging, PATCH dialects of
Okta and Entra ID, SCIM errors, admin-only access and the audit trail of every write."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.models import GroupNesting, User
from audit.models import AuditEvent
from catalog import authz
from core.actor import Actor

SCIM = "/api/scim/v2"
SCIM_JSON = "application/scim+json"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@pytest.fixture(autouse=True)
def _clear_throttle():
    cache.clear()
    yield
    cache.clear()


class Scim:
    """A SCIM client: bodies sent as application/scim+json, answers decoded."""

    def __init__(self, client: APIClient):
        self.client = client

    def _send(self, method: str, path: str, body=None, content_type: str = SCIM_JSON):
        data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        return getattr(self.client, method)(f"{SCIM}{path}", data=data, content_type=content_type)

    def get(self, path: str, **params):
        return self.client.get(f"{SCIM}{path}", params)

    def post(self, path, body, **kw):
        return self._send("post", path, body, **kw)

    def put(self, path, body, **kw):
        return self._send("put", path, body, **kw)

    def patch(self, path, operations, **kw):
        return self._send("patch", path, {"schemas": [PATCH_URN], "Operations": operations}, **kw)

    def delete(self, path):
        return self.client.delete(f"{SCIM}{path}")

    def create_user(self, user_name: str, **extra) -> dict:
        response = self.post("/Users", {"schemas": [USER_URN], "userName": user_name, **extra})
        assert response.status_code == 201, response.content
        return response.json()

    def create_group(self, name: str, members=(), **extra) -> dict:
        body = {
            "schemas": [GROUP_URN],
            "displayName": name,
            "members": [{"value": m} for m in members],
            **extra,
        }
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.content
        return response.json()


@pytest.fixture
def scim(admin_user, api_as) -> Scim:
    return Scim(api_as(admin_user))


def assert_scim_error(response, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(SCIM_JSON)
    body = response.json()
    assert body["schemas"] == [ERROR_URN]
    assert body["status"] == str(status)
    assert body["detail"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def member_values(group: dict) -> set[str]:
    return {m["value"] for m in group.get("members", [])}


# --- users ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_user_returns_scim_resource_with_unusable_password(scim):
    response = scim.post(
        "/Users",
        {
            "schemas": [USER_URN],
            "userName": "alice@example.com",
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "displayName": "Alice L.",
            "emails": [{"value": "alice@example.com", "type": "work", "primary": True}],
            "active": True,
            "externalId": "00u1abc",
            "title": "Engineer",  # a core attribute Steward does not store: ignored
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "ML"},
        },
    )
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith(SCIM_JSON)
    body = response.json()
    user = User.objects.get(username="alice@example.com")
    assert body["id"] == str(user.pk) and isinstance(body["id"], str)
    assert body["schemas"] == [USER_URN]
    assert body["userName"] == "alice@example.com"
    assert body["name"]["givenName"] == "Alice" and body["name"]["familyName"] == "Liddell"
    assert body["displayName"] == "Alice L." and body["externalId"] == "00u1abc"
    assert body["emails"] == [{"value": "alice@example.com", "type": "work", "primary": True}]
    assert body["active"] is True and body["groups"] == []
    meta = body["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"].endswith(f"/api/scim/v2/Users/{user.pk}")
    assert response["Location"] == meta["location"]
    assert meta["created"] and meta["lastModified"] >= meta["created"]
    assert not user.has_usable_password() and user.kind == User.Kind.USER
    assert not user.is_staff and not user.is_superuser


@pytest.mark.django_db
def test_create_accepts_plain_json_and_answers_scim_json(scim):
    response = scim.post("/Users", {"userName": "bob"}, content_type="application/json")
    assert response.status_code == 201
    assert response["Content-Type"].startswith(SCIM_JSON)
    assert response.json()["active"] is True


@pytest.mark.django_db
def test_duplicate_user_name_is_409_uniqueness_case_insensitively(scim):
    scim.create_user("carol")
    for name in ["carol", "CAROL"]:
        assert_scim_error(scim.post("/Users", {"userName": name}), 409, "uniqueness")
    assert User.objects.filter(username__iexact="carol").count() == 1


@pytest.mark.django_db
def test_user_and_group_names_share_one_namespace(scim):
    scim.create_group("data-eng")
    assert_scim_error(scim.post("/Users", {"userName": "data-eng"}), 409, "uniqueness")
    scim.create_user("dave")
    assert_scim_error(scim.post("/Groups", {"displayName": "Dave"}), 409, "uniqueness")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"userName": ""},
        {"userName": "has space"},
        {"userName": 42},
        {"userName": "x" * 151},
        {"userName": "ok", "active": "maybe"},
        {"userName": "ok", "emails": [{"value": "not-an-email"}]},
        {"userName": "ok", "emails": "a@b.c"},
        {"userName": "ok", "name": "Ok"},
        {"userName": "ok", "nosuchAttribute": 1},
        {"userName": "ok\x00"},
    ],
)
def test_invalid_user_bodies_are_400_invalid_value(scim, body):
    assert_scim_error(scim.post("/Users", body), 400, "invalidValue")
    assert not User.objects.filter(username="ok").exists()


@pytest.mark.django_db
def test_get_user_and_unknown_or_service_principal_ids_are_404(scim, make_user):
    created = scim.create_user("erin")
    response = scim.get(f"/Users/{created['id']}")
    assert response.status_code == 200 and response.json()["userName"] == "erin"
    bot = make_user("ci-bot", kind=User.Kind.SERVICE_PRINCIPAL)
    for missing in ["999999", "abc", str(bot.pk), "g1"]:
        assert_scim_error(scim.get(f"/Users/{missing}"), 404)


@pytest.mark.django_db
def test_list_users_pages_with_start_index_and_count(scim, make_user):
    make_user("ci-bot", kind=User.Kind.SERVICE_PRINCIPAL)  # not a SCIM user
    for i in range(5):
        scim.create_user(f"user{i}")
    everyone = scim.get("/Users").json()
    assert everyone["schemas"] == [LIST_URN]
    names = [r["userName"] for r in everyone["Resources"]]
    assert "ci-bot" not in names and "root" in names
    assert everyone["totalResults"] == 6 and everyone["itemsPerPage"] == 6
    page = scim.get("/Users", startIndex=2, count=2).json()
    assert page["totalResults"] == 6 and page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [r["userName"] for r in page["Resources"]] == names[1:3]
    tail = scim.get("/Users", startIndex=6, count=10).json()
    assert [r["userName"] for r in tail["Resources"]] == names[5:]
    assert scim.get("/Users", startIndex=0, count=1).json()["startIndex"] == 1
    only_total = scim.get("/Users", count=0).json()
    assert only_total["totalResults"] == 6 and only_total["Resources"] == []
    assert_scim_error(scim.get("/Users", count="many"), 400, "invalidValue")


@pytest.mark.django_db
def test_filter_users_by_user_name_external_id_and_combinations(scim):
    scim.create_user("Fay@Example.com", externalId="ext-1", displayName="Fay")
    scim.create_user("gus@example.com", externalId="ext-2", active=False)
    scim.create_user("hal@other.org", externalId="ext-3", displayName="Hal")

    def names(expr: str) -> list[str]:
        response = scim.get("/Users", filter=expr)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["totalResults"] == len(body["Resources"])
        return sorted(r["userName"] for r in body["Resources"])

    # userName is case-insensitive; externalId is case-exact (RFC 7643)
    assert names('userName eq "fay@example.com"') == ["Fay@Example.com"]
    assert names(f'{USER_URN}:userName eq "FAY@example.com"') == ["Fay@Example.com"]
    assert names('externalId eq "ext-2"') == ["gus@example.com"]
    assert names('externalId eq "EXT-2"') == []
    assert names('userName eq "nobody"') == []
    assert names('externalId eq "ext-1" or externalId eq "ext-3"') == [
        "Fay@Example.com",
        "hal@other.org",
    ]
    assert names('userName ew "@example.com" and active eq false') == ["gus@example.com"]
    # `and` binds tighter than `or` (the parser alone would group it the other way)
    assert names('userName eq "hal@other.org" or userName sw "fay" and active eq false') == [
        "hal@other.org"
    ]
    assert names('(userName eq "hal@other.org" or userName sw "fay") and active eq true') == [
        "Fay@Example.com",
        "hal@other.org",
    ]
    assert names('not (externalId pr) and userName eq "root"') == ["root"]
    assert names('displayName pr and userName ne "hal@other.org"') == ["Fay@Example.com"]


@pytest.mark.django_db
def test_filter_users_by_email(scim):
    scim.create_user("ivy", emails=[{"value": "ivy@lab.org", "primary": True}])
    scim.create_user("jon", emails=[{"value": "jon@corp.com"}])
    got = scim.get("/Users", filter='emails[value ew "@lab.org"]').json()["Resources"]
    assert [r["userName"] for r in got] == ["ivy"]
    got = scim.get("/Users", filter='emails.value eq "JON@corp.com"').json()["Resources"]
    assert [r["userName"] for r in got] == ["jon"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "expr",
    [
        'nosuch eq "x"',
        'userName eq "a" or nosuch eq "b"',
        "userName eq",
        'userName "a"',
        'userName eq "a" and',
        "userName eq alice",
        "active eq 12",
        'active eq "yes"',
        'active co "t"',
        'emails[type eq "work"]',
        'urn:example:ext:1.0:User:userName eq "a"',
        'userName eq "a" ) or (',
        "",
        "(" * 300 + 'userName eq "a"' + ")" * 300,
    ],
)
def test_unsupported_or_malformed_filters_are_400_invalid_filter(scim, expr):
    assert_scim_error(scim.get("/Users", filter=expr), 400, "invalidFilter")


@pytest.mark.django_db
def test_put_replaces_user_and_clears_omitted_attributes(scim):
    user = scim.create_user(
        "kim", displayName="Kim", externalId="e-1", emails=[{"value": "kim@x.org"}]
    )
    response = scim.put(
        f"/Users/{user['id']}",
        {"schemas": [USER_URN], "userName": "kim.new", "name": {"givenName": "Kim"}},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["userName"] == "kim.new" and body["name"]["givenName"] == "Kim"
    assert "displayName" not in body and "externalId" not in body and "emails" not in body
    assert body["active"] is True  # omitted active is left as it is
    stored = User.objects.get(pk=int(user["id"]))
    assert stored.username == "kim.new" and stored.email == "" and stored.external_id == ""
    other = scim.create_user("lee")
    assert_scim_error(scim.put(f"/Users/{other['id']}", {"userName": "KIM.NEW"}), 409, "uniqueness")
    assert_scim_error(scim.put("/Users/424242", {"userName": "zed"}), 404)


@pytest.mark.django_db
def test_patch_user_okta_style_deactivates_and_reactivates(scim):
    user = scim.create_user("mia")
    response = scim.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"active": False}}])
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    assert User.objects.get(pk=int(user["id"])).is_active is False
    response = scim.patch(
        f"/Users/{user['id']}", [{"op": "replace", "path": "active", "value": True}]
    )
    assert response.json()["active"] is True


@pytest.mark.django_db
def test_patch_user_entra_style_operations(scim):
    user = scim.create_user("ned", externalId="old")
    response = scim.patch(
        f"/Users/{user['id']}",
        [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "displayName", "value": "Ned S."},
            {"op": "Replace", "path": "name.givenName", "value": "Ned"},
            {"op": "Replace", "path": "name.familyName", "value": "Stark"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ned@north.org"},
            {"op": "Replace", "path": "externalId", "value": "new"},
            {"op": "Add", "path": "title", "value": "Lord"},
            {
                "op": "Add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "value": "North",
            },
        ],
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["active"] is False and body["displayName"] == "Ned S."
    assert body["name"] == {"givenName": "Ned", "familyName": "Stark", "formatted": "Ned Stark"}
    assert body["emails"] == [{"value": "ned@north.org", "type": "work", "primary": True}]
    assert body["externalId"] == "new"
    response = scim.patch(
        f"/Users/{user['id']}",
        [
            {"op": "remove", "path": "displayName"},
            {"op": "remove", "path": 'emails[value eq "ned@north.org"]'},
            {"op": "replace", "path": "userName", "value": "ned.stark"},
        ],
    )
    body = response.json()
    assert "displayName" not in body and "emails" not in body
    assert body["userName"] == "ned.stark"


@pytest.mark.django_db
def test_patch_user_emails_a_new_primary_address_wins(scim):
    user = scim.create_user("pia", emails=[{"value": "old@x.org"}])
    path = f"/Users/{user['id']}"
    add = [{"op": "add", "path": "emails", "value": [{"value": "new@x.org", "primary": True}]}]
    assert scim.patch(path, add).json()["emails"][0]["value"] == "new@x.org"
    add = [{"op": "add", "path": "emails", "value": [{"value": "other@x.org"}]}]
    assert scim.patch(path, add).json()["emails"][0]["value"] == "new@x.org"
    replace = [{"op": "replace", "path": "emails", "value": [{"value": "only@x.org"}]}]
    assert scim.patch(path, replace).json()["emails"][0]["value"] == "only@x.org"
    assert User.objects.get(pk=int(user["id"])).email == "only@x.org"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("operations", "scim_type"),
    [
        ([{"op": "replace", "path": "nosuch", "value": 1}], "invalidPath"),
        ([{"op": "replace", "path": "name.nosuch", "value": 1}], "invalidPath"),
        ([{"op": "replace", "path": "userName[", "value": "x"}], "invalidPath"),
        ([{"op": "replace", "path": "id", "value": "7"}], "mutability"),
        ([{"op": "remove", "path": "userName"}], "mutability"),
        ([{"op": "remove"}], "noTarget"),
        ([{"op": "replace", "path": "active", "value": "perhaps"}], "invalidValue"),
        ([{"op": "replace", "path": "userName", "value": "bad name"}], "invalidValue"),
        ([{"op": "move", "path": "active", "value": False}], "invalidSyntax"),
        ([], "invalidSyntax"),
        ([{"op": "replace", "value": "not an object"}], "invalidValue"),
    ],
)
def test_bad_user_patches_are_refused_and_change_nothing(scim, operations, scim_type):
    user = scim.create_user("ola", displayName="Ola")
    assert_scim_error(scim.patch(f"/Users/{user['id']}", operations), 400, scim_type)
    stored = User.objects.get(pk=int(user["id"]))
    assert stored.username == "ola" and stored.display_name == "Ola" and stored.is_active


@pytest.mark.django_db
def test_delete_user_deactivates_and_keeps_the_row(scim, make_user, api_as):
    response = scim.post("/Users", {"userName": "pam"})
    user_id = response.json()["id"]
    pam = User.objects.get(pk=int(user_id))
    pam_api = api_as(pam)
    assert scim.delete(f"/Users/{user_id}").status_code == 204
    pam.refresh_from_db()
    assert pam.is_active is False
    response = scim.get(f"/Users/{user_id}")
    assert response.status_code == 200 and response.json()["active"] is False
    # a deactivated user's tokens stop working
    assert pam_api.get("/api/2.1/unity-catalog/catalogs").status_code == 401
    assert scim.delete(f"/Users/{user_id}").status_code == 204  # idempotent
    assert_scim_error(scim.delete("/Users/777777"), 404)


@pytest.mark.django_db
def test_scim_cannot_deactivate_the_acting_admin(scim, admin_user):
    assert_scim_error(scim.delete(f"/Users/{admin_user.pk}"), 400)
    response = scim.patch(
        f"/Users/{admin_user.pk}", [{"op": "replace", "path": "active", "value": False}]
    )
    assert_scim_error(response, 400)
    admin_user.refresh_from_db()
    assert admin_user.is_active


# --- groups -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_group_with_user_and_nested_group_members(scim):
    alice = scim.create_user("alice")
    child = scim.create_group("ml-engineers", externalId="okta-child")
    response = scim.post(
        "/Groups",
        {
            "schemas": [GROUP_URN],
            "displayName": "ml-all",
            "externalId": "okta-parent",
            "members": [{"value": alice["id"]}, {"value": child["id"], "type": "Group"}],
        },
    )
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith(SCIM_JSON)
    body = response.json()
    group = Group.objects.get(name="ml-all")
    assert body["id"] == f"g{group.pk}" and body["schemas"] == [GROUP_URN]
    assert body["externalId"] == "okta-parent" and body["displayName"] == "ml-all"
    assert {(m["value"], m["type"]) for m in body["members"]} == {
        (alice["id"], "User"),
        (child["id"], "Group"),
    }
    assert all(m["$ref"].endswith(m["value"]) for m in body["members"])
    meta = body["meta"]
    assert meta["resourceType"] == "Group" and meta["location"] == response["Location"]
    assert meta["created"] and meta["lastModified"]
    assert GroupNesting.objects.filter(parent=group, child__name="ml-engineers").exists()
    fetched = scim.get(f"/Users/{alice['id']}").json()
    assert fetched["groups"][0]["value"] == body["id"]
    assert fetched["groups"][0]["display"] == "ml-all"


@pytest.mark.django_db
def test_group_members_must_exist(scim, make_user):
    bot = make_user("ci-bot", kind=User.Kind.SERVICE_PRINCIPAL)
    for value in ["999999", "g999999", str(bot.pk), "nonsense"]:
        response = scim.post("/Groups", {"displayName": "team", "members": [{"value": value}]})
        assert_scim_error(response, 400, "invalidValue")
    assert not Group.objects.filter(name="team").exists()


@pytest.mark.django_db
def test_get_list_and_filter_groups(scim):
    alice = scim.create_user("alice")
    first = scim.create_group("Analysts", externalId="x-1", members=[alice["id"]])
    second = scim.create_group("builders", externalId="x-2")
    assert scim.get(f"/Groups/{first['id']}").json()["displayName"] == "Analysts"
    for missing in ["g999999", "12", "nope"]:
        assert_scim_error(scim.get(f"/Groups/{missing}"), 404)

    def ids(expr: str) -> list[str]:
        response = scim.get("/Groups", filter=expr)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["Resources"]]

    assert ids('displayName eq "analysts"') == [first["id"]]
    assert ids('externalId eq "x-2"') == [second["id"]]
    assert ids('displayName sw "b" or externalId eq "x-1"') == [first["id"], second["id"]]
    assert ids(f'members[value eq "{alice["id"]}"]') == [first["id"]]
    assert ids(f'id eq "{second["id"]}" and members eq "{alice["id"]}"') == []
    assert_scim_error(scim.get("/Groups", filter='members co "1"'), 400, "invalidFilter")
    assert_scim_error(scim.get("/Groups", filter='userName eq "x"'), 400, "invalidFilter")
    # Entra asks without members, for speed
    slim = scim.get("/Groups", excludedAttributes="members").json()["Resources"]
    assert slim and all("members" not in r for r in slim)
    only = scim.get(f"/Groups/{first['id']}", attributes="displayName").json()
    assert set(only) == {"schemas", "id", "displayName"}


@pytest.mark.django_db
def test_patch_group_membership_okta_style(scim):
    alice, bob = scim.create_user("alice"), scim.create_user("bob")
    group = scim.create_group("eng", members=[alice["id"]])
    path = f"/Groups/{group['id']}"
    response = scim.patch(
        path, [{"op": "add", "path": "members", "value": [{"value": bob["id"], "display": "bob"}]}]
    )
    assert response.status_code == 200, response.content
    assert member_values(response.json()) == {alice["id"], bob["id"]}
    response = scim.patch(path, [{"op": "remove", "path": f'members[value eq "{alice["id"]}"]'}])
    assert member_values(response.json()) == {bob["id"]}
    # removing someone who is not a member is a no-op (IdPs retry)
    response = scim.patch(path, [{"op": "remove", "path": f'members[value eq "{alice["id"]}"]'}])
    assert response.status_code == 200 and member_values(response.json()) == {bob["id"]}
    # Okta renames with a path-less replace that repeats the id
    response = scim.patch(
        path, [{"op": "replace", "value": {"id": group["id"], "displayName": "engineering"}}]
    )
    assert response.json()["displayName"] == "engineering"
    assert Group.objects.filter(name="engineering").exists()


@pytest.mark.django_db
def test_patch_group_membership_entra_style(scim):
    alice, bob, cid = scim.create_user("alice"), scim.create_user("bob"), scim.create_user("cid")
    group = scim.create_group("ops")
    path = f"/Groups/{group['id']}"
    response = scim.patch(
        path,
        [
            {
                "op": "Add",
                "path": "members",
                "value": [{"value": alice["id"]}, {"value": bob["id"]}],
            },
            {"op": "Replace", "path": "externalId", "value": "aad-123"},
        ],
    )
    assert response.status_code == 200, response.content
    assert member_values(response.json()) == {alice["id"], bob["id"]}
    assert response.json()["externalId"] == "aad-123"
    response = scim.patch(
        path, [{"op": "Remove", "path": "members", "value": [{"value": bob["id"]}]}]
    )
    assert member_values(response.json()) == {alice["id"]}
    response = scim.patch(
        path, [{"op": "Replace", "path": "members", "value": [{"value": cid["id"]}]}]
    )
    assert member_values(response.json()) == {cid["id"]}
    response = scim.patch(path, [{"op": "Replace", "path": "displayName", "value": "ops-team"}])
    assert response.json()["displayName"] == "ops-team"
    response = scim.patch(path, [{"op": "Remove", "path": "members"}])
    assert member_values(response.json()) == set()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("operations", "scim_type"),
    [
        ([{"op": "add", "path": "members", "value": [{"value": "999999"}]}], "invalidValue"),
        ([{"op": "add", "path": "members", "value": [{"nope": "1"}]}], "invalidValue"),
        (
            [{"op": "add", "path": 'members[value eq "1"]', "value": [{"value": "1"}]}],
            "invalidPath",
        ),
        ([{"op": "remove", "path": 'members[nosuch eq "1"]'}], "invalidPath"),
        ([{"op": "remove", "path": "displayName"}], "mutability"),
        ([{"op": "replace", "path": "displayName", "value": ""}], "invalidValue"),
        ([{"op": "replace", "path": "nosuch", "value": "x"}], "invalidPath"),
    ],
)
def test_bad_group_patches_are_refused_and_change_nothing(scim, operations, scim_type):
    alice = scim.create_user("alice")
    group = scim.create_group("stable", members=[alice["id"]])
    assert_scim_error(scim.patch(f"/Groups/{group['id']}", operations), 400, scim_type)
    after = scim.get(f"/Groups/{group['id']}").json()
    assert after["displayName"] == "stable" and member_values(after) == {alice["id"]}


@pytest.mark.django_db
def test_put_group_replaces_name_external_id_and_members(scim):
    alice, bob = scim.create_user("alice"), scim.create_user("bob")
    group = scim.create_group("g-old", members=[alice["id"]], externalId="e-1")
    response = scim.put(
        f"/Groups/{group['id']}",
        {"schemas": [GROUP_URN], "displayName": "g-new", "members": [{"value": bob["id"]}]},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["displayName"] == "g-new" and "externalId" not in body
    assert member_values(body) == {bob["id"]}
    # members omitted from a PUT are left as they are
    body = scim.put(f"/Groups/{group['id']}", {"displayName": "g-newer"}).json()
    assert member_values(body) == {bob["id"]}
    assert_scim_error(scim.put(f"/Groups/{group['id']}", {"members": []}), 400, "invalidValue")


@pytest.mark.django_db
def test_service_principal_memberships_are_invisible_to_and_kept_by_scim(scim, make_user):
    alice = scim.create_user("alice")
    group = scim.create_group("deployers", members=[alice["id"]])
    bot = make_user("ci-bot", kind=User.Kind.SERVICE_PRINCIPAL)
    bot.groups.add(Group.objects.get(name="deployers"))
    assert member_values(scim.get(f"/Groups/{group['id']}").json()) == {alice["id"]}
    scim.put(f"/Groups/{group['id']}", {"displayName": "deployers", "members": []})
    assert bot.groups.filter(name="deployers").exists()


@pytest.mark.django_db
def test_delete_group(scim):
    alice = scim.create_user("alice")
    group = scim.create_group("temp", members=[alice["id"]])
    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert not Group.objects.filter(name="temp").exists()
    assert User.objects.filter(username="alice").exists()
    assert_scim_error(scim.get(f"/Groups/{group['id']}"), 404)
    assert_scim_error(scim.delete(f"/Groups/{group['id']}"), 404)


@pytest.mark.django_db
def test_admin_group_cannot_be_deleted_or_renamed(scim, settings):
    admins = Group.objects.get(name=settings.STEWARD_ADMIN_GROUP)
    assert_scim_error(scim.delete(f"/Groups/g{admins.pk}"), 400, "mutability")
    response = scim.patch(
        f"/Groups/g{admins.pk}", [{"op": "replace", "path": "displayName", "value": "x"}]
    )
    assert_scim_error(response, 400, "mutability")
    assert Group.objects.filter(name=settings.STEWARD_ADMIN_GROUP).exists()


@pytest.mark.django_db
def test_group_owning_securables_cannot_be_deleted(scim, tree):
    from catalog.models import Catalog

    group = scim.create_group("owners")
    tree("owned")
    Catalog.objects.filter(name="owned").update(
        owner_user=None, owner_group=Group.objects.get(name="owners")
    )
    assert_scim_error(scim.delete(f"/Groups/{group['id']}"), 409)
    assert Group.objects.filter(name="owners").exists()


# --- nesting ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_user_in_child_group_holds_what_the_parent_group_holds(scim, tree, grant, api_as):
    alice = scim.create_user("alice")
    child = scim.create_group("child", members=[alice["id"]])
    parent = scim.create_group("parent")
    response = scim.patch(
        f"/Groups/{parent['id']}",
        [{"op": "add", "path": "members", "value": [{"value": child["id"]}]}],
    )
    assert response.status_code == 200, response.content
    assert member_values(response.json()) == {child["id"]}
    user = User.objects.get(username="alice")
    principals = authz.principals_for_user(user)
    parent_pk = Group.objects.get(name="parent").pk
    assert parent_pk in principals.group_ids
    tree("sales")
    grant("catalog", "sales", "parent", "USE CATALOG")
    listed = api_as(user).get("/api/2.1/unity-catalog/catalogs").json()["catalogs"]
    assert [c["name"] for c in listed] == ["sales"]
    # removing the nesting takes the parent's grants away
    scim.patch(
        f"/Groups/{parent['id']}", [{"op": "remove", "path": f'members[value eq "{child["id"]}"]'}]
    )
    assert parent_pk not in authz.principals_for_user(user).group_ids


@pytest.mark.django_db
def test_nesting_cycles_are_refused_with_400(scim):
    a = scim.create_group("a")
    b = scim.create_group("b", members=[a["id"]])  # a in b
    c = scim.create_group("c", members=[b["id"]])  # b in c
    add = [{"op": "add", "path": "members", "value": [{"value": c["id"]}]}]  # c in a: a loop
    body = assert_scim_error(scim.patch(f"/Groups/{a['id']}", add), 400, "invalidValue")
    assert "cycle" in body["detail"]
    self_loop = [{"op": "add", "path": "members", "value": [{"value": a["id"]}]}]
    assert_scim_error(scim.patch(f"/Groups/{a['id']}", self_loop), 400, "invalidValue")
    assert not GroupNesting.objects.filter(parent__name="a").exists()
    put = {"displayName": "a", "members": [{"value": c["id"]}]}
    assert_scim_error(scim.put(f"/Groups/{a['id']}", put), 400, "invalidValue")
    assert not GroupNesting.objects.filter(parent__name="a").exists()


@pytest.mark.django_db
def test_user_and_group_ids_never_collide_in_members(scim):
    User.objects.create_user(pk=50_000, username="uma")
    Group.objects.create(pk=50_000, name="grp")
    # a bare number is a user id; a group id carries the g prefix
    body = scim.create_group("by-user", members=["50000"])
    assert [(m["value"], m["type"]) for m in body["members"]] == [("50000", "User")]
    body = scim.create_group("by-group", members=["g50000"])
    assert [(m["value"], m["type"]) for m in body["members"]] == [("g50000", "Group")]
    response = scim.post(
        "/Groups", {"displayName": "typed", "members": [{"value": "50000", "type": "Group"}]}
    )
    assert_scim_error(response, 400, "invalidValue")


# --- access, format and errors ----------------------------------------------------------------


@pytest.mark.django_db
def test_non_admin_gets_403_and_anonymous_401(make_user, api_as, admin_user):
    outsider = api_as(make_user("outsider"))
    for response in [
        outsider.get(f"{SCIM}/Users"),
        outsider.post(f"{SCIM}/Users", {"userName": "x"}, format="json"),
        outsider.get(f"{SCIM}/Groups"),
        outsider.get(f"{SCIM}/ServiceProviderConfig"),
    ]:
        assert_scim_error(response, 403)
    anonymous = APIClient()
    for response in [
        anonymous.get(f"{SCIM}/Users"),
        anonymous.post(f"{SCIM}/Groups", {"displayName": "x"}, format="json"),
        anonymous.get(f"{SCIM}/Schemas"),
        anonymous.get(f"{SCIM}/Nowhere"),
    ]:
        assert_scim_error(response, 401)
        assert response["WWW-Authenticate"].startswith("Bearer")
    bad_token = APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Bearer stw_nope")
    assert_scim_error(bad_token.get(f"{SCIM}/Users"), 401)
    assert not User.objects.filter(username="x").exists()


@pytest.mark.django_db
def test_read_only_admin_token_reads_but_cannot_write(admin_user, api_as):
    reader = Scim(api_as(admin_user, scope="read"))
    assert reader.get("/Users").status_code == 200
    assert_scim_error(reader.post("/Users", {"userName": "nope"}), 403)
    assert not User.objects.filter(username="nope").exists()
    denied = AuditEvent.objects.filter(action="scim.user.create", outcome="DENIED").get()
    assert denied.actor == "root"


@pytest.mark.django_db
def test_malformed_and_non_object_bodies_are_400_invalid_syntax(scim):
    assert_scim_error(scim.post("/Users", '{"userName": "x",'), 400, "invalidSyntax")
    assert_scim_error(scim.post("/Users", '["userName"]'), 400, "invalidSyntax")
    assert_scim_error(scim.post("/Groups", "NaN"), 400, "invalidSyntax")
    user = scim.create_user("quinn")
    assert_scim_error(scim.put(f"/Users/{user['id']}", '{"userName": '), 400, "invalidSyntax")
    response = scim._send("patch", f"/Users/{user['id']}", {"Operations": "nope"})
    assert_scim_error(response, 400, "invalidSyntax")
    response = scim._send(
        "patch", f"/Users/{user['id']}", {"schemas": [USER_URN], "Operations": []}
    )
    assert_scim_error(response, 400, "invalidSyntax")
    response = scim.post("/Users", "userName=x", content_type="application/x-www-form-urlencoded")
    assert_scim_error(response, 415)
    body = {"schemas": ["urn:example:not-a-user"], "userName": "x"}
    assert_scim_error(scim.post("/Users", body), 400, "invalidSyntax")


@pytest.mark.django_db
def test_scim_answers_scim_json_even_when_asked_for_plain_json(scim):
    response = scim.client.get(f"{SCIM}/Users", HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response["Content-Type"].startswith(SCIM_JSON)
    response = scim.client.get(f"{SCIM}/Users/", HTTP_ACCEPT="text/html")  # trailing slash too
    assert response.status_code == 200 and response["Content-Type"].startswith(SCIM_JSON)


@pytest.mark.django_db
def test_unknown_scim_route_and_method_answer_scim_errors(scim):
    assert_scim_error(scim.get("/Nowhere"), 404)
    assert_scim_error(scim.client.delete(f"{SCIM}/Users"), 405)
    assert_scim_error(scim.get("/ResourceTypes/Robot"), 404)


@pytest.mark.django_db
def test_discovery_endpoints(scim):
    config = scim.get("/ServiceProviderConfig").json()
    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert config["patch"]["supported"] is True and config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = scim.get("/ResourceTypes").json()
    assert types["totalResults"] == 2
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}
    assert scim.get("/ResourceTypes/User").json()["schema"] == USER_URN
    schemas = scim.get("/Schemas").json()
    assert {s["id"] for s in schemas["Resources"]} == {USER_URN, GROUP_URN}
    user_schema = scim.get(f"/Schemas/{USER_URN}").json()
    names = {a["name"] for a in user_schema["attributes"]}
    assert {"userName", "name", "emails", "active", "externalId", "displayName"} <= names


# --- audit ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_scim_write_leaves_an_audit_event_with_the_acting_admin(scim):
    user = scim.create_user("rae")
    scim.put(f"/Users/{user['id']}", {"userName": "rae2"})
    scim.patch(f"/Users/{user['id']}", [{"op": "replace", "path": "displayName", "value": "R"}])
    scim.delete(f"/Users/{user['id']}")
    child = scim.create_group("kids")
    group = scim.create_group("team", members=[user["id"]])
    scim.patch(
        f"/Groups/{group['id']}",
        [{"op": "add", "path": "members", "value": [{"value": child["id"]}]}],
    )
    scim.put(f"/Groups/{group['id']}", {"displayName": "team2", "members": []})
    scim.delete(f"/Groups/{group['id']}")
    events = list(AuditEvent.objects.filter(action__startswith="scim.").order_by("id"))
    assert [(e.action, e.securable_type, e.securable) for e in events] == [
        ("scim.user.create", "user", "rae"),
        ("scim.user.replace", "user", "rae2"),
        ("scim.user.patch", "user", "rae2"),
        ("scim.user.delete", "user", "rae2"),
        ("scim.group.create", "group", "kids"),
        ("scim.group.create", "group", "team"),
        ("scim.group.patch", "group", "team"),
        ("scim.group.replace", "group", "team2"),
        ("scim.group.delete", "group", "team2"),
    ]
    admin = User.objects.get(username="root")
    for event in events:
        assert event.outcome == "SUCCESS"
        assert event.actor == "root" and event.actor_id == admin.pk
        assert event.auth_method == "token" and event.request_id
    assert events[1].details["changes"]["username"] == ["rae", "rae2"]
    assert events[6].details["added"] == [child["id"]]
    assert set(events[7].details["removed"]) == {user["id"], child["id"]}


@pytest.mark.django_db
def test_services_refuse_non_admins_even_without_the_door(make_user):
    from accounts.scim.resources import UserAttrs
    from accounts.scim.services import scim_user_create
    from core.errors import PermissionDenied

    actor = Actor.system(make_user("mallory"))
    with pytest.raises(PermissionDenied):
        scim_user_create(actor=actor, attrs=UserAttrs(user_name="eve"))
    assert not User.objects.filter(username="eve").exists()
    event = AuditEvent.objects.get(action="scim.user.create")
    assert event.outcome == "DENIED" and event.actor == "mallory"


# --- cost and robustness ----------------------------------------------------------------------


def _queries(call) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = call()
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


@pytest.mark.django_db
def test_lists_cost_a_constant_number_of_queries(scim):
    def list_both() -> tuple[int, int]:
        return _queries(lambda: scim.get("/Users")), _queries(lambda: scim.get("/Groups"))

    first = scim.create_user("u0")
    scim.create_group("grp0", members=[first["id"]])
    list_both()  # warm up (token last-used stamp)
    small = list_both()
    child = scim.create_group("child")
    for i in range(1, 12):
        user = scim.create_user(f"u{i}")
        scim.create_group(f"grp{i}", members=[user["id"], first["id"], child["id"]])
    assert list_both() == small


filter_atoms = st.sampled_from(
    [
        "userName",
        "externalId",
        "displayName",
        "active",
        "emails",
        "emails.value",
        "id",
        "name.givenName",
        "members",
        "members.value",
        "meta.created",
        "nosuch",
        f"{USER_URN}:userName",
    ]
)
filter_leaf = st.builds(
    lambda attr, op, value: f"{attr} {op}" if op == "pr" else f"{attr} {op} {value}",
    filter_atoms,
    st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "Eq"]),
    st.one_of(
        st.sampled_from(["true", "false", "null", "7", '"g1"', '"1"']),
        st.text(max_size=8).map(json.dumps),
    ),
)
filters = st.one_of(
    st.text(max_size=40),
    st.recursive(
        filter_leaf,
        lambda inner: st.one_of(
            st.builds(
                lambda a, b, op: f"{a} {op} {b}", inner, inner, st.sampled_from(["and", "or"])
            ),
            inner.map(lambda a: f"({a})"),
            inner.map(lambda a: f"not ({a})"),
            inner.map(lambda a: f"members[{a}]"),
        ),
        max_leaves=5,
    ),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["value", "type", "primary", "givenName", "x"]), inner),
    ),
    max_leaves=6,
)
patch_ops = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["add", "replace", "remove", "Replace", "nope"]),
        "path": st.one_of(
            st.sampled_from(
                [
                    "active",
                    "userName",
                    "name",
                    "name.givenName",
                    "emails",
                    "members",
                    'emails[type eq "work"].value',
                    'members[value eq "1"]',
                    "displayName",
                    "id",
                    "externalId",
                    "members.value",
                    "urn:x:y:z",
                    "members[",
                    f"{USER_URN}:active",
                ]
            ),
            st.text(max_size=12),
        ),
        "value": json_values,
    }
)


@pytest.fixture
def fuzz_targets(scim):
    user = scim.create_user("fuzz")
    group = scim.create_group("fuzzers", members=[user["id"]])
    return scim, user, group


@pytest.mark.django_db
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(expr=filters)
def test_any_filter_answers_200_or_400(fuzz_targets, expr):
    scim, _, _ = fuzz_targets
    for endpoint in ["/Users", "/Groups"]:
        response = scim.get(endpoint, filter=expr)
        assert response.status_code in {200, 400}, (expr, response.content)


@pytest.mark.django_db
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(operations=st.lists(patch_ops, min_size=1, max_size=3))
def test_any_patch_answers_without_a_server_error(fuzz_targets, operations):
    scim, user, group = fuzz_targets
    for target in [f"/Users/{user['id']}", f"/Groups/{group['id']}"]:
        response = scim.patch(target, operations)
        assert response.status_code in {200, 400, 409}, (operations, response.content)
