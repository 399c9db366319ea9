"""Native retention API (/api/v1/): retention policies and their previews, and legal holds.

Thin door: parse, call one service or selector with the acting principal, render. Policies
need MANAGE on their catalog, schema or model; previews too; legal holds are for metastore
admins (the service decides, and audits a refusal).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from core.api import StrictCharField, json_body, query_one, validated
from registry import retention
from registry.api.v1.serializers import (
    MAX_NAME,
    StrictInputSerializer,
    StrictIntegerField,
)
from registry.api.v1.views import PAGE_PARAMETERS, V1View
from registry.selectors import retention as selectors
from registry.services import retention as services
from registry.services.lookups import MAX_TEXT

# --- bodies ----------------------------------------------------------------------------------


def _days(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(
        required=False, allow_null=True, min_value=0, max_value=retention.MAX_DAYS, **kwargs
    )


class RetentionPolicyUpdateInputSerializer(StrictInputSerializer):
    archive_after_days = _days(
        help_text="Archive ACTIVE versions created this many days ago or earlier; null: never."
    )
    delete_after_days = _days(
        help_text="Delete (files removed, tombstone kept) ARCHIVED versions archived this many "
        "days ago or earlier; null: never."
    )
    keep_last = StrictIntegerField(
        required=False,
        min_value=0,
        max_value=retention.MAX_KEEP,
        help_text="The newest K READY versions are never archived or deleted.",
    )
    description = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=MAX_TEXT
    )


class RetentionPolicyInputSerializer(RetentionPolicyUpdateInputSerializer):
    securable_type = StrictCharField(max_length=64, help_text="catalog, schema or registered_model")
    full_name = StrictCharField(max_length=MAX_NAME)


class LegalHoldInputSerializer(StrictInputSerializer):
    reason = StrictCharField(max_length=MAX_TEXT)


class RetentionPolicyOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    securable_type = serializers.CharField()
    full_name = serializers.CharField()
    archive_after_days = serializers.IntegerField(allow_null=True)
    delete_after_days = serializers.IntegerField(allow_null=True)
    keep_last = serializers.IntegerField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    updated_at = serializers.DateTimeField()
    updated_by = serializers.CharField()


def policy_out(policy) -> dict:
    return RetentionPolicyOutputSerializer(
        {
            "id": policy.id,
            "securable_type": policy.securable_type,
            "full_name": policy.securable_full_name,
            "archive_after_days": policy.archive_after_days,
            "delete_after_days": policy.delete_after_days,
            "keep_last": policy.keep_last,
            "description": policy.description,
            "created_at": policy.created_at,
            "created_by": policy.created_by,
            "updated_at": policy.updated_at,
            "updated_by": policy.updated_by,
        }
    ).data


class PlanItemOutputSerializer(serializers.Serializer):
    full_name = serializers.CharField(help_text="The registered model.")
    version = serializers.IntegerField()
    lifecycle = serializers.CharField(help_text="The version's lifecycle now.")
    action = serializers.ChoiceField(
        choices=retention.ACTIONS,
        help_text="archive, delete, or keep: due by the rules but protected (see reasons).",
    )
    reasons = serializers.ListField(child=serializers.CharField())
    policy_id = serializers.UUIDField()


PREVIEW_PAGE = {
    "items": PlanItemOutputSerializer(many=True),
    "next_page_token": serializers.CharField(allow_null=True),
}


class LegalHoldOutputSerializer(serializers.Serializer):
    full_name = serializers.CharField()
    version = serializers.IntegerField(allow_null=True, help_text="null: the whole model.")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    updated_at = serializers.DateTimeField()
    updated_by = serializers.CharField()


def hold_out(hold) -> dict:
    return LegalHoldOutputSerializer(
        {
            "full_name": hold.model.full_name,
            "version": hold.version.version if hold.version_id else None,
            "reason": hold.reason,
            "created_at": hold.created_at,
            "created_by": hold.created_by,
            "updated_at": hold.updated_at,
            "updated_by": hold.updated_by,
        }
    ).data


# --- policies --------------------------------------------------------------------------------


class RetentionPoliciesView(V1View):
    """List the retention policies on securables the caller may see; create one (MANAGE on
    the catalog, schema or model; one per securable)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("securable_type", str, description="catalog, schema or model"),
            OpenApiParameter("full_name", str, description="needs securable_type"),
            *PAGE_PARAMETERS,
        ],
        responses=inline_serializer(
            "RetentionPolicyPage",
            {
                "retention_policies": RetentionPolicyOutputSerializer(many=True),
                "next_page_token": serializers.CharField(allow_null=True),
            },
        ),
        operation_id="retention_policies_list",
    )
    def get(self, request):
        items, token = selectors.retention_policy_list(
            actor=self.actor(),
            securable_type=query_one(request, "securable_type"),
            full_name=query_one(request, "full_name"),
            max_results=query_one(request, "max_results"),
            page_token=query_one(request, "page_token"),
        )
        return Response(
            {"retention_policies": [policy_out(p) for p in items], "next_page_token": token}
        )

    @extend_schema(
        request=RetentionPolicyInputSerializer,
        responses={201: RetentionPolicyOutputSerializer},
        operation_id="retention_policies_create",
    )
    def post(self, request):
        data = validated(RetentionPolicyInputSerializer, json_body(request))
        policy = services.retention_policy_create(actor=self.actor(), **data)
        return Response(policy_out(policy), status=201)


class RetentionPolicyView(V1View):
    """One retention policy: read (visible securable), change or delete (MANAGE)."""

    @extend_schema(responses=RetentionPolicyOutputSerializer, operation_id="retention_policies_get")
    def get(self, request, policy_id):
        return Response(
            policy_out(selectors.retention_policy_get(actor=self.actor(), policy_id=policy_id))
        )

    @extend_schema(
        request=RetentionPolicyUpdateInputSerializer,
        responses=RetentionPolicyOutputSerializer,
        operation_id="retention_policies_update",
    )
    def patch(self, request, policy_id):
        data = validated(RetentionPolicyUpdateInputSerializer, json_body(request))
        policy = services.retention_policy_update(actor=self.actor(), policy_id=policy_id, **data)
        return Response(policy_out(policy))

    @extend_schema(responses={204: None}, operation_id="retention_policies_delete")
    def delete(self, request, policy_id):
        services.retention_policy_delete(actor=self.actor(), policy_id=policy_id)
        return Response(status=204)


class RetentionPolicyPreviewView(V1View):
    """What a retention run now would do under this policy (MANAGE on its securable)."""

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses=inline_serializer(
            "RetentionPolicyPreview", {"policy_id": serializers.UUIDField(), **PREVIEW_PAGE}
        ),
        operation_id="retention_policies_preview",
        description="Every version due under the policy, in model and version order: archive, "
        "delete, or keep (protected: alias, stage, open promotion request, legal hold) with "
        "the reasons. The same code decides the real run.",
    )
    def get(self, request, policy_id):
        policy, items, token = selectors.retention_policy_preview(
            actor=self.actor(),
            policy_id=policy_id,
            max_results=query_one(request, "max_results"),
            page_token=query_one(request, "page_token"),
        )
        return Response(
            {
                "policy_id": policy.id,
                "items": [i.as_dict() for i in items],
                "next_page_token": token,
            }
        )


class ModelRetentionPreviewView(V1View):
    """What a retention run now would do to one model's versions (MANAGE on the model)."""

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses=inline_serializer(
            "ModelRetentionPreview",
            {
                "full_name": serializers.CharField(),
                "policy": RetentionPolicyOutputSerializer(allow_null=True),
                **PREVIEW_PAGE,
            },
        ),
        operation_id="model_retention_preview",
    )
    def get(self, request, full_name):
        policy, items, token = selectors.model_retention_preview(
            actor=self.actor(),
            full_name=full_name,
            max_results=query_one(request, "max_results"),
            page_token=query_one(request, "page_token"),
        )
        return Response(
            {
                "full_name": full_name,
                "policy": policy_out(policy) if policy is not None else None,
                "items": [i.as_dict() for i in items],
                "next_page_token": token,
            }
        )


# --- legal holds -----------------------------------------------------------------------------


class _LegalHoldView(V1View):
    def _version(self, kwargs):
        return kwargs.get("version")

    @extend_schema(responses=LegalHoldOutputSerializer)
    def get(self, request, full_name, **kwargs):
        hold = selectors.legal_hold_get(
            actor=self.actor(), full_name=full_name, version=self._version(kwargs)
        )
        return Response(hold_out(hold))

    @extend_schema(request=LegalHoldInputSerializer, responses=LegalHoldOutputSerializer)
    def put(self, request, full_name, **kwargs):
        data = validated(LegalHoldInputSerializer, json_body(request))
        hold = services.legal_hold_set(
            actor=self.actor(),
            full_name=full_name,
            version=self._version(kwargs),
            reason=data["reason"],
        )
        return Response(hold_out(hold))

    @extend_schema(responses={204: None})
    def delete(self, request, full_name, **kwargs):
        services.legal_hold_clear(
            actor=self.actor(), full_name=full_name, version=self._version(kwargs)
        )
        return Response(status=204)


class ModelLegalHoldView(_LegalHoldView):
    """The legal hold on a whole model: read (visible model), set or lift (metastore
    admins). While it stands, retention touches none of the model's versions."""


class VersionLegalHoldView(_LegalHoldView):
    """The legal hold on one version: read (visible model), set or lift (metastore admins)."""
