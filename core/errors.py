"""Error codes and the one exception handler that renders them for every JSON door.

Every API answers errors as {"error_code": ..., "message": ...} with the codes and HTTP
statuses that MLflow and Unity Catalog use.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
    MALFORMED_REQUEST = "MALFORMED_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
    ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
    RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
    RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


STATUS = {
    ErrorCode.INVALID_PARAMETER_VALUE: 400,
    ErrorCode.MALFORMED_REQUEST: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.RESOURCE_DOES_NOT_EXIST: 404,
    ErrorCode.ENDPOINT_NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.RESOURCE_ALREADY_EXISTS: 409,
    ErrorCode.RESOURCE_CONFLICT: 409,
    ErrorCode.FAILED_PRECONDITION: 400,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.REQUEST_LIMIT_EXCEEDED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
}


@dataclass(frozen=True)
class Denial:
    """What an attempt was refused on (a securable, a promotion request, a webhook ...) and the
    privilege it lacked: the audit event of the denied attempt records it
    (audit.governance.governed)."""

    securable_type: str
    securable: str
    privilege: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"securable_type": self.securable_type, "securable": self.securable}
        if self.privilege:
            out["privilege"] = self.privilege
        return {**out, **self.extra}


class StewardError(Exception):
    """A failure with an error code; raised by services and selectors, rendered by the doors.
    A refusal by the authorization rules carries its `denied` (audited once, `audited`)."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR
    denied: Denial | None = None
    audited: bool = False

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, denied: Denial | None = None
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.denied = denied

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def as_dict(self) -> dict[str, str]:
        return {"error_code": str(self.code), "message": self.message}


class InvalidParameter(StewardError):
    code = ErrorCode.INVALID_PARAMETER_VALUE


class Unauthenticated(StewardError):
    code = ErrorCode.UNAUTHENTICATED


class PermissionDenied(StewardError):
    code = ErrorCode.PERMISSION_DENIED


class NotFound(StewardError):
    code = ErrorCode.RESOURCE_DOES_NOT_EXIST


class AlreadyExists(StewardError):
    code = ErrorCode.RESOURCE_ALREADY_EXISTS


class Conflict(StewardError):
    code = ErrorCode.RESOURCE_CONFLICT


class FailedPrecondition(StewardError):
    code = ErrorCode.FAILED_PRECONDITION


def error_response(code: ErrorCode, message: str, status: int | None = None) -> JsonResponse:
    return JsonResponse(
        {"error_code": str(code), "message": message}, status=status or STATUS[code]
    )


def _drf_code(exc: drf_exceptions.APIException) -> ErrorCode:
    if isinstance(exc, drf_exceptions.ParseError):
        return ErrorCode.MALFORMED_REQUEST
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return ErrorCode.UNAUTHENTICATED
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return ErrorCode.PERMISSION_DENIED
    if isinstance(exc, drf_exceptions.NotFound):
        return ErrorCode.RESOURCE_DOES_NOT_EXIST
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return ErrorCode.METHOD_NOT_ALLOWED
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return ErrorCode.UNSUPPORTED_MEDIA_TYPE
    if isinstance(exc, drf_exceptions.Throttled):
        return ErrorCode.REQUEST_LIMIT_EXCEEDED
    return ErrorCode.INVALID_PARAMETER_VALUE


def _flatten(detail: object, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(value, "" if key == "non_field_errors" else name))
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out.extend(_flatten(item, prefix))
        return out
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    """DRF exception handler: every error, expected or not, in the API's error format."""
    if isinstance(exc, StewardError):
        response = Response(exc.as_dict(), status=exc.status)
        if exc.code == ErrorCode.UNAUTHENTICATED:
            response["WWW-Authenticate"] = 'Bearer realm="steward"'
        return response
    if isinstance(exc, Http404):
        return Response(
            {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Not found."}, status=404
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"error_code": "INVALID_PARAMETER_VALUE", "message": "The request body is too large."},
            status=400,
        )
    if isinstance(exc, DjangoPermissionDenied):
        return Response({"error_code": "PERMISSION_DENIED", "message": str(exc)}, status=403)
    if isinstance(exc, DjangoValidationError):
        return Response(
            {"error_code": "INVALID_PARAMETER_VALUE", "message": "; ".join(exc.messages)},
            status=400,
        )
    if isinstance(exc, drf_exceptions.APIException):
        code = _drf_code(exc)
        message = "; ".join(_flatten(exc.detail)) or str(exc)
        response = Response({"error_code": str(code), "message": message}, status=STATUS[code])
        if code == ErrorCode.UNAUTHENTICATED:
            response["WWW-Authenticate"] = 'Bearer realm="steward"'
        # DRF sets Throttled.wait in __init__; its stubs leave the attribute out.
        wait = getattr(exc, "wait", None) if isinstance(exc, drf_exceptions.Throttled) else None
        if wait:
            response["Retry-After"] = str(int(wait))
        return response
    logger.exception("Unhandled error in %s", context.get("view"))
    return Response({"error_code": "INTERNAL_ERROR", "message": "Internal error."}, status=500)
