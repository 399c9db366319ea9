"""Unity Catalog wire shapes: input validation and output rendering (UC field names, epoch ms)."""

from __future__ import annotations

from rest_framework import serializers

from core.api import StrictCharField, StringMapField, epoch_ms


def NameField(**kwargs):  # noqa: N802 - a field factory, used like a field class
    """A securable or principal name, never trimmed: " main" must not quietly become "main"
    in a body when the same spelling in a path is refused (one canonical form per door)."""
    return StrictCharField(max_length=255, trim_whitespace=False, **kwargs)


class CatalogCreateInputSerializer(serializers.Serializer):
    name = NameField()
    comment = StrictCharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False
    )
    properties = StringMapField(required=False, allow_null=True)
    storage_root = StrictCharField(required=False, allow_blank=True, allow_null=True)


class SecurableUpdateInputSerializer(serializers.Serializer):
    new_name = NameField(required=False, allow_null=True)
    comment = StrictCharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False
    )
    properties = StringMapField(required=False, allow_null=True)
    owner = NameField(required=False, allow_null=True)


class SchemaCreateInputSerializer(CatalogCreateInputSerializer):
    catalog_name = NameField()


class ModelCreateInputSerializer(serializers.Serializer):
    name = NameField()
    catalog_name = NameField()
    schema_name = NameField()
    comment = StrictCharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False
    )
    storage_location = StrictCharField(required=False, allow_blank=True, allow_null=True)


class PermissionsChangeSerializer(serializers.Serializer):
    principal = NameField()
    add = serializers.ListField(child=StrictCharField(), required=False, allow_null=True)
    remove = serializers.ListField(child=StrictCharField(), required=False, allow_null=True)


class UpdatePermissionsInputSerializer(serializers.Serializer):
    changes = PermissionsChangeSerializer(many=True)


# --- output --------------------------------------------------------------------------------


def _common(obj) -> dict:
    return {
        "comment": obj.comment or None,
        "properties": obj.properties or {},
        "owner": obj.owner_name or None,
        "created_at": epoch_ms(obj.created_at),
        "created_by": obj.created_by or None,
        "updated_at": epoch_ms(obj.updated_at),
        "updated_by": obj.updated_by or None,
    }


def catalog_out(obj) -> dict:
    return {"name": obj.name, **_common(obj), "id": str(obj.id)}


def schema_out(obj) -> dict:
    return {
        "name": obj.name,
        "catalog_name": obj.catalog.name,
        "full_name": obj.full_name,
        **_common(obj),
        "schema_id": str(obj.id),
    }


def model_out(obj) -> dict:
    data = {
        "name": obj.name,
        "catalog_name": obj.schema.catalog.name,
        "schema_name": obj.schema.name,
        "full_name": obj.full_name,
        "storage_location": obj.storage_location or None,
        **_common(obj),
        "id": str(obj.id),
    }
    return data


def assignments_out(assignments) -> dict:
    return {
        "privilege_assignments": [
            {
                "principal": a.principal,
                "principal_type": a.principal_type,
                "privileges": [p.value for p in a.privileges],
            }
            for a in assignments
        ]
    }


def effective_out(effective) -> dict:
    return {
        "privilege_assignments": [
            {
                "principal": effective.principal,
                "privileges": [
                    {
                        "privilege": s.privilege.value,
                        "inherited_from_type": str(s.securable_type).upper(),
                        "inherited_from_name": s.securable,
                        "source": s.via,
                        "granted_to": s.principal,
                    }
                    for s in effective.sources
                ],
            }
        ],
        "missing_gate": effective.missing_gate or None,
    }
