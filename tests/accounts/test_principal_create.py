"""Creating principals outside SCIM: `manage.py create_user`, `create_group`,
`create_service_principal` and `bootstrap_demo` are thin doors over the audited services in
accounts/services.py (one transaction: authorize, validate, save, audit event), with the same
name rules as SCIM. A management command acts as the system."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from accounts.services import (
    SystemActor,
    group_create,
    principal_name_check,
    service_principal_create,
    user_create,
)
from audit.models import AuditEvent
from core.actor import Actor
from core.errors import AlreadyExists, InvalidParameter, PermissionDenied
from tests.accounts.test_scim import GROUP_URN, assert_scim_error, scim  # noqa: F401

pytestmark = pytest.mark.django_db


def run(*args, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command(*args, stdout=out)
    return out.getvalue()


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


# --- create_user ----------------------------------------------------------------------------


def test_create_user_command_creates_the_user_in_groups_audited_as_the_system():
    Group.objects.create(name="data-scientists")
    out = run("create_user", "alice", "--group", "data-scientists", "--email", "a@example.org")
    assert "User 'alice' created in data-scientists." in out
    alice = User.objects.get(username="alice")
    assert alice.kind == User.Kind.USER
    assert not alice.has_usable_password()
    assert not alice.is_staff and not alice.is_superuser
    assert alice.email == "a@example.org"
    assert list(alice.groups.values_list("name", flat=True)) == ["data-scientists"]
    (event,) = events("user.create")
    assert (event.actor, event.actor_id, event.auth_method) == ("system", None, "cli")
    assert (event.securable_type, event.securable, event.outcome) == ("user", "alice", "SUCCESS")
    assert event.details["groups"] == ["data-scientists"]
    assert event.details["password"] == "none"
    assert event.details["id"] == str(alice.pk)


def test_create_user_reads_a_password_from_stdin(monkeypatch):
    run(
        "create_user",
        "carol",
        "--password-stdin",
        stdin="a-Long-pass-phrase-42\n",
        monkeypatch=monkeypatch,
    )
    carol = User.objects.get(username="carol")
    assert carol.check_password("a-Long-pass-phrase-42")
    assert events("user.create")[0].details["password"] == "set"
    assert "a-Long-pass-phrase-42" not in str(events("user.create")[0].details)


def test_a_weak_password_is_refused_and_nothing_is_created(monkeypatch):
    with pytest.raises(CommandError, match="too common|too short"):
        run("create_user", "carol", "--password-stdin", stdin="password\n", monkeypatch=monkeypatch)
    assert not User.objects.filter(username="carol").exists()
    assert events("user.create") == []


def test_an_unknown_group_is_refused_and_nothing_is_created():
    with pytest.raises(CommandError, match="Group 'nobody' does not exist"):
        run("create_user", "alice", "--group", "nobody")
    assert not User.objects.filter(username="alice").exists()
    assert events("user.create") == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ALICE", "A user named 'ALICE' already exists"),
        ("Data-Scientists", "A group named 'Data-Scientists' already exists"),
        ("al ice", "Enter a valid username"),
        ("ali\u202ece", "control or invisible characters"),
        ("ali\u200bce", "control or invisible characters"),
        ("  ", "A principal name is required"),
        ("a" * 151, "at most 150 characters"),
    ],
)
def test_create_user_refuses_names_other_doors_refuse(name, message):
    User.objects.create(username="alice")
    Group.objects.create(name="data-scientists")
    with pytest.raises(CommandError, match=message):
        run("create_user", name)
    assert User.objects.count() == 1
    assert events("user.create") == []


# --- create_group ---------------------------------------------------------------------------


def test_create_group_command_creates_the_group_audited_as_the_system():
    out = run("create_group", "ml-engineers")
    assert "Group 'ml-engineers' created." in out
    group = Group.objects.get(name="ml-engineers")
    (event,) = events("group.create")
    assert (event.actor, event.actor_id, event.auth_method) == ("system", None, "cli")
    assert (event.securable_type, event.securable) == ("group", "ml-engineers")
    assert event.details == {"id": group.pk}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ALICE", "A user named 'ALICE' already exists"),
        ("ML-Engineers", "A group named 'ML-Engineers' already exists"),
        ("ml\u202eengineers", "control or invisible characters"),
        ("ml\nengineers", "control or invisible characters"),
        ("", "A principal name is required"),
        ("g" * 151, "at most 150 characters"),
    ],
)
def test_create_group_refuses_names_other_doors_refuse(name, message):
    User.objects.create(username="alice")
    Group.objects.create(name="ml-engineers")
    with pytest.raises(CommandError, match=message):
        run("create_group", name)
    assert Group.objects.count() == 1
    assert events("group.create") == []


def test_scim_applies_the_same_group_name_rule(scim):  # noqa: F811
    response = scim.post("/Groups", {"schemas": [GROUP_URN], "displayName": "ml\u202eengineers"})
    body = assert_scim_error(response, 400, "invalidValue")
    assert "control or invisible characters" in body["detail"]
    assert not Group.objects.filter(name__startswith="ml").exists()


# --- create_service_principal -----------------------------------------------------------------


def test_create_service_principal_is_audited_as_the_system():
    Group.objects.create(name="ml-engineers")
    out = run("create_service_principal", "deployer", "--group", "ml-engineers")
    assert "Service principal 'deployer' created in ml-engineers." in out
    deployer = User.objects.get(username="deployer")
    assert deployer.is_service_principal
    assert not deployer.has_usable_password()
    assert list(deployer.groups.values_list("name", flat=True)) == ["ml-engineers"]
    (event,) = events("service_principal.create")
    assert (event.actor, event.actor_id, event.auth_method) == ("system", None, "cli")
    assert (event.securable_type, event.securable) == ("user", "deployer")
    assert event.details["kind"] == "service_principal"
    assert event.details["groups"] == ["ml-engineers"]


def test_create_service_principal_no_longer_makes_groups_on_the_side():
    with pytest.raises(CommandError, match="Group 'ml-engineers' does not exist"):
        run("create_service_principal", "deployer", "--group", "ml-engineers")
    assert not User.objects.filter(username="deployer").exists()
    assert not Group.objects.exists()


def test_create_service_principal_refuses_a_taken_name_up_to_case():
    User.objects.create(username="deployer")
    with pytest.raises(CommandError, match="A user named 'Deployer' already exists"):
        run("create_service_principal", "Deployer")
    assert events("service_principal.create") == []


# --- the services, called by a principal ------------------------------------------------------


def test_an_admin_creates_principals_audited_as_themselves(admin_user):
    actor = Actor(user=admin_user, auth_method="token", source_address="10.0.0.9")
    group_create(actor=actor, name="reviewers")
    user_create(actor=actor, username="bob", groups=["reviewers"])
    service_principal_create(actor=actor, name="ci")
    for action in ("group.create", "user.create", "service_principal.create"):
        (event,) = events(action)
        assert (event.actor, event.actor_id, event.auth_method, event.source_address) == (
            "root",
            admin_user.pk,
            "token",
            "10.0.0.9",
        )


@pytest.mark.parametrize(
    ("create", "action"),
    [
        (lambda a: user_create(actor=a, username="mallory"), "user.create"),
        (lambda a: group_create(actor=a, name="mallory"), "group.create"),
        (lambda a: service_principal_create(actor=a, name="mallory"), "service_principal.create"),
    ],
)
def test_a_non_admin_cannot_create_principals_and_the_attempt_is_audited(make_user, create, action):
    carol = make_user("carol")
    with pytest.raises(PermissionDenied):
        create(Actor.system(carol))
    assert not User.objects.filter(username="mallory").exists()
    assert not Group.objects.filter(name="mallory").exists()
    (event,) = events(action)
    assert (event.actor, event.outcome, event.securable) == ("carol", "DENIED", "mallory")


def test_only_the_system_creates_django_superusers(admin_user):
    with pytest.raises(PermissionDenied):
        user_create(actor=Actor.system(admin_user), username="eve", superuser=True)
    assert not User.objects.filter(username="eve").exists()
    user = user_create(actor=SystemActor(), username="eve", superuser=True)
    assert user.is_superuser and user.is_staff


def test_principal_name_check_errors_are_typed():
    Group.objects.create(name="g")
    with pytest.raises(AlreadyExists):
        principal_name_check("G")
    with pytest.raises(InvalidParameter):
        principal_name_check("x\x00")
    principal_name_check("g", group_pk=Group.objects.get().pk)  # a group may keep its name


# --- bootstrap_demo ---------------------------------------------------------------------------


def test_bootstrap_demo_creates_every_principal_through_the_audited_services(settings):
    out = run("bootstrap_demo")
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.has_usable_password()
    assert admin.groups.filter(name=settings.STEWARD_ADMIN_GROUP).exists()
    created = {
        (e.action, e.securable): e
        for e in AuditEvent.objects.filter(action__in=["user.create", "group.create"])
    }
    assert set(created) == {
        ("group.create", settings.STEWARD_ADMIN_GROUP),
        ("group.create", "data-scientists"),
        ("group.create", "ml-engineers"),
        ("group.create", "reviewers"),
        ("user.create", "admin"),
        ("user.create", "alice"),
        ("user.create", "bob"),
    }
    assert {(e.actor, e.actor_id) for e in created.values()} == {("system", None)}
    assert User.objects.count() == 3 and Group.objects.count() == 4
    assert User.objects.get(username="alice").groups.get().name == "data-scientists"
    # The banner: the admin password once, the console's address, how to reset the password.
    assert "Admin account: admin / password: " in out
    assert f"Console: {settings.STEWARD_BASE_URL}/console/" in out
    assert "manage.py changepassword admin" in out


def test_bootstrap_demo_twice_creates_nothing_more():
    run("bootstrap_demo")
    before = AuditEvent.objects.count()
    out = run("bootstrap_demo")
    assert "Admin account 'admin' exists (password unchanged)." in out
    assert "password: " not in out
    assert "manage.py changepassword admin" in out
    assert AuditEvent.objects.count() == before


# --- the Django admin -------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["user", "group"])
def test_the_django_admin_adds_no_principal_around_the_audited_services(client, model, settings):
    root = User.objects.create_superuser("superroot", password="a-Long-pass-phrase-42")
    client.force_login(root)
    app = "accounts" if model == "user" else "auth"
    assert client.get(f"/admin/{app}/{model}/").status_code == 200  # still listed and editable
    response = client.post(
        f"/admin/{app}/{model}/add/",
        {"username": "mallory", "name": "mallory", "password1": "x", "password2": "x"},
    )
    assert response.status_code == 403
    assert not User.objects.filter(username="mallory").exists()
    assert not Group.objects.filter(name="mallory").exists()
