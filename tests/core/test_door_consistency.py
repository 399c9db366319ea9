"""The same input gets the same answer at every door: page sizes, unknown fields, principal
names, body-size limits (issue 12, part 7)."""

from __future__ import annotations

import json
import uuid

import pytest

from accounts.models import ApiToken
from catalog import authz
from catalog.privileges import Privilege
from core.actor import Actor
from core.errors import InvalidParameter
from core.pagination import INT64_MAX, MAX_PAGE, page_size, uc_page_size
from lineage.models import LineageNode
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db

UC = "/api/2.1/unity-catalog"
ML = "/api/2.0/mlflow"
V1 = "/api/v1"
REFUSED_EVERYWHERE = ["-1", str(2**63), "1.5", "ten", "true", ""]


@pytest.fixture
def world(admin_user, tree):
    tree("main.ml.churn")
    return admin_user


@pytest.fixture
def admin(world, api_as):
    return api_as(world)


def assert_page_size_refused(response, where) -> None:
    assert response.status_code == 400, (where, response.content)
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", where
    assert body["message"].startswith("max_results must be an integer from "), (where, body)


# --- page sizes ------------------------------------------------------------------------------


def test_page_size_rules():
    assert page_size(None) == 100
    assert page_size(1) == page_size("1") == 1
    assert page_size(INT64_MAX) == page_size(str(INT64_MAX)) == MAX_PAGE
    assert uc_page_size(0) == uc_page_size("0") == 100
    for bad in [0, "0", -1, "-1", 2**63, str(2**63), 1.0, "1.5", True, "+5", " 5", [5], "٣", ""]:
        with pytest.raises(InvalidParameter):
            page_size(bad)
    for bad in [-1, "-1", 2**63, True]:
        with pytest.raises(InvalidParameter):
            uc_page_size(bad)


# Every list or search a client can page, by query string (GET) or body (POST).
GET_LISTS = [
    f"{UC}/catalogs",
    f"{UC}/schemas?catalog_name=main",
    f"{UC}/models",
    f"{UC}/models/main.ml.churn/versions",
    f"{ML}/registered-models/search",
    f"{ML}/model-versions/search",
    f"{ML}/experiments/search",
    f"{ML}/webhooks",
    f"{V1}/audit-events",
    f"{V1}/promotion-requests",
    f"{V1}/alias-policies",
    f"{V1}/retention-policies",
    f"{V1}/webhooks",
]
POST_SEARCHES = [
    (f"{ML}/registered-models/search", {}),
    (f"{ML}/model-versions/search", {}),
    (f"{ML}/experiments/search", {}),
    (f"{ML}/runs/search", {"experiment_ids": ["0"]}),
]


def _with(url: str, name: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{name}={value}"


@pytest.mark.parametrize("url", GET_LISTS)
def test_bad_page_sizes_are_refused_alike_in_every_list(admin, url):
    assert admin.get(url).status_code == 200, url
    for value in REFUSED_EVERYWHERE:
        assert_page_size_refused(admin.get(_with(url, "max_results", value)), (url, value))
    zero = admin.get(_with(url, "max_results", "0"))
    if url.startswith(UC):
        assert zero.status_code == 200, zero.content  # UC: 0 lets the server choose
    else:
        assert_page_size_refused(zero, (url, "0"))
    assert admin.get(_with(url, "max_results", str(INT64_MAX))).status_code in (200, 400)


@pytest.mark.parametrize("url,body", POST_SEARCHES)
def test_bad_page_sizes_are_refused_alike_in_every_search_body(admin, url, body):
    assert admin.post(url, body, format="json").status_code == 200, url
    for value in [-1, 0, 2**63, 1.5, True, "ten"]:
        response = admin.post(url, {**body, "max_results": value}, format="json")
        assert_page_size_refused(response, (url, value))


def test_large_valid_page_sizes_still_work_for_the_mlflow_client(admin):
    # The mlflow client asks model-version search for 10,000 by default.
    for url in [f"{ML}/model-versions/search", f"{ML}/registered-models/search"]:
        assert admin.get(_with(url, "max_results", "10000")).status_code == 200
    assert admin.get(_with(f"{UC}/catalogs", "max_results", str(INT64_MAX))).status_code == 200


# --- unknown fields --------------------------------------------------------------------------


def test_native_api_refuses_unknown_fields_and_stores_nothing(admin, world):
    before = ApiToken.objects.count()
    response = admin.post(f"{V1}/tokens", {"name": "ci", "dayz": 7}, format="json")
    assert response.status_code == 400, response.content
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Unknown field 'dayz'.",
    }
    assert ApiToken.objects.count() == before
    response = admin.post(
        f"{V1}/webhooks",
        {"name": "w", "url": "https://example.com/h", "events": ["model_version.created"], "x": 1},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["message"] == "Unknown field 'x'."
    assert not Webhook.objects.exists()
    response = admin.post(
        f"{V1}/experiments/0/permissions",
        {"principal": "root", "level": "CAN_READ", "lvl": "CAN_MANAGE"},
        format="json",
    )
    assert response.status_code in (400, 404), response.content
    if response.status_code == 400:
        assert response.json()["message"] == "Unknown field 'lvl'."


def test_known_fields_still_work_on_the_native_api(admin):
    response = admin.post(f"{V1}/tokens", {"name": "ci", "days": 7}, format="json")
    assert response.status_code == 201, response.content


def test_mlflow_and_uc_doors_ignore_unknown_fields_as_their_clients_expect(admin):
    response = admin.post(
        f"{ML}/registered-models/create",
        {"name": "main.ml.extra", "not_a_field": 1},
        format="json",
    )
    assert response.status_code == 200, response.content
    response = admin.post(f"{UC}/catalogs", {"name": "more", "not_a_field": 1}, format="json")
    assert response.status_code == 200, response.content


# --- principal names -------------------------------------------------------------------------


def test_grants_name_principals_case_insensitively(admin, make_user, world):
    carol = make_user("carol")
    make_user("dave", groups=("Data_Team",))
    response = admin.patch(
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": "CAROL", "add": ["USE CATALOG"]}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assignments = response.json()["privilege_assignments"]
    assert [(a["principal"], a["privileges"]) for a in assignments] == [("carol", ["USE CATALOG"])]
    from catalog.models import Catalog

    catalog = Catalog.objects.get(name="main")
    assert authz.check(Actor.system(carol), Privilege.USE_CATALOG, catalog)
    response = admin.patch(
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": "data_team", "add": ["BROWSE"]}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    response = admin.patch(
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": "nobody", "add": ["BROWSE"]}]},
        format="json",
    )
    assert response.status_code == 400
    assert "does not exist" in response.json()["message"]


def test_a_name_matching_two_principals_up_to_case_is_refused(admin, make_user):
    make_user("erin")
    make_user("Erin")
    response = admin.patch(
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": "ERIN", "add": ["BROWSE"]}]},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "differ only in case" in response.json()["message"]
    exact = admin.patch(
        f"{UC}/permissions/catalog/main",
        {"changes": [{"principal": "Erin", "add": ["BROWSE"]}]},
        format="json",
    )
    assert exact.status_code == 200, exact.content


# --- body sizes ------------------------------------------------------------------------------


def _batch_of(size: int) -> tuple[bytes, list[str]]:
    """A valid OpenLineage batch of about `size` bytes (one long facet per event)."""
    names = [f"ds{i}" for i in range(500)]
    pad = "x" * (size // len(names))
    events = [
        {
            "eventType": "COMPLETE",
            "eventTime": "2024-01-01T00:00:00Z",
            "producer": "https://example.com/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
            "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": "ns", "name": f"job{i}"},
            "inputs": [
                {
                    "namespace": "ns",
                    "name": name,
                    "facets": {
                        "documentation": {
                            "_producer": "https://example.com/p",
                            "_schemaURL": "https://example.com/f#/d",
                            "description": pad,
                        }
                    },
                }
            ],
        }
        for i, name in enumerate(names)
    ]
    return json.dumps(events).encode(), names


def test_a_plain_lineage_batch_up_to_the_documented_8_mib_is_accepted(admin):
    body, names = _batch_of(int(4.2 * 1024 * 1024))
    assert len(body) > 4 * 1024 * 1024  # above Django's default 2.5 MB limit
    response = admin.generic("POST", f"{V1}/lineage/batch", body, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["summary"]["successful"] == len(names)
    assert LineageNode.objects.filter(name__in=names).count() == len(names)


def test_a_lineage_body_over_8_mib_is_refused_and_stores_nothing(admin):
    body, names = _batch_of(8 * 1024 * 1024 + 1024)
    response = admin.generic("POST", f"{V1}/lineage/batch", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "The request body is larger than 8388608 bytes.",
    }
    assert not LineageNode.objects.filter(name__in=names).exists()
