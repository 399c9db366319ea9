"""The route inventory (SECURITY_CASES 9): every route, walked from the URL configuration, has an
explicit authorization rule and refuses an anonymous caller, unless it is on the public list.

A new view that forgets `permission_classes`, or a plain Django view added under /api/, makes
these tests fail (fail closed), whatever DEFAULT_PERMISSION_CLASSES happens to say today.

Console pages (under console/, HTML for people signed in with a session) have their own rule:
each is a class-based view with LoginRequiredMixin first in line (console.views.ConsoleView), and
an anonymous visitor is sent to the console login, whatever the method. A function view, or a
class without the mixin, fails. Only the login and logout views are exempt, by name.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import LoginView, LogoutView
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import IntConverter, PathConverter, SlugConverter, UUIDConverter
from django.urls.resolvers import RegexPattern, RoutePattern
from django.views import View
from django.views.generic import TemplateView
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from core.permissions import Public

# Routes anyone may call, and why. Keys are the full route as the resolver spells it.
PUBLIC_ROUTES = {
    "healthz": "liveness probe; answers {'status': 'ok'} and nothing else",
    "readyz": "readiness probe; says whether the database answers",
    "api/schema/": "the OpenAPI document (no data)",
    "api/docs/": "Swagger UI for the OpenAPI document (no data)",
    "^api/.*$": "JSON 404 for unknown API paths; the same answer for everyone",
}
# Whole subtrees with their own authentication, and why.
PUBLIC_PREFIXES = {
    "admin/": "Django admin: staff login enforced by the admin site itself (checked below)",
}
# Top-level packages whose classes may carry an authorization rule: every local app and the
# settings package, read from the settings so that a new app (webhooks was once missing from a
# hand-kept list here) is never left out.
PROJECT_PACKAGES = {*settings.LOCAL_APPS, "config"}
# Console pages: HTML behind a session login. Those anyone may open, and why.
CONSOLE_PREFIX = "console/"
CONSOLE_PUBLIC_ROUTES = {
    "console/login": "the sign-in form itself (CSRF-protected, throttled, audited)",
    "console/logout": "POST only; ends the caller's own session, nothing for an anonymous one",
}
CONSOLE_LOGIN_URL = "/console/login"
PUBLIC_PERMISSIONS = {Public, AllowAny}
METHODS = ["get", "post", "put", "patch", "delete", "options", "head"]
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@dataclass
class Route:
    route: str  # the full route, prefixes joined, as the resolver spells it
    pattern: URLPattern
    path: str  # a concrete path that resolves to this pattern

    @property
    def public(self) -> bool:
        return self.route in PUBLIC_ROUTES or self.route.startswith(tuple(PUBLIC_PREFIXES))

    @property
    def console(self) -> bool:
        return self.route.startswith(CONSOLE_PREFIX)

    def __str__(self) -> str:
        return self.route


# --- building concrete paths -----------------------------------------------------------------

_ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")


def _sample_for(converter) -> str:
    if isinstance(converter, IntConverter):
        return "1"
    if isinstance(converter, UUIDConverter):
        return str(uuid.UUID(int=1))
    if isinstance(converter, PathConverter):
        return "dummy/path"
    if isinstance(converter, SlugConverter):
        return "dummy-slug"
    return "dummy"


def _segment(pattern) -> str:
    """A concrete piece of URL for one pattern (route or regex) of the chain."""
    if isinstance(pattern, RoutePattern):
        route = str(pattern)

        def value(match: re.Match) -> str:
            return _sample_for(pattern.converters[match["name"]])

        return _ROUTE_PARAM.sub(value, route)
    if isinstance(pattern, RegexPattern):
        regex = str(pattern)
        regex = regex.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
        regex = _REGEX_GROUP.sub("dummy", regex)
        regex = regex.replace("/?", "").replace(".*", "zz-unknown").replace(".+", "zz-unknown")
        if re.search(r"[\\^$()\[\]{}*+?|]", regex):
            raise ValueError(f"cannot build a sample for regex {pattern!s}; teach _segment")
        return regex
    raise TypeError(f"unknown pattern type {type(pattern).__name__}")


def _walk(resolver: URLResolver, route: str = "", path: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, route + str(entry.pattern), path + _segment(entry.pattern))
        else:
            yield route + str(entry.pattern), entry, path + _segment(entry.pattern)


def all_routes() -> list[Route]:
    routes = []
    for route, pattern, path in _walk(get_resolver()):
        if route.startswith(tuple(PUBLIC_PREFIXES)):
            routes.append(Route(route, pattern, ""))
            continue
        routes.append(Route(route, pattern, "/" + path))
    return routes


ROUTES = all_routes()
CHECKED = [r for r in ROUTES if not r.public and not r.console]
CONSOLE_PAGES = [r for r in ROUTES if r.console and r.route not in CONSOLE_PUBLIC_ROUTES]


# --- the authorization rule of a view --------------------------------------------------------


def view_class(callback):
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


def authorization_problem(
    callback, *, public: bool = False, packages: set[str] = PROJECT_PACKAGES
) -> str | None:
    """Why this view has no explicit authorization rule, or None when it has one."""
    klass = view_class(callback)
    if klass is None or not issubclass(klass, APIView):
        return "not a DRF view: no permission_classes to check"
    initkwargs = getattr(callback, "initkwargs", {}) or {}
    if "permission_classes" in initkwargs:
        permissions = list(initkwargs["permission_classes"])
    else:
        owner = next((k for k in klass.__mro__ if "permission_classes" in k.__dict__), None)
        if owner is None or owner.__module__.split(".")[0] not in packages:
            return (
                f"{klass.__module__}.{klass.__qualname__} does not set permission_classes "
                "(it would fall back to DEFAULT_PERMISSION_CLASSES)"
            )
        permissions = list(owner.__dict__["permission_classes"])
    if not permissions:
        return f"{klass.__qualname__}.permission_classes is empty (anyone may call it)"
    if not public and any(p in PUBLIC_PERMISSIONS for p in permissions):
        return f"{klass.__qualname__} is public but not on the public allowlist"
    return None


def console_problem(callback) -> str | None:
    """Why this console page does not demand a signed-in user, or None when it does."""
    klass = view_class(callback)
    if klass is None:
        return (
            "a function view: console pages are classes based on console.views.ConsoleView "
            "(LoginRequiredMixin), which this check can see"
        )
    if issubclass(klass, APIView):
        return f"{klass.__qualname__} is a DRF view: JSON endpoints belong under /api/"
    mro = klass.__mro__
    if LoginRequiredMixin not in mro:
        return (
            f"{klass.__module__}.{klass.__qualname__} does not require login "
            "(base it on console.views.ConsoleView)"
        )
    if View in mro and mro.index(View) < mro.index(LoginRequiredMixin):
        return (
            f"{klass.__qualname__} lists LoginRequiredMixin after the view class, so its "
            "dispatch never runs; put ConsoleView first among the bases"
        )
    return None


# --- the tests -------------------------------------------------------------------------------


def test_the_walk_finds_the_api():
    found = {r.route for r in ROUTES}
    for route in [
        "api/2.1/unity-catalog/catalogs",
        "api/2.1/unity-catalog/models/<str:full_name>",
        "api/2.1/unity-catalog/permissions/<str:securable_type>/<str:full_name>",
        "api/v1/audit-events",
    ]:
        assert route in found
    assert len(CHECKED) >= 10


def test_public_allowlist_has_no_stale_entries():
    found = {r.route for r in ROUTES}
    assert set(PUBLIC_ROUTES) <= found, set(PUBLIC_ROUTES) - found
    for prefix in PUBLIC_PREFIXES:
        assert any(r.startswith(prefix) for r in found), prefix
    assert set(CONSOLE_PUBLIC_ROUTES) <= found, set(CONSOLE_PUBLIC_ROUTES) - found


@pytest.mark.parametrize("route", CHECKED + CONSOLE_PAGES, ids=str)
def test_sample_path_resolves_to_its_own_route(route):
    match = resolve(route.path)
    assert match.func is route.pattern.callback, (route.path, match.route)


@pytest.mark.parametrize("route", [r for r in CHECKED], ids=str)
def test_every_route_names_its_authorization_rule(route):
    problem = authorization_problem(route.pattern.callback)
    assert problem is None, f"{route}: {problem}"


@pytest.mark.parametrize(
    "route",
    [r for r in ROUTES if r.route in PUBLIC_ROUTES and view_class(r.pattern.callback)],
    ids=str,
)
def test_public_drf_views_say_so_explicitly(route):
    assert authorization_problem(route.pattern.callback, public=True) is None


def _error_body(route: Route, response) -> dict:
    assert response["Content-Type"].split(";")[0].strip() in {
        "application/json",
        "application/scim+json",
    }, (route.path, response["Content-Type"])
    body = response.json()
    if route.route.startswith("api/scim/"):
        assert SCIM_ERROR in body.get("schemas", []), body
        assert str(body.get("status")) == str(response.status_code), body
        assert body.get("detail"), body
    else:
        assert set(body) == {"error_code", "message"}, body
        assert body["error_code"] in {
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "METHOD_NOT_ALLOWED",
        }, body
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("route", CHECKED, ids=str)
def test_anonymous_caller_is_refused(client, route):
    for method in METHODS:
        kwargs = {}
        if method in {"post", "put", "patch", "delete"}:
            kwargs = {"data": "{}", "content_type": "application/json"}
        response = getattr(client, method)(route.path, **kwargs)
        assert response.status_code in {401, 403, 405}, (
            route.route,
            method,
            response.status_code,
            response.content[:300],
        )
        if response.status_code == 401:
            assert response.get("WWW-Authenticate"), (route.route, method)
        if method != "head":
            _error_body(route, response)


@pytest.mark.django_db
def test_anonymous_garbage_is_refused_before_it_is_read(client):
    """Auth runs before parsing: garbage from an anonymous caller is a 401, not a 400 or 415."""
    for route in CHECKED:
        response = client.generic(
            "POST", f"{route.path}?force=true&force=x", "{bad json", content_type="text/plain"
        )
        assert response.status_code in {401, 403, 405}, (route.route, response.status_code)


@pytest.mark.django_db
def test_admin_site_wants_a_staff_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_walk_finds_the_console():
    found = {r.route for r in ROUTES}
    assert {"console/", "console/login", "console/logout"} <= found
    assert CONSOLE_PAGES, "no console page is checked"


@pytest.mark.parametrize("route", CONSOLE_PAGES, ids=str)
def test_every_console_page_requires_login(route):
    problem = console_problem(route.pattern.callback)
    assert problem is None, f"{route}: {problem}"


@pytest.mark.django_db
@pytest.mark.parametrize("route", CONSOLE_PAGES, ids=str)
def test_anonymous_console_visitor_is_sent_to_login(client, route):
    for method in METHODS:
        response = getattr(client, method)(route.path)
        assert response.status_code == 302, (route.route, method, response.status_code)
        assert response["Location"].startswith(f"{CONSOLE_LOGIN_URL}?next="), (
            route.route,
            method,
            response["Location"],
        )


@pytest.mark.parametrize("route", sorted(CONSOLE_PUBLIC_ROUTES))
def test_public_console_routes_are_the_auth_views(route):
    pattern = next(r.pattern for r in ROUTES if r.route == route)
    assert issubclass(view_class(pattern.callback), LoginView | LogoutView), route


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_anonymously(client, path):
    assert client.get(path).status_code == 200


@pytest.mark.django_db
def test_unknown_api_paths_are_json_404(client):
    response = client.get("/api/2.1/unity-catalog/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


# --- the checker itself fails closed ---------------------------------------------------------


class _Forgotten(APIView):
    def get(self, request):  # pragma: no cover - never called
        raise AssertionError


class _Empty(APIView):
    permission_classes: list = []


class _Open(APIView):
    permission_classes = [AllowAny]


def _plain_view(request):  # pragma: no cover - never called
    raise AssertionError


class _PlainPage(TemplateView):
    template_name = "console/home.html"


class _MixinLast(TemplateView, LoginRequiredMixin):
    template_name = "console/home.html"


class _GuardedPage(LoginRequiredMixin, TemplateView):
    template_name = "console/home.html"


def test_checker_flags_console_pages_without_login():
    from console.views import ConsoleView

    class _ConsolePage(ConsoleView, TemplateView):
        template_name = "console/home.html"

    assert "function view" in console_problem(_plain_view)
    assert "does not require login" in console_problem(_PlainPage.as_view())
    assert "dispatch never runs" in console_problem(_MixinLast.as_view())
    assert "DRF view" in console_problem(_Forgotten.as_view())
    assert console_problem(_GuardedPage.as_view()) is None
    assert console_problem(_ConsolePage.as_view()) is None


def test_checker_flags_views_without_a_rule():
    here = PROJECT_PACKAGES | {"tests"}
    assert "does not set permission_classes" in authorization_problem(_Forgotten.as_view())
    assert "does not set permission_classes" in authorization_problem(_Open.as_view())
    assert "empty" in authorization_problem(_Empty.as_view(), packages=here)
    assert "not on the public allowlist" in authorization_problem(_Open.as_view(), packages=here)
    assert "not a DRF view" in authorization_problem(_plain_view)
    assert (
        authorization_problem(_Forgotten.as_view(permission_classes=[Public]), public=True) is None
    )


def test_every_routed_view_lives_in_a_project_package():
    """A view class defined outside PROJECT_PACKAGES could only pass by initkwargs; every
    routed API view of ours is in a package the checker trusts."""
    for route in CHECKED:
        klass = view_class(route.pattern.callback)
        package = klass.__module__.split(".")[0]
        assert package in PROJECT_PACKAGES or package == "rest_framework", (route.route, package)
    assert "webhooks" in PROJECT_PACKAGES
