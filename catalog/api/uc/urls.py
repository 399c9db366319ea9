from django.urls import path

from catalog.api.uc import views

urlpatterns = [
    path("catalogs", views.CatalogsView.as_view()),
    path("catalogs/<str:name>", views.CatalogDetailView.as_view()),
    path("schemas", views.SchemasView.as_view()),
    path("schemas/<str:full_name>", views.SchemaDetailView.as_view()),
    path("models", views.ModelsView.as_view()),
    path("models/<str:full_name>", views.ModelDetailView.as_view()),
    path("permissions/<str:securable_type>/<str:full_name>", views.PermissionsView.as_view()),
    path(
        "effective-permissions/<str:securable_type>/<str:full_name>",
        views.EffectivePermissionsView.as_view(),
    ),
]
