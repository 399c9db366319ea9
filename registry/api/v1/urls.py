"""Native registry routes under /api/v1/: alias policies, promotion requests, aliases,
retention policies and previews, legal holds."""

from django.urls import path

from registry.api.v1 import retention, views

urlpatterns = [
    path("alias-policies", views.AliasPoliciesView.as_view()),
    path("alias-policies/<str:policy_id>", views.AliasPolicyView.as_view()),
    path("promotion-requests", views.PromotionRequestsView.as_view()),
    path("promotion-requests/<str:request_id>", views.PromotionRequestView.as_view()),
    path(
        "promotion-requests/<str:request_id>/approve",
        views.PromotionRequestApproveView.as_view(),
    ),
    path("promotion-requests/<str:request_id>/reject", views.PromotionRequestRejectView.as_view()),
    path("promotion-requests/<str:request_id>/cancel", views.PromotionRequestCancelView.as_view()),
    path("models/<str:full_name>/aliases/<str:alias>", views.AliasView.as_view()),
    path("models/<str:full_name>/aliases/<str:alias>/rollback", views.AliasRollbackView.as_view()),
    path(
        "models/<str:full_name>/aliases/<str:alias>/break-glass",
        views.AliasBreakGlassView.as_view(),
    ),
    path("models/<str:full_name>/aliases/<str:alias>/history", views.AliasHistoryView.as_view()),
    path("retention-policies", retention.RetentionPoliciesView.as_view()),
    path("retention-policies/<str:policy_id>", retention.RetentionPolicyView.as_view()),
    path(
        "retention-policies/<str:policy_id>/preview",
        retention.RetentionPolicyPreviewView.as_view(),
    ),
    path(
        "models/<str:full_name>/retention-preview",
        retention.ModelRetentionPreviewView.as_view(),
    ),
    path("models/<str:full_name>/legal-hold", retention.ModelLegalHoldView.as_view()),
    path(
        "models/<str:full_name>/versions/<str:version>/legal-hold",
        retention.VersionLegalHoldView.as_view(),
    ),
]
