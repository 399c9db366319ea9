from django.urls import path

from registry.api.uc import views

# Mounted before catalog's UC routes so that models/versions is not read as a model name.
urlpatterns = [
    path("models/versions", views.VersionsCreateView.as_view()),
    path("models/<str:full_name>/versions", views.VersionsListView.as_view()),
    path("models/<str:full_name>/versions/<str:version>", views.VersionDetailView.as_view()),
    path(
        "models/<str:full_name>/versions/<str:version>/finalize",
        views.VersionFinalizeView.as_view(),
    ),
    path("models/<str:full_name>/aliases/<str:alias>", views.AliasView.as_view()),
    path("temporary-model-version-credentials", views.CredentialsView.as_view()),
]
