"""Promotion emails through the services, the eager task and Django's locmem backend: who
receives what on each event, both parts, the differences between the versions, escaping,
and that a rolled-back service call sends nothing (issue 4, item 6)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import GroupNesting
from core.actor import Actor
from core.errors import FailedPrecondition, PermissionDenied
from registry import services
from registry.models import ModelVersion, PromotionRequest
from registry.notifications import (
    DeliveryInterrupted,
    approvers,
    group_descendants,
    users_in_groups,
)
from registry.services.promotions import ApprovalRequired
from registry.tasks import send_promotion_email

M = "main.ml.wine"
BASE = "http://steward.test"


def act(user) -> Actor:
    return Actor.system(user)


@pytest.fixture(autouse=True)
def base_url(settings):
    settings.STEWARD_BASE_URL = BASE + "/"
    settings.DEFAULT_FROM_EMAIL = "Steward <steward@example.test>"


@pytest.fixture
def team(tree, make_user, grant):
    """dana requests (and is in `reviewers` herself); ann and bob review through `reviewers`;
    sam through `senior`, nested in `reviewers`; pat is named directly. eve is in `everyone`,
    the group `reviewers` is nested in (a parent's members are not the child's); ivy is
    inactive, nomail has no address; owen owns the catalog."""
    tree(M)
    users = {
        "dana": make_user("dana", groups=("reviewers",), email="dana@example.test"),
        "owen": make_user("owen", email="owen@example.test"),
        "ann": make_user("ann", groups=("reviewers",), email="ann@example.test"),
        "bob": make_user("bob", groups=("reviewers",), email="bob@example.test"),
        "sam": make_user("sam", groups=("senior",), email="sam@example.test"),
        "pat": make_user("pat", email="pat@example.test", first_name="Pat", last_name="Doe"),
        "eve": make_user("eve", groups=("everyone",), email="eve@example.test"),
        "ivy": make_user("ivy", groups=("reviewers",), email="ivy@example.test", is_active=False),
        "nomail": make_user("nomail", groups=("reviewers",)),
    }
    reviewers = Group.objects.get(name="reviewers")
    GroupNesting.objects.create(parent=reviewers, child=Group.objects.get(name="senior"))
    GroupNesting.objects.create(parent=Group.objects.get(name="everyone"), child=reviewers)
    for name in ("dana", "owen", "ann", "bob", "sam", "pat"):
        grant("catalog", "main", name, "USE CATALOG", "USE SCHEMA")
    grant("registered_model", M, "dana", "MODIFY", "MANAGE", "EXECUTE")
    grant("catalog", "main", "owen", "MANAGE")
    return users


APPROVERS = {"ann@example.test", "bob@example.test", "sam@example.test", "pat@example.test"}


@pytest.fixture
def policy(team):
    return services.alias_policy_create(
        actor=act(team["owen"]),
        securable_type="catalog",
        full_name="main",
        alias_patterns=["champion", "production"],
        approvers=["reviewers", "pat"],
        required_approvals=2,
        gates={"required_tags": {"validation": "passed"}},
    )


def log_metrics(version: ModelVersion, user, **values: float) -> None:
    from tracking.services import run_log_batch

    run_log_batch(
        actor=act(user),
        run_id=version.run_id,
        metrics=[{"key": k, "value": v, "timestamp": 1_700_000_000_000} for k, v in values.items()],
    )


@pytest.fixture
def versions(team, ready_version):
    """Version 1 (champion) and version 2 of main.ml.wine, with metrics on their source runs
    and tags that differ."""
    one = ready_version(
        team["dana"], M, tags={"validation": "passed", "owner": "dana", "dataset": "wine-2023"}
    )
    two = ready_version(
        team["dana"], M, tags={"validation": "passed", "dataset": "wine-2024", "reviewed": "yes"}
    )
    log_metrics(one, team["dana"], val_accuracy=0.8, rmse=0.5, old_only=1.0)
    log_metrics(two, team["dana"], val_accuracy=0.92, rmse=0.25, new_only=7.0)
    services.alias_set(actor=act(team["dana"]), full_name=M, alias="champion", version=1)
    return one, two


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run the service's on-commit callbacks (the email task) as a real commit would."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def request_champion(team, on_commit, *, justification="v2 is better on wine-2024") -> str:
    with on_commit():
        request = services.promotion_request_create(
            actor=act(team["dana"]),
            full_name=M,
            alias="champion",
            version=2,
            justification=justification,
        )
    return str(request.id)


def parts(message) -> tuple[str, str]:
    (html, mimetype) = message.alternatives[0]
    assert mimetype == "text/html"
    return message.body, html


def to(outbox) -> list[str]:
    return sorted(address for message in outbox for address in message.to)


# --- recipients ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_group_members_include_nested_child_groups_not_parents(team):
    reviewers = Group.objects.get(name="reviewers")
    members = set(users_in_groups([reviewers.pk]).values_list("username", flat=True))
    assert members == {"dana", "ann", "bob", "sam", "ivy", "nomail"}  # not eve (parent group)
    everyone = Group.objects.get(name="everyone")
    assert "sam" in set(users_in_groups([everyone.pk]).values_list("username", flat=True))
    # A cycle ends the walk instead of looping.
    GroupNesting.objects.create(parent=Group.objects.get(name="senior"), child=everyone)
    assert group_descendants([reviewers.pk]) == set(
        Group.objects.filter(name__in=["reviewers", "senior", "everyone"]).values_list(
            "pk", flat=True
        )
    )
    assert users_in_groups([]).count() == 0


@pytest.mark.django_db
def test_approvers_are_active_reachable_and_never_the_requester(team, policy):
    names = [u.username for u in approvers(policy, exclude_user_ids=[team["dana"].pk])]
    assert names == ["ann", "bob", "pat", "sam"]
    assert approvers(None) == []


# --- the request email -----------------------------------------------------------------------


@pytest.mark.django_db
def test_request_emails_each_approver_not_the_requester(
    team, versions, policy, mailoutbox, on_commit
):
    request_id = request_champion(team, on_commit)
    assert set(to(mailoutbox)) == APPROVERS
    assert all(len(m.to) == 1 and not m.cc and not m.bcc for m in mailoutbox)  # one each
    message = next(m for m in mailoutbox if m.to == ["ann@example.test"])
    assert message.subject == "[Steward] Approval needed: main.ml.wine@champion → version 2"
    assert message.from_email == "Steward <steward@example.test>"
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    text, html = parts(message)
    link = f"{BASE}/console/promotion-requests/{request_id}"
    for body in (text, html):
        assert link in body
        assert "main.ml.wine" in body and "champion" in body
        assert "version 1 → version 2" in body or "version 1 → <strong>version 2" in body
        assert "dana" in body and "v2 is better on wine-2024" in body
        assert "status READY" in body and "tag validation=passed" in body
        assert f"/api/v1/promotion-requests/{request_id}" in body
    assert "Hello ann," in text
    assert "Approve or reject it here:" in text
    # Gates, passed each.
    assert "[passed] status READY" in text and "[passed] tag validation=passed" in text
    assert "FAILED" not in text
    # Metric differences: old, new, delta; a dash where a run lacks the metric.
    assert "val_accuracy: 0.8 → 0.92 (delta +0.12)" in text
    assert "rmse: 0.5 → 0.25 (delta -0.25)" in text
    assert "new_only: — → 7 (delta —)" in text
    assert "old_only: 1 → — (delta —)" in text
    # Tag differences: added, removed, changed; the unchanged one is only counted.
    assert "added: reviewed = yes" in text
    assert "removed: owner (was dana)" in text
    assert "changed: dataset: wine-2023 → wine-2024" in text
    assert "1 tag(s) unchanged" in text
    assert "<td>added</td><td><code>reviewed</code></td>" in html
    assert '<a href="' + link + '"' in html
    pat = next(m for m in mailoutbox if m.to == ["pat@example.test"])
    assert "Hello Pat Doe," in pat.body


@pytest.mark.django_db
def test_html_escapes_user_text_and_text_keeps_it(team, versions, policy, mailoutbox, on_commit):
    request_id = request_champion(team, on_commit, justification="<script>alert(1)</script> & more")
    text, html = parts(mailoutbox[0])
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "<script>alert(1)</script> & more" in text  # plain text is not HTML
    mailoutbox.clear()
    with on_commit():
        services.promotion_request_reject(
            actor=act(team["ann"]), request_id=request_id, comment='<img src=x onerror="x()">'
        )
    (message,) = mailoutbox
    text, html = parts(message)
    assert "<img" not in html and "&lt;img src=x onerror=&quot;x()&quot;&gt;" in html
    assert '<img src=x onerror="x()">' in text


# --- decisions -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_decision_emails_the_requester_with_the_comment(
    team, versions, policy, mailoutbox, on_commit
):
    request_id = request_champion(team, on_commit)
    mailoutbox.clear()
    with on_commit():
        services.promotion_request_approve(
            actor=act(team["ann"]), request_id=request_id, comment="metrics look right"
        )
    (first,) = mailoutbox
    assert first.to == ["dana@example.test"]
    assert first.subject == "[Steward] Approved by ann (1 of 2): main.ml.wine@champion → version 2"
    text, html = parts(first)
    assert "ann approved with this comment:\n\nmetrics look right" in text
    assert "metrics look right" in html and "1 of 2 approval(s) counted" in text
    assert "See the request here:" in text and "Approve or reject" not in text

    mailoutbox.clear()
    with on_commit():
        services.promotion_request_approve(actor=act(team["sam"]), request_id=request_id)
    assert [m.subject for m in mailoutbox] == [
        "[Steward] Approved by sam (2 of 2): main.ml.wine@champion → version 2",
        "[Steward] Applied: main.ml.wine@champion → version 2",
    ]
    assert to(mailoutbox) == ["dana@example.test"] * 2
    assert "sam approved without a comment." in mailoutbox[0].body
    applied_text, _ = parts(mailoutbox[1])
    assert "now points at version 2" in applied_text and "State:         APPLIED" in applied_text
    assert "ann: APPROVE" in applied_text and "sam: APPROVE" in applied_text


@pytest.mark.django_db
def test_rejection_emails_the_requester(team, versions, policy, mailoutbox, on_commit):
    request_id = request_champion(team, on_commit)
    mailoutbox.clear()
    with on_commit():
        services.promotion_request_reject(
            actor=act(team["pat"]), request_id=request_id, comment="rmse on the holdout regressed"
        )
    (message,) = mailoutbox
    assert message.to == ["dana@example.test"]
    assert message.subject == "[Steward] Rejected by pat: main.ml.wine@champion → version 2"
    text, html = parts(message)
    assert "pat rejected with this comment:\n\nrmse on the holdout regressed" in text
    assert "rmse on the holdout regressed" in html and "REJECTED" in text


@pytest.mark.django_db
def test_cancel_tells_the_requester_and_approvers_yet_to_decide(
    team, versions, policy, mailoutbox, on_commit
):
    request_id = request_champion(team, on_commit)
    with on_commit():
        services.promotion_request_approve(actor=act(team["ann"]), request_id=request_id)
    mailoutbox.clear()
    with on_commit():
        services.promotion_request_cancel(actor=act(team["dana"]), request_id=request_id)
    assert to(mailoutbox) == sorted({"dana@example.test"} | APPROVERS - {"ann@example.test"})
    assert {m.subject for m in mailoutbox} == {
        "[Steward] Cancelled: main.ml.wine@champion → version 2"
    }
    assert "Why: Cancelled by dana." in mailoutbox[0].body


@pytest.mark.django_db
def test_stale_and_expired_tell_the_requester_why(team, versions, policy, mailoutbox, on_commit):
    request_id = request_champion(team, on_commit)
    ModelVersion.objects.filter(model__full_name=M, version=2).update(artifact_digest="0" * 64)
    with on_commit():
        services.promotion_request_approve(actor=act(team["ann"]), request_id=request_id)
        services.promotion_request_approve(actor=act(team["bob"]), request_id=request_id)
    stale = mailoutbox[-1]
    assert stale.subject == "[Steward] Stale: main.ml.wine@champion → version 2"
    assert stale.to == ["dana@example.test"]
    assert "Why: the files of version 2 changed since the request." in stale.body

    ModelVersion.objects.filter(model__full_name=M, version=2).update(
        artifact_digest=ModelVersion.objects.get(model__full_name=M, version=1).artifact_digest
    )
    again = request_champion(team, on_commit)
    PromotionRequest.objects.filter(pk=again).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    mailoutbox.clear()
    from registry.tasks import expire_promotion_requests

    with on_commit():
        assert expire_promotion_requests() == 1
    (expired,) = mailoutbox
    assert expired.subject == "[Steward] Expired: main.ml.wine@champion → version 2"
    assert "Why: No decision before the request's expiry." in expired.body


@pytest.mark.django_db
def test_stage_request_without_a_previous_version(team, versions, policy, mailoutbox, on_commit):
    with on_commit(), pytest.raises(ApprovalRequired):
        services.model_version_transition_stage(
            actor=act(team["dana"]), full_name=M, version=2, stage="Production"
        )
    message = mailoutbox[0]
    assert message.subject == "[Steward] Approval needed: main.ml.wine stage Production → version 2"
    text, _ = parts(message)
    assert "Stage:         Production" in text and "no version → version 2" in text
    assert "val_accuracy: — → 0.92 (delta —)" in text
    assert "added: validation = passed" in text
    assert "(none given)" in text


# --- break-glass -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_break_glass_emails_the_approvers_loudly_with_the_reason(
    team, versions, policy, admin_user, mailoutbox, on_commit
):
    admin_user.email = "root@example.test"
    admin_user.save()
    request_id = request_champion(team, on_commit)
    mailoutbox.clear()
    with on_commit():
        services.alias_break_glass(
            actor=act(admin_user),
            full_name=M,
            alias="champion",
            version=2,
            reason="v1 serves wrong prices; incident 42",
        )
    stale = [m for m in mailoutbox if m.subject.startswith("[Steward] Stale")]
    assert [m.to for m in stale] == [["dana@example.test"]]
    assert "Overtaken by root's break-glass move." in stale[0].body
    loud = [m for m in mailoutbox if m not in stale]
    assert set(to(loud)) == APPROVERS | {"dana@example.test"}  # dana is a reviewer too
    message = next(m for m in loud if m.to == ["ann@example.test"])
    assert message.subject == "[Steward] BREAK GLASS by root: main.ml.wine@champion → version 2"
    text, html = parts(message)
    assert "*** BREAK GLASS" in text and "BREAK GLASS" in html and "#b42318" in html
    assert "Moved by:      root" in text
    assert "Reason given:\nv1 serves wrong prices; incident 42" in text
    assert "root moved alias champion of main.ml.wine from version 1 to version 2" in text
    assert "evaluated when this email was sent; break-glass skipped them" in text
    assert "root@example.test" not in to(mailoutbox)  # the admin is the requester
    assert request_id not in text  # the break-glass record is its own request


# --- nothing on rollback, nothing for a missing request ---------------------------------------


@pytest.mark.django_db
def test_nothing_is_sent_when_the_service_call_rolls_back(
    team, versions, policy, mailoutbox, ready_version, on_commit
):
    ready_version(team["dana"], M)  # version 3: no validation tag, the gate fails
    with on_commit() as callbacks, pytest.raises(FailedPrecondition, match="validation"):
        services.alias_set(actor=act(team["dana"]), full_name=M, alias="champion", version=3)
    assert callbacks == [] and mailoutbox == []
    request_id = request_champion(team, on_commit)
    mailoutbox.clear()
    with on_commit() as callbacks, pytest.raises(PermissionDenied, match="cannot approve"):
        services.promotion_request_approve(actor=act(team["dana"]), request_id=request_id)
    assert callbacks == [] and mailoutbox == []


@pytest.mark.django_db
def test_requester_without_an_address_gets_nothing_and_nothing_fails(
    team, versions, policy, mailoutbox, on_commit
):
    request_id = request_champion(team, on_commit)
    team["dana"].email = ""
    team["dana"].save()
    mailoutbox.clear()
    with on_commit():
        services.promotion_request_reject(actor=act(team["ann"]), request_id=request_id)
    assert mailoutbox == []


@pytest.mark.django_db
def test_task_for_a_missing_request_sends_nothing(mailoutbox):
    assert send_promotion_email.delay(str(uuid.uuid4()), "created", {}).get() == 0
    assert mailoutbox == []


@pytest.mark.django_db
def test_task_refuses_an_unknown_event(team, versions, policy, on_commit):
    request_id = request_champion(team, on_commit)
    with pytest.raises(ValueError, match="Unknown promotion event"):
        send_promotion_email.delay(request_id, "exploded", {})


@pytest.mark.django_db
def test_task_resends_only_to_addresses_not_yet_settled(
    team, versions, policy, mailoutbox, on_commit
):
    request_id = request_champion(team, on_commit)
    mailoutbox.clear()
    settled = ["ANN@example.test", "bob@example.test"]
    sent = send_promotion_email.delay(request_id, "created", {}, settled=settled).get()
    assert sent == 2 and set(to(mailoutbox)) == {"pat@example.test", "sam@example.test"}


def test_delivery_interrupted_survives_celery_pickling():
    import pickle

    from celery.utils.serialization import get_pickleable_exception

    exc = DeliveryInterrupted(["b@x.test", "a@x.test"], ConnectionRefusedError(111, "refused"))
    assert get_pickleable_exception(exc) is exc
    copy = pickle.loads(pickle.dumps(exc))
    assert copy.settled == ["a@x.test", "b@x.test"] and str(copy) == str(exc)
    assert isinstance(copy, OSError)
