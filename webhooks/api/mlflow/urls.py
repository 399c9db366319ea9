"""Routes of the MLflow webhook door, mounted under /api/2.0/mlflow/ (before the registry
and tracking doors; none of their routes starts with `webhooks`)."""

from django.urls import path

from accounts.permissions import IsAuthenticatedPrincipal
from webhooks.api.mlflow import openapi  # noqa: F401  (describes the views in the OpenAPI document)
from webhooks.api.mlflow import views as v


def door(view):
    return view.as_view(permission_classes=[IsAuthenticatedPrincipal])


urlpatterns = [
    path("webhooks", door(v.WebhooksView)),
    path("webhooks/<str:webhook_id>", door(v.WebhookView)),
    path("webhooks/<str:webhook_id>/test", door(v.WebhookTestView)),
]
