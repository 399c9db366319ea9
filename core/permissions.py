"""Door policies that need no principal: explicitly public routes, and the fail-closed default.
The policies that do (an authenticated principal, a metastore admin) are in
accounts.permissions; object authorization lives in catalog.authz, called by services."""

from rest_framework.permissions import BasePermission

from core.errors import PermissionDenied


class Public(BasePermission):
    """Explicitly public (health checks, schema docs)."""

    def has_permission(self, request, view) -> bool:
        return True


class DenyAll(BasePermission):
    """The default for a view that names no policy: nobody gets in (fail closed)."""

    def has_permission(self, request, view) -> bool:
        raise PermissionDenied("This endpoint has no authorization rule.")
