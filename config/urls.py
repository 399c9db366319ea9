"""Routes: the Unity Catalog API, the native API, SCIM, schema docs, health, admin, console."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views
from core.permissions import Public

urlpatterns = [
    path("healthz", core_views.HealthView.as_view()),
    path("readyz", core_views.ReadyView.as_view()),
    path("api/2.1/unity-catalog/", include("registry.api.uc.urls")),
    path("api/2.1/unity-catalog/", include("catalog.api.uc.urls")),
    path("api/v1/", include("audit.api.urls")),
    path("api/v1/", include("accounts.api.urls")),
    path("api/scim/v2/", include("accounts.scim.urls")),
    path("api/2.0/mlflow/", include("webhooks.api.mlflow.urls")),
    path("api/2.0/mlflow/", include("registry.api.mlflow.urls")),
    path("api/2.0/mlflow/", include("tracking.api.mlflow.urls")),
    path("api/3.0/mlflow/", include("tracking.api.mlflow.urls")),
    path("api/v1/", include("tracking.api.v1.urls")),
    path("api/v1/", include("lineage.api.urls")),
    path("api/v1/", include("registry.api.v1.urls")),
    path("api/v1/", include("webhooks.api.v1.urls")),
    path("api/2.0/mlflow-artifacts/", include("registry.api.artifacts.urls")),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[Public], authentication_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(
            url_name="schema", permission_classes=[Public], authentication_classes=[]
        ),
    ),
    path("admin/", admin.site.urls),
    path("console/", include("console.urls")),
    # Any method, a session cookie or not: the JSON 404, never Django's CSRF page.
    re_path(r"^api/.*$", csrf_exempt(core_views.api_not_found)),
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
