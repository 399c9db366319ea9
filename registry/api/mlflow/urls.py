"""Routes of the MLflow model-registry door, mounted under /api/2.0/mlflow/ (before the
tracking door). Paths have no trailing slash, as the MLflow client calls them."""

from django.urls import path

from registry.api.mlflow import openapi  # noqa: F401  (describes the views in the OpenAPI document)
from registry.api.mlflow import views as v

urlpatterns = [
    path("registered-models/create", v.RegisteredModelCreateView.as_view()),
    path("registered-models/get", v.RegisteredModelGetView.as_view()),
    path("registered-models/search", v.RegisteredModelSearchView.as_view()),
    path("registered-models/rename", v.RegisteredModelRenameView.as_view()),
    path("registered-models/update", v.RegisteredModelUpdateView.as_view()),
    path("registered-models/delete", v.RegisteredModelDeleteView.as_view()),
    path("registered-models/set-tag", v.RegisteredModelSetTagView.as_view()),
    path("registered-models/delete-tag", v.RegisteredModelDeleteTagView.as_view()),
    path("registered-models/alias", v.AliasView.as_view()),
    path("registered-models/get-latest-versions", v.LatestVersionsView.as_view()),
    path("model-versions/create", v.ModelVersionCreateView.as_view()),
    path("model-versions/get", v.ModelVersionGetView.as_view()),
    path("model-versions/search", v.ModelVersionSearchView.as_view()),
    path("model-versions/update", v.ModelVersionUpdateView.as_view()),
    path("model-versions/delete", v.ModelVersionDeleteView.as_view()),
    path("model-versions/transition-stage", v.ModelVersionTransitionView.as_view()),
    path("model-versions/set-tag", v.ModelVersionSetTagView.as_view()),
    path("model-versions/delete-tag", v.ModelVersionDeleteTagView.as_view()),
    path("model-versions/get-download-uri", v.ModelVersionDownloadUriView.as_view()),
]
