"""Unity Catalog door for model versions, aliases and temporary credentials."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.permissions import DoorView
from core.api import StrictCharField, epoch_ms, json_body, query_one, validated
from core.errors import InvalidParameter
from core.openapi import UC_PAGE_PARAMETERS
from core.pagination import uc_page_size
from registry import selectors, services
from registry.services.credentials import model_version_credentials


class VersionCreateInputSerializer(serializers.Serializer):
    model_name = StrictCharField(max_length=255, trim_whitespace=False)
    catalog_name = StrictCharField(max_length=255, trim_whitespace=False)
    schema_name = StrictCharField(max_length=255, trim_whitespace=False)
    # The serializer's metaclass takes declared fields out of the class, so this body field
    # does not override Field.source, as the stubs take it to.
    source = StrictCharField(max_length=2048, trim_whitespace=False)  # type: ignore[assignment]
    run_id = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=64)
    comment = StrictCharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False
    )


class VersionUpdateInputSerializer(serializers.Serializer):
    comment = StrictCharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False
    )


class AliasInputSerializer(serializers.Serializer):
    version_num = serializers.IntegerField(min_value=1)


class CredentialsInputSerializer(serializers.Serializer):
    catalog_name = StrictCharField(max_length=255, trim_whitespace=False)
    schema_name = StrictCharField(max_length=255, trim_whitespace=False)
    model_name = StrictCharField(max_length=255, trim_whitespace=False)
    version = serializers.IntegerField(min_value=1)
    operation = StrictCharField(max_length=64)


def version_out(version, aliases: list[str] | None = None) -> dict:
    model = version.model
    return {
        "model_name": model.name,
        "catalog_name": model.schema.catalog.name,
        "schema_name": model.schema.name,
        "version": version.version,
        "source": version.source,
        "run_id": version.run_id or None,
        "status": version.status,
        "storage_location": version.storage_location,
        "comment": version.description or None,
        "aliases": [{"alias_name": a, "version_num": version.version} for a in aliases or []],
        "created_at": epoch_ms(version.created_at),
        "created_by": version.created_by or None,
        "updated_at": epoch_ms(version.updated_at),
        "updated_by": version.updated_by or None,
        "id": str(version.id),
    }


class UCVersionView(DoorView):
    """Model versions as Unity Catalog renders them."""

    def render(self, version):
        aliases = selectors.aliases_of([version.pk]).get(version.pk, [])
        return Response(version_out(version, aliases))


class VersionsCreateView(UCVersionView):
    @extend_schema(
        request=VersionCreateInputSerializer, responses=dict, operation_id="uc_create_version"
    )
    def post(self, request):
        data = validated(VersionCreateInputSerializer, json_body(request))
        full_name = f"{data['catalog_name']}.{data['schema_name']}.{data['model_name']}"
        version = services.model_version_create(
            actor=self.actor(),
            full_name=full_name,
            source=data["source"],
            run_id=data.get("run_id") or "",
            description=data.get("comment"),
        )
        return self.render(version)


class VersionsListView(UCVersionView):
    @extend_schema(
        parameters=UC_PAGE_PARAMETERS,
        responses=dict,
        operation_id="uc_list_versions",
    )
    def get(self, request, full_name):
        items, token = selectors.model_version_list(
            actor=self.actor(),
            full_name=full_name,
            max_results=uc_page_size(query_one(request, "max_results")),
            page_token=query_one(request, "page_token"),
        )
        aliases = selectors.aliases_of([v.pk for v in items])
        return Response(
            {
                "model_versions": [version_out(v, aliases.get(v.pk)) for v in items],
                "next_page_token": token,
            }
        )


class VersionDetailView(UCVersionView):
    @extend_schema(responses=dict, operation_id="uc_get_version")
    def get(self, request, full_name, version):
        return self.render(
            selectors.model_version_get(actor=self.actor(), full_name=full_name, version=version)
        )

    @extend_schema(
        request=VersionUpdateInputSerializer, responses=dict, operation_id="uc_update_version"
    )
    def patch(self, request, full_name, version):
        data = validated(VersionUpdateInputSerializer, json_body(request))
        obj = services.model_version_update(
            actor=self.actor(),
            full_name=full_name,
            version=version,
            description=data.get("comment"),
        )
        return self.render(obj)

    @extend_schema(responses=dict, operation_id="uc_delete_version")
    def delete(self, request, full_name, version):
        services.model_version_delete(actor=self.actor(), full_name=full_name, version=version)
        return Response({})


class VersionFinalizeView(UCVersionView):
    @extend_schema(request=None, responses=dict, operation_id="uc_finalize_version")
    def patch(self, request, full_name, version):
        obj = services.model_version_finalize(
            actor=self.actor(), full_name=full_name, version=version
        )
        return self.render(obj)


class AliasView(UCVersionView):
    @extend_schema(responses=dict, operation_id="uc_get_alias")
    def get(self, request, full_name, alias):
        return self.render(
            selectors.model_version_by_alias(actor=self.actor(), full_name=full_name, alias=alias)
        )

    @extend_schema(request=AliasInputSerializer, responses=dict, operation_id="uc_set_alias")
    def put(self, request, full_name, alias):
        data = validated(AliasInputSerializer, json_body(request))
        services.alias_set(
            actor=self.actor(), full_name=full_name, alias=alias, version=data["version_num"]
        )
        return self.render(
            selectors.model_version_by_alias(actor=self.actor(), full_name=full_name, alias=alias)
        )

    @extend_schema(responses=dict, operation_id="uc_delete_alias")
    def delete(self, request, full_name, alias):
        services.alias_delete(actor=self.actor(), full_name=full_name, alias=alias)
        return Response({})


class CredentialsView(UCVersionView):
    @extend_schema(
        request=CredentialsInputSerializer, responses=dict, operation_id="uc_version_credentials"
    )
    def post(self, request):
        data = validated(CredentialsInputSerializer, json_body(request))
        full_name = f"{data['catalog_name']}.{data['schema_name']}.{data['model_name']}"
        if data["operation"] not in ("READ_MODEL_VERSION", "READ_WRITE_MODEL_VERSION"):
            raise InvalidParameter(
                "operation must be READ_MODEL_VERSION or READ_WRITE_MODEL_VERSION."
            )
        return Response(
            model_version_credentials(
                actor=self.actor(),
                full_name=full_name,
                version=data["version"],
                operation=data["operation"],
            )
        )
