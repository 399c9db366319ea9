"""SCIM 2.0 door (RFC 7643/7644) at /api/scim/v2/: Users, Groups and the discovery endpoints.

Thin: parse the body or query, call one service or selector, render a SCIM resource. Admins
only. Answers are application/scim+json; errors use SCIM's own error format.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from accounts.permissions import DoorView, IsMetastoreAdmin
from accounts.scim import selectors, services
from accounts.scim.errors import (
    InvalidSyntax,
    InvalidValue,
    ResourceNotFound,
    scim_exception_handler,
)
from accounts.scim.parsers import ScimContentNegotiation, ScimJSONParser, ScimJSONRenderer
from accounts.scim.patch import parse_patch
from accounts.scim.resources import (
    group_attrs_from_scim,
    group_resource,
    user_attrs_from_scim,
    user_resource,
)
from accounts.scim.schema import (
    DEFAULT_COUNT,
    GROUP_URN,
    RESOURCE_TYPES,
    SCHEMAS,
    USER_URN,
    list_response,
    resource_type,
    schema_document,
    service_provider_config,
)
from core.openapi import ScimErrorSerializer

ALWAYS_RETURNED = {"id", "schemas"}


class ScimView(DoorView):
    """SCIM media types and error format for every SCIM endpoint."""

    permission_classes = [IsMetastoreAdmin]
    error_serializer = ScimErrorSerializer  # the OpenAPI document's error body for this door
    parser_classes = [ScimJSONParser, JSONParser]
    renderer_classes = [ScimJSONRenderer]
    content_negotiation_class = ScimContentNegotiation

    def get_exception_handler(self):
        return scim_exception_handler


def _base_url(request) -> str:
    return request.build_absolute_uri(reverse("scim:users")).rsplit("/Users", 1)[0]


def _one(request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidValue(f"'{name}' given more than once.")
    return values[0] if values else None


def _integer(request, name: str, default: int) -> int:
    raw = _one(request, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidValue(f"'{name}' must be an integer.") from None
    return max(min(value, 10**9), -(10**9))


def _body(request) -> dict:
    data = request.data
    if not isinstance(data, dict):
        raise InvalidSyntax("The request body must be a JSON object.")
    return data


def _projection(request, urn: str) -> tuple[set[str] | None, set[str]]:
    """`attributes` and `excludedAttributes` (top-level names, lower-cased)."""

    def names(param: str) -> set[str] | None:
        raw = _one(request, param)
        if raw is None:
            return None
        out = set()
        for part in raw.split(","):
            part = part.strip().lower()
            if part.startswith(urn.lower() + ":"):
                part = part[len(urn) + 1 :]
            if part:
                out.add(part.split(".", 1)[0].split("[", 1)[0])
        return out

    return names("attributes"), names("excludedAttributes") or set()


def _project(resource: dict, include: set[str] | None, exclude: set[str]) -> dict:
    keep = {}
    for key, value in resource.items():
        low = key.lower()
        if low in ALWAYS_RETURNED or ((include is None or low in include) and low not in exclude):
            keep[key] = value
    return keep


def _wants_members(include: set[str] | None, exclude: set[str]) -> bool:
    return "members" not in exclude and (include is None or "members" in include)


class UsersView(ScimView):
    """GET: list and filter users. POST: provision a user."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(responses=dict, operation_id="scim_users_list")
    def get(self, request):
        include, exclude = _projection(request, USER_URN)
        page = selectors.scim_user_list(
            actor=self.actor(),
            filter_text=_one(request, "filter"),
            start_index=_integer(request, "startIndex", 1),
            count=_integer(request, "count", DEFAULT_COUNT),
        )
        base = _base_url(request)
        resources = [_project(user_resource(u, base), include, exclude) for u in page.items]
        return Response(list_response(resources, total=page.total, start_index=page.start_index))

    @extend_schema(request=dict, responses=dict, operation_id="scim_users_create")
    def post(self, request):
        attrs = user_attrs_from_scim(_body(request))
        user = services.scim_user_create(actor=self.actor(), attrs=attrs)
        resource = user_resource(user, _base_url(request))
        return Response(resource, status=201, headers={"Location": resource["meta"]["location"]})


class UserDetailView(ScimView):
    """GET, PUT, PATCH, DELETE (deactivates) one user."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(responses=dict, operation_id="scim_users_get")
    def get(self, request, user_id: str):
        include, exclude = _projection(request, USER_URN)
        user = selectors.scim_user_get(actor=self.actor(), user_id=user_id)
        return Response(_project(user_resource(user, _base_url(request)), include, exclude))

    @extend_schema(request=dict, responses=dict, operation_id="scim_users_replace")
    def put(self, request, user_id: str):
        attrs = user_attrs_from_scim(_body(request))
        user = services.scim_user_replace(actor=self.actor(), user_id=user_id, attrs=attrs)
        return Response(user_resource(user, _base_url(request)))

    @extend_schema(request=dict, responses=dict, operation_id="scim_users_patch")
    def patch(self, request, user_id: str):
        operations = parse_patch(_body(request))
        user = services.scim_user_patch(actor=self.actor(), user_id=user_id, operations=operations)
        return Response(user_resource(user, _base_url(request)))

    @extend_schema(responses={204: None}, operation_id="scim_users_delete")
    def delete(self, request, user_id: str):
        services.scim_user_delete(actor=self.actor(), user_id=user_id)
        return Response(status=204)


class GroupsView(ScimView):
    """GET: list and filter groups. POST: create a group with members."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(responses=dict, operation_id="scim_groups_list")
    def get(self, request):
        include, exclude = _projection(request, GROUP_URN)
        with_members = _wants_members(include, exclude)
        page = selectors.scim_group_list(
            actor=self.actor(),
            filter_text=_one(request, "filter"),
            start_index=_integer(request, "startIndex", 1),
            count=_integer(request, "count", DEFAULT_COUNT),
            with_members=with_members,
        )
        base = _base_url(request)
        resources = [
            _project(group_resource(g, base, with_members=with_members), include, exclude)
            for g in page.items
        ]
        return Response(list_response(resources, total=page.total, start_index=page.start_index))

    @extend_schema(request=dict, responses=dict, operation_id="scim_groups_create")
    def post(self, request):
        attrs = group_attrs_from_scim(_body(request))
        group = services.scim_group_create(actor=self.actor(), attrs=attrs)
        resource = group_resource(group, _base_url(request))
        return Response(resource, status=201, headers={"Location": resource["meta"]["location"]})


class GroupDetailView(ScimView):
    """GET, PUT, PATCH, DELETE one group."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(responses=dict, operation_id="scim_groups_get")
    def get(self, request, group_id: str):
        include, exclude = _projection(request, GROUP_URN)
        with_members = _wants_members(include, exclude)
        group = selectors.scim_group_get(
            actor=self.actor(), group_id=group_id, with_members=with_members
        )
        resource = group_resource(group, _base_url(request), with_members=with_members)
        return Response(_project(resource, include, exclude))

    @extend_schema(request=dict, responses=dict, operation_id="scim_groups_replace")
    def put(self, request, group_id: str):
        attrs = group_attrs_from_scim(_body(request))
        group = services.scim_group_replace(actor=self.actor(), group_id=group_id, attrs=attrs)
        return Response(group_resource(group, _base_url(request)))

    @extend_schema(request=dict, responses=dict, operation_id="scim_groups_patch")
    def patch(self, request, group_id: str):
        operations = parse_patch(_body(request))
        group = services.scim_group_patch(
            actor=self.actor(), group_id=group_id, operations=operations
        )
        return Response(group_resource(group, _base_url(request)))

    @extend_schema(responses={204: None}, operation_id="scim_groups_delete")
    def delete(self, request, group_id: str):
        services.scim_group_delete(actor=self.actor(), group_id=group_id)
        return Response(status=204)


class ServiceProviderConfigView(ScimView):
    """What this SCIM service supports."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(responses=dict, operation_id="scim_service_provider_config")
    def get(self, request):
        return Response(service_provider_config(_base_url(request)))


class ResourceTypesView(ScimView):
    """The resource types: User and Group."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(responses=dict, operation_id="scim_resource_types_list")
    def get(self, request):
        base = _base_url(request)
        types = [resource_type(n, base) for n in RESOURCE_TYPES]
        return Response(list_response(types, total=len(types)))


class ResourceTypeDetailView(ScimView):
    """One resource type."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(responses=dict, operation_id="scim_resource_types_get")
    def get(self, request, name: str):
        if name not in RESOURCE_TYPES:
            raise ResourceNotFound(f"Resource type {name[:40]} not found.")
        return Response(resource_type(name, _base_url(request)))


class SchemasView(ScimView):
    """The User and Group schemas."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(responses=dict, operation_id="scim_schemas_list")
    def get(self, request):
        base = _base_url(request)
        docs = [schema_document(u, base) for u in SCHEMAS]
        return Response(list_response(docs, total=len(docs)))


class SchemaDetailView(ScimView):
    """One schema, by URN."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(responses=dict, operation_id="scim_schemas_get")
    def get(self, request, urn: str):
        if urn not in SCHEMAS:
            raise ResourceNotFound(f"Schema {urn[:100]} not found.")
        return Response(schema_document(urn, _base_url(request)))


class ScimNotFoundView(ScimView):
    """Anything else under /api/scim/v2/: a SCIM 404 (after authentication)."""

    permission_classes = [IsMetastoreAdmin]

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        raise ResourceNotFound(f"No SCIM endpoint at {request.path[:200]}.")

    post = put = patch = delete = get
