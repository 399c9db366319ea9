"""Native tracking routes under /api/v1/."""

from django.urls import path

from accounts.permissions import IsAuthenticatedPrincipal
from tracking.api.v1 import views

urlpatterns = [
    path(
        "experiments/<str:experiment_id>/permissions",
        views.ExperimentPermissionsView.as_view(permission_classes=[IsAuthenticatedPrincipal]),
    ),
]
