"""Native registry API (/api/v1/): alias policies, promotion requests and their decisions, and
aliases (set, remove, roll back, break glass, history).

Thin door: parse, call one service or selector with the acting principal, render. Every alias
move goes through the same service as the MLflow and Unity Catalog doors, so a protected alias
answers 403 PERMISSION_DENIED naming the promotion request that now stands in for the move.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.permissions import DoorView
from core.api import json_body, query_one, validated
from core.openapi import PAGE_PARAMETERS
from registry import services
from registry.api.v1 import serializers as s
from registry.models import PromotionRequest
from registry.selectors import promotions as selectors


class V1View(DoorView):
    """The registry's native views: a promotion request rendered with its facts."""

    def render_request(self, request, status: int = 200) -> Response:
        facts = selectors.promotion_request_facts(self.actor(), [request])
        return Response(s.request_out(request, facts[request.pk]), status=status)


# --- alias policies --------------------------------------------------------------------------


class AliasPoliciesView(V1View):
    """List the alias policies on securables the caller may see; create one (MANAGE on the
    catalog, schema or model)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("securable_type", str, description="catalog, schema or model"),
            OpenApiParameter("full_name", str, description="needs securable_type"),
            *PAGE_PARAMETERS,
        ],
        responses=inline_serializer(
            "AliasPolicyPage",
            {
                "alias_policies": s.AliasPolicyOutputSerializer(many=True),
                "next_page_token": serializers.CharField(allow_null=True),
            },
        ),
        operation_id="alias_policies_list",
    )
    def get(self, request):
        items, token = selectors.alias_policy_list(
            actor=self.actor(),
            securable_type=query_one(request, "securable_type"),
            full_name=query_one(request, "full_name"),
            max_results=query_one(request, "max_results"),
            page_token=query_one(request, "page_token"),
        )
        return Response(
            {"alias_policies": [s.policy_out(p) for p in items], "next_page_token": token}
        )

    @extend_schema(
        request=s.AliasPolicyInputSerializer,
        responses={201: s.AliasPolicyOutputSerializer},
        operation_id="alias_policies_create",
    )
    def post(self, request):
        data = validated(s.AliasPolicyInputSerializer, json_body(request))
        policy = services.alias_policy_create(actor=self.actor(), **data)
        return Response(s.policy_out(policy), status=201)


class AliasPolicyView(V1View):
    """One alias policy: read (visible securable), change or delete (MANAGE)."""

    @extend_schema(responses=s.AliasPolicyOutputSerializer, operation_id="alias_policies_get")
    def get(self, request, policy_id):
        return Response(
            s.policy_out(selectors.alias_policy_get(actor=self.actor(), policy_id=policy_id))
        )

    @extend_schema(
        request=s.AliasPolicyUpdateInputSerializer,
        responses=s.AliasPolicyOutputSerializer,
        operation_id="alias_policies_update",
    )
    def patch(self, request, policy_id):
        data = validated(s.AliasPolicyUpdateInputSerializer, json_body(request))
        policy = services.alias_policy_update(actor=self.actor(), policy_id=policy_id, **data)
        return Response(s.policy_out(policy))

    @extend_schema(responses={204: None}, operation_id="alias_policies_delete")
    def delete(self, request, policy_id):
        services.alias_policy_delete(actor=self.actor(), policy_id=policy_id)
        return Response(status=204)


# --- promotion requests ----------------------------------------------------------------------


class PromotionRequestsView(V1View):
    """List the promotion requests the caller may see (requester, approvers, MANAGE holders,
    admins); ask for a protected alias to move (MODIFY on the model)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "view",
                str,
                enum=list(selectors.VIEWS),
                description="mine: requested by the caller; waiting: pending, for the caller "
                "to decide; all (default): every request the caller may see",
            ),
            OpenApiParameter("state", str, enum=PromotionRequest.State.values),
            OpenApiParameter("model", str, description="a model's full name"),
            *PAGE_PARAMETERS,
        ],
        responses=inline_serializer(
            "PromotionRequestPage",
            {
                "promotion_requests": s.PromotionRequestOutputSerializer(many=True),
                "next_page_token": serializers.CharField(allow_null=True),
            },
        ),
        operation_id="promotion_requests_list",
    )
    def get(self, request):
        actor = self.actor()
        items, token = selectors.promotion_request_list(
            actor=actor,
            view=query_one(request, "view"),
            state=query_one(request, "state"),
            model=query_one(request, "model"),
            max_results=query_one(request, "max_results"),
            page_token=query_one(request, "page_token"),
        )
        facts = selectors.promotion_request_facts(actor, items)
        return Response(
            {
                "promotion_requests": [s.request_out(r, facts[r.pk]) for r in items],
                "next_page_token": token,
            }
        )

    @extend_schema(
        request=s.PromotionRequestInputSerializer,
        responses={201: s.PromotionRequestOutputSerializer},
        operation_id="promotion_requests_create",
    )
    def post(self, request):
        data = validated(s.PromotionRequestInputSerializer, json_body(request))
        created = services.promotion_request_create(actor=self.actor(), **data)
        return self.render_request(created, status=201)


class PromotionRequestView(V1View):
    """One promotion request, with its decisions and whether the caller may decide it."""

    @extend_schema(
        responses=s.PromotionRequestOutputSerializer, operation_id="promotion_requests_get"
    )
    def get(self, request, request_id):
        return self.render_request(
            selectors.promotion_request_get(actor=self.actor(), request_id=request_id)
        )


class PromotionRequestApproveView(V1View):
    """Approve (an approver named by the policy, never the requester, once). With enough
    approvals the alias moves in the same transaction, or the request goes STALE."""

    @extend_schema(
        request=s.DecisionInputSerializer,
        responses=s.PromotionRequestOutputSerializer,
        operation_id="promotion_requests_approve",
    )
    def post(self, request, request_id):
        data = validated(s.DecisionInputSerializer, json_body(request))
        decided = services.promotion_request_approve(
            actor=self.actor(), request_id=request_id, comment=data.get("comment") or ""
        )
        return self.render_request(decided)


class PromotionRequestRejectView(V1View):
    """Reject (one eligible approver's rejection is final)."""

    @extend_schema(
        request=s.DecisionInputSerializer,
        responses=s.PromotionRequestOutputSerializer,
        operation_id="promotion_requests_reject",
    )
    def post(self, request, request_id):
        data = validated(s.DecisionInputSerializer, json_body(request))
        decided = services.promotion_request_reject(
            actor=self.actor(), request_id=request_id, comment=data.get("comment") or ""
        )
        return self.render_request(decided)


class PromotionRequestCancelView(V1View):
    """The requester withdraws a pending request."""

    @extend_schema(
        request=s.EmptyInputSerializer,
        responses=s.PromotionRequestOutputSerializer,
        operation_id="promotion_requests_cancel",
    )
    def post(self, request, request_id):
        validated(s.EmptyInputSerializer, json_body(request))
        cancelled = services.promotion_request_cancel(actor=self.actor(), request_id=request_id)
        return self.render_request(cancelled)


# --- aliases ---------------------------------------------------------------------------------


class AliasView(V1View):
    """An alias of a model: read it, point it at a version, remove it."""

    @extend_schema(responses=s.AliasOutputSerializer, operation_id="model_alias_get")
    def get(self, request, full_name, alias):
        found = selectors.model_alias_get(actor=self.actor(), full_name=full_name, alias=alias)
        return Response(s.alias_out(found))

    @extend_schema(
        request=s.AliasSetInputSerializer,
        responses=s.AliasOutputSerializer,
        operation_id="model_alias_set",
        description="Point the alias at a version (MANAGE). A protected alias is not moved: "
        "the answer is 403 PERMISSION_DENIED naming the promotion request opened for it.",
    )
    def put(self, request, full_name, alias):
        data = validated(s.AliasSetInputSerializer, json_body(request))
        moved = services.alias_set(
            actor=self.actor(),
            full_name=full_name,
            alias=alias,
            version=data["version"],
            reason=data.get("justification") or "",
        )
        return Response(s.alias_out(moved))

    @extend_schema(responses={204: None}, operation_id="model_alias_delete")
    def delete(self, request, full_name, alias):
        services.alias_delete(actor=self.actor(), full_name=full_name, alias=alias)
        return Response(status=204)


class AliasRollbackView(V1View):
    """Roll an alias back to its previous version."""

    @extend_schema(
        request=s.AliasRollbackInputSerializer,
        responses=s.AliasOutputSerializer,
        operation_id="model_alias_rollback",
        description="Move the alias back to the version it pointed at before, through the same "
        "policy (a protected alias answers 403 naming the rollback's promotion request).",
    )
    def post(self, request, full_name, alias):
        data = validated(s.AliasRollbackInputSerializer, json_body(request))
        moved = services.alias_rollback(
            actor=self.actor(),
            full_name=full_name,
            alias=alias,
            justification=data.get("justification") or "",
        )
        return Response(s.alias_out(moved))


class AliasBreakGlassView(V1View):
    """Break-glass move of a protected alias (metastore admins)."""

    @extend_schema(
        request=s.BreakGlassInputSerializer,
        responses=s.PromotionRequestOutputSerializer,
        operation_id="model_alias_break_glass",
        description="Metastore admins, in an emergency: move a protected alias at once. Needs "
        "a reason; recorded as an APPLIED break-glass request, flagged in the audit trail.",
    )
    def post(self, request, full_name, alias):
        data = validated(s.BreakGlassInputSerializer, json_body(request))
        record = services.alias_break_glass(
            actor=self.actor(),
            full_name=full_name,
            alias=alias,
            version=data["version"],
            reason=data["reason"],
        )
        return self.render_request(record)


class AliasHistoryView(V1View):
    """Every move of an alias, newest first: who, when, from, to, why, which request."""

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses=inline_serializer(
            "AliasHistoryPage",
            {
                "history": s.AliasHistoryOutputSerializer(many=True),
                "next_page_token": serializers.CharField(allow_null=True),
            },
        ),
        operation_id="model_alias_history",
    )
    def get(self, request, full_name, alias):
        items, token = selectors.alias_history_list(
            actor=self.actor(),
            full_name=full_name,
            alias=alias,
            max_results=query_one(request, "max_results"),
            page_token=query_one(request, "page_token"),
        )
        return Response({"history": [s.history_out(e) for e in items], "next_page_token": token})
