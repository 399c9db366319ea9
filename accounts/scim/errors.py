"""SCIM errors: the one door with its own error format (RFC 7644 §3.12).

Services raise Steward errors; the SCIM ones below also carry a `scimType`. The exception handler
renders every failure, expected or not, as {"schemas": [Error], "status", "scimType", "detail"}.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from core.errors import AlreadyExists, ErrorCode, InvalidParameter, NotFound, StewardError, _flatten

logger = logging.getLogger(__name__)

ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimBadRequest(InvalidParameter):
    """A 400 with a SCIM `scimType` (RFC 7644 Table 9)."""

    scim_type = "invalidValue"

    def __init__(self, message: str, *, scim_type: str | None = None):
        super().__init__(message)
        if scim_type is not None:
            self.scim_type = scim_type


class InvalidFilter(ScimBadRequest):
    scim_type = "invalidFilter"


class InvalidSyntax(ScimBadRequest):
    scim_type = "invalidSyntax"


class InvalidPath(ScimBadRequest):
    scim_type = "invalidPath"


class InvalidValue(ScimBadRequest):
    scim_type = "invalidValue"


class Mutability(ScimBadRequest):
    scim_type = "mutability"


class NoTarget(ScimBadRequest):
    scim_type = "noTarget"


class Uniqueness(AlreadyExists):
    """409: userName or displayName already taken."""

    scim_type = "uniqueness"


class ResourceNotFound(NotFound):
    scim_type = None


def _default_scim_type(exc: StewardError) -> str | None:
    explicit = getattr(exc, "scim_type", None)
    if explicit:
        return explicit
    if exc.status == 400:
        return "invalidValue"
    if exc.code == ErrorCode.RESOURCE_ALREADY_EXISTS:
        return "uniqueness"
    return None


def scim_error_response(status: int, detail: str, scim_type: str | None = None) -> Response:
    body: dict = {"schemas": [ERROR_URN], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    response = Response(body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="steward"'
    return response


def _drf_status(exc: drf_exceptions.APIException) -> tuple[int, str | None]:
    if isinstance(exc, drf_exceptions.ParseError):
        return 400, "invalidSyntax"
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return 401, None
    if isinstance(exc, drf_exceptions.ValidationError):
        return 400, "invalidValue"
    return exc.status_code, None


def _drf_detail(exc: drf_exceptions.APIException) -> str:
    return "; ".join(_flatten(exc.detail)) or str(exc)


def scim_exception_handler(exc, context) -> Response:
    """DRF exception handler for the SCIM views: SCIM error bodies, never a stack trace."""
    if isinstance(exc, StewardError):
        return scim_error_response(exc.status, exc.message, _default_scim_type(exc))
    if isinstance(exc, Http404):
        return scim_error_response(404, "Resource not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return scim_error_response(403, str(exc) or "Permission denied.")
    if isinstance(exc, DjangoValidationError):
        return scim_error_response(400, "; ".join(exc.messages), "invalidValue")
    if isinstance(exc, drf_exceptions.APIException):
        status, scim_type = _drf_status(exc)
        response = scim_error_response(status, _drf_detail(exc), scim_type)
        # DRF sets Throttled.wait in __init__; its stubs leave the attribute out.
        wait = getattr(exc, "wait", None) if isinstance(exc, drf_exceptions.Throttled) else None
        if wait:
            response["Retry-After"] = str(int(wait))
        return response
    logger.exception("Unhandled error in %s", context.get("view"))
    return scim_error_response(500, "Internal error.")
