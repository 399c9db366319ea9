"""Routes of the MLflow tracking door, mounted under /api/2.0/mlflow/ and /api/3.0/mlflow/.

Paths have no trailing slash, as the MLflow client calls them. Each view is built with an
explicit permission policy (the route contract test checks it).
"""

from django.urls import path

from accounts.permissions import IsAuthenticatedPrincipal
from tracking.api.mlflow import openapi  # noqa: F401  (describes the views in the OpenAPI document)
from tracking.api.mlflow import views as v


def door(view):
    return view.as_view(permission_classes=[IsAuthenticatedPrincipal])


urlpatterns = [
    path("server-info", door(v.ServerInfoView)),
    path("experiments/create", door(v.ExperimentCreateView)),
    path("experiments/get", door(v.ExperimentGetView)),
    path("experiments/get-by-name", door(v.ExperimentGetByNameView)),
    path("experiments/search", door(v.ExperimentSearchView)),
    path("experiments/update", door(v.ExperimentUpdateView)),
    path("experiments/delete", door(v.ExperimentDeleteView)),
    path("experiments/restore", door(v.ExperimentRestoreView)),
    path("experiments/set-experiment-tag", door(v.ExperimentSetTagView)),
    path("experiments/delete-experiment-tag", door(v.ExperimentDeleteTagView)),
    path("runs/create", door(v.RunCreateView)),
    path("runs/get", door(v.RunGetView)),
    path("runs/update", door(v.RunUpdateView)),
    path("runs/delete", door(v.RunDeleteView)),
    path("runs/restore", door(v.RunRestoreView)),
    path("runs/search", door(v.RunSearchView)),
    path("runs/log-metric", door(v.RunLogMetricView)),
    path("runs/log-parameter", door(v.RunLogParamView)),
    path("runs/log-batch", door(v.RunLogBatchView)),
    path("runs/set-tag", door(v.RunSetTagView)),
    path("runs/delete-tag", door(v.RunDeleteTagView)),
    path("runs/log-inputs", door(v.RunLogInputsView)),
    path("runs/outputs", door(v.RunLogOutputsView)),
    path("metrics/get-history", door(v.MetricHistoryView)),
    path("logged-models", door(v.LoggedModelCreateView)),
    path("logged-models/search", door(v.LoggedModelSearchView)),
    path("logged-models/<str:model_id>", door(v.LoggedModelDetailView)),
    path("logged-models/<str:model_id>/tags", door(v.LoggedModelTagsView)),
    path("logged-models/<str:model_id>/tags/<path:tag_key>", door(v.LoggedModelTagDetailView)),
    path("logged-models/<str:model_id>/params", door(v.LoggedModelParamsView)),
]
