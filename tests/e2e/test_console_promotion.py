"""The console page of a promotion request in a real browser: an approver follows the link
from the email (signing in first), sees what would move, and approves with a comment; the
second approval applies it. The requester sees no approve button, and a forged approval from
them is refused by the same service the APIs use."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from core.actor import Actor
from registry import services
from registry.models import ModelAlias, PromotionRequest
from registry.services.promotions import ApprovalRequired
from tests.registry.conftest import logged_model, ready_version  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

M = "main.ml.wine"


@pytest.fixture
def pending(tree, make_user, grant, ready_version):  # noqa: F811
    tree("main.ml.wine")
    team = {name: make_user(name) for name in ("dana", "owen")}
    team["ann"] = make_user("ann", groups=("reviewers",))
    team["bob"] = make_user("bob", groups=("reviewers",))
    for name in team:
        grant("catalog", "main", name, "USE CATALOG", "USE SCHEMA")
    grant("registered_model", M, "dana", "MODIFY", "MANAGE", "EXECUTE")
    grant("catalog", "main", "owen", "MANAGE")
    ready_version(team["dana"], M, tags={"validation": "passed"})
    ready_version(team["dana"], M, tags={"validation": "passed", "data": "2026-11"})
    dana = Actor.system(team["dana"])
    services.alias_set(actor=dana, full_name=M, alias="champion", version=1)
    services.alias_policy_create(
        actor=Actor.system(team["owen"]),
        securable_type="catalog",
        full_name="main",
        alias_patterns=["champion"],
        approvers=["reviewers"],
        required_approvals=2,
        gates={"required_tags": {"validation": "passed"}},
    )
    with pytest.raises(ApprovalRequired) as caught:
        services.alias_set(
            actor=dana, full_name=M, alias="champion", version=2, reason="<b>fresher</b> data"
        )
    return team, caught.value.request


def test_approvers_approve_in_the_console_and_the_alias_moves(page, console_login, pending):
    team, request = pending
    path = f"/console/promotion-requests/{request.id}"

    console_login(team["ann"], next_path=path)
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    card = page.get_by_test_id("promotion-request")
    expect(card.get_by_role("heading", level=1)).to_contain_text("main.ml.wine@champion")
    expect(card.get_by_role("heading", level=1)).to_contain_text("version 1 → 2")
    expect(page.get_by_test_id("state")).to_have_text("PENDING")
    # User text is escaped, not rendered as markup.
    expect(page.get_by_test_id("justification")).to_have_text("<b>fresher</b> data")
    expect(card).to_contain_text("tag validation=passed")
    expect(card).to_contain_text("2026-11")  # the tag added in version 2

    page.get_by_label("Comment").fill("metrics look right")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("the request is PENDING")
    expect(page.get_by_test_id("approvals")).to_have_text("1 of 2")
    expect(page.get_by_test_id("decisions")).to_contain_text("metrics look right")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)  # ann has decided

    page.get_by_role("button", name="Sign out").click()
    console_login(team["bob"], next_path="/console/promotion-requests")
    page.get_by_role("link", name="main.ml.wine").click()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("state")).to_have_text("APPLIED")
    assert ModelAlias.objects.get(model__full_name=M, alias="champion").version.version == 2
    decisions = AuditEvent.objects.filter(action="promotion_request.approve", outcome="SUCCESS")
    assert sorted(decisions.values_list("actor", flat=True)) == ["ann", "bob"]


def test_requester_sees_no_decision_buttons_and_a_forged_approval_is_refused(
    page, console_login, pending
):
    team, request = pending
    path = f"/console/promotion-requests/{request.id}"
    console_login(team["dana"], next_path=path)
    expect(page.get_by_test_id("state")).to_have_text("PENDING")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_text("another approver must decide it")).to_be_visible()

    # Forge the approve form the page did not offer (same session, same CSRF token).
    page.evaluate(
        """() => {
            const form = document.querySelector('[data-testid=cancel]');
            const button = form.querySelector('button');
            button.value = 'approve';
            button.click();
        }"""
    )
    expect(page.get_by_role("status")).to_contain_text("cannot approve")
    request.refresh_from_db()
    assert request.state == PromotionRequest.State.PENDING and request.decisions.count() == 0
    assert AuditEvent.objects.filter(
        actor="dana", action="promotion_request.approve", outcome="DENIED"
    ).exists()

    page.get_by_role("button", name="Cancel request").click()
    expect(page.get_by_test_id("state")).to_have_text("CANCELLED")


def test_someone_who_may_not_see_the_request_gets_404(page, console_login, pending, make_user):
    _, request = pending
    console_login(make_user("carl"))
    response = page.goto(f"/console/promotion-requests/{request.id}")
    assert response.status == 404
    assert "main.ml.wine" not in page.content()
