"""Writes to the securable tree. Each service: authorize, validate, save, audit, in one
transaction (the `governed` wrapper)."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Concat, Substr
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import User
from accounts.selectors import principal_by_name, principal_name
from audit.governance import governed
from audit.services import audit_event_write
from catalog import authz, securables
from catalog.models import Catalog, Schema, Securable
from catalog.privileges import GRANTABLE, Privilege, SecurableType, parse_privilege
from catalog.securables import Node
from catalog.selectors import (
    Assignment,
    assignments_of,
    catalog_lookup,
    metastore,
    schema_lookup,
    securable_lookup,
)
from core.actor import Actor
from core.errors import AlreadyExists, FailedPrecondition, InvalidParameter
from core.names import canonical_name

MAX_COMMENT = 65_536
MAX_PROPERTIES = 1_000


def clean_comment(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_COMMENT or "\x00" in value:
        raise InvalidParameter(f"comment must be a string of at most {MAX_COMMENT} characters.")
    return value


def clean_properties(value: object) -> dict[str, str]:
    """UC properties: a flat map of string to string."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_PROPERTIES:
        raise InvalidParameter("properties must be an object of string values.")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str) or not key or len(key) > 255:
            raise InvalidParameter("properties must map non-empty string keys to string values.")
        if "\x00" in key or "\x00" in item or len(item) > 4096:
            raise InvalidParameter("properties values must be at most 4096 characters.")
    return dict(value)


def set_owner(obj: Securable, owner: object) -> None:
    principal = principal_by_name(owner)
    if isinstance(principal, User):
        obj.owner_user, obj.owner_group = principal, None
    else:
        obj.owner_user, obj.owner_group = None, principal


def stamp(obj: Securable, actor: Actor, *, created: bool = False) -> None:
    obj.updated_by = actor.username
    if created:
        obj.created_by = actor.username
        obj.owner_user = actor.user


def save_new(obj: Securable, kind: str) -> None:
    """Insert, answering RESOURCE_ALREADY_EXISTS on a name clash (also under a race)."""
    try:
        with transaction.atomic():
            obj.save(force_insert=True)
    except IntegrityError:
        raise AlreadyExists(f"{kind} '{obj.full_name}' already exists.") from None


def save_existing(obj: Securable, kind: str) -> None:
    """Update, answering RESOURCE_ALREADY_EXISTS when a rename races another."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise AlreadyExists(f"{kind} '{obj.full_name}' already exists.") from None


def audit_write(
    actor: Actor, action: str, obj: Node, details: dict[str, Any] | None = None
) -> None:
    audit_event_write(
        actor=actor,
        action=action,
        securable_type=str(obj.securable_type),
        securable=obj.full_name,
        details=details or {},
    )


def apply_updates(
    *,
    actor: Actor,
    obj: Securable,
    comment: object = None,
    properties: object = None,
    owner: object = None,
    metadata_privilege: Privilege,
) -> dict[str, Any]:
    """Comment/properties (need `metadata_privilege`) and owner (needs MANAGE); returns changes."""
    changes: dict[str, Any] = {}
    if comment is not None or properties is not None:
        authz.require(actor, metadata_privilege, obj)
        if comment is not None:
            obj.comment = clean_comment(comment)
            changes["comment"] = obj.comment
        if properties is not None:
            obj.properties = clean_properties(properties)
            changes["properties"] = obj.properties
    if owner is not None:
        authz.require(actor, Privilege.MANAGE, obj)
        previous = obj.owner_name
        set_owner(obj, owner)
        changes["owner"] = {"from": previous, "to": obj.owner_name}
    return changes


# --- catalogs ------------------------------------------------------------------------------


@governed("catalog.create")
def catalog_create(
    *, actor: Actor, name: object, comment: object = None, properties: object = None
) -> Catalog:
    """Create a catalog owned by the actor; needs CREATE CATALOG on the metastore."""
    authz.require(actor, Privilege.CREATE_CATALOG, metastore())
    obj = Catalog(
        name=canonical_name(name, field="catalog name"),
        comment=clean_comment(comment),
        properties=clean_properties(properties),
    )
    stamp(obj, actor, created=True)
    save_new(obj, "Catalog")
    audit_write(actor, "catalog.create", obj, {"comment": obj.comment})
    return obj


_S = TypeVar("_S", bound=Securable)


def securable_update(
    *,
    actor: Actor,
    obj: _S,
    new_name: object = None,
    comment: object = None,
    properties: object = None,
    owner: object = None,
    metadata_privilege: Privilege,
) -> _S:
    """The one update of a catalog, schema or registered model: comment and properties need
    `metadata_privilege`, the owner MANAGE, a new name MANAGE and the create privilege on the
    parent (CREATE CATALOG on the metastore for a catalog); the full names below follow. No
    change, no stamp and no audit event. Called inside the caller's governed transaction."""
    authz.require_visible(actor, obj)
    changes = apply_updates(
        actor=actor,
        obj=obj,
        comment=comment,
        properties=properties,
        owner=owner,
        metadata_privilege=metadata_privilege,
    )
    kind = securables.kind(obj.securable_type)
    if new_name is not None and canonical_name(new_name, field="new_name") != obj.name:
        parent = getattr(obj, kind.parent_field) if kind.parent is not None else metastore()
        authz.require(actor, Privilege.MANAGE, obj)
        if kind.create_privilege is not None:
            authz.require(actor, kind.create_privilege, parent)
        old = obj.full_name
        obj.name = canonical_name(new_name, field="new_name")
        new = obj.name if kind.parent is None else f"{parent.full_name}.{obj.name}"
        setattr(obj, kind.name_field, new)  # the unique name column: full_name, or name
        if kind.model._default_manager.filter(**{kind.name_field: new}).exists():
            raise AlreadyExists(f"{kind.label} '{new}' already exists.")
        _rename_descendants(old_prefix=old, new_prefix=new, securable=obj)
        changes["name"] = {"from": old, "to": new}
    if not changes:
        return obj  # nothing to change: no stamp, no audit event
    stamp(obj, actor)
    save_existing(obj, kind.label)
    audit_write(actor, f"{obj.securable_type}.update", obj, changes)
    return obj


@governed("catalog.update")
def catalog_update(
    *,
    actor: Actor,
    name: object,
    new_name: object = None,
    comment: object = None,
    properties: object = None,
    owner: object = None,
) -> Catalog:
    """Change comment/properties (MANAGE), owner (MANAGE) or name (MANAGE + CREATE CATALOG)."""
    return securable_update(
        actor=actor,
        obj=catalog_lookup(name),
        new_name=new_name,
        comment=comment,
        properties=properties,
        owner=owner,
        metadata_privilege=Privilege.MANAGE,
    )


def _rename_descendants(*, old_prefix: str, new_prefix: str, securable: Node) -> None:
    """Keep the denormalized full names below a renamed securable in step: one UPDATE per
    securable type registered below it (catalog/securables.py)."""
    tail = Substr("full_name", len(old_prefix) + 1)
    for kind in securables.kinds():
        path = securables.path_to(kind.type, securable.securable_type)
        if path is not None:
            kind.model._default_manager.filter(**{path: securable}).update(
                full_name=Concat(Value(new_prefix), tail)
            )


@governed("catalog.delete")
def catalog_delete(*, actor: Actor, name: object, force: bool = False) -> None:
    """Delete a catalog (MANAGE); a non-empty one only with force."""
    obj = catalog_lookup(name)
    authz.require(actor, Privilege.MANAGE, obj)
    count = obj.schemas.count()
    if count and not force:
        raise FailedPrecondition(
            f"Catalog '{obj.name}' is not empty ({count} schemas); use force=true."
        )
    audit_write(actor, "catalog.delete", obj, {"force": bool(force), "schemas": count})
    obj.delete()


# --- schemas -------------------------------------------------------------------------------


@governed("schema.create")
def schema_create(
    *,
    actor: Actor,
    catalog_name: object,
    name: object,
    comment: object = None,
    properties: object = None,
) -> Schema:
    """Create a schema; needs USE CATALOG and CREATE SCHEMA on the catalog."""
    catalog = catalog_lookup(catalog_name)
    authz.require(actor, Privilege.CREATE_SCHEMA, catalog)
    key = canonical_name(name, field="schema name")
    obj = Schema(
        catalog=catalog,
        name=key,
        full_name=f"{catalog.name}.{key}",
        comment=clean_comment(comment),
        properties=clean_properties(properties),
    )
    stamp(obj, actor, created=True)
    save_new(obj, "Schema")
    audit_write(actor, "schema.create", obj)
    return obj


@governed("schema.update")
def schema_update(
    *,
    actor: Actor,
    full_name: object,
    new_name: object = None,
    comment: object = None,
    properties: object = None,
    owner: object = None,
) -> Schema:
    """Change comment/properties (MANAGE), owner (MANAGE) or name (MANAGE + CREATE SCHEMA)."""
    return securable_update(
        actor=actor,
        obj=schema_lookup(full_name),
        new_name=new_name,
        comment=comment,
        properties=properties,
        owner=owner,
        metadata_privilege=Privilege.MANAGE,
    )


@governed("schema.delete")
def schema_delete(*, actor: Actor, full_name: object, force: bool = False) -> None:
    obj = schema_lookup(full_name)
    authz.require(actor, Privilege.MANAGE, obj)
    count = obj.models.count()
    if count and not force:
        raise FailedPrecondition(
            f"Schema '{obj.full_name}' is not empty ({count} models); use force=true."
        )
    audit_write(actor, "schema.delete", obj, {"force": bool(force), "models": count})
    obj.delete()


# --- grants --------------------------------------------------------------------------------


@governed("permissions.update")
def permissions_update(
    *, actor: Actor, securable_type: object, full_name: object, changes: object
) -> list[Assignment]:
    """Grant and revoke (UC's PATCH body); needs MANAGE on the securable."""
    securable = securable_lookup(securable_type, full_name)
    authz.require(actor, Privilege.MANAGE, securable)
    if not isinstance(changes, list) or not changes:
        raise InvalidParameter("changes must be a non-empty list.")
    if len(changes) > 1000:
        raise InvalidParameter("At most 1000 changes per request.")
    grantable = GRANTABLE[SecurableType(securable.securable_type)]
    applied: list[dict[str, Any]] = []
    for change in changes:
        if not isinstance(change, dict):
            raise InvalidParameter("Each change must be an object.")
        principal = principal_by_name(change.get("principal"))
        add = _privileges(change.get("add"), grantable, securable)
        remove = _privileges(change.get("remove"), grantable, securable)
        for privilege in add:
            assign_perm(privilege.codename, principal, securable)
        for privilege in remove:
            remove_perm(privilege.codename, principal, securable)
        applied.append(
            {
                "principal": principal_name(principal),
                "principal_type": "USER" if isinstance(principal, User) else "GROUP",
                "add": [p.value for p in add],
                "remove": [p.value for p in remove],
            }
        )
    audit_write(actor, "permissions.update", securable, {"changes": applied})
    return assignments_of(securable)


def _privileges(raw: object, grantable: frozenset[Privilege], securable: Node) -> list[Privilege]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 50:
        raise InvalidParameter("add and remove must be lists of privileges.")
    out = []
    for item in raw:
        privilege = parse_privilege(item)
        if privilege not in grantable:
            raise InvalidParameter(
                f"{privilege.value} cannot be granted on a {securable.securable_type}."
            )
        out.append(privilege)
    return sorted(set(out))
