"""API tokens: shown once, hashed at rest, expiring, revocable, narrowing; failures audited."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import hash_token
from audit.models import AuditEvent

UC = "/api/2.1/unity-catalog"


@pytest.fixture(autouse=True)
def _clear_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_issue_token_command_prints_token_alone_on_last_line(make_user, api_as):
    make_user("ci_bot")
    out = StringIO()
    call_command("issue_token", "ci_bot", "--name", "deploy", "--days", "3", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert raw.startswith("stw_") and " " not in raw
    token = ApiToken.objects.get(name="deploy")
    assert token.token_hash == hash_token(raw) and raw not in token.token_hash
    assert timedelta(days=2, hours=23) < token.expires_at - timezone.now() <= timedelta(days=3)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"{UC}/catalogs").status_code == 200
    assert AuditEvent.objects.filter(action="token.issue", actor="ci_bot").exists()


@pytest.mark.django_db
def test_issue_token_command_refuses_unknown_user_and_bad_days(make_user):
    with pytest.raises(CommandError):
        call_command("issue_token", "ghost", stdout=StringIO())
    make_user("ann")
    with pytest.raises(CommandError, match="days"):
        call_command("issue_token", "ann", "--days", "0", stdout=StringIO())


@pytest.mark.django_db
def test_token_api_shows_secret_once_and_revokes(make_user, api_as):
    ann = make_user("ann")
    api = api_as(ann)
    created = api.post("/api/v1/tokens", {"name": "laptop", "days": 7}, format="json")
    assert created.status_code == 201
    raw = created.json()["token"]
    listed = api.get("/api/v1/tokens").json()["tokens"]
    assert {t["name"] for t in listed} == {"test", "laptop"}
    assert all("token" not in t for t in listed)
    from rest_framework.test import APIClient

    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert other.get(f"{UC}/catalogs").status_code == 200
    assert api.delete(f"/api/v1/tokens/{created.json()['id']}").status_code == 200
    response = other.get(f"{UC}/catalogs")
    assert response.status_code == 401 and response.json()["error_code"] == "UNAUTHENTICATED"
    assert AuditEvent.objects.filter(action="token.revoke", actor="ann").exists()
    failure = AuditEvent.objects.filter(action="auth.failure").latest("id")
    assert failure.outcome == "DENIED" and "revoked" in failure.details["reason"]


@pytest.mark.django_db
def test_cannot_revoke_someone_elses_token(make_user, api_as):
    ann, bob = make_user("ann"), make_user("bob")
    created = api_as(ann).post("/api/v1/tokens", {"name": "x"}, format="json").json()
    response = api_as(bob).delete(f"/api/v1/tokens/{created['id']}")
    assert response.status_code == 404
    assert ApiToken.objects.get(pk=created["id"]).revoked_at is None


@pytest.mark.django_db
def test_expired_token_is_refused_and_audited(make_user, api_as):
    ann = make_user("ann")
    client = api_as(ann)
    ApiToken.objects.filter(user=ann).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(f"{UC}/catalogs")
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]
    assert (
        "expired" in AuditEvent.objects.filter(action="auth.failure").latest("id").details["reason"]
    )


@pytest.mark.django_db
def test_inactive_user_token_is_refused(make_user, api_as):
    ann = make_user("ann")
    client = api_as(ann)
    ann.is_active = False
    ann.save()
    assert client.get(f"{UC}/catalogs").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    ["Bearer nope", "Bearer ", "Token abc", "Basic !!!notbase64", "Bearer " + "x" * 300],
)
def test_bad_credentials_answer_401_in_error_format(db, header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(f"{UC}/catalogs")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


@pytest.mark.django_db
def test_basic_auth_with_token_as_password_works_for_mlflow_clients(make_user):
    import base64

    from rest_framework.test import APIClient

    from tests.conftest import token_for

    ann = make_user("ann")
    raw = token_for(ann)
    client = APIClient()
    creds = base64.b64encode(f"ann:{raw}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {creds}")
    assert client.get(f"{UC}/catalogs").status_code == 200


@pytest.mark.django_db
def test_read_only_token_cannot_write(admin_user, api_as):
    response = api_as(admin_user, scope="read").post(
        f"{UC}/catalogs", {"name": "nope"}, format="json"
    )
    assert response.status_code == 403
    assert "read-only" in response.json()["message"]


@pytest.mark.django_db
def test_read_only_token_cannot_revoke_a_token_of_its_user(make_user, api_as):
    from accounts.services import api_token_issue
    from core.actor import Actor

    ann = make_user("ann")
    ci, _ = api_token_issue(actor=Actor.system(ann), user=ann, name="ci")
    response = api_as(ann, scope="read").delete(f"/api/v1/tokens/{ci.pk}")
    assert response.status_code == 403, response.content
    assert "read-only" in response.json()["message"]
    ci.refresh_from_db()
    assert ci.revoked_at is None


@pytest.mark.django_db
def test_read_only_admin_token_cannot_issue_tokens_for_others(admin_user, make_user):
    from accounts.services import api_token_issue
    from core.actor import Actor
    from core.errors import PermissionDenied

    bob = make_user("bob")
    read, _ = api_token_issue(actor=Actor.system(admin_user), user=admin_user, scope="read")
    actor = Actor.system(admin_user)
    actor.token = read
    with pytest.raises(PermissionDenied):
        api_token_issue(actor=actor, user=bob, name="sneaky")
    assert not ApiToken.objects.filter(user=bob).exists()


@pytest.mark.django_db
def test_token_guessing_is_throttled_per_client_address(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer stw_guess")
    statuses = [client.get(f"{UC}/catalogs", REMOTE_ADDR="10.9.9.9").status_code for _ in range(35)]
    assert statuses[:30] == [401] * 30
    assert statuses[-1] == 429
    # Another client is not affected.
    assert client.get(f"{UC}/catalogs", REMOTE_ADDR="10.9.9.8").status_code == 401


@pytest.mark.django_db
def test_a_valid_token_is_not_held_back_by_guesses_from_its_address(make_user):
    """The throttle answers the guesses (429, and they keep being refused and audited), not
    a real token sent from the same address (say, behind one NAT)."""
    from rest_framework.test import APIClient

    from tests.conftest import token_for

    guesser = APIClient()
    guesser.credentials(HTTP_AUTHORIZATION="Bearer stw_guess")
    for _ in range(31):
        guesser.get(f"{UC}/catalogs", REMOTE_ADDR="10.7.7.7")
    assert guesser.get(f"{UC}/catalogs", REMOTE_ADDR="10.7.7.7").status_code == 429
    for bad in ("Bearer " + "x" * 300, "Bearer stw_other"):
        guesser.credentials(HTTP_AUTHORIZATION=bad)
        assert guesser.get(f"{UC}/catalogs", REMOTE_ADDR="10.7.7.7").status_code == 429
    user = make_user("ann")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    assert client.get(f"{UC}/catalogs", REMOTE_ADDR="10.7.7.7").status_code == 200


@pytest.mark.django_db
@override_settings(STEWARD_NUM_PROXIES=1)
def test_throttle_uses_the_real_client_behind_a_proxy(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer stw_guess")
    for _ in range(30):
        client.get(f"{UC}/catalogs", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1")
    blocked = client.get(f"{UC}/catalogs", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1")
    assert blocked.status_code == 429
    other = client.get(f"{UC}/catalogs", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="2.2.2.2")
    assert other.status_code == 401
    event = AuditEvent.objects.filter(action="auth.failure").latest("id")
    assert event.source_address == "2.2.2.2"


@pytest.mark.django_db
def test_session_login_is_audited(make_user, client):
    make_user("ann", is_staff=True)
    client.post("/admin/login/", {"username": "ann", "password": "wrong"})
    client.post("/admin/login/", {"username": "ann", "password": "x-unused-pw"})
    outcomes = list(AuditEvent.objects.filter(action="auth.login").values_list("actor", "outcome"))
    assert outcomes == [("ann", "DENIED"), ("ann", "SUCCESS")]


@pytest.mark.django_db
def test_session_writes_need_csrf(make_user):
    from django.test import Client

    user = make_user("ann", admin=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(f"{UC}/catalogs", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert client.get(f"{UC}/catalogs").status_code == 200


@pytest.mark.django_db
def test_password_guessing_is_throttled(make_user, client):
    make_user("ann", is_staff=True)
    for _ in range(30):
        client.post("/admin/login/", {"username": "ann", "password": "wrong"})
    # Even the right password is refused while the address is throttled.
    client.post("/admin/login/", {"username": "ann", "password": "x-unused-pw"})
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="auth.login", outcome="SUCCESS").exists()


@pytest.mark.django_db
def test_anonymous_refusal_is_audited(client):
    response = client.get(f"{UC}/catalogs", REMOTE_ADDR="10.4.4.4")
    assert response.status_code == 401
    event = AuditEvent.objects.get(action="api.access")
    assert (event.outcome, event.source_address) == ("DENIED", "10.4.4.4")


@pytest.mark.django_db
@override_settings(STEWARD_NUM_PROXIES=1)
@pytest.mark.parametrize("forwarded", ["not-an-ip", "1.2.3.4; DROP", "::ffff:zz", "x" * 500])
def test_garbage_forwarded_for_falls_back_to_the_peer_address(admin_user, api_as, forwarded):
    api = api_as(admin_user)
    response = api.post(
        f"{UC}/catalogs",
        {"name": "c1"},
        format="json",
        REMOTE_ADDR="10.0.0.7",
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    assert response.status_code == 200
    assert AuditEvent.objects.get(action="catalog.create").source_address == "10.0.0.7"


@pytest.mark.django_db
def test_token_authentication_loads_the_same_principals_as_a_direct_lookup(make_user):
    """The token query brings the user's group closure along (nested groups included) and
    authz uses it: the same principal set, admin flag included, as computing it directly."""
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.test import RequestFactory

    from accounts.authentication import token_user
    from accounts.models import GroupNesting
    from catalog import authz
    from core.actor import Actor
    from tests.conftest import token_for

    user = make_user("gina")
    leaf, middle, top = (Group.objects.create(name=n) for n in ("leaf", "middle", "top"))
    GroupNesting.objects.create(parent=middle, child=leaf)
    GroupNesting.objects.create(parent=top, child=middle)
    user.groups.add(leaf)
    request = RequestFactory().get("/")
    expected = {leaf.pk, middle.pk, top.pk}
    for expect_admin in (False, True):
        got_user, token = token_user(request, token_for(user), "token")
        via_token = authz.principals(Actor(user=got_user, token=token))
        direct = authz.principals_for_user(got_user)
        assert via_token == direct
        assert via_token.group_ids == expected
        assert via_token.is_admin is expect_admin
        # Now the top group becomes a member of the admin group: admin through three levels.
        admins, _ = Group.objects.get_or_create(name=settings.STEWARD_ADMIN_GROUP)
        GroupNesting.objects.get_or_create(parent=admins, child=top)
        expected = expected | {admins.pk}
    lonely = make_user("lonely")
    got_user, token = token_user(request, token_for(lonely), "token")
    assert token.group_closure == {}
    assert authz.principals(Actor(user=got_user, token=token)).group_ids == frozenset()
