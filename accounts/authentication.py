"""DRF authentication: bearer API tokens (and Basic with a token as password, for the MLflow
client), and Django sessions with CSRF for the console. Failures are audited and throttled."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from datetime import timedelta

from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework import authentication

from accounts.models import ApiToken, User
from accounts.services import hash_token
from accounts.sql import user_closure_json_sql
from audit.services import audit_event_write
from core.errors import ErrorCode, StewardError, Unauthenticated
from core.rows import Part, build, fetch_one, select_list

LAST_USED_GRANULARITY = timedelta(minutes=1)
FAILURE_LIMIT = 30  # failed attempts per client address per window
FAILURE_WINDOW = 60  # seconds


class TooManyFailures(StewardError):
    code = ErrorCode.REQUEST_LIMIT_EXCEEDED


def _failure_key(request) -> str:
    return (
        f"authfail:{getattr(request, 'client_address', '') or request.META.get('REMOTE_ADDR', '')}"
    )


def count_failure(request) -> None:
    """Count a failed attempt against the client address (tokens and passwords alike)."""
    key = _failure_key(request)
    cache.add(key, 0, FAILURE_WINDOW)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, FAILURE_WINDOW)


def _refuse(request, reason: str, method: str) -> Unauthenticated:
    """Audit a failed authentication and count it against the client address."""
    count_failure(request)
    audit_event_write(
        actor=None,
        action="auth.failure",
        outcome="DENIED",
        auth_method=method,
        source_address=getattr(request, "client_address", ""),
        request_id=getattr(request, "request_id", ""),
        details={"reason": reason, "path": request.path[:300]},
    )
    return Unauthenticated("Invalid or expired credentials.")


def throttled(request) -> bool:
    return (cache.get(_failure_key(request)) or 0) >= FAILURE_LIMIT


@functools.cache
def _token_sql(vendor: str) -> tuple[str, list[Part]]:
    """The token, its user and the user's groups (nested ones included, as JSON [[id, name],
    ...]): what authorization needs first, in one round trip."""
    parts = [Part(ApiToken, "t"), Part(User, "u", attach=("t", "user"))]
    groups = user_closure_json_sql(vendor, "u.id")
    sql = (
        f"SELECT {select_list(parts)}, {groups} FROM {ApiToken._meta.db_table} t "
        f"JOIN {User._meta.db_table} u ON u.id = t.user_id WHERE t.token_hash = %s"
    )
    return sql, parts


def _token_by_hash(token_hash: str) -> ApiToken | None:
    """The token with its user, in one raw query (every API request pays for this); the
    user's group closure rides along as `token.group_closure` ({id: name}) for authz."""
    sql, parts = _token_sql(connection.vendor)
    row = fetch_one(sql, [token_hash])
    if row is None:
        return None
    token = build(parts, row[:-1])[0]
    raw = row[-1]
    pairs = json.loads(raw) if isinstance(raw, str) else (raw or [])
    token.group_closure = {int(gid): name for gid, name in pairs or []}
    return token


def token_user(request, raw: str, method: str):
    """Resolve a raw token to (user, token) or raise UNAUTHENTICATED (audited).

    The failure throttle is consulted only when the token does not hold: a client address
    that has guessed too often gets 429 for every further guess, while a valid token (which
    no guessing produces: 256 random bits) is not held back by the failures of others behind
    the same address, and the valid path pays no cache round trip."""
    token = _token_by_hash(hash_token(raw)) if raw and len(raw) <= 256 else None
    now = timezone.now()
    reason = _invalid(token, now) if token is not None else "unknown token"
    if not raw or len(raw) > 256:
        reason = "malformed token"
    if reason:
        if throttled(request):
            raise TooManyFailures("Too many failed authentication attempts; try again later.")
        raise _refuse(request, reason, method)
    assert token is not None  # no reason to refuse: a valid token
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


def _invalid(token: ApiToken, now) -> str:
    """Why a stored token does not authenticate now ('' when it does)."""
    if token.revoked_at is not None:
        return f"revoked token {token.prefix}"
    if token.expires_at <= now:
        return f"expired token {token.prefix}"
    if not token.user.is_active:
        return f"inactive user {token.user.username}"
    return ""


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`, or Basic with any username and the token as password."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return token_user(request, value.strip(), "token")
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise _refuse(request, "malformed basic credentials", "basic") from None
            _, _, password = decoded.partition(":")
            return token_user(request, password, "basic")
        raise _refuse(request, f"unsupported scheme {scheme[:20]}", "unknown")

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="steward"'


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """Django session login (console); CSRF enforced on unsafe methods."""


class ThrottledModelBackend(ModelBackend):
    """Password login that refuses every attempt while the client address is throttled."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and throttled(request):
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
