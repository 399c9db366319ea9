"""Door-level policies. Object authorization lives in catalog.authz, called by services.

Every view must name one of these explicitly (a contract test walks the URLconf to make sure).
"""

from rest_framework.permissions import BasePermission

from core.errors import PermissionDenied, Unauthenticated


class IsAuthenticatedPrincipal(BasePermission):
    """Any authenticated, active principal; object checks happen in the service layer."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            raise Unauthenticated("Authentication required: send 'Authorization: Bearer <token>'.")
        return True


class IsMetastoreAdmin(IsAuthenticatedPrincipal):
    """Members of the metastore admin group (SCIM, audit search)."""

    def has_permission(self, request, view) -> bool:
        super().has_permission(request, view)
        from catalog import authz
        from core.actor import actor_from_request

        if not authz.is_admin(actor_from_request(request)):
            raise PermissionDenied("Only metastore admins may use this endpoint.")
        return True


class Public(BasePermission):
    """Explicitly public (health checks, schema docs)."""

    def has_permission(self, request, view) -> bool:
        return True
