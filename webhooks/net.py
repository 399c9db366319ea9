"""Outbound HTTP for webhook deliveries, safe against server-side request forgery.

The rule (SECURITY_CASES 4) is applied to the address actually connected to, never to a
name: each hop resolves the host once, refuses the hop if any address it resolves to is not
allowed, and connects to one of those checked addresses itself (TLS still verifies the
certificate and sends SNI for the name; the Host header is the name). There is no second
resolution between check and connect, so DNS rebinding has nothing to exploit, and
redirects are followed by hand (at most MAX_REDIRECTS), each hop checked again. No proxy
from the environment is used (http.client ignores it), which would make the proxy the peer.

Allowed: globally routable unicast addresses. Refused: loopback, private, link-local (the
cloud metadata service), shared (CGNAT), site-local, reserved, documentation, benchmarking,
multicast, broadcast and unspecified addresses, in IPv4 and IPv6, including IPv4 addresses
wrapped in IPv6 (IPv4-mapped, IPv4-compatible, 6to4, NAT64). Python's `is_global` alone
misses several of these (`::7f00:1`, `2002:7f00:1::`, `64:ff9b::a9fe:a9fe`, 224.0.0.1), so
the embedded IPv4 address is checked too.

Settings: STEWARD_WEBHOOK_ALLOW_PRIVATE lets any unicast address through (development);
STEWARD_WEBHOOK_ALLOWED_TARGETS lets exactly the listed addresses or networks through,
optionally on one port (`10.0.0.0/8`, `127.0.0.1:9000`, `[::1]:9000`);
STEWARD_WEBHOOK_ALLOWED_SCHEMES lists the URL schemes (default `https`).

Name resolution is bounded too: socket.getaddrinfo has no timeout of its own (a slow or dead
resolver can hold it for many seconds), so it runs in a small shared thread pool and the
attempt waits for it at most the time the attempt has left; a lookup that takes longer fails
the attempt (TransportError, retried like any other), and its thread finishes in the
background.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import ipaddress
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MAX_URL_LENGTH = 2048
MAX_REDIRECTS = 3
MAX_RESPONSE_BYTES = 64 * 1024
# Threads resolving names at once (per process). A lookup that outlives its attempt keeps its
# thread until the resolver answers; further lookups queue behind such threads and, if none
# frees up in time, time out too, so a dead resolver costs at most this many threads.
DNS_THREADS = 8
REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "Steward-Webhooks/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


class UrlRejected(ValueError):
    """The URL itself is unusable (scheme, credentials, host, length)."""


class Refused(Exception):
    """The policy forbids the address (or URL) a delivery would reach: never retried."""


class TransportError(Exception):
    """The receiver could not be reached or did not answer properly: worth a retry."""


# --- the address policy ------------------------------------------------------------------------


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition address carries, if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    # IPv4-compatible (::a.b.c.d, deprecated); :: and ::1 are not wrapped IPv4.
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _class_of(ip: IPAddress) -> str | None:
    """Why an address is not a public unicast address, or None when it is one."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip == _BROADCAST:
        return "broadcast"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared (carrier-grade NAT)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


def address_class(ip: IPAddress) -> str | None:
    """Like _class_of, looking through IPv6 wrappers at the IPv4 address inside."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        # The wrapper's own class (::ffff:0:0/96 is "reserved") says nothing: judge what the
        # packets reach, the IPv4 address inside.
        why = _class_of(inner)
        return None if why is None else f"{why} ({inner} inside {ip})"
    return _class_of(ip)


@dataclass(frozen=True)
class Target:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    port: int | None

    def matches(self, ip: IPAddress, port: int) -> bool:
        return (
            ip.version == self.network.version
            and ip in self.network
            and (self.port is None or self.port == port)
        )


def parse_target(entry: str) -> Target:
    """`10.0.0.0/8`, `10.1.2.3`, `127.0.0.1:9000`, `[::1]:9000`, `fd00::/8`."""
    text = entry.strip()
    port: int | None = None
    try:
        if text.startswith("["):
            if "]" not in text:
                raise ValueError
            host, _, rest = text[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise ValueError
                port = int(rest[1:])
            text = host
        elif text.count(":") == 1:
            text, port_text = text.split(":")
            port = int(port_text)
        network = ipaddress.ip_network(text, strict=False)
        if port is not None and not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ImproperlyConfigured(
            f"STEWARD_WEBHOOK_ALLOWED_TARGETS: {entry!r} is not an address, a network or "
            "an address with a port ([v6]:port for IPv6)."
        ) from None
    return Target(network, port)


@lru_cache(maxsize=8)
def _targets(entries: tuple[str, ...]) -> tuple[Target, ...]:
    return tuple(parse_target(e) for e in entries if e.strip())


def allowed_targets() -> tuple[Target, ...]:
    return _targets(tuple(settings.STEWARD_WEBHOOK_ALLOWED_TARGETS))


def refusal(ip: IPAddress, port: int) -> str | None:
    """Why delivering to ip:port is refused, or None when it is allowed."""
    if any(t.matches(ip, port) for t in allowed_targets()):
        return None
    why = address_class(ip)
    if why is None:
        return None
    if settings.STEWARD_WEBHOOK_ALLOW_PRIVATE and not why.startswith(
        ("unspecified", "multicast", "broadcast")
    ):
        return None
    return f"{ip} is a {why} address"


# --- URLs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Url:
    scheme: str
    host: str  # without brackets
    port: int
    target: str  # path and query, as sent on the request line
    text: str


def parse_url(url) -> Url:
    """Check a webhook URL's shape (not where it points): an allowed scheme, a host, no
    credentials, a canonical IP literal if numeric, no whitespace or control characters."""
    if not isinstance(url, str) or not url:
        raise UrlRejected("url must be a non-empty string.")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRejected(f"url must be at most {MAX_URL_LENGTH} characters.")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise UrlRejected("url must not contain whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRejected(f"url is not a valid URL: {exc}.") from None
    schemes = [s.lower() for s in settings.STEWARD_WEBHOOK_ALLOWED_SCHEMES]
    if parts.scheme.lower() not in schemes or parts.scheme.lower() not in {"http", "https"}:
        raise UrlRejected(
            f"url scheme {parts.scheme[:20]!r} is not allowed; allowed: {', '.join(schemes)}."
        )
    if parts.username is not None or parts.password is not None:
        raise UrlRejected("url must not carry credentials (user:password@).")
    host = parts.hostname or ""
    if not host:
        raise UrlRejected("url must name a host.")
    if ":" in host or host.replace(".", "").isdigit() or host.lower().startswith("0x"):
        # Numeric hosts: only canonical literals (`127.1`, `0177.0.0.1`, `2130706433` mean
        # loopback to the resolver but read as something else to people and parsers).
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UrlRejected(f"url host {host[:64]!r} is not a canonical IP address.") from None
    scheme = parts.scheme.lower()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Url(scheme, host, port or (443 if scheme == "https" else 80), target, url)


def literal_refusal(url: Url) -> str | None:
    """For a URL whose host is an IP literal, why the policy refuses it (checked at create
    time for a clear early answer; names are checked when delivering)."""
    try:
        ip = ipaddress.ip_address(url.host)
    except ValueError:
        return None
    return refusal(ip, url.port)


# --- connecting -------------------------------------------------------------------------------


_resolver_lock = threading.Lock()
_resolver: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None


def _resolver_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The process's lookup threads, made on first use (and again in a forked child, e.g. a
    prefork Celery worker, which inherits the pool object but none of its threads)."""
    global _resolver
    with _resolver_lock:
        if _resolver is None or _resolver[0] != os.getpid():
            _resolver = (
                os.getpid(),
                concurrent.futures.ThreadPoolExecutor(
                    max_workers=DNS_THREADS, thread_name_prefix="steward-webhook-dns"
                ),
            )
        return _resolver[1]


def _getaddrinfo(host: str, port: int, timeout: float | None) -> list:
    def lookup() -> list:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)

    if timeout is None:
        return lookup()
    future = _resolver_pool().submit(lookup)
    try:
        return future.result(timeout=max(timeout, 0.0))
    except concurrent.futures.TimeoutError:
        future.cancel()  # still queued behind stuck lookups: never start it
        raise TransportError(
            f"DNS lookup of {host[:100]} timed out after {round(timeout, 1):g} s"
        ) from None


def resolve(host: str, port: int, timeout: float | None = None) -> list[tuple[int, tuple]]:
    """(family, sockaddr) for every address of the host (one resolution per hop), waiting
    at most `timeout` seconds for the resolver (None: as long as it takes)."""
    try:
        infos = _getaddrinfo(host, port, timeout)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransportError(f"cannot resolve {host[:100]!r}: {exc}") from None
    out: list[tuple[int, tuple]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if (family, sockaddr) not in out:
            out.append((family, sockaddr))
    return out


def checked_addresses(
    host: str, port: int, timeout: float | None = None
) -> list[tuple[int, tuple]]:
    """The host's addresses, all of them allowed; Refused if any one is not (a name that
    answers with one public and one private address is a rebinding attempt)."""
    addresses = resolve(host, port, timeout)
    for _family, sockaddr in addresses:
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        why = refusal(ip, port)
        if why is not None:
            shown = "" if host == str(ip) else f"{host} resolves to "
            raise Refused(f"Refused to connect: {shown}{why}.")
    if not addresses:
        raise TransportError(f"{host[:100]!r} has no address.")
    return addresses


def open_socket(host: str, port: int, timeout: float) -> tuple[socket.socket, str]:
    """Connect to one of the host's checked addresses, all within `timeout` seconds (the
    lookup included); returns the socket and the address."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    for family, sockaddr in checked_addresses(host, port, timeout):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError(f"cannot connect to {host[:100]}:{port}: timed out")
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(remaining)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        peer = sock.getpeername()[0]
        if peer.split("%", 1)[0] != sockaddr[0].split("%", 1)[0]:  # pragma: no cover - paranoia
            sock.close()
            raise Refused(f"Refused: connected to {peer}, not the checked {sockaddr[0]}.")
        return sock, sockaddr[0]
    raise TransportError(f"cannot connect to {host[:100]}:{port}: {last}")


class _GuardedMixin:
    """http.client connections whose socket comes from open_socket (checked address)."""

    connected_address = ""

    def _guarded(self, address, timeout, source_address=None):
        sock, self.connected_address = open_socket(address[0], address[1], timeout)
        return sock


class GuardedHTTPConnection(_GuardedMixin, http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = self._guarded


class GuardedHTTPSConnection(_GuardedMixin, http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("context", ssl.create_default_context())
        super().__init__(*args, **kwargs)
        self._create_connection = self._guarded


# --- one delivery -----------------------------------------------------------------------------


@dataclass
class Result:
    status: int
    body: bytes
    url: str
    address: str
    hops: list[str] = field(default_factory=list)
    retry_after: str = ""  # the answer's Retry-After header, as sent (capped in length)


def _read_capped(response: http.client.HTTPResponse, sock, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError("the receiver's answer took too long")
        if sock is not None:
            sock.settimeout(remaining)
        chunk = response.read(min(8192, MAX_RESPONSE_BYTES - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> Result:
    """POST body to url, following redirects by hand with the policy checked on every hop.
    The whole attempt (all hops, connect, send, the answer up to MAX_RESPONSE_BYTES) must
    finish within `timeout` seconds. Raises Refused or TransportError."""
    deadline = time.monotonic() + timeout
    hops: list[str] = []
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            parsed = parse_url(current)
        except UrlRejected as exc:
            raise Refused(f"Refused: {exc}") from None
        hops.append(current)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError("timed out")
        cls = GuardedHTTPSConnection if parsed.scheme == "https" else GuardedHTTPConnection
        conn = cls(parsed.host, parsed.port, timeout=remaining)
        try:
            conn.request(
                "POST",
                parsed.target,
                body=body,
                headers={**headers, "User-Agent": USER_AGENT, "Connection": "close"},
            )
            response = conn.getresponse()
            location = response.getheader("Location")
            if response.status in REDIRECTS and location:
                current = urljoin(current, location.strip())
                continue
            content = _read_capped(response, conn.sock, deadline)
            return Result(
                response.status,
                content,
                current,
                conn.connected_address,
                hops,
                (response.getheader("Retry-After") or "").strip()[:100],
            )
        except (Refused, TransportError):
            raise
        except ValueError as exc:  # http.client's InvalidURL and the like: not worth a retry
            raise Refused(f"Refused: {exc}"[:500]) from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}"[:500]) from None
        finally:
            conn.close()
    raise TransportError(f"more than {MAX_REDIRECTS} redirects")
