"""The native retention API over HTTP (issue 6): /api/v1/retention-policies (CRUD, MANAGE on
the securable) and their previews, /api/v1/models/{full_name}/retention-preview, and the legal
holds at /api/v1/models/{full_name}[/versions/{version}]/legal-hold (metastore admins)
(SECURITY_CASES 9, 11-13, 28, 33)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from registry.models import LegalHold, ModelVersion, RetentionPolicy
from registry.services import retention as retention_services

M = "main.ml.wine"
POLICIES = "/api/v1/retention-policies"
HOLD = f"/api/v1/models/{M}/legal-hold"


@pytest.fixture
def team(tree, make_user, grant, admin_user):
    """owen (MANAGE on catalog main), dana (MODIFY + MANAGE on the model), vic (sees the
    model: USE + EXECUTE), carl (nothing), root (admin)."""
    tree(M)
    users = {
        "owen": make_user("owen"),
        "dana": make_user("dana"),
        "vic": make_user("vic"),
        "carl": make_user("carl"),
        "root": admin_user,
    }
    for name in ("owen", "dana", "vic"):
        grant("catalog", "main", name, "USE CATALOG", "USE SCHEMA")
    grant("catalog", "main", "owen", "MANAGE")
    grant("registered_model", M, "dana", "MODIFY", "MANAGE")
    grant("registered_model", M, "vic", "EXECUTE")
    return users


@pytest.fixture
def api(api_as, team):
    """api("owen", scope="all") -> a JSON client with that user's token."""

    def make(name: str | None, scope: str = "all"):
        client = api_as(team[name] if name else None, scope)
        client.default_format = "json"
        return client

    return make


@pytest.fixture
def old_versions(team, ready_version):
    """Versions 1-3 of the model, created 100 days ago."""
    versions = [ready_version(team["dana"], M) for _ in range(3)]
    ModelVersion.objects.filter(model__full_name=M).update(
        created_at=timezone.now() - timedelta(days=100)
    )
    return versions


def create(client, **body):
    return client.post(
        POLICIES, {"securable_type": "catalog", "full_name": "main", **body}, format="json"
    )


# --- policies ----------------------------------------------------------------------------------


def test_manage_holder_creates_reads_updates_and_deletes_a_policy(api):
    owen = api("owen")
    response = create(owen, archive_after_days=30, delete_after_days=90, keep_last=3)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["securable_type"] == "catalog" and body["full_name"] == "main"
    assert (body["archive_after_days"], body["delete_after_days"], body["keep_last"]) == (
        30,
        90,
        3,
    )
    url = f"{POLICIES}/{body['id']}"
    assert owen.get(url).json()["keep_last"] == 3
    listed = owen.get(POLICIES).json()["retention_policies"]
    assert [p["id"] for p in listed] == [body["id"]]
    changed = owen.patch(url, {"delete_after_days": None, "keep_last": 5}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["delete_after_days"], changed.json()["keep_last"]) == (None, 5)
    assert owen.delete(url).status_code == 204
    assert owen.get(url).status_code == 404
    actions = list(
        AuditEvent.objects.filter(action__startswith="retention_policy.", actor="owen")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "retention_policy.create",
        "retention_policy.update",
        "retention_policy.delete",
    ]


def test_model_level_policy_by_its_manage_holder(api):
    response = api("dana").post(
        POLICIES,
        {"securable_type": "registered_model", "full_name": M, "archive_after_days": 7},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["securable_type"] == "registered_model"


def test_without_manage_a_visible_securable_answers_403_and_a_hidden_one_404(api):
    assert create(api("vic"), archive_after_days=1).status_code == 403
    assert create(api("carl"), archive_after_days=1).status_code == 404
    assert create(api("owen", scope="read"), archive_after_days=1).status_code == 403
    assert create(api(None), archive_after_days=1).status_code == 401
    assert not RetentionPolicy.objects.exists()
    assert AuditEvent.objects.filter(
        action="retention_policy.create", outcome="DENIED", actor="vic"
    ).exists()


def test_policies_of_hidden_securables_are_not_listed_or_readable(api):
    policy_id = create(api("owen"), archive_after_days=1).json()["id"]
    assert api("carl").get(POLICIES).json()["retention_policies"] == []
    assert api("carl").get(f"{POLICIES}/{policy_id}").status_code == 404
    assert api("carl").delete(f"{POLICIES}/{policy_id}").status_code == 404
    assert api("vic").get(f"{POLICIES}/{policy_id}").status_code == 200
    assert api("vic").patch(f"{POLICIES}/{policy_id}", {"keep_last": 1}).status_code == 403
    assert api("vic").delete(f"{POLICIES}/{policy_id}").status_code == 403
    assert RetentionPolicy.objects.get().keep_last == 0


def test_one_policy_per_securable(api):
    assert create(api("owen"), archive_after_days=1).status_code == 201
    second = create(api("owen"), archive_after_days=2)
    assert second.status_code == 409
    assert second.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.parametrize(
    "body",
    [
        {"archive_after_days": -1},
        {"archive_after_days": "30"},
        {"archive_after_days": True},
        {"archive_after_days": 1.5},
        {"delete_after_days": 36501},
        {"keep_last": None},
        {"keep_last": 10001},
        {"keep_last": -2},
        {"description": "a\x00b"},
        {"keep_lats": 3},
        {"securable_type": "metastore", "full_name": "steward"},
        {"securable_type": "volume"},
    ],
)
def test_bad_policy_input_answers_400_and_stores_nothing(api, body):
    response = create(api("owen"), **body)
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not RetentionPolicy.objects.exists()


def test_bad_policy_ids_answer_404(api):
    for policy_id in ("nope", "00000000-0000-0000-0000-000000000000", "%00"):
        assert api("owen").get(f"{POLICIES}/{policy_id}").status_code == 404


# --- previews ----------------------------------------------------------------------------------


def test_previews_show_what_a_run_would_do_and_page(api, team, old_versions):
    owen = api("owen")
    policy_id = create(owen, archive_after_days=30, keep_last=1).json()["id"]
    retention_services.legal_hold_set(
        actor=_actor(team["root"]), full_name=M, version=2, reason="keep for the audit"
    )
    body = owen.get(f"{POLICIES}/{policy_id}/preview").json()
    items = [(i["full_name"], i["version"], i["action"]) for i in body["items"]]
    assert items == [(M, 1, "archive"), (M, 2, "keep")]
    assert body["items"][1]["reasons"] == ["under legal hold"]
    assert body["next_page_token"] is None
    first = owen.get(f"{POLICIES}/{policy_id}/preview?max_results=1").json()
    assert [i["version"] for i in first["items"]] == [1] and first["next_page_token"]
    second = owen.get(
        f"{POLICIES}/{policy_id}/preview?max_results=1&page_token={first['next_page_token']}"
    ).json()
    assert [i["version"] for i in second["items"]] == [2] and second["next_page_token"] is None
    model = api("dana").get(f"/api/v1/models/{M}/retention-preview").json()
    assert model["policy"]["id"] == policy_id
    assert [(i["version"], i["action"]) for i in model["items"]] == [(1, "archive"), (2, "keep")]
    # Nothing changed.
    assert set(ModelVersion.objects.values_list("lifecycle", flat=True)) == {"ACTIVE"}


def test_previews_need_manage(api, old_versions):
    policy_id = create(api("owen"), archive_after_days=30).json()["id"]
    assert api("vic").get(f"{POLICIES}/{policy_id}/preview").status_code == 403
    assert api("carl").get(f"{POLICIES}/{policy_id}/preview").status_code == 404
    assert api("vic").get(f"/api/v1/models/{M}/retention-preview").status_code == 403
    assert api("carl").get(f"/api/v1/models/{M}/retention-preview").status_code == 404
    bad = api("owen").get(f"{POLICIES}/{policy_id}/preview?page_token=garbage")
    assert bad.status_code == 400


def test_a_read_only_token_previews_what_its_user_may(api, old_versions):
    """A preview changes nothing: its user's MANAGE decides, not the token's scope."""
    policy_id = create(api("owen"), archive_after_days=30).json()["id"]
    assert api("owen", scope="read").get(f"{POLICIES}/{policy_id}/preview").status_code == 200
    assert api("dana", scope="read").get(f"/api/v1/models/{M}/retention-preview").status_code == 200
    assert api("vic", scope="read").get(f"{POLICIES}/{policy_id}/preview").status_code == 403
    assert api("carl", scope="read").get(f"/api/v1/models/{M}/retention-preview").status_code == 404


def test_model_preview_without_a_policy_is_empty(api, old_versions):
    body = api("dana").get(f"/api/v1/models/{M}/retention-preview").json()
    assert body == {"full_name": M, "policy": None, "items": [], "next_page_token": None}


# --- legal holds -------------------------------------------------------------------------------


def _actor(user):
    from core.actor import Actor

    return Actor.system(user)


def test_admin_sets_reads_and_clears_a_model_hold(api, old_versions):
    root = api("root")
    response = root.put(HOLD, {"reason": "litigation 42"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] is None and response.json()["created_by"] == "root"
    assert api("vic").get(HOLD).json()["reason"] == "litigation 42"
    again = root.put(HOLD, {"reason": "litigation 43"}, format="json")
    assert again.json()["reason"] == "litigation 43"
    assert LegalHold.objects.count() == 1
    assert root.delete(HOLD).status_code == 204
    assert root.delete(HOLD).status_code == 404
    assert api("vic").get(HOLD).status_code == 404
    events = AuditEvent.objects.filter(action__startswith="legal_hold.", outcome="SUCCESS")
    assert [(e.action, e.actor, e.details.get("previous_reason")) for e in events] == [
        ("legal_hold.set", "root", None),
        ("legal_hold.set", "root", "litigation 42"),
        ("legal_hold.clear", "root", None),
    ]


def test_admin_holds_one_version(api, old_versions):
    url = f"/api/v1/models/{M}/versions/2/legal-hold"
    response = api("root").put(url, {"reason": "evidence"}, format="json")
    assert response.status_code == 200 and response.json()["version"] == 2
    assert LegalHold.objects.get().version.version == 2
    assert api("root").get(HOLD).status_code == 404, "the model itself is not held"
    assert api("root").delete(url).status_code == 204
    assert (
        api("root").put(f"/api/v1/models/{M}/versions/9/legal-hold", {"reason": "x"}).status_code
        == 404
    )
    assert (
        api("root").put(f"/api/v1/models/{M}/versions/x/legal-hold", {"reason": "x"}).status_code
        == 400
    )


def test_only_admins_set_or_clear_holds(api, team, old_versions):
    retention_services.legal_hold_set(actor=_actor(team["root"]), full_name=M, reason="keep")
    for name in ("owen", "dana", "vic"):
        assert api(name).put(HOLD, {"reason": "mine"}, format="json").status_code == 403
        assert api(name).delete(HOLD).status_code == 403
    assert api("carl").put(HOLD, {"reason": "mine"}, format="json").status_code == 404
    assert api("carl").get(HOLD).status_code == 404
    assert api("root", scope="read").delete(HOLD).status_code == 403
    assert LegalHold.objects.get().reason == "keep"
    denied = AuditEvent.objects.filter(action="legal_hold.set", outcome="DENIED")
    # Denied attempts are audited, the one on a hidden model (a 404) included.
    assert sorted(denied.values_list("actor", flat=True)) == ["carl", "dana", "owen", "vic"]


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "  "}, {"reason": 5}])
def test_a_hold_needs_a_reason(api, old_versions, body):
    assert api("root").put(HOLD, body, format="json").status_code == 400
    assert not LegalHold.objects.exists()
