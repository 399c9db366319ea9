"""Alias policies and promotion requests through the services: the state machine, four eyes,
gates, staleness, expiry, rollback and break-glass (issue 4; SECURITY_CASES 20-23)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from core.actor import Actor
from core.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from registry import services
from registry.models import AliasHistory, ModelAlias, ModelVersion, PromotionRequest
from registry.services.promotions import ApprovalRequired

M = "main.ml.wine"
State = PromotionRequest.State


@pytest.fixture
def team(tree, make_user, grant):
    """dana (data scientist: MODIFY, MANAGE, EXECUTE on the model), owen (owner of the
    catalog), ann and bob (approvers through the group `reviewers`), carl (no role)."""
    tree("main.ml.wine")
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


def act(user) -> Actor:
    return Actor.system(user)


@pytest.fixture
def policy(team):
    return services.alias_policy_create(
        actor=act(team["owen"]),
        securable_type="catalog",
        full_name="main",
        alias_patterns=["champion", "prod*"],
        approvers=["reviewers"],
        required_approvals=2,
    )


@pytest.fixture
def versions(team, ready_version):
    """Versions 1 and 2 of main.ml.wine, champion -> 1 (set before the policy existed)."""
    one = ready_version(team["dana"], M)
    two = ready_version(team["dana"], M)
    services.alias_set(actor=act(team["dana"]), full_name=M, alias="champion", version=1)
    return one, two


def request_champion(team, version=2) -> PromotionRequest:
    with pytest.raises(ApprovalRequired) as caught:
        services.alias_set(actor=act(team["dana"]), full_name=M, alias="champion", version=version)
    return caught.value.request


def champion() -> int:
    return ModelAlias.objects.get(model__full_name=M, alias="champion").version.version


@pytest.mark.django_db
def test_protected_alias_set_opens_a_request_and_names_it(team, versions, policy):
    request = request_champion(team)
    assert request.state == State.PENDING and request.from_version == 1
    assert request.required_approvals == 2 and request.version_number == 2
    assert champion() == 1
    with pytest.raises(ApprovalRequired) as again:
        services.alias_set(actor=act(team["dana"]), full_name=M, alias="champion", version=2)
    assert again.value.request.pk == request.pk  # retried: the same open request
    message = again.value.message
    assert str(request.id) in message and "/console/promotion-requests/" in message
    assert again.value.status == 403
    # Unprotected aliases still move at once with MANAGE.
    services.alias_set(actor=act(team["dana"]), full_name=M, alias="challenger", version=2)
    assert AuditEvent.objects.filter(action="promotion_request.create").count() == 1


@pytest.mark.django_db
def test_two_approvals_apply_the_move_with_history(team, versions, policy):
    request = request_champion(team)
    first = services.promotion_request_approve(
        actor=act(team["ann"]), request_id=request.id, comment="lgtm"
    )
    assert first.state == State.PENDING and champion() == 1
    second = services.promotion_request_approve(actor=act(team["bob"]), request_id=request.id)
    assert second.state == State.APPLIED and second.applied_at is not None
    assert champion() == 2
    move = AliasHistory.objects.filter(model__full_name=M, alias="champion").last()
    assert (move.from_version, move.to_version, move.promotion_id) == (1, 2, request.id)
    actions = list(
        AuditEvent.objects.filter(action__startswith="promotion_request.").values_list(
            "action", flat=True
        )
    )
    assert actions == [
        "promotion_request.create",
        "promotion_request.approve",
        "promotion_request.approve",
        "promotion_request.approved",
        "promotion_request.apply",
    ]


@pytest.mark.django_db
def test_requester_cannot_approve_own_request_admins_included(
    team, versions, policy, admin_user, grant
):
    # An admin who is also an approver requests; their own approval is refused.
    admin_user.groups.add(*team["ann"].groups.all())
    with pytest.raises(ApprovalRequired) as caught:
        services.alias_set(actor=act(admin_user), full_name=M, alias="champion", version=2)
    request = caught.value.request
    with pytest.raises(PermissionDenied, match="cannot approve"):
        services.promotion_request_approve(actor=act(admin_user), request_id=request.id)
    assert request.decisions.count() == 0
    assert AuditEvent.objects.filter(
        action="promotion_request.approve", outcome="DENIED", actor="root"
    ).exists()


@pytest.mark.django_db
def test_one_approval_per_approver_and_only_named_approvers(team, versions, policy):
    request = request_champion(team)
    services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
    with pytest.raises(AlreadyExists):
        services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
    # owen may see the request (MANAGE on the catalog) but is not an approver.
    with pytest.raises(PermissionDenied, match="not an approver"):
        services.promotion_request_approve(actor=act(team["owen"]), request_id=request.id)
    # carl cannot even see it.
    with pytest.raises(NotFound):
        services.promotion_request_approve(actor=act(team["carl"]), request_id=request.id)
    request.refresh_from_db()
    assert request.state == State.PENDING and request.decisions.count() == 1


@pytest.mark.django_db
def test_approver_who_loses_the_right_no_longer_counts(team, versions, policy, make_user):
    request = request_champion(team)
    services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
    team["ann"].groups.clear()  # removed from reviewers before the request applies
    services.promotion_request_approve(actor=act(team["bob"]), request_id=request.id)
    request.refresh_from_db()
    assert request.state == State.PENDING and champion() == 1
    make_user("cleo", groups=("reviewers",))
    from accounts.models import User

    services.promotion_request_approve(
        actor=act(User.objects.get(username="cleo")), request_id=request.id
    )
    request.refresh_from_db()
    assert request.state == State.APPLIED and champion() == 2


@pytest.mark.django_db
def test_reject_is_final_and_cancel_is_the_requesters(team, versions, policy):
    request = request_champion(team)
    with pytest.raises(PermissionDenied, match="Only the requester"):
        services.promotion_request_cancel(actor=act(team["ann"]), request_id=request.id)
    rejected = services.promotion_request_reject(
        actor=act(team["ann"]), request_id=request.id, comment="metrics regressed"
    )
    assert rejected.state == State.REJECTED
    for call in (services.promotion_request_approve, services.promotion_request_reject):
        with pytest.raises(FailedPrecondition, match="REJECTED"):
            call(actor=act(team["bob"]), request_id=request.id)
    with pytest.raises(FailedPrecondition, match="REJECTED"):
        services.promotion_request_cancel(actor=act(team["dana"]), request_id=request.id)

    again = request_champion(team)  # a new request may follow a decided one
    assert again.pk != request.pk
    cancelled = services.promotion_request_cancel(actor=act(team["dana"]), request_id=again.id)
    assert cancelled.state == State.CANCELLED
    with pytest.raises(FailedPrecondition, match="CANCELLED"):
        services.promotion_request_approve(actor=act(team["ann"]), request_id=again.id)
    assert champion() == 1


@pytest.mark.django_db
def test_alias_moved_since_the_request_makes_it_stale(team, versions, policy, ready_version):
    ready_version(team["dana"], M)  # version 3
    request = request_champion(team, version=2)
    services.promotion_request_cancel(actor=act(team["dana"]), request_id=request.id)
    other = request_champion(team, version=3)
    services.promotion_request_approve(actor=act(team["ann"]), request_id=other.id)
    services.promotion_request_approve(actor=act(team["bob"]), request_id=other.id)
    assert champion() == 3
    # A request made when champion was 1 (forced here: it would otherwise be refused as open).
    old = PromotionRequest.objects.create(
        model=other.model,
        alias="champion",
        version=ModelVersion.objects.get(model__full_name=M, version=2),
        version_number=2,
        artifact_digest=ModelVersion.objects.get(model__full_name=M, version=2).artifact_digest,
        from_version=1,
        policy=other.policy,
        required_approvals=2,
        requester=team["dana"],
        requester_name="dana",
        expires_at=timezone.now() + timedelta(days=1),
    )
    services.promotion_request_approve(actor=act(team["ann"]), request_id=old.id)
    stale = services.promotion_request_approve(actor=act(team["bob"]), request_id=old.id)
    assert stale.state == State.STALE and "moved from version 1 to 3" in stale.state_message
    assert champion() == 3


@pytest.mark.django_db
def test_archived_or_changed_version_is_refused_at_apply(team, versions, policy):
    request = request_champion(team)
    ModelVersion.objects.filter(model__full_name=M, version=2).update(
        lifecycle=ModelVersion.Lifecycle.ARCHIVED
    )
    services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
    done = services.promotion_request_approve(actor=act(team["bob"]), request_id=request.id)
    assert done.state == State.STALE and "ARCHIVED" in done.state_message
    assert champion() == 1

    ModelVersion.objects.filter(model__full_name=M, version=2).update(
        lifecycle=ModelVersion.Lifecycle.ACTIVE
    )
    request = request_champion(team)
    ModelVersion.objects.filter(model__full_name=M, version=2).update(artifact_digest="0" * 64)
    services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
    done = services.promotion_request_approve(actor=act(team["bob"]), request_id=request.id)
    assert done.state == State.STALE and "files of version 2 changed" in done.state_message


@pytest.mark.django_db
def test_expired_request_is_refused_and_marked(team, versions, policy):
    request = request_champion(team)
    PromotionRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(FailedPrecondition, match="EXPIRED"):
        services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
    request.refresh_from_db()
    assert request.state == State.EXPIRED
    assert AuditEvent.objects.filter(action="promotion_request.expire").count() == 1


@pytest.mark.django_db
def test_an_overdue_request_reads_as_expired_without_a_write(team, versions, policy):
    """Reads never write: the list and the request show EXPIRED, the row stays PENDING until
    the beat task settles it (and writes the one audit event)."""
    from registry.selectors import promotions as selectors

    request = request_champion(team)
    PromotionRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    shown = selectors.promotion_request_get(actor=act(team["dana"]), request_id=request.id)
    assert shown.state == State.EXPIRED
    listed, _ = selectors.promotion_request_list(actor=act(team["dana"]))
    assert [r.state for r in listed] == [State.EXPIRED]
    for state, expected in ((State.EXPIRED, 1), (State.PENDING, 0)):
        shown, _ = selectors.promotion_request_list(actor=act(team["dana"]), state=state)
        assert len(shown) == expected
    request.refresh_from_db()
    assert request.state == State.PENDING
    assert not AuditEvent.objects.filter(action="promotion_request.expire").exists()


@pytest.mark.django_db
def test_expiry_task_expires_only_overdue_pending_requests(team, versions, policy):
    from registry.tasks import expire_promotion_requests

    request = request_champion(team)
    assert expire_promotion_requests() == 0
    PromotionRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert expire_promotion_requests() == 1
    assert expire_promotion_requests() == 0  # idempotent
    request.refresh_from_db()
    assert request.state == State.EXPIRED


@pytest.mark.django_db
def test_gates_refuse_with_the_gate_that_failed(team, versions, ready_version):
    services.alias_policy_create(
        actor=act(team["owen"]),
        securable_type="registered_model",
        full_name=M,
        alias_patterns=["champion"],
        approvers=["ann"],
        gates={
            "required_tags": {"validation": "passed"},
            "metrics": [{"key": "val_accuracy", "op": ">=", "value": 0.9}],
            "require_signature": True,
        },
    )
    with pytest.raises(FailedPrecondition) as caught:
        services.alias_set(actor=act(team["dana"]), full_name=M, alias="champion", version=2)
    message = caught.value.message
    assert "tag validation=passed failed (version 2 has no tag validation)" in message
    assert "metric val_accuracy >= 0.9 failed" in message
    assert "signature" not in message  # that gate passed
    assert not PromotionRequest.objects.exists()


@pytest.mark.django_db
def test_nearest_policy_wins(team, versions, policy):
    services.alias_policy_create(
        actor=act(team["dana"]),
        securable_type="registered_model",
        full_name=M,
        alias_patterns=["champion"],
        approvers=["ann"],
        required_approvals=1,
    )
    request = request_champion(team)
    assert request.required_approvals == 1
    services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
    assert champion() == 2


@pytest.mark.django_db
def test_protected_alias_cannot_be_deleted_nor_its_version(team, versions, policy):
    with pytest.raises(FailedPrecondition, match="protected"):
        services.alias_delete(actor=act(team["dana"]), full_name=M, alias="champion")
    grant_manage = act(team["dana"])
    with pytest.raises(FailedPrecondition, match="protected"):
        services.model_version_delete(actor=grant_manage, full_name=M, version=1)
    assert champion() == 1


@pytest.mark.django_db
def test_protected_stage_transition_opens_a_request(team, versions, policy):
    with pytest.raises(ApprovalRequired) as caught:
        services.model_version_transition_stage(
            actor=act(team["dana"]),
            full_name=M,
            version=2,
            stage="Production",
            archive_existing_versions=True,
        )
    request = caught.value.request
    assert (request.kind, request.alias) == ("STAGE", "production")
    services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
    services.promotion_request_approve(actor=act(team["bob"]), request_id=request.id)
    assert ModelVersion.objects.get(model__full_name=M, version=2).stage == "Production"
    # Leaving the protected stage directly is refused.
    with pytest.raises(FailedPrecondition, match="protected stage"):
        services.model_version_transition_stage(
            actor=act(team["dana"]), full_name=M, version=2, stage="Archived"
        )


@pytest.mark.django_db
def test_rollback_goes_through_the_policy(team, versions, policy):
    request = request_champion(team)
    services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
    services.promotion_request_approve(actor=act(team["bob"]), request_id=request.id)
    assert champion() == 2
    with pytest.raises(ApprovalRequired) as caught:
        services.alias_rollback(
            actor=act(team["dana"]), full_name=M, alias="champion", justification="v2 regressed"
        )
    back = caught.value.request
    assert back.rollback and back.version_number == 1 and back.from_version == 2
    services.promotion_request_approve(actor=act(team["ann"]), request_id=back.id)
    services.promotion_request_approve(actor=act(team["bob"]), request_id=back.id)
    assert champion() == 1


@pytest.mark.django_db
def test_rollback_of_an_unprotected_alias_moves_at_once(team, versions):
    services.alias_set(actor=act(team["dana"]), full_name=M, alias="champion", version=2)
    services.alias_rollback(actor=act(team["dana"]), full_name=M, alias="champion")
    assert champion() == 1
    with pytest.raises(FailedPrecondition, match="no earlier version"):
        services.alias_set(actor=act(team["dana"]), full_name=M, alias="fresh", version=1)
        services.alias_rollback(actor=act(team["dana"]), full_name=M, alias="fresh")


@pytest.mark.django_db
def test_break_glass_is_admin_only_needs_a_reason_and_is_flagged(
    team, versions, policy, admin_user
):
    with pytest.raises(PermissionDenied, match="admins"):
        services.alias_break_glass(
            actor=act(team["owen"]),
            full_name=M,
            alias="champion",
            version=2,
            reason="production is down",
        )
    from core.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="reason"):
        services.alias_break_glass(
            actor=act(admin_user), full_name=M, alias="champion", version=2, reason="  "
        )
    pending = request_champion(team)
    record = services.alias_break_glass(
        actor=act(admin_user),
        full_name=M,
        alias="champion",
        version=2,
        reason="v1 serves wrong prices; incident 42",
    )
    assert champion() == 2 and record.break_glass and record.state == State.APPLIED
    pending.refresh_from_db()
    assert pending.state == State.STALE
    event = AuditEvent.objects.get(action="promotion_request.break_glass")
    assert event.details["break_glass"] is True and "incident 42" in event.details["reason"]
    assert AuditEvent.objects.filter(action="alias.set", details__break_glass=True).exists()


@pytest.mark.django_db
def test_policy_management_needs_manage(team):
    with pytest.raises((PermissionDenied, NotFound)):
        services.alias_policy_create(
            actor=act(team["carl"]),
            securable_type="catalog",
            full_name="main",
            alias_patterns=["champion"],
            approvers=["ann"],
        )
    policy = services.alias_policy_create(
        actor=act(team["owen"]),
        securable_type="schema",
        full_name="main.ml",
        alias_patterns=["Champion", "prod*"],
        approvers=["ann", "reviewers"],
    )
    assert policy.alias_patterns == ["champion", "prod*"]
    updated = services.alias_policy_update(
        actor=act(team["owen"]), policy_id=policy.id, required_approvals=2
    )
    assert updated.required_approvals == 2
    with pytest.raises((PermissionDenied, NotFound)):
        services.alias_policy_update(
            actor=act(team["carl"]), policy_id=policy.id, required_approvals=1
        )
    services.alias_policy_delete(actor=act(team["owen"]), policy_id=policy.id)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"alias_policy.create", "alias_policy.update", "alias_policy.delete"} <= actions
