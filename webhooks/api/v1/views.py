"""Native webhook API (/api/v1/webhooks): subscriptions to MLflow's registry events and
Steward's own (promotion requests, version archive and delete), scoped to a catalog, schema
or model, and their deliveries with outcomes. Thin door: parse, call one service or
selector, render."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.permissions import DoorView
from core.api import json_body, query_one, validated
from core.openapi import PAGE_PARAMETERS
from webhooks import selectors, services
from webhooks.api.v1 import serializers as s
from webhooks.models import WebhookDelivery


class WebhooksView(DoorView):
    """List the webhooks the caller may manage; subscribe a URL (MANAGE on the scope)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("securable_type", str, description="catalog, schema, ..."),
            OpenApiParameter("full_name", str, description="needs securable_type"),
            *PAGE_PARAMETERS,
        ],
        responses=inline_serializer(
            "WebhookPage",
            {
                "webhooks": s.WebhookOutputSerializer(many=True),
                "next_page_token": serializers.CharField(allow_null=True),
            },
        ),
        operation_id="webhooks_list",
    )
    def get(self, request):
        items, token = selectors.webhook_list(
            actor=self.actor(),
            securable_type=query_one(request, "securable_type"),
            full_name=query_one(request, "full_name"),
            max_results=query_one(request, "max_results"),
            page_token=query_one(request, "page_token"),
        )
        return Response({"webhooks": [s.webhook_out(h) for h in items], "next_page_token": token})

    @extend_schema(
        request=s.WebhookInputSerializer,
        responses={201: s.WebhookOutputSerializer},
        operation_id="webhooks_create",
    )
    def post(self, request):
        data = validated(s.WebhookInputSerializer, json_body(request))
        hook = services.webhook_create(actor=self.actor(), **data)
        return Response(s.webhook_out(hook), status=201)


class WebhookView(DoorView):
    """One webhook: read, change or delete (MANAGE on its scope)."""

    @extend_schema(responses=s.WebhookOutputSerializer, operation_id="webhooks_get")
    def get(self, request, webhook_id):
        return Response(
            s.webhook_out(selectors.webhook_get(actor=self.actor(), webhook_id=webhook_id))
        )

    @extend_schema(
        request=s.WebhookUpdateInputSerializer,
        responses=s.WebhookOutputSerializer,
        operation_id="webhooks_update",
    )
    def patch(self, request, webhook_id):
        data = validated(s.WebhookUpdateInputSerializer, json_body(request))
        hook = services.webhook_update(actor=self.actor(), webhook_id=webhook_id, **data)
        return Response(s.webhook_out(hook))

    @extend_schema(responses={204: None}, operation_id="webhooks_delete")
    def delete(self, request, webhook_id):
        services.webhook_delete(actor=self.actor(), webhook_id=webhook_id)
        return Response(status=204)


class WebhookTestView(DoorView):
    """Send an example event now; answers the recorded test delivery."""

    @extend_schema(
        request=s.WebhookTestInputSerializer,
        responses=s.DeliveryOutputSerializer,
        operation_id="webhooks_test",
    )
    def post(self, request, webhook_id):
        data = validated(s.WebhookTestInputSerializer, json_body(request))
        delivery = services.webhook_test(
            actor=self.actor(), webhook_id=webhook_id, event=data.get("event")
        )
        return Response(s.delivery_out(delivery))


class WebhookDeliveriesView(DoorView):
    """A webhook's deliveries with their outcomes, newest first."""

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=WebhookDelivery.Status.values),
            *PAGE_PARAMETERS,
        ],
        responses=inline_serializer(
            "WebhookDeliveryPage",
            {
                "deliveries": s.DeliveryOutputSerializer(many=True),
                "next_page_token": serializers.CharField(allow_null=True),
            },
        ),
        operation_id="webhooks_deliveries",
    )
    def get(self, request, webhook_id):
        items, token = selectors.delivery_list(
            actor=self.actor(),
            webhook_id=webhook_id,
            status=query_one(request, "status"),
            max_results=query_one(request, "max_results"),
            page_token=query_one(request, "page_token"),
        )
        return Response(
            {"deliveries": [s.delivery_out(d) for d in items], "next_page_token": token}
        )
