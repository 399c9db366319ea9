"""Who is calling a door: the acting principal of a request, and the door-level policies.

Door policies decide only "is there an authenticated principal" and "is it a metastore admin";
every object decision is made by catalog.authz inside the services. Every view names one of
these explicitly (tests/contract walks the URL configuration to make sure).
"""

from __future__ import annotations

import uuid

from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from accounts.models import ApiToken
from accounts.principals import is_admin
from audit.services import audit_event_write
from core.actor import Actor
from core.errors import PermissionDenied, Unauthenticated


def actor_from_request(request) -> Actor:
    """Build (once per request) the actor for an authenticated DRF or Django request."""
    cached = getattr(request, "_steward_actor", None)
    if cached is not None:
        return cached
    auth = getattr(request, "auth", None)
    token = auth if isinstance(auth, ApiToken) else None
    method = "token" if token else ("session" if request.user.is_authenticated else "anonymous")
    actor = Actor(
        user=request.user,
        auth_method=method,
        token=token,
        source_address=getattr(request, "client_address", request.META.get("REMOTE_ADDR", "")),
        request_id=getattr(request, "request_id", uuid.uuid4().hex),
    )
    request._steward_actor = actor
    return actor


def _audit_refusal(request, reason: str, actor=None) -> None:
    """Door policies refuse before any service runs; the refusal is still an audit event."""
    audit_event_write(
        actor=actor,
        action="api.access",
        outcome="DENIED",
        auth_method=actor.auth_method if actor else "anonymous",
        source_address=getattr(request, "client_address", ""),
        request_id=getattr(request, "request_id", ""),
        details={"reason": reason, "method": request.method, "path": request.path[:300]},
    )


class IsAuthenticatedPrincipal(BasePermission):
    """Any authenticated, active principal; object checks happen in the service layer."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            _audit_refusal(request, "not authenticated")
            raise Unauthenticated("Authentication required: send 'Authorization: Bearer <token>'.")
        return True


class IsMetastoreAdmin(IsAuthenticatedPrincipal):
    """Members of the metastore admin group (SCIM, audit search)."""

    def has_permission(self, request, view) -> bool:
        super().has_permission(request, view)
        actor = actor_from_request(request)
        if not is_admin(actor):
            _audit_refusal(request, "not a metastore admin", actor)
            raise PermissionDenied("Only metastore admins may use this endpoint.")
        return True


class DoorView(APIView):
    """The base of every API view: an authenticated principal (a view may narrow the policy,
    e.g. to IsMetastoreAdmin), and `actor()` for the services, which decide everything else."""

    permission_classes: list[type[BasePermission]] = [IsAuthenticatedPrincipal]

    def actor(self) -> Actor:
        return actor_from_request(self.request)
