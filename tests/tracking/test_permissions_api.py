"""The native sharing API, /api/v1/experiments/{id}/permissions: who may list, grant and
revoke, what each level then allows through the MLflow door, and the audit trail."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from tests.tracking.conftest import error_of
from tracking.models import ExperimentPermission

pytestmark = pytest.mark.django_db


def _path(experiment_id) -> str:
    return f"/api/v1/experiments/{experiment_id}/permissions"


@pytest.fixture
def exp_id(door, alice) -> str:
    return door(alice).post("experiments/create", {"name": "exp"}).json()["experiment_id"]


def test_owner_grants_changes_lists_and_revokes(door, alice, bob, exp_id):
    owner = door(alice).client
    granted = owner.post(_path(exp_id), {"principal": "bob", "level": "CAN_READ"}, format="json")
    assert granted.status_code == 200, granted.content
    body = granted.json()
    assert body["experiment_id"] == exp_id and body["owner"] == "alice"
    assert [(p["principal"], p["principal_type"], p["level"]) for p in body["permissions"]] == [
        ("bob", "USER", "CAN_READ")
    ]
    changed = owner.post(_path(exp_id), {"principal": "bob", "level": "CAN_EDIT"}, format="json")
    assert [p["level"] for p in changed.json()["permissions"]] == ["CAN_EDIT"]
    group = owner.post(
        _path(exp_id), {"principal": "data_science", "level": "CAN_READ"}, format="json"
    )
    assert {p["principal_type"] for p in group.json()["permissions"]} == {"USER", "GROUP"}
    assert owner.get(_path(exp_id)).json() == group.json()
    revoked = owner.delete(_path(exp_id), {"principal": "bob"}, format="json")
    assert [p["principal"] for p in revoked.json()["permissions"]] == ["data_science"]
    again = owner.delete(_path(exp_id), {"principal": "bob"}, format="json")
    assert again.status_code == 200
    events = AuditEvent.objects.filter(action="experiment.permissions_update", actor="alice")
    assert events.count() == 5
    assert events.first().details["principal"] == "bob" and events.first().securable == exp_id


def test_levels_through_the_door(door, alice, carol, exp_id):
    owner, other = door(alice), door(carol)
    run_id = owner.post("runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]
    write = {"run_id": run_id, "key": "k", "value": "v"}
    assert error_of(other.get("runs/get", {"run_id": run_id})) == "RESOURCE_DOES_NOT_EXIST"
    assert error_of(other.post("runs/set-tag", write)) == "RESOURCE_DOES_NOT_EXIST"
    hidden = other.client.get(_path(exp_id))
    assert hidden.status_code == 404 and error_of(hidden) == "RESOURCE_DOES_NOT_EXIST"

    owner.client.post(_path(exp_id), {"principal": "carol", "level": "CAN_READ"}, format="json")
    assert other.get("runs/get", {"run_id": run_id}).status_code == 200
    denied = other.post("runs/set-tag", write)
    assert denied.status_code == 403 and error_of(denied) == "PERMISSION_DENIED"
    listing = other.client.get(_path(exp_id))
    assert listing.status_code == 403 and error_of(listing) == "PERMISSION_DENIED"

    owner.client.post(_path(exp_id), {"principal": "carol", "level": "CAN_EDIT"}, format="json")
    assert other.post("runs/set-tag", write).status_code == 200
    assert error_of(other.post("runs/delete", {"run_id": run_id})) == "PERMISSION_DENIED"

    owner.client.post(_path(exp_id), {"principal": "carol", "level": "CAN_MANAGE"}, format="json")
    assert other.client.get(_path(exp_id)).status_code == 200
    assert other.post("runs/delete", {"run_id": run_id}).status_code == 200


def test_read_only_token_cannot_write_or_share(door, alice, exp_id):
    reader = door(alice, scope="read")
    assert reader.get("experiments/get", {"experiment_id": exp_id}).status_code == 200
    refused = reader.post("runs/create", {"experiment_id": exp_id})
    assert refused.status_code == 403 and error_of(refused) == "PERMISSION_DENIED"
    refused = reader.post("experiments/create", {"name": "other"})
    assert refused.status_code == 403
    refused = reader.client.post(
        _path(exp_id), {"principal": "alice", "level": "CAN_READ"}, format="json"
    )
    assert refused.status_code == 403
    assert reader.client.get(_path(exp_id)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"principal": "bob"},
        {"principal": "nobody-like-this", "level": "CAN_READ"},
        {"principal": "bob", "level": "READ"},
        {"principal": "bob", "level": "can_read"},
        {"principal": 5, "level": "CAN_READ"},
        {"principal": "bob", "level": None},
        {"principal": "", "level": "CAN_READ"},
    ],
)
def test_bad_grants_are_refused(door, alice, bob, exp_id, body):
    response = door(alice).client.post(_path(exp_id), body, format="json")
    assert response.status_code == 400 and error_of(response) == "INVALID_PARAMETER_VALUE"
    assert not ExperimentPermission.objects.exists()


def test_unknown_experiment_ids(door, alice):
    for experiment_id in ["999", "abc", "0"]:
        response = door(alice).client.get(_path(experiment_id))
        assert response.status_code == 404 and error_of(response) == "RESOURCE_DOES_NOT_EXIST"


def test_admin_may_share_any_experiment(door, admin_user, bob, exp_id):
    response = door(admin_user).client.post(
        _path(exp_id), {"principal": "bob", "level": "CAN_READ"}, format="json"
    )
    assert response.status_code == 200
