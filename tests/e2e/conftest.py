"""The real `unitycatalog-client` against a live Steward server.

The client is asyncio-only (aiohttp). Django's ORM refuses to run inside an event loop, so a
test does its database work (users, tokens, checks) in plain sync code and runs each client
conversation with `uc.run(token, scenario)`, which wraps one `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from unitycatalog.client import (
    ApiClient,
    CatalogsApi,
    Configuration,
    GrantsApi,
    RegisteredModelsApi,
    SchemasApi,
)

from tests.conftest import token_for
from tests.e2e.browser import browser, browser_page, console_login  # noqa: F401  (fixtures)

UC_PREFIX = "/api/2.1/unity-catalog"


@dataclass
class UC:
    """One authenticated client session and its four API groups."""

    api: ApiClient

    def __post_init__(self) -> None:
        self.catalogs = CatalogsApi(self.api)
        self.schemas = SchemasApi(self.api)
        self.models = RegisteredModelsApi(self.api)
        self.grants = GrantsApi(self.api)


@contextlib.asynccontextmanager
async def uc_session(host: str, token: str | None):
    headers = {}
    if token is not None:
        headers = {"header_name": "Authorization", "header_value": f"Bearer {token}"}
    async with ApiClient(Configuration(host=host), **headers) as api:
        yield UC(api)


class LiveUC:
    """Drives the live server: typed client conversations and raw HTTP calls."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.host = base_url + UC_PREFIX

    def token(self, user) -> str:
        return token_for(user)

    def run(self, token: str | None, scenario: Callable[[UC], Awaitable[Any]]) -> Any:
        async def main():
            async with uc_session(self.host, token) as uc:
                return await scenario(uc)

        return asyncio.run(main())

    def raw(self, method: str, path: str, token: str | None, **kwargs) -> requests.Response:
        # No keep-alive: an idle server thread would outlive the test (and the server).
        headers = {"Connection": "close"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)


def _wait_for_request_threads(timeout: float = 10.0) -> None:
    """Let the live server's request threads finish closing before the test (or the server)
    ends: with in-memory SQLite they share the test's connection, and one still closing it
    after the server stops raises "DatabaseWrapper objects created in a thread..."."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any("process_request_thread" in t.name for t in threading.enumerate()):
            return
        time.sleep(0.01)


@pytest.fixture
def live_uc(live_server):
    yield LiveUC(live_server.url)
    _wait_for_request_threads()


async def collect(list_page, field: str, **kwargs) -> tuple[list, int]:
    """Follow next_page_token until it is None; returns (all items, number of pages)."""
    items: list = []
    pages = 0
    token = None
    while True:
        page = await list_page(page_token=token, **kwargs)
        pages += 1
        items.extend(getattr(page, field) or [])
        token = page.next_page_token
        if not token:
            return items, pages
        assert pages < 1000, "paging does not terminate"


@pytest.fixture
def login(live_server, monkeypatch):
    """login(user) -> an MlflowClient acting as `user` (bearer token from the environment)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from tests.e2e.mlflow_support import close_client_connections

    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    mlflow.set_tracking_uri(live_server.url)
    mlflow.set_registry_uri(live_server.url)

    def make(user):
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for(user))
        return MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)

    yield make
    close_client_connections(live_server.url)
    _wait_for_request_threads()


@pytest.fixture
def broker():
    """The Redis database the worker tests use as broker (tests/e2e/workers.py)."""
    import redis

    from tests.e2e.workers import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"these tests need a Redis broker at {REDIS_URL}: {exc}")
    return client


@pytest.fixture
def workers(tmp_path, broker, request):
    """Real Celery workers (tests/e2e/workers.py) on a queue of this test's own, so nothing
    else on the Redis database meets them; every worker is killed and the queue's leftovers
    removed afterwards."""
    from tests.e2e.workers import worker_pool

    yield from worker_pool(tmp_path, broker, request.module.__name__.rsplit(".", 1)[-1])
