"""The console's shell in a real browser (headless chromium) against the live server:
sign in, a wrong password, sign out, the login redirect, CSRF, and htmx being served."""

from __future__ import annotations

import re

import pytest
import requests
from django.test import Client
from playwright.sync_api import expect

from audit.models import AuditEvent
from tests.e2e.browser import login_through_form

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_user_signs_in_through_the_form_and_sees_their_name(page, console_login, make_user):
    alice = make_user("alice", display_name="Alice Liddell")

    console_login(alice)

    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Alice Liddell")
    expect(page.get_by_test_id("signed-in-user")).to_have_text("Alice Liddell (alice)")
    expect(page.get_by_role("link", name="Admin", exact=True)).to_have_count(0)  # not staff
    # htmx loaded in the page, from our own static files.
    assert page.evaluate("window.htmx && htmx.version").startswith("2.")
    # The login went through Django's auth signals, so it is in the audit trail.
    assert AuditEvent.objects.filter(actor="alice", action="auth.login", outcome="SUCCESS").exists()


def test_wrong_password_shows_an_error_and_does_not_sign_in(page, make_user):
    make_user("bob")

    login_through_form(page, "bob", "not-the-password")

    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username")
    expect(page).to_have_url(re.compile(r"/console/login"))
    expect(page.get_by_test_id("signed-in-user")).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["name"] == "sessionid"]
    assert AuditEvent.objects.filter(action="auth.login", outcome="DENIED").count() == 1


def test_sign_out_ends_the_session(page, console_login, make_user):
    console_login(make_user("carol"))

    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(re.compile(r"/console/login$"))
    expect(page.get_by_test_id("signed-in-user")).to_have_count(0)
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console/$"))


def test_anonymous_visit_goes_to_login_and_back_after_signing_in(page, console_login, make_user):
    """The path an approver takes from an email link: login first, then the page linked."""
    dave = make_user("dave")

    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console/$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.get_by_label("Username").fill("dave")
    page.get_by_label("Password").fill("x-unused-pw")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_test_id("signed-in-user")).to_have_text(dave.username)


def test_staff_see_the_admin_link(page, console_login, make_user):
    console_login(make_user("erin", is_staff=True), next_path="/console/")

    expect(page.get_by_role("link", name="Admin", exact=True)).to_have_attribute("href", "/admin/")


def test_login_post_without_csrf_token_is_refused(make_user):
    make_user("frank")
    client = Client(enforce_csrf_checks=True)

    response = client.post("/console/login", {"username": "frank", "password": "x-unused-pw"})

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_htmx_is_served_as_javascript(live_server):
    response = requests.get(
        f"{live_server.url}/static/console/htmx.min.js",
        headers={"Connection": "close"},
        timeout=30,
    )

    assert response.status_code == 200
    content_type = response.headers["Content-Type"].split(";")[0]
    assert content_type in {"text/javascript", "application/javascript"}
    assert "htmx" in response.text[:200]
