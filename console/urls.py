"""Console routes, mounted at /console/. Every page here is a ConsoleView (login required);
tests/contract/test_routes.py fails for one that is not, except the two auth views below."""

from django.urls import path

from console import views
from registry.console import views as registry_views

app_name = "console"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("login", views.ConsoleLoginView.as_view(), name="login"),
    path("logout", views.ConsoleLogoutView.as_view(), name="logout"),
    path(
        "promotion-requests",
        registry_views.PromotionRequestListView.as_view(),
        name="promotion-requests",
    ),
    path(
        "promotion-requests/<uuid:request_id>",
        registry_views.PromotionRequestDetailView.as_view(),
        name="promotion-request",
    ),
]
