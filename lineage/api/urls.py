"""Native lineage routes, mounted under /api/v1/ (no trailing slashes, as the OpenLineage client
posts to `api/v1/lineage`). The model-version shortcut ends in `/lineage`, so it never meets the
registry's `models/<full_name>/aliases/...` routes (a `str` segment holds no slash)."""

from django.urls import path

from accounts.permissions import IsAuthenticatedPrincipal
from lineage.api import views

urlpatterns = [
    path("lineage", views.LineageView.as_view(permission_classes=[IsAuthenticatedPrincipal])),
    path(
        "lineage/batch",
        views.LineageBatchView.as_view(permission_classes=[IsAuthenticatedPrincipal]),
    ),
    path(
        "models/<str:full_name>/versions/<str:version>/lineage",
        views.ModelVersionLineageView.as_view(permission_classes=[IsAuthenticatedPrincipal]),
    ),
]
