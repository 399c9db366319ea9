"""The native approval API (/api/v1/alias-policies, /api/v1/promotion-requests, /api/v1/models/
{full_name}/aliases/...) over HTTP, and the same protected alias through the MLflow and Unity
Catalog doors (issue 4; SECURITY_CASES 9, 11-14, 20)."""

from __future__ import annotations

import json
import uuid

import pytest

from audit.models import AuditEvent
from core.actor import Actor
from registry import services
from registry.models import AliasHistory, AliasPolicy, ModelAlias, PromotionRequest

M = "main.ml.wine"
ALIAS = f"/api/v1/models/{M}/aliases"
POLICIES = "/api/v1/alias-policies"
REQUESTS = "/api/v1/promotion-requests"
State = PromotionRequest.State


@pytest.fixture
def team(tree, make_user, grant):
    """dana (data scientist: MODIFY, MANAGE, EXECUTE on the model), owen (MANAGE on the
    catalog), ann and bob (approvers through the group `reviewers`), carl (no role)."""
    tree(M)
    users = {
        "dana": make_user("dana"),
        "owen": make_user("owen"),
        "ann": make_user("ann", groups=("reviewers",)),
        "bob": make_user("bob", groups=("reviewers",)),
        "carl": make_user("carl"),
    }
    for name in users:
        grant("catalog", "main", name, "USE CATALOG", "USE SCHEMA")
    grant("registered_model", M, "dana", "MODIFY", "MANAGE", "EXECUTE")
    grant("catalog", "main", "owen", "MANAGE")
    return users


@pytest.fixture
def versions(team, ready_version):
    """Versions 1 and 2 of main.ml.wine, champion -> 1 (set before any policy exists)."""
    one = ready_version(team["dana"], M)
    two = ready_version(team["dana"], M)
    services.alias_set(actor=Actor.system(team["dana"]), full_name=M, alias="champion", version=1)
    return one, two


@pytest.fixture
def policy(team):
    """champion and prod* on catalog main need two approvals from `reviewers`."""
    return services.alias_policy_create(
        actor=Actor.system(team["owen"]),
        securable_type="catalog",
        full_name="main",
        alias_patterns=["champion", "prod*"],
        approvers=["reviewers"],
        required_approvals=2,
    )


@pytest.fixture
def api(api_as):
    """api(user, scope="all") -> an API client with the user's token, sending JSON bodies."""

    def make(user, scope: str = "all"):
        client = api_as(user, scope)
        client.default_format = "json"
        return client

    return make


@pytest.fixture
def clients(team, api):
    return {name: api(user) for name, user in team.items()}


def champion() -> int:
    return ModelAlias.objects.get(model__full_name=M, alias="champion").version.version


def error(response, status: int, code: str) -> str:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == code, body
    return body["message"]


def only_request() -> PromotionRequest:
    return PromotionRequest.objects.get()


def ask(client, alias: str = "champion", version: int = 2) -> PromotionRequest:
    """Set a protected alias through the native door: 403 naming the request it opened."""
    response = client.put(f"{ALIAS}/{alias}", {"version": version}, format="json")
    message = error(response, 403, "PERMISSION_DENIED")
    request = PromotionRequest.objects.get(alias=alias, state=State.PENDING)
    assert str(request.id) in message
    return request


# --- the whole flow --------------------------------------------------------------------------


@pytest.mark.django_db
def test_policy_then_protected_alias_then_two_approvals_moves_it(team, versions, clients):
    created = clients["owen"].post(
        POLICIES,
        {
            "securable_type": "catalog",
            "full_name": "main",
            "alias_patterns": ["champion", "prod*"],
            "approvers": ["reviewers", "ann"],
            "required_approvals": 2,
            "description": "four eyes on production",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    policy = created.json()
    assert policy["securable_type"] == "catalog" and policy["full_name"] == "main"
    assert policy["alias_patterns"] == ["champion", "prod*"]
    assert policy["approvers"] == ["ann", "reviewers"]
    assert policy["required_approvals"] == 2 and policy["request_ttl_seconds"] == 7 * 86400
    assert policy["created_by"] == "owen" and policy["gates"] == {}

    response = clients["dana"].put(
        f"{ALIAS}/champion", {"version": 2, "justification": "beats v1 on holdout"}, format="json"
    )
    message = error(response, 403, "PERMISSION_DENIED")
    request = only_request()
    assert str(request.id) in message
    assert f"/console/promotion-requests/{request.id}" in message
    assert f"/api/v1/promotion-requests/{request.id}/approve" in message
    assert champion() == 1

    seen = clients["dana"].get(f"{REQUESTS}/{request.id}").json()
    assert seen["state"] == "PENDING" and seen["full_name"] == M and seen["kind"] == "ALIAS"
    assert (seen["alias"], seen["version"], seen["from_version"]) == ("champion", 2, 1)
    assert seen["requester"] == "dana" and seen["justification"] == "beats v1 on holdout"
    assert seen["required_approvals"] == 2 and seen["approvals"] == [] and not seen["can_decide"]
    assert seen["links"]["console"].endswith(f"/console/promotion-requests/{request.id}")
    assert seen["links"]["api"].endswith(f"/api/v1/promotion-requests/{request.id}")
    assert seen["gate_results"][0]["gate"] == "status READY" and seen["gate_results"][0]["passed"]
    assert seen["policy_id"] == policy["id"]
    assert clients["ann"].get(f"{REQUESTS}/{request.id}").json()["can_decide"] is True

    first = clients["ann"].post(f"{REQUESTS}/{request.id}/approve", {"comment": "lgtm"})
    assert first.status_code == 200, first.content
    first = first.json()
    assert first["state"] == "PENDING" and first["approvals"] == ["ann"]
    assert first["can_decide"] is False  # ann has decided
    assert [(d["approver"], d["decision"], d["comment"]) for d in first["decisions"]] == [
        ("ann", "APPROVE", "lgtm")
    ]
    assert champion() == 1

    second = clients["bob"].post(f"{REQUESTS}/{request.id}/approve")  # no body at all
    assert second.status_code == 200, second.content
    assert second.json()["state"] == "APPLIED" and second.json()["approvals"] == ["ann", "bob"]
    assert champion() == 2

    applied = clients["dana"].get(f"{REQUESTS}/{request.id}").json()
    assert applied["state"] == "APPLIED" and applied["applied_at"] and applied["decided_at"]
    assert len(applied["decisions"]) == 2
    assert clients["dana"].get(f"{ALIAS}/champion").json()["version"] == 2

    history = clients["owen"].get(f"{ALIAS}/champion/history").json()["history"]
    newest = history[0]
    assert (newest["from_version"], newest["to_version"]) == (1, 2)
    assert newest["promotion_request"] == str(request.id)
    assert newest["actor"] == "bob" and newest["reason"] == "beats v1 on holdout"
    assert (history[1]["from_version"], history[1]["to_version"]) == (None, 1)


@pytest.mark.django_db
def test_explicit_request_through_post(team, versions, policy, clients, ready_version):
    response = clients["dana"].post(
        REQUESTS,
        {"full_name": M, "alias": "champion", "version": 2, "justification": "new features"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "PENDING" and body["justification"] == "new features"
    assert body["id"] == str(only_request().id)
    # An unprotected alias is simply set; asking for approval there is refused.
    unprotected = clients["dana"].post(
        REQUESTS,
        {"full_name": M, "alias": "challenger", "version": 2, "justification": "x"},
        format="json",
    )
    assert "not protected" in error(unprotected, 400, "FAILED_PRECONDITION")
    # Asking again for the same move answers the open request; another move meets it.
    again = clients["dana"].post(
        REQUESTS,
        {"full_name": M, "alias": "champion", "version": 2, "justification": "again"},
        format="json",
    )
    assert again.json()["id"] == body["id"]
    ready_version(team["dana"], M)
    other = clients["dana"].post(
        REQUESTS,
        {"full_name": M, "alias": "champion", "version": 3, "justification": "x"},
        format="json",
    )
    assert body["id"] in error(other, 409, "RESOURCE_ALREADY_EXISTS")
    assert PromotionRequest.objects.count() == 1


# --- four eyes through every door ------------------------------------------------------------


@pytest.mark.django_db
def test_every_door_refuses_to_move_a_protected_alias_and_names_the_request(
    team, versions, policy, clients, admin_user, api
):
    mlflow = clients["dana"].post(
        "/api/2.0/mlflow/registered-models/alias",
        {"name": M, "alias": "champion", "version": "2"},
        format="json",
    )
    message = error(mlflow, 403, "PERMISSION_DENIED")
    request = only_request()
    assert str(request.id) in message and "was created" in message

    uc = clients["dana"].put(
        f"/api/2.1/unity-catalog/models/{M}/aliases/champion", {"version_num": 2}, format="json"
    )
    message = error(uc, 403, "PERMISSION_DENIED")
    assert str(request.id) in message and "is already open" in message

    native = clients["dana"].put(f"{ALIAS}/champion", {"version": 2}, format="json")
    assert str(request.id) in error(native, 403, "PERMISSION_DENIED")

    # Not even an admin moves it directly, through any door: the open request stands.
    admin = api(admin_user)
    for response in (
        admin.post(
            "/api/2.0/mlflow/registered-models/alias",
            {"name": M, "alias": "champion", "version": "2"},
            format="json",
        ),
        admin.put(
            f"/api/2.1/unity-catalog/models/{M}/aliases/champion",
            {"version_num": 2},
            format="json",
        ),
        admin.put(f"{ALIAS}/champion", {"version": 2}, format="json"),
    ):
        assert str(request.id) in error(response, 409, "RESOURCE_ALREADY_EXISTS")
    assert champion() == 1 and PromotionRequest.objects.count() == 1


@pytest.mark.django_db
def test_requester_cannot_approve_own_request_admins_included(
    team, versions, policy, clients, admin_user, api
):
    request = ask(clients["dana"])
    refused = clients["dana"].post(f"{REQUESTS}/{request.id}/approve", {}, format="json")
    assert "cannot approve" in error(refused, 403, "PERMISSION_DENIED")
    assert clients["dana"].get(f"{REQUESTS}/{request.id}").json()["can_decide"] is False
    services.promotion_request_cancel(actor=Actor.system(team["dana"]), request_id=request.id)

    # An admin who is also an approver asks, through the UC door, and tries to approve.
    admin_user.groups.add(*team["ann"].groups.all())
    admin = api(admin_user)
    uc = admin.put(
        f"/api/2.1/unity-catalog/models/{M}/aliases/champion", {"version_num": 2}, format="json"
    )
    error(uc, 403, "PERMISSION_DENIED")
    own = PromotionRequest.objects.get(state=State.PENDING)
    assert own.requester_name == "root"
    assert admin.get(f"{REQUESTS}/{own.id}").json()["can_decide"] is False
    for verb in ("approve", "reject"):
        response = admin.post(f"{REQUESTS}/{own.id}/{verb}", {}, format="json")
        assert f"cannot {verb}" in error(response, 403, "PERMISSION_DENIED")
    assert own.decisions.count() == 0 and champion() == 1
    assert AuditEvent.objects.filter(
        action="promotion_request.approve", outcome="DENIED", actor="root"
    ).exists()


@pytest.mark.django_db
def test_reject_and_cancel(team, versions, policy, clients):
    request = ask(clients["dana"])
    not_theirs = clients["ann"].post(f"{REQUESTS}/{request.id}/cancel")
    assert "Only the requester" in error(not_theirs, 403, "PERMISSION_DENIED")
    rejected = clients["ann"].post(
        f"{REQUESTS}/{request.id}/reject", {"comment": "metrics regressed"}, format="json"
    )
    assert rejected.status_code == 200 and rejected.json()["state"] == "REJECTED"
    again = clients["bob"].post(f"{REQUESTS}/{request.id}/approve")
    assert "REJECTED" in error(again, 400, "FAILED_PRECONDITION")

    second = ask(clients["dana"])
    cancelled = clients["dana"].post(f"{REQUESTS}/{second.id}/cancel", {}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
    assert champion() == 1


@pytest.mark.django_db
def test_failing_gates_answer_400_naming_the_gate(team, versions, clients):
    created = clients["owen"].post(
        POLICIES,
        {
            "securable_type": "registered_model",
            "full_name": M,
            "alias_patterns": ["champion"],
            "approvers": ["ann"],
            "gates": {
                "required_tags": {"validation": "passed"},
                "metrics": [{"key": "val_accuracy", "op": ">=", "value": 0.9}],
            },
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    put = clients["dana"].put(f"{ALIAS}/champion", {"version": 2}, format="json")
    message = error(put, 400, "FAILED_PRECONDITION")
    assert "tag validation=passed failed (version 2 has no tag validation)" in message
    assert "metric val_accuracy >= 0.9 failed" in message
    post = clients["dana"].post(
        REQUESTS,
        {"full_name": M, "alias": "champion", "version": 2, "justification": "please"},
        format="json",
    )
    assert "tag validation=passed failed" in error(post, 400, "FAILED_PRECONDITION")
    assert not PromotionRequest.objects.exists() and champion() == 1


# --- authentication, token scope, visibility -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method,path",
    [
        ("get", POLICIES),
        ("post", POLICIES),
        ("patch", f"{POLICIES}/00000000-0000-4000-8000-000000000001"),
        ("get", REQUESTS),
        ("post", REQUESTS),
        ("post", f"{REQUESTS}/00000000-0000-4000-8000-000000000002/approve"),
        ("put", f"{ALIAS}/champion"),
        ("post", f"{ALIAS}/champion/break-glass"),
        ("get", f"{ALIAS}/champion/history"),
    ],
)
def test_anonymous_is_refused(client, method, path):
    if method == "get":
        response = client.get(path)
    else:
        response = getattr(client, method)(path, "{}", content_type="application/json")
    error(response, 401, "UNAUTHENTICATED")


@pytest.mark.django_db
def test_read_only_token_reads_but_cannot_write(team, versions, policy, clients, api):
    request = ask(clients["dana"])
    ann_read = api(team["ann"], scope="read")
    seen = ann_read.get(f"{REQUESTS}/{request.id}")
    assert seen.status_code == 200 and seen.json()["can_decide"] is False
    refused = ann_read.post(f"{REQUESTS}/{request.id}/approve", {}, format="json")
    assert "read-only" in error(refused, 403, "PERMISSION_DENIED")
    assert ann_read.get(REQUESTS, {"view": "waiting"}).json()["promotion_requests"]

    dana_read = api(team["dana"], scope="read")
    error(
        dana_read.post(
            REQUESTS,
            {"full_name": M, "alias": "prod", "version": 2, "justification": "x"},
            format="json",
        ),
        403,
        "PERMISSION_DENIED",
    )
    error(
        dana_read.put(f"{ALIAS}/challenger", {"version": 2}, format="json"),
        403,
        "PERMISSION_DENIED",
    )
    owen_read = api(team["owen"], scope="read")
    body = {"securable_type": "catalog", "full_name": "main"}
    body |= {"alias_patterns": ["staging"], "approvers": ["ann"]}
    error(owen_read.post(POLICIES, body, format="json"), 403, "PERMISSION_DENIED")
    error(
        owen_read.patch(f"{POLICIES}/{policy.id}", {"required_approvals": 1}, format="json"),
        403,
        "PERMISSION_DENIED",
    )
    error(owen_read.delete(f"{POLICIES}/{policy.id}"), 403, "PERMISSION_DENIED")
    assert owen_read.get(f"{POLICIES}/{policy.id}").status_code == 200

    request.refresh_from_db()
    assert request.state == State.PENDING and request.decisions.count() == 0
    assert AliasPolicy.objects.count() == 1 and AliasPolicy.objects.get().required_approvals == 2
    assert not ModelAlias.objects.filter(alias="challenger").exists()
    assert PromotionRequest.objects.count() == 1


@pytest.mark.django_db
def test_read_only_token_cannot_cancel(team, versions, policy, clients, api):
    request = ask(clients["dana"])
    response = api(team["dana"], scope="read").post(f"{REQUESTS}/{request.id}/cancel")
    error(response, 403, "PERMISSION_DENIED")


@pytest.mark.django_db
def test_a_request_the_caller_may_not_see_is_404_like_a_missing_one(
    team, versions, policy, clients
):
    request = ask(clients["dana"])
    missing = uuid.uuid4()
    for suffix in ("", "/approve", "/reject", "/cancel"):
        method = clients["carl"].get if suffix == "" else clients["carl"].post
        hidden = error(method(f"{REQUESTS}/{request.id}{suffix}"), 404, "RESOURCE_DOES_NOT_EXIST")
        absent = error(method(f"{REQUESTS}/{missing}{suffix}"), 404, "RESOURCE_DOES_NOT_EXIST")
        assert hidden.replace(str(request.id), "X") == absent.replace(str(missing), "X")
    assert clients["carl"].get(REQUESTS).json()["promotion_requests"] == []
    request.refresh_from_db()
    assert request.state == State.PENDING and request.decisions.count() == 0


@pytest.mark.django_db
def test_policies_are_listed_only_on_visible_securables(team, tree, grant, clients, admin_actor):
    tree("secret.vault.model")
    hidden = services.alias_policy_create(
        actor=admin_actor,
        securable_type="catalog",
        full_name="secret",
        alias_patterns=["champion"],
        approvers=["ann"],
    )
    on_schema = services.alias_policy_create(
        actor=Actor.system(team["owen"]),
        securable_type="schema",
        full_name="main.ml",
        alias_patterns=["prod*"],
        approvers=["bob"],
    )
    on_model = services.alias_policy_create(
        actor=Actor.system(team["dana"]),
        securable_type="registered_model",
        full_name=M,
        alias_patterns=["champion"],
        approvers=["ann"],
    )
    # carl sees the schema (USE SCHEMA) but not the model (no privilege on it), nor `secret`.
    listed = clients["carl"].get(POLICIES).json()
    assert [p["id"] for p in listed["alias_policies"]] == [str(on_schema.id)]
    assert listed["next_page_token"] is None
    both = clients["owen"].get(POLICIES).json()["alias_policies"]
    assert [p["id"] for p in both] == [str(on_schema.id), str(on_model.id)]
    one = clients["owen"].get(POLICIES, {"securable_type": "schema", "full_name": "main.ml"})
    assert [p["id"] for p in one.json()["alias_policies"]] == [str(on_schema.id)]
    level = clients["owen"].get(POLICIES, {"securable_type": "registered_model"})
    assert [p["full_name"] for p in level.json()["alias_policies"]] == [M]
    everything = clients["owen"].get(POLICIES, {"securable_type": "catalog"}).json()
    assert everything["alias_policies"] == []
    error(clients["carl"].get(POLICIES, {"full_name": "main"}), 400, "INVALID_PARAMETER_VALUE")
    error(
        clients["carl"].get(POLICIES, {"securable_type": "catalog", "full_name": "secret"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    error(clients["carl"].get(f"{POLICIES}/{hidden.id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    # Changing a policy needs MANAGE on its securable; seeing it is not enough.
    denied = clients["carl"].patch(f"{POLICIES}/{on_schema.id}", {"required_approvals": 2})
    error(denied, 403, "PERMISSION_DENIED")
    error(
        clients["carl"].patch(f"{POLICIES}/{hidden.id}", {"required_approvals": 2}, format="json"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    # Paging walks every visible policy once.
    first = clients["owen"].get(POLICIES, {"max_results": 1}).json()
    second = (
        clients["owen"]
        .get(POLICIES, {"max_results": 1, "page_token": first["next_page_token"]})
        .json()
    )
    assert [p["id"] for p in first["alias_policies"] + second["alias_policies"]] == [
        str(on_schema.id),
        str(on_model.id),
    ]
    assert second["next_page_token"] is None


@pytest.mark.django_db
def test_policy_update_and_delete(team, versions, policy, clients):
    changed = clients["owen"].patch(
        f"{POLICIES}/{policy.id}",
        {"required_approvals": 1, "approvers": ["bob"], "gates": {"require_signature": True}},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["required_approvals"] == 1 and body["approvers"] == ["bob"]
    assert body["gates"] == {"require_signature": True} and body["updated_by"] == "owen"
    request = ask(clients["dana"])
    deleted = clients["owen"].delete(f"{POLICIES}/{policy.id}")
    assert deleted.status_code == 204
    request.refresh_from_db()
    assert request.state == State.CANCELLED
    error(clients["owen"].get(f"{POLICIES}/{policy.id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    # Unprotected now: the alias moves at once.
    moved = clients["dana"].put(f"{ALIAS}/champion", {"version": 2}, format="json")
    assert moved.status_code == 200 and moved.json()["version"] == 2


# --- bad input -------------------------------------------------------------------------------

GOOD_POLICY = {
    "securable_type": "catalog",
    "full_name": "main",
    "alias_patterns": ["champion"],
    "approvers": ["ann"],
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"required_approvals": 0},
        {"required_approvals": 11},
        {"required_approvals": "2"},
        {"required_approvals": True},
        {"required_approvals": 1.5},
        {"required_approvals": None},
        {"required_approvals": 10**400},
        {"alias_patterns": []},
        {"alias_patterns": [""]},
        {"alias_patterns": ["has space"]},
        {"alias_patterns": "champion"},
        {"alias_patterns": [7]},
        {"alias_patterns": ["x"] * 21},
        {"approvers": []},
        {"approvers": [123]},
        {"approvers": ["nobody-by-that-name"]},
        {"approvers": ["ann\x00"]},
        {"approvers": ["a" * 300]},
        {"request_ttl_seconds": 60},
        {"request_ttl_seconds": "3600"},
        {"gates": "validation"},
        {"gates": []},
        {"gates": {"unknown": 1}},
        {"gates": {"required_tags": ["validation"]}},
        {"gates": {"required_tags": {"validation": 1}}},
        {"gates": {"required_tags": {"valid\x00ation": "passed"}}},
        {"gates": {"metrics": [{"key": "acc", "op": "~", "value": 1}]}},
        {"gates": {"metrics": [{"key": "acc", "op": ">=", "value": "0.9"}]}},
        {"gates": {"metrics": [{"key": "acc", "op": ">=", "value": 10**400}]}},
        {"gates": {"metrics": [{"key": "acc", "op": ">="}]}},
        {"gates": {"require_signature": "yes"}},
        {"description": "x" * 5001},
        {"description": 5},
        {"securable_type": "metastore"},
        {"securable_type": "table"},
        {"full_name": "x" * 10_000},
        {"full_name": "main.ml.wine.extra"},
        {"full_name": None},
        {"required_approval": 2},  # misspelt: refused, not ignored
    ],
    ids=repr,
)
def test_bad_policy_input_is_a_clean_400_and_writes_nothing(team, clients, change):
    events = AuditEvent.objects.filter(outcome="SUCCESS").count()
    response = clients["owen"].post(POLICIES, {**GOOD_POLICY, **change}, format="json")
    error(response, 400, "INVALID_PARAMETER_VALUE")
    assert not AliasPolicy.objects.exists()
    assert AuditEvent.objects.filter(outcome="SUCCESS").count() == events


@pytest.mark.django_db
def test_malformed_bodies_are_refused(team, versions, policy, clients):
    owen = clients["owen"]
    cases = [
        (owen.generic("POST", POLICIES, "{bad json", content_type="application/json"), 400),
        (owen.generic("POST", POLICIES, json.dumps(GOOD_POLICY), content_type="text/plain"), 415),
        (owen.post(POLICIES, [GOOD_POLICY], format="json"), 400),
        (owen.generic("POST", POLICIES, "null", content_type="application/json"), 400),
        (
            owen.generic(
                "POST",
                POLICIES,
                '{"securable_type": "catalog", "securable_type": "schema"}',
                content_type="application/json",
            ),
            400,
        ),
        (owen.patch(f"{POLICIES}/{policy.id}", {"full_name": "main.ml"}, format="json"), 400),
        (owen.patch(f"{POLICIES}/{policy.id}", {"required_approvals": 0}, format="json"), 400),
        (owen.patch(f"{POLICIES}/{policy.id}", {"alias_patterns": []}, format="json"), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.status_code, response.content[:300])
        assert set(response.json()) == {"error_code", "message"}
    policy.refresh_from_db()
    assert policy.required_approvals == 2 and policy.alias_patterns == ["champion", "prod*"]
    assert AliasPolicy.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"version": "2"},
        {"version": 0},
        {"version": -1},
        {"version": True},
        {"version": 2.0},
        {"version": 10**30},
        {"justification": ""},
        {"justification": "   "},
        {"justification": "x" * 5001},
        {"justification": None},
        {"alias": "v3"},
        {"alias": "a" * 300},
        {"alias": "bad alias"},
        {"full_name": "wine"},
        {"full_name": "main.ml.w\x00ine"},
        {"extra": 1},
    ],
    ids=repr,
)
def test_bad_request_input_is_a_clean_400(team, versions, policy, clients, change):
    body = {"full_name": M, "alias": "champion", "version": 2, "justification": "why"}
    response = clients["dana"].post(REQUESTS, {**body, **change}, format="json")
    error(response, 400, "INVALID_PARAMETER_VALUE")
    assert not PromotionRequest.objects.exists()


@pytest.mark.django_db
def test_bad_ids_and_decision_bodies(team, versions, policy, clients):
    request = ask(clients["dana"])
    ann = clients["ann"]
    for bad in ("not-a-uuid", "1", "x" * 2000, "%00"):
        error(ann.get(f"{REQUESTS}/{bad}"), 404, "RESOURCE_DOES_NOT_EXIST")
        error(ann.post(f"{REQUESTS}/{bad}/approve"), 404, "RESOURCE_DOES_NOT_EXIST")
        error(ann.get(f"{POLICIES}/{bad}"), 404, "RESOURCE_DOES_NOT_EXIST")
    for body in ({"comment": 5}, {"comment": "x" * 5001}, {"comment": ["a"]}, {"vote": "yes"}):
        response = ann.post(f"{REQUESTS}/{request.id}/approve", body, format="json")
        error(response, 400, "INVALID_PARAMETER_VALUE")
    error(
        ann.post(f"{REQUESTS}/{request.id}/approve", [1], format="json"),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        clients["dana"].post(f"{REQUESTS}/{request.id}/cancel", {"why": "x"}, format="json"),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    request.refresh_from_db()
    assert request.state == State.PENDING and request.decisions.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"view": "everything"},
        {"state": "DONE"},
        {"model": "not a name"},
        {"model": "main.ml"},
        {"page_token": "garbage"},
        {"page_token": "eyJrIjogIngifQ"},  # a well-formed token holding a foreign key
        {"max_results": "many"},
    ],
    ids=repr,
)
def test_bad_list_queries_are_400(team, clients, query):
    error(clients["ann"].get(REQUESTS, query), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.django_db
def test_duplicate_query_parameters_are_refused(team, clients):
    response = clients["ann"].get(f"{REQUESTS}?view=mine&view=all")
    error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.django_db
def test_bad_alias_bodies(team, versions, clients):
    dana = clients["dana"]
    for body in ({}, {"version": "2"}, {"version": 2, "justification": 3}, {"version": 2, "x": 1}):
        error(dana.put(f"{ALIAS}/challenger", body, format="json"), 400, "INVALID_PARAMETER_VALUE")
    error(dana.put(f"{ALIAS}/v2", {"version": 2}, format="json"), 400, "INVALID_PARAMETER_VALUE")
    error(
        dana.put("/api/v1/models/main.ml/aliases/x", {"version": 2}, format="json"),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        dana.put(f"{ALIAS}/challenger", {"version": 9}, format="json"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    error(
        dana.get(f"{ALIAS}/challenger/history", {"page_token": "x"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert not ModelAlias.objects.filter(alias="challenger").exists()


# --- lists -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_request_list_pages_newest_first(team, versions, policy, clients):
    made = [ask(clients["dana"], alias=f"prod{i}") for i in range(5)]
    seen, token, pages = [], None, 0
    while True:
        query = {"max_results": 2, "view": "mine"}
        if token:
            query["page_token"] = token
        body = clients["dana"].get(REQUESTS, query).json()
        assert len(body["promotion_requests"]) <= 2
        seen += [r["id"] for r in body["promotion_requests"]]
        token, pages = body["next_page_token"], pages + 1
        if not token:
            break
    assert pages == 3
    assert seen == [str(r.id) for r in reversed(made)]


@pytest.mark.django_db
def test_waiting_excludes_own_undecidable_and_decided_requests(
    team, versions, policy, clients, grant
):
    grant("registered_model", M, "ann", "MODIFY")
    by_dana = ask(clients["dana"], alias="champion")
    by_ann = ask(clients["ann"], alias="prod")

    def ids(name, view, **extra):
        response = clients[name].get(REQUESTS, {"view": view, **extra})
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["promotion_requests"]}

    assert ids("ann", "waiting") == {str(by_dana.id)}  # never her own
    assert ids("bob", "waiting") == {str(by_dana.id), str(by_ann.id)}
    assert ids("owen", "waiting") == set()  # sees them (MANAGE) but may not approve
    assert ids("owen", "all") == {str(by_dana.id), str(by_ann.id)}
    assert ids("dana", "mine") == {str(by_dana.id)}
    assert ids("dana", "all") == {str(by_dana.id), str(by_ann.id)}  # MANAGE on the model
    assert ids("carl", "all") == set() and ids("carl", "waiting") == set()

    clients["ann"].post(f"{REQUESTS}/{by_dana.id}/approve")
    assert ids("ann", "waiting") == set()  # decided
    clients["bob"].post(f"{REQUESTS}/{by_ann.id}/reject")
    assert ids("bob", "waiting") == {str(by_dana.id)}
    assert ids("ann", "all", state="REJECTED") == {str(by_ann.id)}
    assert ids("ann", "all", model=M.upper()) == {str(by_dana.id), str(by_ann.id)}
    assert ids("ann", "all", model="main.ml.other") == set()


@pytest.mark.django_db
def test_an_overdue_request_reads_as_expired(team, versions, policy, clients):
    from datetime import timedelta

    from django.utils import timezone

    request = ask(clients["dana"])
    PromotionRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert clients["ann"].get(REQUESTS, {"view": "waiting"}).json()["promotion_requests"] == []
    body = clients["ann"].get(f"{REQUESTS}/{request.id}").json()
    assert body["state"] == "EXPIRED" and body["can_decide"] is False
    error(clients["ann"].post(f"{REQUESTS}/{request.id}/approve"), 400, "FAILED_PRECONDITION")


# --- aliases: delete, rollback, break-glass, history -----------------------------------------


@pytest.mark.django_db
def test_alias_delete_and_a_protected_one_refused(team, versions, policy, clients, grant):
    assert clients["dana"].put(f"{ALIAS}/challenger", {"version": 2}, format="json").json() == {
        **clients["dana"].get(f"{ALIAS}/challenger").json(),
        "version": 2,
    }
    assert clients["dana"].delete(f"{ALIAS}/challenger").status_code == 204
    error(clients["dana"].get(f"{ALIAS}/challenger"), 404, "RESOURCE_DOES_NOT_EXIST")
    refused = clients["dana"].delete(f"{ALIAS}/champion")
    assert "protected" in error(refused, 400, "FAILED_PRECONDITION")
    error(clients["carl"].delete(f"{ALIAS}/champion"), 404, "RESOURCE_DOES_NOT_EXIST")
    grant("registered_model", M, "carl", "EXECUTE")  # sees the model, may not manage it
    error(clients["carl"].delete(f"{ALIAS}/challenger2"), 403, "PERMISSION_DENIED")
    assert champion() == 1


@pytest.mark.django_db
def test_rollback_goes_through_the_policy_and_break_glass_is_for_admins(
    team, versions, policy, clients, admin_user, api
):
    # Unprotected: rollback moves at once.
    clients["dana"].put(f"{ALIAS}/challenger", {"version": 1}, format="json")
    clients["dana"].put(f"{ALIAS}/challenger", {"version": 2}, format="json")
    back = clients["dana"].post(f"{ALIAS}/challenger/rollback", {}, format="json")
    assert back.status_code == 200 and back.json()["version"] == 1

    request = ask(clients["dana"])
    clients["ann"].post(f"{REQUESTS}/{request.id}/approve")
    clients["bob"].post(f"{REQUESTS}/{request.id}/approve")
    assert champion() == 2
    rollback = clients["dana"].post(
        f"{ALIAS}/champion/rollback", {"justification": "v2 regressed"}, format="json"
    )
    error(rollback, 403, "PERMISSION_DENIED")
    pending = PromotionRequest.objects.get(state=State.PENDING)
    assert str(pending.id) in rollback.json()["message"]
    body = clients["ann"].get(f"{REQUESTS}/{pending.id}").json()
    assert body["rollback"] and (body["from_version"], body["version"]) == (2, 1)

    reason = {"version": 1, "reason": "v2 serves wrong prices; incident 42"}
    error(
        clients["owen"].post(f"{ALIAS}/champion/break-glass", reason, format="json"),
        403,
        "PERMISSION_DENIED",
    )
    admin = api(admin_user)
    short = admin.post(f"{ALIAS}/champion/break-glass", {"version": 1, "reason": "now"})
    error(short, 400, "INVALID_PARAMETER_VALUE")
    error(
        admin.post(f"{ALIAS}/champion/break-glass", {"version": 1}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert champion() == 2
    glass = admin.post(f"{ALIAS}/champion/break-glass", reason, format="json")
    assert glass.status_code == 200, glass.content
    assert glass.json()["break_glass"] and glass.json()["state"] == "APPLIED"
    assert champion() == 1
    pending.refresh_from_db()
    assert pending.state == State.STALE
    newest = clients["dana"].get(f"{ALIAS}/champion/history").json()["history"][0]
    assert newest["actor"] == "root" and newest["reason"].startswith("BREAK GLASS")
    assert newest["promotion_request"] == glass.json()["id"]


@pytest.mark.django_db
def test_alias_history_pages_and_needs_a_visible_model(team, versions, clients, tree):
    for version in (2, 1, 2, 1):
        clients["dana"].put(f"{ALIAS}/challenger", {"version": version}, format="json")
    first = clients["owen"].get(f"{ALIAS}/challenger/history", {"max_results": 3}).json()
    assert [h["to_version"] for h in first["history"]] == [1, 2, 1]
    rest = (
        clients["owen"]
        .get(
            f"{ALIAS}/challenger/history",
            {"max_results": 3, "page_token": first["next_page_token"]},
        )
        .json()
    )
    assert [h["to_version"] for h in rest["history"]] == [2] and rest["next_page_token"] is None
    assert AliasHistory.objects.filter(alias="challenger").count() == 4
    tree("secret.vault.model")
    hidden = clients["carl"].get("/api/v1/models/secret.vault.model/aliases/champion/history")
    missing = clients["carl"].get("/api/v1/models/secret.vault.nothing/aliases/champion/history")
    error(hidden, 404, "RESOURCE_DOES_NOT_EXIST")
    error(missing, 404, "RESOURCE_DOES_NOT_EXIST")


# --- audit -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_write_leaves_an_audit_event_with_the_right_actor(
    team, versions, clients, admin_user, api
):
    def last(action: str) -> AuditEvent:
        event = AuditEvent.objects.filter(action=action, outcome="SUCCESS").last()
        assert event is not None, action
        return event

    def check(action: str, actor: str) -> None:
        event = last(action)
        assert (event.actor, event.auth_method) == (actor, "token"), (action, event.actor)

    created = clients["owen"].post(POLICIES, {**GOOD_POLICY, "approvers": ["reviewers"]}).json()
    check("alias_policy.create", "owen")
    clients["owen"].patch(f"{POLICIES}/{created['id']}", {"description": "prod gate"})
    check("alias_policy.update", "owen")

    made = (
        clients["dana"]
        .post(
            REQUESTS,
            {"full_name": M, "alias": "champion", "version": 2, "justification": "new model"},
            format="json",
        )
        .json()
    )
    check("promotion_request.create", "dana")
    assert last("promotion_request.create").details["promotion_request"] == made["id"]
    clients["dana"].post(f"{REQUESTS}/{made['id']}/cancel")
    check("promotion_request.cancel", "dana")

    second = ask(clients["dana"])
    clients["ann"].post(f"{REQUESTS}/{second.id}/approve", {"comment": "ok"}, format="json")
    check("promotion_request.approve", "ann")
    check("promotion_request.apply", "ann")
    check("alias.set", "ann")
    third = clients["dana"].post(f"{ALIAS}/champion/rollback", {}, format="json")
    assert third.status_code == 403
    pending = PromotionRequest.objects.get(state=State.PENDING)
    clients["bob"].post(f"{REQUESTS}/{pending.id}/reject", {"comment": "no"}, format="json")
    check("promotion_request.reject", "bob")

    clients["dana"].put(f"{ALIAS}/challenger", {"version": 2}, format="json")
    check("alias.set", "dana")
    clients["dana"].delete(f"{ALIAS}/challenger")
    check("alias.delete", "dana")

    api(admin_user).post(
        f"{ALIAS}/champion/break-glass",
        {"version": 1, "reason": "incident 7: rolling back now"},
        format="json",
    )
    check("promotion_request.break_glass", "root")
    clients["owen"].delete(f"{POLICIES}/{created['id']}")
    check("alias_policy.delete", "owen")


# --- the contract --------------------------------------------------------------------------


@pytest.mark.django_db
def test_openapi_schema_documents_the_approval_api(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path, methods in {
        "/api/v1/alias-policies": {"get", "post"},
        "/api/v1/alias-policies/{policy_id}": {"get", "patch", "delete"},
        "/api/v1/promotion-requests": {"get", "post"},
        "/api/v1/promotion-requests/{request_id}": {"get"},
        "/api/v1/promotion-requests/{request_id}/approve": {"post"},
        "/api/v1/promotion-requests/{request_id}/reject": {"post"},
        "/api/v1/promotion-requests/{request_id}/cancel": {"post"},
        "/api/v1/models/{full_name}/aliases/{alias}": {"get", "put", "delete"},
        "/api/v1/models/{full_name}/aliases/{alias}/rollback": {"post"},
        "/api/v1/models/{full_name}/aliases/{alias}/break-glass": {"post"},
        "/api/v1/models/{full_name}/aliases/{alias}/history": {"get"},
    }.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    output = schema["components"]["schemas"]["PromotionRequestOutput"]["properties"]
    assert {"approvals", "decisions", "can_decide", "links", "gate_results"} <= set(output)


# --- service-layer rules found by these tests -----------------------------------------------


@pytest.mark.django_db
def test_read_only_token_of_a_manage_holder_sees_the_request(team, versions, policy, clients, api):
    request = ask(clients["dana"])
    assert clients["owen"].get(f"{REQUESTS}/{request.id}").status_code == 200
    assert api(team["owen"], scope="read").get(f"{REQUESTS}/{request.id}").status_code == 200


@pytest.mark.django_db
def test_selector_list_of_requests_filters_what_the_actor_may_see(team, versions, policy, clients):
    from registry.selectors.promotions import promotion_request_list

    ask(clients["dana"])
    assert promotion_request_list(actor=Actor.system(team["carl"]))[0] == []
    assert promotion_request_list(actor=Actor.system(team["owen"]), view="waiting")[0] == []
    assert len(promotion_request_list(actor=Actor.system(team["ann"]), view="waiting")[0]) == 1


@pytest.mark.django_db
def test_can_decide_knows_token_scope_and_expiry(team, versions, policy, clients):
    from datetime import timedelta

    from accounts.services import api_token_issue
    from registry.selectors import promotions

    request = ask(clients["dana"])
    token, _ = api_token_issue(
        actor=Actor.system(team["ann"]), user=team["ann"], name="r", scope="read"
    )
    read_only = Actor(user=team["ann"], auth_method="token", token=token)
    assert not promotions.can_decide(read_only, request)
    request.expires_at -= timedelta(days=30)
    assert not promotions.can_decide(Actor.system(team["ann"]), request)


@pytest.mark.django_db
def test_hidden_targets_are_audited_as_denied(team, versions, policy, clients):
    request = ask(clients["dana"])
    error(clients["carl"].post(f"{REQUESTS}/{request.id}/approve"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert AuditEvent.objects.filter(outcome="DENIED", actor="carl").count() == 1
    error(clients["carl"].post(f"{ALIAS}/champion/rollback"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert AuditEvent.objects.filter(outcome="DENIED", actor="carl").count() == 2


@pytest.mark.parametrize(
    "gates",
    [
        {"metrics": [{"key": "acc", "op": ">=", "value": 10**400}]},  # OverflowError: a 500
        {"required_tags": {"valid\x00ation": "passed"}},  # jsonb refuses NUL: a 500 on PostgreSQL
    ],
    ids=["huge-int", "nul"],
)
def test_service_refuses_gates_the_database_cannot_hold(gates):
    from core.errors import InvalidParameter
    from registry import policies

    with pytest.raises(InvalidParameter):
        policies.clean_gates(gates)
