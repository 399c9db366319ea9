"""Registered models: create, update, rename, delete."""

from __future__ import annotations

from django.db import transaction

from audit.governance import governed
from catalog import authz
from catalog.privileges import Privilege
from catalog.selectors import model_lookup, schema_lookup
from catalog.services import (
    audit_write,
    clean_comment,
    save_new,
    securable_update,
    stamp,
)
from core.actor import Actor
from core.errors import AlreadyExists, FailedPrecondition, InvalidParameter
from core.names import canonical_name
from registry import storage
from registry.artifacts import delete_tree
from registry.models import LegalHold, ModelVersion, RegisteredModel, RegisteredModelTag
from registry.services.versions import tag_pairs
from webhooks import payloads as webhook_payloads
from webhooks.services import emit as webhook_emit


@governed("registered_model.create")
def registered_model_create(
    *,
    actor: Actor,
    catalog_name: object,
    schema_name: object,
    name: object,
    comment: object = None,
    storage_location: object = None,
    tags: object = None,
) -> RegisteredModel:
    """Create a model, with its tags in the same transaction; needs USE CATALOG, USE SCHEMA
    and CREATE MODEL.

    A model that exists and that the actor can see answers ALREADY_EXISTS before the privilege
    check: MLflow's `register_model` always tries a create first and goes on to add a version
    only on that error, so a user with MODIFY on the model but no CREATE MODEL on its schema
    must get it. One the actor cannot see answers the CREATE MODEL refusal, leaking nothing.
    """
    if catalog_name in (None, "") or schema_name in (None, ""):
        raise InvalidParameter("catalog_name and schema_name are required.")
    schema = schema_lookup(
        f"{canonical_name(catalog_name, field='catalog_name')}."
        f"{canonical_name(schema_name, field='schema_name')}"
    )
    key = canonical_name(name, field="model name")
    pairs = tag_pairs(tags)
    existing = RegisteredModel.objects.filter(schema=schema, name=key).first()
    if existing is not None and authz.can_see(actor, existing):
        raise AlreadyExists(f"Registered model '{existing.full_name}' already exists.")
    authz.require(actor, Privilege.CREATE_MODEL, schema)
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
    for tag_key, value in pairs:
        RegisteredModelTag.objects.create(model=obj, key=tag_key, value=value)
    audit_write(actor, "registered_model.create", obj, {"tags": dict(pairs)} if pairs else None)
    webhook_emit(
        "registered_model.created",
        webhook_payloads.registered_model_created(obj, dict(pairs)),
        securable=obj,
    )
    return obj


@governed("registered_model.update")
def registered_model_update(
    *,
    actor: Actor,
    full_name: object,
    new_name: object = None,
    comment: object = None,
    properties: object = None,
    owner: object = None,
) -> RegisteredModel:
    """Comment/properties need MODIFY; owner needs MANAGE; rename MANAGE and CREATE MODEL."""
    model: RegisteredModel = model_lookup(full_name)
    return securable_update(
        actor=actor,
        obj=model,
        new_name=new_name,
        comment=comment,
        properties=properties,
        owner=owner,
        metadata_privilege=Privilege.MODIFY,
    )


@governed("registered_model.delete")
def registered_model_delete(*, actor: Actor, full_name: object, force: bool = False) -> None:
    """Delete a model (MANAGE); one with live versions only with force. Files go after commit."""
    obj: RegisteredModel = model_lookup(full_name)
    authz.require(actor, Privilege.MANAGE, obj)
    if LegalHold.objects.filter(model=obj).exists():
        raise FailedPrecondition(
            f"Registered model '{obj.full_name}' or one of its versions is under legal hold; "
            "an admin must clear the hold before it can be deleted."
        )
    live = obj.versions.exclude(lifecycle=ModelVersion.Lifecycle.DELETED).count()
    if live and not force:
        raise FailedPrecondition(
            f"Registered model '{obj.full_name}' has {live} versions; use force=true."
        )
    audit_write(actor, "registered_model.delete", obj, {"force": bool(force), "versions": live})
    prefix = storage.model_prefix(obj)
    obj.delete()
    transaction.on_commit(lambda: delete_tree(prefix))
