"""Shared helpers for the e2e tests that drive the real mlflow client."""

from __future__ import annotations

import gc
from urllib.parse import urlsplit

import urllib3
from mlflow.utils import request_utils


def close_client_connections(url: str) -> None:
    """Close the client's keep-alive connections to the live server, so that no idle server
    thread outlives the test (and the server). The mlflow client pools them in cached
    requests sessions; close those pools wherever they are still referenced."""
    port = urlsplit(url).port
    request_utils._cached_get_request_session.cache_clear()
    for obj in gc.get_objects():
        # type(), not isinstance(): isinstance() on a dead weakref proxy raises ReferenceError.
        if issubclass(type(obj), urllib3.HTTPConnectionPool) and obj.port == port:
            obj.close()
