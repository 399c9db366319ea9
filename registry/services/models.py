"""Registered models: create, update, rename, delete."""

from __future__ import annotations

from django.db import transaction

from catalog import authz
from catalog.privileges import Privilege
from catalog.selectors import model_lookup, schema_lookup
from catalog.services import (
    apply_updates,
    audit_write,
    clean_comment,
    save_existing,
    save_new,
    stamp,
)
from core.actor import Actor
from core.errors import AlreadyExists, FailedPrecondition, InvalidParameter
from core.names import canonical_name
from core.services import governed
from registry import storage
from registry.artifacts import delete_tree
from registry.models import ModelVersion, RegisteredModel


@governed("registered_model.create")
def registered_model_create(
    *, actor: Actor, catalog_name, schema_name, name, comment=None, storage_location=None
) -> RegisteredModel:
    """Create a model; needs USE CATALOG, USE SCHEMA and CREATE MODEL."""
    if catalog_name in (None, "") or schema_name in (None, ""):
        raise InvalidParameter("catalog_name and schema_name are required.")
    schema = schema_lookup(
        f"{canonical_name(catalog_name, field='catalog_name')}."
        f"{canonical_name(schema_name, field='schema_name')}"
    )
    authz.require(actor, Privilege.CREATE_MODEL, schema)
    key = canonical_name(name, field="model name")
    obj = RegisteredModel(
        schema=schema,
        name=key,
        full_name=f"{schema.full_name}.{key}",
        comment=clean_comment(comment),
    )
    if storage_location not in (None, ""):
        raise InvalidParameter(
            "storage_location is assigned by the server; external locations are not supported."
        )
    stamp(obj, actor, created=True)
    obj.storage_location = storage.storage_uri(storage.model_prefix(obj))
    save_new(obj, "Registered model")
    audit_write(actor, "registered_model.create", obj)
    return obj


@governed("registered_model.update")
def registered_model_update(
    *, actor: Actor, full_name, new_name=None, comment=None, properties=None, owner=None
) -> RegisteredModel:
    """Comment/properties need MODIFY; owner needs MANAGE; rename MANAGE and CREATE MODEL."""
    obj = model_lookup(full_name)
    authz.require_visible(actor, obj)
    changes = apply_updates(
        actor=actor,
        obj=obj,
        comment=comment,
        properties=properties,
        owner=owner,
        metadata_privilege=Privilege.MODIFY,
    )
    if new_name is not None and canonical_name(new_name, field="new_name") != obj.name:
        authz.require(actor, Privilege.MANAGE, obj)
        authz.require(actor, Privilege.CREATE_MODEL, obj.schema)
        old = obj.full_name
        obj.name = canonical_name(new_name, field="new_name")
        obj.full_name = f"{obj.schema.full_name}.{obj.name}"
        if RegisteredModel.objects.filter(full_name=obj.full_name).exists():
            raise AlreadyExists(f"Registered model '{obj.full_name}' already exists.")
        changes["name"] = {"from": old, "to": obj.full_name}
    if not changes:
        return obj  # nothing to change: no stamp, no audit event
    stamp(obj, actor)
    save_existing(obj, "Registered model")
    audit_write(actor, "registered_model.update", obj, changes)
    return obj


@governed("registered_model.delete")
def registered_model_delete(*, actor: Actor, full_name, force: bool = False) -> None:
    """Delete a model (MANAGE); one with live versions only with force. Files go after commit."""
    obj = model_lookup(full_name)
    authz.require(actor, Privilege.MANAGE, obj)
    live = obj.versions.exclude(lifecycle=ModelVersion.Lifecycle.DELETED).count()
    if live and not force:
        raise FailedPrecondition(
            f"Registered model '{obj.full_name}' has {live} versions; use force=true."
        )
    audit_write(actor, "registered_model.delete", obj, {"force": bool(force), "versions": live})
    prefix = storage.model_prefix(obj)
    obj.delete()
    transaction.on_commit(lambda: delete_tree(prefix))
