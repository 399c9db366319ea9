"""Door policies that need no principal: explicitly public routes, and the fail-closed default.
The policies that do (an authenticated principal, a metastore admin) are in
accounts.permissions; object authorization lives in catalog.authz, called by services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission

from core.errors import PermissionDenied

if TYPE_CHECKING:  # rest_framework.views loads its settings, which import this module
    from rest_framework.request import Request
    from rest_framework.views import APIView


class Public(BasePermission):
    """Explicitly public (health checks, schema docs)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return True


class DenyAll(BasePermission):
    """The default for a view that names no policy: nobody gets in (fail closed)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        raise PermissionDenied("This endpoint has no authorization rule.")
