"""Native webhook routes under /api/v1/."""

from django.urls import path

from accounts.permissions import IsAuthenticatedPrincipal
from webhooks.api.v1 import views as v


def door(view):
    return view.as_view(permission_classes=[IsAuthenticatedPrincipal])


urlpatterns = [
    path("webhooks", door(v.WebhooksView)),
    path("webhooks/<str:webhook_id>", door(v.WebhookView)),
    path("webhooks/<str:webhook_id>/test", door(v.WebhookTestView)),
    path("webhooks/<str:webhook_id>/deliveries", door(v.WebhookDeliveriesView)),
]
