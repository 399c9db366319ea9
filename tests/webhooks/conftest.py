"""Fixtures for the webhook tests: receivers on this machine, and the settings that let
Steward deliver to exactly one of them.

Every receiver listens on 127.0.0.1, a loopback address the policy refuses. The tests do not
switch the policy off (STEWARD_WEBHOOK_ALLOW_PRIVATE): they allow exactly the receiver's
address and port (STEWARD_WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1:<port>"]), so on one machine
the allowed receiver gets its deliveries while another port on the same address, `localhost`
(a name resolving to loopback), 169.254.169.254, and a redirect to any of them stay refused.
"""

from __future__ import annotations

import pytest

from tests.registry.conftest import logged_model, ready_version  # noqa: F401  (fixtures)
from tests.webhooks.receiver import Clock, Receiver


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        r = Receiver(**kwargs)
        made.append(r)
        return r

    make.all = made  # type: ignore[attr-defined]
    yield make
    for r in made:
        r.close()


@pytest.fixture
def allow(settings):
    """allow(receiver) -> lets deliveries reach exactly that receiver's address and port."""
    settings.STEWARD_WEBHOOK_ALLOWED_SCHEMES = ["http", "https"]
    settings.STEWARD_WEBHOOK_ALLOW_PRIVATE = False
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = []
    settings.STEWARD_WEBHOOK_TIMEOUT = 5
    settings.STEWARD_WEBHOOK_RETRY_BACKOFF = 30
    settings.STEWARD_WEBHOOK_MAX_ATTEMPTS = 4

    def make(*receivers: Receiver) -> None:
        settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [
            *settings.STEWARD_WEBHOOK_ALLOWED_TARGETS,
            *(f"127.0.0.1:{r.port}" for r in receivers),
        ]

    return make


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def model_tree(tree, admin_actor):
    """A catalog `c` with schema `c.s` and models `c.s.m` and `c.s.other`, plus `d.s.m`."""
    tree("c.s.m", "c.s.other", "d.s.m")
    from catalog.selectors import model_lookup

    return model_lookup("c.s.m")


class StuckResolver:
    """socket.getaddrinfo replaced by a lookup that blocks until released (at the latest when
    the test ends): a resolver that never answers.

    A mock, on purpose: no slow or dead DNS server can be run here (the tests have no network
    and the machine's resolver answers at once), and the behaviour under test is only what
    Steward does while getaddrinfo has not returned."""

    def __init__(self, monkeypatch):
        import socket
        import threading

        self.release = threading.Event()
        self.calls: list[str] = []
        stuck = self

        def getaddrinfo(host, port, *args, **kwargs):
            stuck.calls.append(host)
            stuck.release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "released by the test")

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def stuck_resolver(monkeypatch):
    stuck = StuckResolver(monkeypatch)
    yield stuck
    stuck.release.set()  # let the abandoned lookup threads finish
