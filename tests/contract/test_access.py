"""Access contract of every route, in the manner of NetBox's utilities/testing/api.py: for each
route of every door, walked from the URL configuration, and each HTTP method its view answers,
a real request against objects that someone else owns (tests/contract/world.py), made by

- nobody: 401 in the door's error format (console pages: a redirect to the sign-in page);
- a principal without grants: 404 for what it cannot see, exactly as for something that does
  not exist, 403 where the rules say, lists without anything of others; never a 500, and a
  refused write changes nothing;
- a read-scoped token of the user who may make the request: every write refused with 403 and
  nothing changed, every read answered as for that user;
- that user's full token: the request succeeds, which proves the table's requests are the
  real thing (a refusal above is the principal's, not a malformed body's).

The requests come from tests/contract/calls.py; a route or method missing there fails, so a new
route is covered by being a route.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from rest_framework.test import APIClient

from tests.contract.calls import CALLS, PATH_PARAMS, ROUTE_PARAMS, SAME_AS, Call
from tests.contract.test_routes import CONSOLE_LOGIN_URL, PUBLIC_ROUTES, view_class
from tests.contract.world import World, build

HANDLERS = ("get", "post", "put", "patch", "delete")
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ERROR_CODES = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"}
# Columns that change on every authenticated request, not by the request's own doing.
VOLATILE = {("accounts", "user", "last_login"), ("accounts", "apitoken", "last_used_at")}
# Tables that every request may add to: the audit trail (refusals are audited) and sessions.
APPEND_ONLY = {"audit", "sessions"}


# --- the routes ----------------------------------------------------------------------------


def _walk(resolver: URLResolver, route: str = "", chain: tuple = ()):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, route + str(entry.pattern), (*chain, entry.pattern))
        else:
            yield route + str(entry.pattern), (*chain, entry.pattern), entry


def _covered(route: str) -> bool:
    return not (
        route in PUBLIC_ROUTES
        or route.startswith("admin/")
        or route in {"console/login", "console/logout"}
    )


ROUTES = {route: (chain, entry) for route, chain, entry in _walk(get_resolver()) if _covered(route)}


def methods_of(entry: URLPattern) -> list[str]:
    klass = view_class(entry.callback)
    assert klass is not None, f"{entry}: a function view; the suite cannot see its methods"
    allowed = set(klass.http_method_names)
    return [m for m in HANDLERS if m in allowed and callable(getattr(klass, m, None))]


def calls_for(route: str) -> dict:
    for prefix, same in SAME_AS.items():
        if route.startswith(prefix):
            return CALLS.get(same + route.removeprefix(prefix), {})
    return CALLS.get(route, {})


def _cases():
    for route, (_, entry) in ROUTES.items():
        entry_calls = calls_for(route)
        for method in methods_of(entry):
            found = entry_calls.get(method)
            if found is None:
                yield pytest.param(route, method, None, id=f"{route} {method.upper()} (no call)")
                continue
            found = found if isinstance(found, tuple) else (found,)
            for index, call in enumerate(found):
                suffix = f" #{index + 1}" if len(found) > 1 else ""
                yield pytest.param(route, method, call, id=f"{route} {method.upper()}{suffix}")


CASES = list(_cases())
API_CASES = [c for c in CASES if not c.values[0].startswith("console/")]


def _fill(text: str, values: dict[str, str]) -> str:
    return text.format_map(values)


def _deep_fill(value, values: dict[str, str]):
    if isinstance(value, str):
        return _fill(value, values)
    if isinstance(value, list):
        return [_deep_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _deep_fill(v, values) for k, v in value.items()}
    return value


_ROUTE_PARAM = re.compile(r"<(?:[^>:]+:)?(?P<name>[^>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")


def param_value(route: str, name: str, call: Call, values: dict[str, str]) -> str:
    if call.path and name in call.path:
        template = call.path[name]
    elif (route, name) in ROUTE_PARAMS:
        template = ROUTE_PARAMS[(route, name)]
    elif name in PATH_PARAMS:
        template = PATH_PARAMS[name]
    else:
        raise LookupError(f"{route}: no value for path parameter <{name}>; teach PATH_PARAMS")
    return _fill(template, values)


def build_path(route: str, call: Call, values: dict[str, str]) -> str:
    chain, _ = ROUTES[route]
    path = ""
    for pattern in chain:
        text = str(pattern)
        if isinstance(pattern, RoutePattern):
            text = _ROUTE_PARAM.sub(lambda m: param_value(route, m["name"], call, values), text)
        elif isinstance(pattern, RegexPattern):
            text = text.removeprefix("^").removesuffix("$")
            text = _REGEX_GROUP.sub(lambda m: param_value(route, m["name"], call, values), text)
            text = text.replace("/?", "").replace(".*", "zz-unknown")
            if re.search(r"[\\^$()\[\]{}*+?|]", text):
                raise ValueError(f"{route}: cannot build a path from regex {pattern}")
        else:
            raise TypeError(type(pattern).__name__)
        path += text
    return "/" + path


# --- the world, once per module (each test runs in a savepoint inside it) -------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once in an outer transaction; pytest-django runs each test in a savepoint within
    it and rolls that back, and the module's end rolls the world back (setUpTestData's way)."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            made = build()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield made
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _artifact_files():
    """The artifact store is a directory, outside the transaction: put it back after a test
    that wrote to it (the full-token checks do)."""
    from registry.storage import artifact_root

    before = _files(artifact_root())
    yield
    root = artifact_root()
    after = _files(root)
    if after != before:
        for name in set(after) - set(before):
            (root / name).unlink()
        for name, content in before.items():
            if after.get(name) != content:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(content)


def _files(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- state: what a refused request must leave as it was -------------------------------------


def _snapshot_statements() -> list[tuple[str, str]]:
    """One plain SELECT per table, built once (the ORM would compile 50 querysets per call)."""
    quote = connection.ops.quote_name
    out = []
    for model in apps.get_models():
        meta = model._meta
        if meta.app_label in APPEND_ONLY or meta.proxy or not meta.managed:
            continue
        columns = ", ".join(
            quote(f.column)
            for f in meta.concrete_fields
            if (meta.app_label, meta.model_name, f.attname) not in VOLATILE
        )
        sql = f"SELECT {columns} FROM {quote(meta.db_table)} ORDER BY {quote(meta.pk.column)}"
        out.append((meta.label, sql))
    return out


_STATEMENTS: list[tuple[str, str]] = []


def state() -> dict:
    """Every row of every table but the audit trail's, and every stored file's digest."""
    from registry.storage import artifact_root

    if not _STATEMENTS:
        _STATEMENTS.extend(_snapshot_statements())
    out: dict = {}
    with connection.cursor() as cursor:
        for label, sql in _STATEMENTS:
            cursor.execute(sql)
            out[label] = cursor.fetchall()
    files = _files(artifact_root())
    out["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    return out


def changed(before: dict, after: dict) -> list[str]:
    return [label for label in before if before[label] != after.get(label)]


def audit_mark() -> int:
    from audit.models import AuditEvent

    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def audited_since(mark: int) -> list[tuple[str, str]]:
    from audit.models import AuditEvent

    return list(AuditEvent.objects.filter(pk__gt=mark).values_list("action", "outcome"))


# --- requests --------------------------------------------------------------------------------


def client_for(world: World, who: str | None, scope: str = "all", *, console: bool = False):
    if console:
        client = Client()
        if who is not None:
            client.force_login(world.users[who])
        return client
    client = APIClient()
    if who is not None:
        from accounts.services import api_token_issue
        from core.actor import Actor

        user = world.users[who]
        _, raw = api_token_issue(actor=Actor.system(user), user=user, name="contract", scope=scope)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def send(client, route: str, method: str, call: Call, values: dict[str, str]):
    path = build_path(route, call, values)
    match = resolve(path)
    assert match.func is ROUTES[route][1].callback, (route, path, match.route)
    query = _deep_fill(call.query or {}, values)
    if route.startswith("console/"):
        if method == "get":
            return client.get(path, query)
        return client.post(path, _deep_fill(call.body or {}, values))
    if method == "get":
        return client.get(path, query)
    url = f"{path}?{urlencode(query)}" if query else path
    if call.raw is not None:
        return client.generic(
            method.upper(), url, call.raw, content_type="application/octet-stream"
        )
    body = _deep_fill(call.body if call.body is not None else {}, values)
    return client.generic(method.upper(), url, json.dumps(body), content_type="application/json")


def describe(route, method, response) -> str:
    return f"{method.upper()} {route}: {response.status_code} {response.content[:400]!r}"


def error_of(route: str, response) -> str:
    """The error code, checking the door's error format on the way."""
    if route.startswith("api/scim/"):
        body = response.json()
        assert SCIM_ERROR in body.get("schemas", []), body
        assert str(body.get("status")) == str(response.status_code), body
        return {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"}[
            response.status_code
        ]
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    return body["error_code"]


def leaks(world: World, response) -> list[str]:
    text = response.content.decode("utf-8", "replace")
    return [secret for secret in world.secrets if secret in text]


def _need(route: str, method: str, call: Call | None) -> None:
    if call is None:
        pytest.fail(f"{method.upper()} {route}: no request in tests/contract/calls.py; add one")


# --- the inventory ---------------------------------------------------------------------------


def test_every_route_and_method_has_a_call():
    missing = [c.id for c in CASES if c.values[2] is None]
    assert not missing, f"no request in tests/contract/calls.py for: {missing}"


def test_the_table_has_no_stale_routes():
    live = set(ROUTES)
    stale = [route for route in CALLS if route not in live]
    assert not stale, stale
    for route, (_, entry) in ROUTES.items():
        for method in calls_for(route):
            assert method in methods_of(entry), f"{route}: the view has no {method.upper()}"
        for prefix, same in SAME_AS.items():
            if route.startswith(prefix):
                twin = ROUTES[same + route.removeprefix(prefix)][1]
                assert view_class(twin.callback) is view_class(entry.callback), route


def test_the_suite_covers_every_door():
    routes = {c.values[0] for c in CASES}
    doors = [
        "api/2.1/unity-catalog/",
        "api/2.0/mlflow/",
        "api/3.0/mlflow/",
        "api/2.0/mlflow-artifacts/",
        "api/v1/",
        "api/scim/v2/",
        "api/2.0/mlflow/webhooks",
        "api/v1/webhooks",
        "console/",
    ]
    for door in doors:
        assert any(r.startswith(door) for r in routes), door
    assert len(CASES) >= 200


@pytest.mark.parametrize("route,method,call", CASES)
def test_a_path_can_be_built_for_every_call(route, method, call):
    _need(route, method, call)
    # Samples that every converter accepts (int and str: digits; uuid: a UUID).
    values = {k: "1" for k in _placeholders()}
    values["request_id"] = str(uuid.UUID(int=1))
    path = build_path(route, call, values)
    assert resolve(path).func is ROUTES[route][1].callback, (route, path)


def _placeholders() -> set[str]:
    found = set(re.findall(r"\{(\w+)\}", repr(CALLS) + repr(PATH_PARAMS) + repr(ROUTE_PARAMS)))
    return found


# --- anonymous -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("route,method,call", CASES)
def test_anonymous_is_refused(world, route, method, call):
    _need(route, method, call)
    console = route.startswith("console/")
    before = state()
    response = send(client_for(world, None, console=console), route, method, call, world.values)
    if console:
        assert response.status_code == 302, describe(route, method, response)
        assert response["Location"].startswith(f"{CONSOLE_LOGIN_URL}?next="), response["Location"]
    else:
        assert response.status_code == 401, describe(route, method, response)
        assert response.get("WWW-Authenticate"), (route, method)
        assert error_of(route, response) == "UNAUTHENTICATED"
    assert not changed(before, state())


# --- a principal without grants --------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("route,method,call", CASES)
def test_stranger_sees_nothing_and_changes_nothing(world, route, method, call):
    _need(route, method, call)
    console = route.startswith("console/")
    client = client_for(world, "sam", console=console)
    before, mark = state(), audit_mark()
    response = send(client, route, method, call, world.values)
    status = response.status_code
    assert status == call.stranger, describe(route, method, response)
    if status < 400:
        assert not leaks(world, response), (
            describe(route, method, response),
            leaks(world, response),
        )
        if not call.writes(method):
            assert not changed(before, state()), describe(route, method, response)
        return
    assert not changed(before, state()), describe(route, method, response)
    assert all(outcome != "SUCCESS" for _, outcome in audited_since(mark)), audited_since(mark)
    if console:
        return
    code = error_of(route, response)
    assert code == ERROR_CODES[status], describe(route, method, response)
    if status == 404:
        # A hidden object answers exactly like a missing one: no existence oracle.
        ghost = send(client, route, method, call, world.ghosts)
        assert ghost.status_code == 404, describe(route, method, ghost)
        assert error_of(route, ghost) == code


# --- a read-scoped token ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("route,method,call", API_CASES)
def test_read_token_reads_like_its_user_and_never_writes(world, route, method, call):
    _need(route, method, call)
    client = client_for(world, call.by, scope="read")
    before, mark = state(), audit_mark()
    response = send(client, route, method, call, world.values)
    if call.writes(method):
        assert response.status_code == call.reader, describe(route, method, response)
        assert error_of(route, response) == ERROR_CODES[call.reader]
        assert all(outcome != "SUCCESS" for _, outcome in audited_since(mark)), audited_since(mark)
    else:
        expected = call.owner or 200
        assert response.status_code == expected, describe(route, method, response)
    assert not changed(before, state()), describe(route, method, response)


# --- the same request with the user's full token ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("route,method,call", API_CASES)
def test_full_token_of_its_user_may(world, route, method, call):
    _need(route, method, call)
    client = client_for(world, call.by)
    before = state()
    response = send(client, route, method, call, world.values)
    if call.owner is not None:
        assert response.status_code == call.owner, describe(route, method, response)
        return
    assert 200 <= response.status_code < 300, describe(route, method, response)
    if call.writes(method) and call.stores:
        assert changed(before, state()), f"{describe(route, method, response)}: wrote nothing"
    else:
        assert not changed(before, state()), describe(route, method, response)
