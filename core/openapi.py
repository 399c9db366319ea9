"""The OpenAPI document's shared parts (drf-spectacular): the error body every door answers,
the statuses each operation can answer, and the helpers the MLflow doors use to describe
MLflow's wire format without changing it.

Why a schema class of our own: drf-spectacular documents DELETE as 204 with no body and says
nothing of errors, while every Steward door answers 200 with a JSON body on success (DELETE
included: `{}` for MLflow and UC, the revoked object for the native API) and
`{"error_code", "message"}` on failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers

from core.api import StrictInputSerializer
from core.errors import ErrorCode
from core.pagination import INT64_MAX
from core.permissions import Public

ERROR_DESCRIPTIONS = {
    400: "INVALID_PARAMETER_VALUE (or MALFORMED_REQUEST, FAILED_PRECONDITION): bad input; "
    "nothing was changed.",
    401: "UNAUTHENTICATED: no valid credentials (send `Authorization: Bearer <token>`).",
    403: "PERMISSION_DENIED: authenticated, but not allowed (a read-only token writing, a "
    "missing privilege on a visible object, an admin-only route).",
    404: "RESOURCE_DOES_NOT_EXIST: no such object, or one the caller may not see.",
    409: "RESOURCE_ALREADY_EXISTS or RESOURCE_CONFLICT: the name is taken, or the object "
    "changed or is locked (a READY version's files, a stale promotion request).",
    415: "UNSUPPORTED_MEDIA_TYPE: the body is not JSON.",
    429: "REQUEST_LIMIT_EXCEEDED: too many failed sign-in or token attempts from this client "
    "address; try again later.",
}


def page_size_schema(least: int = 1) -> dict[str, Any]:
    """`max_results` (core.pagination.page_size): larger sizes are clamped to the list's own
    maximum, or refused above MLflow's search thresholds."""
    return {"type": "integer", "format": "int64", "minimum": least, "maximum": INT64_MAX}


PAGE_PARAMETERS = [
    OpenApiParameter("max_results", page_size_schema(), description="Page size (at least 1)."),
    OpenApiParameter("page_token", str, description="Opaque token from next_page_token."),
]
UC_PAGE_PARAMETERS = [
    OpenApiParameter(
        "max_results",
        page_size_schema(0),
        description="Page size; 0 lets the server choose (Unity Catalog's rule).",
    ),
    PAGE_PARAMETERS[1],
]


class ErrorSerializer(serializers.Serializer[Any]):
    """Every error of every JSON door (MLflow's and Unity Catalog's format)."""

    error_code = serializers.ChoiceField(choices=[code.value for code in ErrorCode])
    message = serializers.CharField()


class ScimErrorSerializer(serializers.Serializer[Any]):
    """SCIM's own error body (RFC 7644 §3.12), which the SCIM door answers instead."""

    schemas = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    scimType = serializers.CharField(required=False)  # noqa: N815  (SCIM's spelling)
    detail = serializers.CharField(required=False)


def error_response(
    status: int, serializer: type[serializers.Serializer[Any]] = ErrorSerializer
) -> OpenApiResponse:
    return OpenApiResponse(response=serializer, description=ERROR_DESCRIPTIONS[status])


class StewardAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with Steward's answers: the success status the view really
    gives (200 unless the view says otherwise; never an invented 204) and the error
    responses of the operation (see `error_statuses`)."""

    def _get_response_bodies(
        self, direction: Literal["request", "response"] = "response"
    ) -> dict[str, Any]:
        # A serializer, or a dict of them by status (`responses=` of extend_schema), which
        # the stubs leave out.
        declared: Any = self.get_response_serializers()
        found: dict[Any, Any] = declared if isinstance(declared, dict) else {200: declared}
        responses: dict[str, Any] = {}
        # (drf-spectacular leaves _get_response_for_code unannotated.)
        for code, serializer in found.items():
            key, media = (str(code[0]), code[1:]) if isinstance(code, tuple) else (str(code), None)
            responses[key] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                serializer, key, media, direction
            )
        body = getattr(self.view, "error_serializer", ErrorSerializer)
        for status in sorted(self.error_statuses()):
            responses.setdefault(
                str(status),
                self._get_response_for_code(  # type: ignore[no-untyped-call]
                    error_response(status, body), str(status), None, direction
                ),
            )
        return responses

    def error_statuses(self) -> set[int]:
        """The error statuses this operation can answer.

        A view may say it exactly with `error_statuses = {"get": {401}, ...}`; otherwise: a
        public route none; an authenticated one 401, 403 (a read-only token, a missing
        privilege or an admin-only route) and 429 (after too many failed attempts); 400 when
        it takes any input; 404 when it names an object (in the path, query or body); 409 for
        a write; 415 when it reads a JSON body.
        """
        declared = getattr(self.view, "error_statuses", None)
        method = self.method.lower()
        if isinstance(declared, dict) and method in declared:
            return set(declared[method])
        if all(isinstance(p, Public) for p in self.view.get_permissions()):
            return set()
        statuses = {401, 403, 429}
        has_body = self.method in ("POST", "PUT", "PATCH")
        # A DELETE always names an object: in its path, or in its JSON body (MLflow).
        if has_body or self.method == "DELETE" or self._get_parameters():
            statuses |= {400, 404}
        if self.method != "GET":
            statuses.add(409)
        if has_body:
            statuses.add(415)
        return statuses

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        # MLflow's tracking routes are served under /api/2.0/mlflow/ and /api/3.0/mlflow/.
        if operation and self.path.startswith("/api/3.0/"):
            operation["operationId"] = f"{operation['operationId']}_v3"
        return operation

    def _map_serializer(
        self, serializer: Any, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        # drf-spectacular leaves it unannotated.
        schema: dict[str, Any] = super()._map_serializer(  # type: ignore[no-untyped-call]
            serializer, direction, bypass_extensions
        )
        if isinstance(serializer, StrictInputSerializer) and direction == "request":
            schema["additionalProperties"] = False  # the native API refuses unknown fields
        return schema


# --- MLflow's wire format ----------------------------------------------------------------------
#
# The MLflow doors parse bodies by hand, as MLflow's own server does (proto JSON: unknown
# fields ignored, int64 as a number or a decimal string, null meaning "not given"). These
# helpers describe that format from a compact table per door, with drf-spectacular's
# extend_schema and inline serializers; nothing here parses a request.


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "format": "int64"},
            {"type": "string", "pattern": "^-?[0-9]{1,19}$"},
        ]
    }
)
class Int64Field(serializers.Field[Any, Any, Any, Any]):
    """A proto int64: a JSON integer or a decimal string."""


@extend_schema_field(
    {"oneOf": [page_size_schema(), {"type": "string", "pattern": "^0*[1-9][0-9]{0,18}$"}]}
)
class PageSizeField(serializers.Field[Any, Any, Any, Any]):
    """`max_results` in a body: as for Int64Field, from 1 to 2^63-1."""


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class IdField(serializers.Field[Any, Any, Any, Any]):
    """An id as MLflow sends it (a string), or as a number, which the doors also take; one
    that cannot be Steward's (any length) matches nothing rather than being refused."""


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "object", "additionalProperties": True}},
            {"type": "object", "additionalProperties": {"type": "string", "nullable": True}},
        ]
    }
)
class TagsField(serializers.Field[Any, Any, Any, Any]):
    """Registry tags: MLflow's [{"key", "value"}] list, or a {key: value} map."""


@extend_schema_field({"type": "object", "additionalProperties": True})
class AnyObjectField(serializers.Field[Any, Any, Any, Any]):
    """A JSON object whose parts this document does not spell out."""


@extend_schema_field({})
class AnyValueField(serializers.Field[Any, Any, Any, Any]):
    """Any JSON value."""


class _Presence(TypedDict):
    """The keyword arguments that make a field optional and nullable, or required."""

    allow_null: bool
    required: bool


def _field(kind: str, required: bool) -> serializers.Field[Any, Any, Any, Any]:
    nullable: _Presence = {"allow_null": not required, "required": required}
    if kind == "str":
        return serializers.CharField(allow_blank=not required, **nullable)
    if kind == "int":
        return Int64Field(**nullable)
    if kind == "size":
        return PageSizeField(**nullable)
    if kind == "id":
        return IdField(**nullable)
    if kind == "tags":
        return TagsField(**nullable)
    if kind == "bool":
        return serializers.BooleanField(**nullable)
    if kind == "number":
        return AnyValueField(**nullable)
    if kind == "ids":
        return serializers.ListField(child=IdField(), **nullable)
    if kind == "strs":
        return serializers.ListField(child=serializers.CharField(allow_blank=True), **nullable)
    if kind == "obj":
        return AnyObjectField(**nullable)
    if kind == "objs":
        return serializers.ListField(child=AnyObjectField(), **nullable)
    if kind == "any":
        return AnyValueField(**nullable)
    raise ValueError(kind)


_QUERY_TYPES: dict[str, type[str] | type[int] | type[bool] | dict[str, Any]] = {
    "str": str,
    "int": int,
    "size": page_size_schema(),
    "id": str,
    "bool": bool,
    "strs": str,
}


@dataclass
class Op:
    """One MLflow operation: `fields` are its inputs (`name`, or `name!` when required, to a
    kind: str, int, size, id, ids, tags, bool, number, strs, obj, objs, any), read from the query
    string for GET and from the JSON body otherwise; `answer` the top-level keys of its
    answer."""

    summary: str
    fields: dict[str, str] = field(default_factory=dict)
    answer: dict[str, str] = field(default_factory=dict)


def mlflow_schema(prefix: str, ops: dict[type[Any], dict[str, Op]], *, tags: list[str]) -> None:
    """Apply extend_schema to each (view, method) of an MLflow door from its table."""
    for view, methods in ops.items():
        for method, op in methods.items():
            name = f"{prefix}{view.__name__.removesuffix('View')}{method.capitalize()}"
            inputs = {k.rstrip("!"): (kind, k.endswith("!")) for k, kind in op.fields.items()}
            answer = inline_serializer(
                name=f"{name}Answer",
                fields={k: _field(kind, False) for k, kind in op.answer.items()},
            )
            kwargs: dict[str, Any] = {
                "summary": op.summary,
                "tags": tags,
                "operation_id": re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(),
                "responses": {200: answer},
            }
            if method == "get":
                kwargs["parameters"] = [
                    OpenApiParameter(
                        key,
                        _QUERY_TYPES[kind],
                        required=required,
                        many=kind == "strs",
                        explode=True if kind == "strs" else None,
                    )
                    for key, (kind, required) in inputs.items()
                ]
            elif method == "delete":
                # MLflow sends DELETE with a JSON body, which OpenAPI 3.0 cannot describe;
                # the same fields are accepted in it.
                listed = ", ".join(f"`{k}`" for k in inputs) or "none"
                kwargs["description"] = f"JSON body fields: {listed}."
                kwargs["request"] = None
            else:
                kwargs["request"] = inline_serializer(
                    name=f"{name}Body",
                    fields={k: _field(kind, req) for k, (kind, req) in inputs.items()},
                )
            if method not in view.__dict__:
                # Inherited (SearchView.get serves two routes): annotate a per-class copy, so
                # one route's description does not overwrite the other's.
                setattr(view, method, _own(getattr(view, method)))
            extend_schema(**kwargs)(getattr(view, method))


def _own(inherited: Callable[..., Any]) -> Callable[..., Any]:
    def handler(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        return inherited(self, request, *args, **kwargs)

    handler.__doc__ = inherited.__doc__
    return handler
