"""The SSRF policy (SECURITY_CASES 4): every refused address class, in IPv4 and IPv6 and
wrapped in IPv6, refused on the address actually connected to, on every redirect hop; the
URL checks; the allowlist. Deliveries end REFUSED (never retried) and nothing reaches the
refused address."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from django.core.exceptions import ImproperlyConfigured

from webhooks import net


@pytest.fixture(autouse=True)
def _policy(settings):
    settings.STEWARD_WEBHOOK_ALLOWED_SCHEMES = ["http", "https"]
    settings.STEWARD_WEBHOOK_ALLOW_PRIVATE = False
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = []


REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fd00::1", "private"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("fe80::1", "link-local"),
    ("100.64.0.1", "shared"),
    ("fec0::1", "site-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "private"),  # documentation (TEST-NET-1)
    ("100::1", "reserved"),  # discard-only
    ("198.18.0.1", "private"),  # benchmarking
    ("2001:db8::1", "private"),  # documentation
    # IPv4 inside IPv6: mapped, compatible, 6to4, NAT64 (Python's is_global misses some)
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::7f00:1", "loopback"),
    ("2002:7f00:1::", "loopback"),
    ("2002:a9fe:a9fe::", "link-local"),
    ("64:ff9b::a9fe:a9fe", "link-local"),
    ("64:ff9b::a00:1", "private"),
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_non_public_addresses_are_refused(address, kind):
    why = net.refusal(ipaddress.ip_address(address), 443)
    assert why is not None and kind in why, why


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert net.refusal(ipaddress.ip_address(address), 443) is None


def test_allow_private_lets_unicast_through_but_never_multicast(settings):
    settings.STEWARD_WEBHOOK_ALLOW_PRIVATE = True
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1"):
        assert net.refusal(ipaddress.ip_address(address), 80) is None
    for address in ("224.0.0.1", "0.0.0.0", "255.255.255.255", "ff02::1"):
        assert net.refusal(ipaddress.ip_address(address), 80) is not None


def test_allowlist_is_exact_about_address_and_port(settings):
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1:9000", "10.0.0.0/8", "[::1]:9001"]
    ip = ipaddress.ip_address
    assert net.refusal(ip("127.0.0.1"), 9000) is None
    assert net.refusal(ip("127.0.0.1"), 9001) is not None
    assert net.refusal(ip("127.0.0.2"), 9000) is not None
    assert net.refusal(ip("10.200.1.1"), 443) is None
    assert net.refusal(ip("::1"), 9001) is None
    assert net.refusal(ip("::1"), 9000) is not None
    assert net.refusal(ip("::ffff:127.0.0.1"), 9000) is not None  # IPv6 entry != IPv4 entry


@pytest.mark.parametrize("entry", ["localhost", "127.0.0.1:0", "10.0.0.0/33", "[::1", "1:2:3:x"])
def test_a_bad_allowlist_entry_fails_loudly(settings, entry):
    from webhooks.checks import allowed_targets_parse

    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [entry]
    with pytest.raises(ImproperlyConfigured):
        net.allowed_targets()
    assert [e.id for e in allowed_targets_parse(None)] == ["webhooks.E001"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com/", "scheme"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com@/", "credentials"),
        ("https:///path", "host"),
        ("https://127.1/", "canonical"),
        ("https://2130706433/", "canonical"),
        ("https://0x7f000001/", "canonical"),
        ("https://0177.0.0.1/", "canonical"),
        ("https://127.0.0.1./", "canonical"),
        ("https://example.com:99999/", "valid URL"),
        ("https://exa mple.com/", "whitespace"),
        ("https://example.com/\x00", "control"),
        ("https://example.com/" + "a" * 2100, "at most"),
        ("", "non-empty"),
    ],
)
def test_unusable_urls_are_rejected(url, reason):
    with pytest.raises(net.UrlRejected) as exc:
        net.parse_url(url)
    assert reason in str(exc.value)


def test_https_only_unless_http_is_allowed(settings):
    settings.STEWARD_WEBHOOK_ALLOWED_SCHEMES = ["https"]
    with pytest.raises(net.UrlRejected, match="scheme"):
        net.parse_url("http://example.com/")
    assert net.parse_url("https://example.com/x?y=1").target == "/x?y=1"


def test_a_name_resolving_to_loopback_is_refused_before_connecting(monkeypatch):
    connects = []
    monkeypatch.setattr(net.socket.socket, "connect", lambda self, a: connects.append(a))
    with pytest.raises(net.Refused, match="localhost resolves to .* loopback"):
        net.post("http://localhost:1/", b"{}", {}, timeout=2)
    assert connects == []


def test_a_mixed_dns_answer_is_refused_whole(monkeypatch):
    """A rebinding name answering one public and one private address: refused, never
    connected, whichever comes first."""

    def fake(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port)),
        ]

    connects = []
    monkeypatch.setattr(net.socket, "getaddrinfo", fake)
    monkeypatch.setattr(net.socket.socket, "connect", lambda self, a: connects.append(a))
    with pytest.raises(net.Refused, match="169.254.169.254 is a link-local"):
        net.post("http://rebind.example/", b"{}", {}, timeout=2)
    assert connects == []


def test_the_checked_address_is_the_one_connected_to(monkeypatch, receiver, settings):
    """One resolution per hop, and the socket connects to exactly what was checked: a DNS
    answer that changes after the check (rebinding) is never asked for."""
    r = receiver()
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{r.port}"]
    answers = iter(
        [
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", r.port))],
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", r.port))],
        ]
    )
    calls = []

    def fake(host, port, *args, **kwargs):
        calls.append(host)
        return next(answers)

    monkeypatch.setattr(net.socket, "getaddrinfo", fake)
    result = net.post(f"http://hooks.example:{r.port}/x", b"{}", {}, timeout=5)
    assert result.status == 200 and result.address == "127.0.0.1"
    assert calls == ["hooks.example"]
    assert r.requests[0].headers["Host"] == f"hooks.example:{r.port}"


def test_a_redirect_to_a_private_address_is_refused(receiver, settings):
    r = receiver(redirects={"/go": "http://169.254.169.254/latest/meta-data/"})
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{r.port}"]
    with pytest.raises(net.Refused, match="link-local"):
        net.post(r.url("/go"), b"{}", {}, timeout=5)
    assert [q.path for q in r.requests] == ["/go"]


def test_a_redirect_to_another_port_of_the_same_host_is_refused(receiver, settings):
    allowed, other = receiver(), receiver()
    allowed.redirects["/go"] = other.url("/stolen")
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{allowed.port}"]
    with pytest.raises(net.Refused, match="loopback"):
        net.post(allowed.url("/go"), b"{}", {}, timeout=5)
    assert other.requests == []


def test_allowed_redirects_are_followed_with_the_same_body(receiver, settings):
    r = receiver(redirects={"/old": "/new"})
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{r.port}"]
    result = net.post(r.url("/old"), b'{"a": 1}', {"X-Test": "1"}, timeout=5)
    assert result.status == 200 and result.hops == [r.url("/old"), r.url("/new")]
    assert [q.body for q in r.requests] == ['{"a": 1}', '{"a": 1}']


def test_redirect_loops_stop(receiver, settings):
    r = receiver(redirects={"/a": "/b", "/b": "/a"})
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{r.port}"]
    with pytest.raises(net.TransportError, match="redirects"):
        net.post(r.url("/a"), b"{}", {}, timeout=5)
    assert len(r.requests) == net.MAX_REDIRECTS + 1


def test_a_slow_receiver_times_out(receiver, settings):
    r = receiver(stall_seconds=2)
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{r.port}"]
    with pytest.raises(net.TransportError):
        net.post(r.url(), b"{}", {}, timeout=0.5)


def test_the_answer_is_read_up_to_a_cap(receiver, settings):
    r = receiver(answer=b"x" * (1024 * 1024))
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{r.port}"]
    result = net.post(r.url(), b"{}", {}, timeout=5)
    assert result.status == 200 and len(result.body) == net.MAX_RESPONSE_BYTES


# --- name resolution is bounded -----------------------------------------------------------------
# These replace socket.getaddrinfo (tests/webhooks/conftest.py, StuckResolver): no slow resolver
# can run here, and what is tested is Steward's side of a lookup that does not return.


def test_a_dns_lookup_that_never_answers_fails_within_the_timeout(stuck_resolver, monkeypatch):
    import time

    connects = []
    monkeypatch.setattr(net.socket.socket, "connect", lambda self, a: connects.append(a))
    started = time.monotonic()
    with pytest.raises(net.TransportError) as exc:
        net.post("https://slow.example.test/hook", b"{}", {}, timeout=0.5)
    elapsed = time.monotonic() - started
    assert str(exc.value) == "DNS lookup of slow.example.test timed out after 0.5 s"
    assert 0.4 <= elapsed < 10, elapsed  # bounded by the attempt's timeout, not the resolver
    assert stuck_resolver.calls == ["slow.example.test"] and connects == []


def test_a_redirect_to_a_name_that_never_resolves_fails_in_the_time_left(
    stuck_resolver, monkeypatch, receiver, settings
):
    """Each hop's lookup gets what is left of the attempt, not a fresh timeout."""
    r = receiver(redirects={"/go": "http://slow.example.test/next"})
    settings.STEWARD_WEBHOOK_ALLOWED_TARGETS = [f"127.0.0.1:{r.port}"]

    def answer(host, port, *args, **kwargs):
        if host == "127.0.0.1":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        stuck_resolver.calls.append(host)
        stuck_resolver.release.wait(60)
        raise socket.gaierror(socket.EAI_AGAIN, "released by the test")

    monkeypatch.setattr(net.socket, "getaddrinfo", answer)
    with pytest.raises(net.TransportError, match=r"DNS lookup of slow\.example\.test timed out"):
        net.post(r.url("/go"), b"{}", {}, timeout=1)
    assert [q.path for q in r.requests] == ["/go"]
    assert stuck_resolver.calls == ["slow.example.test"]


def test_a_slow_answer_within_the_timeout_is_still_checked(monkeypatch):
    """The lookup runs on another thread now; what it answers is judged exactly as before."""
    import threading

    def slow(host, port, *args, **kwargs):
        threading.Event().wait(0.2)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    connects = []
    monkeypatch.setattr(net.socket, "getaddrinfo", slow)
    monkeypatch.setattr(net.socket.socket, "connect", lambda self, a: connects.append(a))
    with pytest.raises(net.Refused, match="slowdns.example resolves to 169.254.169.254"):
        net.post("https://slowdns.example/", b"{}", {}, timeout=5)
    assert connects == []


def test_lookups_stuck_on_every_thread_do_not_hold_up_others_beyond_their_timeout(stuck_resolver):
    """A dead resolver occupies at most DNS_THREADS threads; a lookup queued behind them
    times out in its own bound instead of waiting for them."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(net.DNS_THREADS + 2) as callers:
        started = time.monotonic()
        outcomes = list(
            callers.map(
                lambda i: _outcome(lambda: net.resolve(f"h{i}.example.test", 443, 0.5)),
                range(net.DNS_THREADS + 2),
            )
        )
        elapsed = time.monotonic() - started
    assert all("timed out after 0.5 s" in o for o in outcomes), outcomes
    assert elapsed < 10, elapsed
    assert len(stuck_resolver.calls) == net.DNS_THREADS  # the queued two never started


def _outcome(call) -> str:
    try:
        call()
    except net.TransportError as exc:
        return str(exc)
    return "answered"
