"""The MLflow artifact proxy door: parse, call one service or selector, render.

Authentication is the project's (bearer or basic tokens; a session needs its CSRF token) and
runs before the body is touched; what a path may do is decided in
registry.services.artifact_proxy. PUT bodies are streamed to the service, never parsed.
"""

from __future__ import annotations

import io

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from accounts.permissions import DoorView
from core.api import query_one
from core.errors import InvalidParameter
from registry.services import artifact_proxy


class RawBodyParser(BaseParser):
    """Any content type: hands the view the unread body stream (an artifact is opaque bytes)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream


EMPTY_ANSWER = inline_serializer("MlflowArtifactEmpty", {})


class ArtifactProxyBase(DoorView):
    """Authenticated principals only; each path is authorized by the service."""


class ArtifactListView(ArtifactProxyBase):
    """GET ?path=<dir>: {"files": [{"path", "is_dir", "file_size"}]}, or {} when empty."""

    @extend_schema(
        summary="List the files under an artifact directory",
        operation_id="mlflow_artifacts_list",
        tags=["mlflow artifacts"],
        parameters=[OpenApiParameter("path", str)],
        responses=inline_serializer(
            "MlflowArtifactList",
            {
                "files": serializers.ListField(
                    child=inline_serializer(
                        "MlflowArtifactFile",
                        {
                            "path": serializers.CharField(),
                            "is_dir": serializers.BooleanField(),
                            "file_size": serializers.IntegerField(required=False),
                        },
                    ),
                    required=False,
                )
            },
        ),
    )
    def get(self, request):
        files = artifact_proxy.artifact_list(actor=self.actor(), path=query_one(request, "path"))
        return Response({"files": files} if files else {})


def _content_length(request) -> int | None:
    raw = request.META.get("CONTENT_LENGTH") or ""
    if raw == "":
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise InvalidParameter("Uploads need a Content-Length header.")
        return None
    if not raw.isdigit():
        raise InvalidParameter("Content-Length must be a number.")
    return int(raw)


class ArtifactView(ArtifactProxyBase):
    """PUT uploads (replacing), GET downloads (streamed), DELETE removes a file or a tree."""

    parser_classes = [RawBodyParser]

    @extend_schema(
        summary="Download an artifact file",
        operation_id="mlflow_artifacts_download",
        tags=["mlflow artifacts"],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
        },
    )
    def get(self, request, artifact_path: str):
        handle, filename = artifact_proxy.artifact_open(actor=self.actor(), path=artifact_path)
        response = FileResponse(handle, content_type="application/octet-stream")
        response["Content-Disposition"] = "attachment"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(
        summary="Upload an artifact file (replacing; a READY version's files answer 409)",
        operation_id="mlflow_artifacts_upload",
        tags=["mlflow artifacts"],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses=EMPTY_ANSWER,
    )
    def put(self, request, artifact_path: str):
        length = _content_length(request)
        body = request.data  # the raw stream, or {} when there is no body
        stream = body if hasattr(body, "read") else io.BytesIO(b"")
        artifact_proxy.artifact_upload(
            actor=self.actor(),
            path=artifact_path,
            stream=stream,
            content_length=length,
        )
        return Response({})

    @extend_schema(
        summary="Delete an artifact file or directory",
        operation_id="mlflow_artifacts_delete",
        tags=["mlflow artifacts"],
        responses=EMPTY_ANSWER,
    )
    def delete(self, request, artifact_path: str):
        artifact_proxy.artifact_delete(actor=self.actor(), path=artifact_path)
        return Response({})
