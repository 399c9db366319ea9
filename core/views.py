"""Health checks and JSON fallbacks for unknown API routes."""

from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ErrorCode, error_response
from core.permissions import Public


class HealthView(APIView):
    """The process is up."""

    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes = [Public]

    @extend_schema(responses=dict, operation_id="healthz")
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyView(APIView):
    """The database answers."""

    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes = [Public]

    @extend_schema(responses=dict, operation_id="readyz")
    def get(self, request: Request) -> Response:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as exc:  # any database failure means "not ready"
            return Response({"status": "unavailable", "reason": type(exc).__name__}, status=503)
        return Response({"status": "ok"})


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return error_response(ErrorCode.ENDPOINT_NOT_FOUND, f"No API endpoint at {request.path[:200]}.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_not_found(request)

    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return error_response(ErrorCode.INTERNAL_ERROR, "Internal error.")

    return default(request)
