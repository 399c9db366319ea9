"""Request id and client address: every audit event carries both."""

import ipaddress
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _ip(value: str) -> str:
    """A canonical IP address, or '' for anything else (the header is client-controlled)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return ""


def client_address(request: HttpRequest) -> str:
    """The real client address: REMOTE_ADDR, or the entry the trusted proxies appended."""
    remote = _ip(request.META.get("REMOTE_ADDR", "") or "")
    hops = settings.STEWARD_NUM_PROXIES
    if hops > 0:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= hops:
            return _ip(forwarded[-hops]) or remote
    return remote


class RequestIdMiddleware:
    """Gives each request an id (the caller's X-Request-Id if well-formed) and echoes it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        # Attributes of this project's requests that Django's HttpRequest does not declare.
        request.request_id = request_id  # type: ignore[attr-defined]
        request.client_address = client_address(request)  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-Id"] = request_id
        return response
