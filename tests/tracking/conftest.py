"""Fixtures for the tracking tests: principals, an MLflow-door client, quick builders."""

from __future__ import annotations

import pytest

from core.actor import Actor
from tracking import services

API = "/api/2.0/mlflow"


class Door:
    """Talks to the MLflow door like the client does: GET with a query, others with JSON."""

    def __init__(self, client):
        self.client = client

    def get(self, path: str, params: dict | None = None, prefix: str = API):
        return self.client.get(f"{prefix}/{path}", params or {})

    def post(self, path: str, body=None, prefix: str = API):
        return self.client.post(f"{prefix}/{path}", body or {}, format="json")

    def patch(self, path: str, body=None, prefix: str = API):
        return self.client.patch(f"{prefix}/{path}", body or {}, format="json")

    def delete(self, path: str, body=None, prefix: str = API):
        return self.client.delete(f"{prefix}/{path}", body or {}, format="json")

    def raw(self, method: str, path: str, data, content_type="application/json", prefix=API):
        return self.client.generic(method, f"{prefix}/{path}", data, content_type=content_type)


@pytest.fixture
def door(api_as):
    """door(user, scope="all") -> a Door sending that user's bearer token."""

    def make(user, scope: str = "all") -> Door:
        return Door(api_as(user, scope))

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob", groups=("data_science",))


@pytest.fixture
def carol(make_user):
    return make_user("carol")


def actor(user) -> Actor:
    return Actor.system(user)


@pytest.fixture
def experiment(alice):
    """An experiment 'exp' owned by alice."""
    return services.experiment_create(actor=actor(alice), name="exp")


@pytest.fixture
def run(alice, experiment):
    """A RUNNING run of alice's experiment."""
    return services.run_create(actor=actor(alice), experiment_id=experiment.experiment_id)


def share(owner, experiment, principal: str, level: str) -> None:
    services.experiment_permission_set(
        actor=actor(owner),
        experiment_id=experiment.experiment_id,
        principal=principal,
        level=level,
    )


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    return body["error_code"]
