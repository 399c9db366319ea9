"""SCIM 2.0 routes, included at api/scim/v2/ (a trailing slash is tolerated)."""

from django.urls import re_path

from accounts.scim import views

app_name = "scim"

urlpatterns = [
    re_path(r"^Users/?$", views.UsersView.as_view(), name="users"),
    re_path(r"^Users/(?P<user_id>[^/]+)/?$", views.UserDetailView.as_view(), name="user"),
    re_path(r"^Groups/?$", views.GroupsView.as_view(), name="groups"),
    re_path(r"^Groups/(?P<group_id>[^/]+)/?$", views.GroupDetailView.as_view(), name="group"),
    re_path(
        r"^ServiceProviderConfig/?$",
        views.ServiceProviderConfigView.as_view(),
        name="service-provider-config",
    ),
    re_path(r"^ResourceTypes/?$", views.ResourceTypesView.as_view(), name="resource-types"),
    re_path(r"^ResourceTypes/(?P<name>[^/]+)/?$", views.ResourceTypeDetailView.as_view()),
    re_path(r"^Schemas/?$", views.SchemasView.as_view(), name="schemas"),
    re_path(r"^Schemas/(?P<urn>[^/]+)/?$", views.SchemaDetailView.as_view()),
    re_path(r"^.*$", views.ScimNotFoundView.as_view()),
]
