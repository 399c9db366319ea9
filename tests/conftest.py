"""Shared fixtures: principals, tokens, API clients, a tree builder."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import api_token_issue
from core.actor import Actor

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
_skipped_postgres: list[str] = []


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("postgres") and not ON_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))


def pytest_runtest_logreport(report):
    if report.skipped and "needs PostgreSQL" in str(report.longrepr):
        _skipped_postgres.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """On CI (STEWARD_REQUIRE_POSTGRES=1) a skipped PostgreSQL test fails the run."""
    if os.environ.get("STEWARD_REQUIRE_POSTGRES") == "1" and (_skipped_postgres or not ON_POSTGRES):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(
                f"FAILED: PostgreSQL required but {len(_skipped_postgres)} PostgreSQL tests were "
                f"skipped (engine {settings.DATABASES['default']['ENGINE']})."
            )
        session.exitstatus = 1


@pytest.fixture
def make_user(db):
    def make(username: str, *, groups: tuple[str, ...] = (), admin: bool = False, **extra) -> User:
        user = User.objects.create_user(username=username, password="x-unused-pw", **extra)
        for name in groups:
            user.groups.add(Group.objects.get_or_create(name=name)[0])
        if admin:
            user.groups.add(Group.objects.get_or_create(name=settings.STEWARD_ADMIN_GROUP)[0])
        return user

    return make


@pytest.fixture
def admin_user(make_user) -> User:
    return make_user("root", admin=True)


@pytest.fixture
def admin_actor(admin_user) -> Actor:
    return Actor.system(admin_user)


def token_for(user: User, scope: str = "all") -> str:
    _, raw = api_token_issue(actor=Actor.system(user), user=user, name="test", scope=scope)
    return raw


@pytest.fixture
def api_as():
    """api_as(user) -> an APIClient sending that user's bearer token."""

    def make(user: User | None, scope: str = "all") -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user, scope)}")
        return client

    return make


@pytest.fixture
def tree(admin_actor):
    """tree('c.s.m', ...) creates catalogs, schemas and models as the admin."""
    from catalog.models import Catalog, Schema
    from catalog.services import catalog_create, schema_create
    from registry.models import RegisteredModel
    from registry.services import registered_model_create

    def make(*full_names: str):
        out = []
        for full_name in full_names:
            parts = full_name.split(".")
            if not Catalog.objects.filter(name=parts[0]).exists():
                catalog_create(actor=admin_actor, name=parts[0])
            if len(parts) > 1 and not Schema.objects.filter(full_name=".".join(parts[:2])).exists():
                schema_create(actor=admin_actor, catalog_name=parts[0], name=parts[1])
            if len(parts) > 2 and not RegisteredModel.objects.filter(full_name=full_name).exists():
                registered_model_create(
                    actor=admin_actor, catalog_name=parts[0], schema_name=parts[1], name=parts[2]
                )
            out.append(full_name)
        return out

    return make


@pytest.fixture
def grant(admin_actor):
    """grant('catalog', 'c', 'alice', 'USE CATALOG', ...) as the admin."""
    from catalog.services import permissions_update

    def make(securable_type: str, full_name: str, principal: str, *privileges: str):
        permissions_update(
            actor=admin_actor,
            securable_type=securable_type,
            full_name=full_name,
            changes=[{"principal": principal, "add": list(privileges), "remove": []}],
        )

    return make
