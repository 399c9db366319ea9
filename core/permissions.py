"""Door-level policies. Object authorization lives in catalog.authz, called by services.

Every view must name one of these explicitly (a contract test walks the URLconf to make sure).
"""

from rest_framework.permissions import BasePermission

from core.errors import PermissionDenied, Unauthenticated


def _audit_refusal(request, reason: str, actor=None) -> None:
    """Door policies refuse before any service runs; the refusal is still an audit event."""
    from audit.services import audit_event_write

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
        from catalog import authz
        from core.actor import actor_from_request

        actor = actor_from_request(request)
        if not authz.is_admin(actor):
            _audit_refusal(request, "not a metastore admin", actor)
            raise PermissionDenied("Only metastore admins may use this endpoint.")
        return True


class Public(BasePermission):
    """Explicitly public (health checks, schema docs)."""

    def has_permission(self, request, view) -> bool:
        return True


class DenyAll(BasePermission):
    """The default for a view that names no policy: nobody gets in (fail closed)."""

    def has_permission(self, request, view) -> bool:
        raise PermissionDenied("This endpoint has no authorization rule.")
