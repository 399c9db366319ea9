"""Every registry service reports its event with MLflow's payload shape (Steward's own for
promotions and version deletion), through every door alike because the services do it."""

from __future__ import annotations

import json

import pytest

from core.actor import Actor
from registry import services as registry
from registry.services.promotions import ApprovalRequired
from webhooks import events, services
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def everything(admin_actor, settings):
    """A metastore-wide webhook on every event (to a public name: these tests never send)."""
    return services.webhook_create(
        actor=admin_actor, name="all", url="https://hooks.example.com/in", events=list(events.ALL)
    )


def emitted() -> list[tuple[str, dict]]:
    return [
        (d.event, json.loads(d.payload)["data"])
        for d in WebhookDelivery.objects.order_by("created_at", "id")
    ]


def test_model_and_version_events(admin_actor, tree, everything, ready_version, admin_user):
    tree("c.s")
    registry.registered_model_create(
        actor=admin_actor,
        catalog_name="c",
        schema_name="s",
        name="m",
        comment="red wines",
        tags=[{"key": "team", "value": "ml"}],
    )
    version = ready_version(admin_user, "c.s.m", tags={"stage": "dev"})
    registry.model_version_tag_set(
        actor=admin_actor, full_name="c.s.m", version=1, key="k", value="v"
    )
    registry.model_version_tag_delete(actor=admin_actor, full_name="c.s.m", version=1, key="k")
    registry.alias_set(actor=admin_actor, full_name="c.s.m", alias="champion", version=1)
    registry.alias_set(actor=admin_actor, full_name="c.s.m", alias="champion", version=1)  # no-op
    registry.alias_delete(actor=admin_actor, full_name="c.s.m", alias="champion")
    registry.alias_set(actor=admin_actor, full_name="c.s.m", alias="challenger", version=1)
    registry.model_version_delete(actor=admin_actor, full_name="c.s.m", version=1)
    assert emitted() == [
        (
            "registered_model.created",
            {"name": "c.s.m", "tags": {"team": "ml"}, "description": "red wines"},
        ),
        (
            "model_version.created",
            {
                "name": "c.s.m",
                "version": "1",
                "source": version.source,
                "run_id": version.run_id or None,
                "tags": {"stage": "dev"},
                "description": None,
            },
        ),
        ("model_version_tag.set", {"name": "c.s.m", "version": "1", "key": "k", "value": "v"}),
        ("model_version_tag.deleted", {"name": "c.s.m", "version": "1", "key": "k"}),
        ("model_version_alias.created", {"name": "c.s.m", "alias": "champion", "version": "1"}),
        ("model_version_alias.deleted", {"name": "c.s.m", "alias": "champion"}),
        ("model_version_alias.created", {"name": "c.s.m", "alias": "challenger", "version": "1"}),
        ("model_version_alias.deleted", {"name": "c.s.m", "alias": "challenger"}),
        ("model_version.deleted", {"name": "c.s.m", "version": "1", "reason": ""}),
    ]


def test_envelope_is_mlflows(admin_actor, tree, everything):
    tree("c.s.m")
    body = json.loads(WebhookDelivery.objects.get().payload)
    assert set(body) == {"entity", "action", "timestamp", "data"}
    assert (body["entity"], body["action"]) == ("registered_model", "created")
    assert body["timestamp"].endswith("+00:00")


def test_a_refused_change_emits_nothing(admin_actor, tree, everything, make_user):
    from core.errors import NotFound

    tree("c.s.m")
    WebhookDelivery.objects.all().delete()
    with pytest.raises(NotFound):
        registry.model_version_tag_set(
            actor=Actor.system(make_user("mallory")),
            full_name="c.s.m",
            version=1,
            key="k",
            value="v",
        )
    assert WebhookDelivery.objects.count() == 0


@pytest.fixture
def promotion(tree, make_user, grant, ready_version, admin_actor):
    tree("c.s.m")
    dana = make_user("dana")
    ann = make_user("ann", groups=("reviewers",))
    bob = make_user("bob", groups=("reviewers",))
    for name in ("dana", "ann", "bob"):
        grant("catalog", "c", name, "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "c.s.m", "dana", "MODIFY", "MANAGE")
    ready_version(dana, "c.s.m")
    ready_version(dana, "c.s.m")
    registry.alias_set(actor=Actor.system(dana), full_name="c.s.m", alias="champion", version=1)
    registry.alias_policy_create(
        actor=admin_actor,
        securable_type="catalog",
        full_name="c",
        alias_patterns=["champion"],
        approvers=["reviewers"],
        required_approvals=2,
    )
    return {"dana": Actor.system(dana), "ann": Actor.system(ann), "bob": Actor.system(bob)}


def _request(actors):
    with pytest.raises(ApprovalRequired) as caught:
        registry.alias_set(actor=actors["dana"], full_name="c.s.m", alias="champion", version=2)
    return caught.value.request


def test_promotion_events(promotion, everything):
    request = _request(promotion)
    registry.promotion_request_approve(actor=promotion["ann"], request_id=request.id)
    registry.promotion_request_approve(actor=promotion["bob"], request_id=request.id)
    names = [e for e, _ in emitted()]
    assert names == [
        "promotion_request.created",
        "promotion_request.approved",
        "model_version_alias.created",
        "promotion_request.applied",
    ]
    created, approved, alias, applied = (d for _, d in emitted())
    assert created == {
        "id": str(request.id),
        "name": "c.s.m",
        "alias": "champion",
        "kind": "ALIAS",
        "version": "2",
        "from_version": "1",
        "state": "PENDING",
        "requester": "dana",
        "justification": "",
        "break_glass": False,
    }
    assert approved["state"] == "APPROVED" and applied["state"] == "APPLIED"
    assert alias == {"name": "c.s.m", "alias": "champion", "version": "2"}


def test_rejection_and_break_glass_events(promotion, everything, admin_actor):
    request = _request(promotion)
    registry.promotion_request_reject(actor=promotion["ann"], request_id=request.id)
    registry.alias_break_glass(
        actor=admin_actor,
        full_name="c.s.m",
        alias="champion",
        version=2,
        reason="production is down, rolling forward",
    )
    events_and_states = [(e, d.get("state"), d.get("break_glass")) for e, d in emitted()]
    assert events_and_states == [
        ("promotion_request.created", "PENDING", False),
        ("promotion_request.rejected", "REJECTED", False),
        ("model_version_alias.created", None, None),
        ("promotion_request.applied", "APPLIED", True),
    ]
