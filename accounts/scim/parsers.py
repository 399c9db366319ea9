"""SCIM media type: bodies in application/scim+json or application/json, answers always in
application/scim+json (RFC 7644 §3.1), whatever the client's Accept header says."""

from __future__ import annotations

from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

SCIM_MEDIA_TYPE = "application/scim+json"


class ScimJSONParser(JSONParser):
    """JSON bodies sent as application/scim+json."""

    media_type = SCIM_MEDIA_TYPE


class ScimJSONRenderer(JSONRenderer):
    """JSON answered as application/scim+json."""

    media_type = SCIM_MEDIA_TYPE
    format = "scim"


class ScimContentNegotiation(BaseContentNegotiation):
    """Parsers by Content-Type as usual; the renderer is always the SCIM one (no 406s for IdPs
    that send Accept: application/json or nothing at all)."""

    def select_parser(self, request, parsers):
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type
