"""MLflow's artifact proxy, mounted at /api/2.0/mlflow-artifacts/ (no trailing slashes, as the
client sends them). Multipart and presigned routes are not served: the server-info probe
reports them disabled, so the client never calls them."""

from django.urls import path

from registry.api.artifacts import views

urlpatterns = [
    path("artifacts", views.ArtifactListView.as_view()),
    path("artifacts/<path:artifact_path>", views.ArtifactView.as_view()),
]
