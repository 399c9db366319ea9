"""Unity Catalog REST API door (/api/2.1/unity-catalog/): parse, call a service, render."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from accounts.permissions import DoorView
from catalog import selectors, services
from catalog.api.uc import serializers as s
from core.api import json_body, query_bool, query_one, validated
from core.errors import InvalidParameter
from core.openapi import UC_PAGE_PARAMETERS
from core.pagination import uc_page_size
from registry import selectors as model_selectors
from registry import services as model_services

PAGE_PARAMS = UC_PAGE_PARAMETERS
FORCE = [OpenApiParameter("force", bool, description="Delete even if not empty.")]


def _no_storage(data: dict, field: str) -> None:
    if data.get(field):
        raise InvalidParameter(f"{field} is not supported: Steward manages storage itself.")


class CatalogsView(DoorView):
    @extend_schema(parameters=PAGE_PARAMS, responses=dict, operation_id="uc_list_catalogs")
    def get(self, request):
        items, token = selectors.catalog_list(
            actor=self.actor(),
            max_results=uc_page_size(query_one(request, "max_results")),
            page_token=query_one(request, "page_token"),
        )
        return Response({"catalogs": [s.catalog_out(c) for c in items], "next_page_token": token})

    @extend_schema(
        request=s.CatalogCreateInputSerializer, responses=dict, operation_id="uc_create_catalog"
    )
    def post(self, request):
        data = validated(s.CatalogCreateInputSerializer, json_body(request))
        _no_storage(data, "storage_root")
        obj = services.catalog_create(
            actor=self.actor(),
            name=data["name"],
            comment=data.get("comment"),
            properties=data.get("properties"),
        )
        return Response(s.catalog_out(obj))


class CatalogDetailView(DoorView):
    @extend_schema(responses=dict, operation_id="uc_get_catalog")
    def get(self, request, name):
        return Response(s.catalog_out(selectors.catalog_get(actor=self.actor(), name=name)))

    @extend_schema(
        request=s.SecurableUpdateInputSerializer, responses=dict, operation_id="uc_update_catalog"
    )
    def patch(self, request, name):
        data = validated(s.SecurableUpdateInputSerializer, json_body(request))
        obj = services.catalog_update(actor=self.actor(), name=name, **data)
        return Response(s.catalog_out(obj))

    @extend_schema(parameters=FORCE, responses=dict, operation_id="uc_delete_catalog")
    def delete(self, request, name):
        services.catalog_delete(actor=self.actor(), name=name, force=query_bool(request, "force"))
        return Response({})


class SchemasView(DoorView):
    @extend_schema(
        parameters=[OpenApiParameter("catalog_name", str, required=True), *PAGE_PARAMS],
        responses=dict,
        operation_id="uc_list_schemas",
    )
    def get(self, request):
        items, token = selectors.schema_list(
            actor=self.actor(),
            catalog_name=query_one(request, "catalog_name"),
            max_results=uc_page_size(query_one(request, "max_results")),
            page_token=query_one(request, "page_token"),
        )
        return Response({"schemas": [s.schema_out(x) for x in items], "next_page_token": token})

    @extend_schema(
        request=s.SchemaCreateInputSerializer, responses=dict, operation_id="uc_create_schema"
    )
    def post(self, request):
        data = validated(s.SchemaCreateInputSerializer, json_body(request))
        _no_storage(data, "storage_root")
        obj = services.schema_create(
            actor=self.actor(),
            catalog_name=data["catalog_name"],
            name=data["name"],
            comment=data.get("comment"),
            properties=data.get("properties"),
        )
        return Response(s.schema_out(obj))


class SchemaDetailView(DoorView):
    @extend_schema(responses=dict, operation_id="uc_get_schema")
    def get(self, request, full_name):
        return Response(s.schema_out(selectors.schema_get(actor=self.actor(), full_name=full_name)))

    @extend_schema(
        request=s.SecurableUpdateInputSerializer, responses=dict, operation_id="uc_update_schema"
    )
    def patch(self, request, full_name):
        data = validated(s.SecurableUpdateInputSerializer, json_body(request))
        obj = services.schema_update(actor=self.actor(), full_name=full_name, **data)
        return Response(s.schema_out(obj))

    @extend_schema(parameters=FORCE, responses=dict, operation_id="uc_delete_schema")
    def delete(self, request, full_name):
        services.schema_delete(
            actor=self.actor(), full_name=full_name, force=query_bool(request, "force")
        )
        return Response({})


class ModelsView(DoorView):
    @extend_schema(
        parameters=[
            OpenApiParameter("catalog_name", str),
            OpenApiParameter("schema_name", str),
            *PAGE_PARAMS,
        ],
        responses=dict,
        operation_id="uc_list_models",
    )
    def get(self, request):
        items, token = model_selectors.registered_model_list(
            actor=self.actor(),
            catalog_name=query_one(request, "catalog_name"),
            schema_name=query_one(request, "schema_name"),
            max_results=uc_page_size(query_one(request, "max_results")),
            page_token=query_one(request, "page_token"),
        )
        return Response(
            {"registered_models": [s.model_out(m) for m in items], "next_page_token": token}
        )

    @extend_schema(
        request=s.ModelCreateInputSerializer, responses=dict, operation_id="uc_create_model"
    )
    def post(self, request):
        data = validated(s.ModelCreateInputSerializer, json_body(request))
        obj = model_services.registered_model_create(actor=self.actor(), **data)
        return Response(s.model_out(obj))


class ModelDetailView(DoorView):
    @extend_schema(responses=dict, operation_id="uc_get_model")
    def get(self, request, full_name):
        obj = model_selectors.registered_model_get(actor=self.actor(), full_name=full_name)
        return Response(s.model_out(obj))

    @extend_schema(
        request=s.SecurableUpdateInputSerializer, responses=dict, operation_id="uc_update_model"
    )
    def patch(self, request, full_name):
        data = validated(s.SecurableUpdateInputSerializer, json_body(request))
        obj = model_services.registered_model_update(
            actor=self.actor(), full_name=full_name, **data
        )
        return Response(s.model_out(obj))

    @extend_schema(parameters=FORCE, responses=dict, operation_id="uc_delete_model")
    def delete(self, request, full_name):
        model_services.registered_model_delete(
            actor=self.actor(), full_name=full_name, force=query_bool(request, "force")
        )
        return Response({})


class PermissionsView(DoorView):
    @extend_schema(
        parameters=[OpenApiParameter("principal", str)],
        responses=dict,
        operation_id="uc_get_permissions",
    )
    def get(self, request, securable_type, full_name):
        assignments = selectors.permissions_get(
            actor=self.actor(),
            securable_type=securable_type,
            full_name=full_name,
            principal=query_one(request, "principal"),
        )
        return Response(s.assignments_out(assignments))

    @extend_schema(
        request=s.UpdatePermissionsInputSerializer,
        responses=dict,
        operation_id="uc_update_permissions",
    )
    def patch(self, request, securable_type, full_name):
        data = validated(s.UpdatePermissionsInputSerializer, json_body(request))
        assignments = services.permissions_update(
            actor=self.actor(),
            securable_type=securable_type,
            full_name=full_name,
            changes=[dict(c) for c in data["changes"]],
        )
        return Response(s.assignments_out(assignments))


class EffectivePermissionsView(DoorView):
    @extend_schema(
        parameters=[OpenApiParameter("principal", str)],
        responses=dict,
        operation_id="uc_get_effective_permissions",
    )
    def get(self, request, securable_type, full_name):
        effective = selectors.effective_permissions(
            actor=self.actor(),
            securable_type=securable_type,
            full_name=full_name,
            principal=query_one(request, "principal"),
        )
        return Response(s.effective_out(effective))
