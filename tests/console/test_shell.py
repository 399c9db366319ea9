"""The console's shell through Django's test client: login, logout, the home page, headers,
escaping, redirects, throttling, and static files served the way production serves them."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "x-unused-pw"  # what tests.conftest.make_user sets


def test_home_sends_anonymous_visitors_to_login(client):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/console/login?next=/console/"


def test_home_names_the_user_and_escapes_it(client, make_user):
    client.force_login(make_user("mallory", display_name="<script>alert(1)</script>"))

    response = client.get("/console/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert(1)" not in body
    assert "(mallory)" in body


def test_admin_link_only_for_staff(client, make_user):
    client.force_login(make_user("plain"))
    assert 'href="/admin/"' not in client.get("/console/").content.decode()

    client.force_login(make_user("staffer", is_staff=True))
    assert 'href="/admin/"' in client.get("/console/").content.decode()


@pytest.mark.parametrize("path", ["/console/login", "/console/"])
def test_console_pages_cannot_be_framed_or_cached(client, make_user, path):
    client.force_login(make_user("ann"))
    response = client.get(path)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"]


def test_every_form_carries_a_csrf_token(client, make_user):
    assert 'name="csrfmiddlewaretoken"' in client.get("/console/login").content.decode()
    client.force_login(make_user("ann"))
    home = client.get("/console/").content.decode()
    # The sign-out form, and the header htmx sends with its own requests.
    assert 'name="csrfmiddlewaretoken"' in home
    assert "X-CSRFToken" in home


def test_login_goes_to_next_and_is_audited(client, make_user):
    make_user("ann")

    response = client.post(
        "/console/login?next=/console/",
        {"username": "ann", "password": PASSWORD, "next": "/console/"},
    )

    assert response.status_code == 302 and response["Location"] == "/console/"
    assert client.session["_auth_user_id"]
    assert AuditEvent.objects.filter(actor="ann", action="auth.login", outcome="SUCCESS").exists()


def test_login_ignores_an_offsite_next(client, make_user):
    make_user("ann")
    response = client.post(
        "/console/login",
        {"username": "ann", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/console/"


def test_wrong_password_is_refused_and_audited(client, make_user):
    make_user("ann")
    response = client.post("/console/login", {"username": "ann", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.login", outcome="DENIED").count() == 1


def test_inactive_user_cannot_sign_in(client, make_user):
    make_user("gone", is_active=False)
    client.post("/console/login", {"username": "gone", "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_console_login_is_throttled_like_the_apis(make_user):
    make_user("ann")
    client = Client(REMOTE_ADDR="10.7.7.7")  # not 127.0.0.1, which other tests log in from
    for _ in range(30):
        client.post("/console/login", {"username": "ann", "password": "wrong"})
    client.post("/console/login", {"username": "ann", "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_logout_is_post_only(client, make_user):
    client.force_login(make_user("ann"))

    assert client.get("/console/logout").status_code == 405
    assert client.get("/console/").status_code == 200

    response = client.post("/console/logout")
    assert response.status_code == 302 and response["Location"] == "/console/login"
    assert client.get("/console/").status_code == 302


def test_logout_without_csrf_token_is_refused(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("ann"))
    assert client.post("/console/logout").status_code == 403
    assert client.get("/console/").status_code == 200


def test_htmx_is_served_by_the_app_itself(client):
    """DEBUG is off here as in production: WhiteNoise serves it, not runserver or the live
    server's static handler."""
    response = client.get("/static/console/htmx.min.js")
    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] in {"text/javascript", "application/javascript"}
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"htmx" in b"".join(response.streaming_content)[:200]
