"""Reads of the securable tree; every selector returns only what the actor may see."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection

from accounts.models import User
from accounts.selectors import principal_by_name
from audit.governance import governed
from catalog import authz, securables
from catalog.models import Catalog, Metastore, Schema, Securable
from catalog.privileges import Privilege, SecurableType, parse_securable_type
from catalog.securables import Node
from core.actor import Actor
from core.errors import Denial, InvalidParameter, NotFound, PermissionDenied
from core.names import canonical_name, split_full_name
from core.pagination import page
from core.rows import Part, build, fetch_one, select_list


def _column(kind: securables.SecurableKind, field_name: str) -> str:
    field = kind.model._meta.get_field(field_name)
    column = getattr(field, "column", None)  # None for a reverse relation
    if not isinstance(column, str):
        raise TypeError(f"{kind.model.__name__}.{field_name} has no column")
    return column


def metastore() -> Metastore:
    """The single metastore, created on first use."""
    obj, _ = Metastore.objects.get_or_create(name=settings.STEWARD_METASTORE_NAME)
    return obj


def _missing(kind: str, name: str) -> NotFound:
    return NotFound(f"{kind} '{name[:300]}' does not exist.")


def _owner_parts(alias: str) -> list[Part]:
    return [
        Part(User, f"{alias}_ou", ("id", "username"), (alias, "owner_user"), nullable=True),
        Part(Group, f"{alias}_og", ("id", "name"), (alias, "owner_group"), nullable=True),
    ]


def _owner_joins(alias: str) -> str:
    return (
        f'LEFT JOIN {User._meta.db_table} {alias}_ou ON {alias}_ou.id = {alias}."owner_user_id" '
        f'LEFT JOIN {Group._meta.db_table} {alias}_og ON {alias}_og.id = {alias}."owner_group_id"'
    )


@functools.cache
def _lookup_sql(securable_type: SecurableType, by_id: bool = False) -> tuple[str, list[Part]]:
    """(SQL, parts) loading a securable by its unique name with its parents and its owner, as
    `select_related` would, built once per process (see core/rows.py for why). The joins
    follow the registered parent chain (catalog/securables.py)."""
    chain = securables.chain_types(securable_type)[::-1]  # the securable first, then upwards
    aliases = [f"t{depth}" for depth in range(len(chain))]
    parts = [Part(chain[0].model, aliases[0])]
    tables = f"{chain[0].model._meta.db_table} {aliases[0]}"
    for depth in range(1, len(chain)):
        child, parent = chain[depth - 1], chain[depth]
        alias, child_alias = aliases[depth], aliases[depth - 1]
        parts.append(Part(parent.model, alias, attach=(child_alias, child.parent_field)))
        fk = _column(child, child.parent_field)
        tables += (
            f' JOIN {parent.model._meta.db_table} {alias} ON {alias}.id = {child_alias}."{fk}"'
        )
    parts += _owner_parts(aliases[0])
    name_column = _column(chain[0], chain[0].name_field)
    where = f'{aliases[0]}."{name_column}" = %s' if not by_id else f"{aliases[0]}.id = %s"
    sql = f"SELECT {select_list(parts)} FROM {tables} {_owner_joins(aliases[0])} WHERE {where}"
    return sql, parts


def _lookup(
    securable_type: SecurableType, key: object, *, lock: bool = False, by_id: bool = False
) -> Any:
    """The securable (an instance of the type's registered model) or None."""
    sql, parts = _lookup_sql(securable_type, by_id)
    pk = parts[0].model._meta.pk
    if by_id and pk is not None:
        key = pk.get_db_prep_value(key, connection)
    if lock and connection.features.has_select_for_update_of:
        # The securable's own row only (not its parents or owner), like select_for_update(of=).
        sql += f" FOR UPDATE OF {parts[0].alias}"
    row = fetch_one(sql, [key])
    return None if row is None else build(parts, row)[0]


def catalog_lookup(name: object) -> Catalog:
    """Load a catalog by name without authorization (internal; callers check)."""
    key = canonical_name(name, field="catalog name")
    obj: Catalog | None = _lookup(SecurableType.CATALOG, key)
    if obj is None:
        raise _missing("Catalog", key)
    return obj


def schema_lookup(full_name: object) -> Schema:
    catalog_name, schema_name = split_full_name(full_name, 2, field="schema full_name")
    obj: Schema | None = _lookup(SecurableType.SCHEMA, f"{catalog_name}.{schema_name}")
    if obj is None:
        raise _missing("Schema", f"{catalog_name}.{schema_name}")
    return obj


def model_lookup(full_name: object, *, lock: bool = False) -> Any:
    """A registered model with its schema, catalog and owner, without authorization; `lock`
    locks the model's row for the rest of the transaction. (Typed Any: the model class is the
    registry's, which catalog does not import.)"""
    parts = split_full_name(full_name, 3, field="model full_name")
    key = ".".join(parts)
    obj = _lookup(SecurableType.REGISTERED_MODEL, key, lock=lock)
    if obj is None:
        raise _missing("Registered model", key)
    return obj


def model_by_id(pk: object) -> Any:
    """A registered model by id with its schema, catalog and owner (None if there is none),
    without authorization."""
    return _lookup(SecurableType.REGISTERED_MODEL, pk, by_id=True)


def securable_lookup(securable_type: object, full_name: object) -> Metastore | Securable:
    """Any securable by its UC type name and full name (the metastore by id or name)."""
    st = parse_securable_type(securable_type)
    if st == SecurableType.METASTORE:
        store = metastore()
        if full_name not in (str(store.id), store.name):
            raise _missing("Metastore", str(full_name))
        return store
    if st == SecurableType.CATALOG:
        return catalog_lookup(full_name)
    if st == SecurableType.SCHEMA:
        return schema_lookup(full_name)
    model: Securable = model_lookup(full_name)
    return model


@governed("catalog.get", atomic=False)
def catalog_get(*, actor: Actor, name: object) -> Catalog:
    obj = catalog_lookup(name)
    authz.require_visible(actor, obj)
    return obj


@governed("catalog.list", atomic=False)
def catalog_list(
    *, actor: Actor, max_results: object = None, page_token: str | None = None
) -> tuple[list[Catalog], str | None]:
    qs = authz.visible_catalogs(actor).select_related("owner_user", "owner_group")
    return page(qs, key_field="name", max_results=max_results, page_token=page_token)


@governed("schema.get", atomic=False)
def schema_get(*, actor: Actor, full_name: object) -> Schema:
    obj = schema_lookup(full_name)
    authz.require_visible(actor, obj)
    return obj


@governed("schema.list", atomic=False)
def schema_list(
    *,
    actor: Actor,
    catalog_name: object,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[list[Schema], str | None]:
    if catalog_name in (None, ""):
        raise InvalidParameter("catalog_name is required.")
    catalog = catalog_lookup(catalog_name)
    authz.require_visible(actor, catalog)
    qs = authz.visible_schemas(actor, Schema.objects.filter(catalog=catalog)).select_related(
        "catalog", "owner_user", "owner_group"
    )
    return page(qs, key_field="full_name", max_results=max_results, page_token=page_token)


# --- grants --------------------------------------------------------------------------------


@dataclass
class Assignment:
    principal: str
    principal_type: str  # USER or GROUP
    privileges: list[Privilege]


def assignments_of(securable: Node) -> list[Assignment]:
    """Every direct grant on one securable, grouped by principal; two queries."""
    kind = securables.kind(securable.securable_type)
    UG, GG = kind.user_grants, kind.group_grants  # noqa: N806
    by_user: dict[str, set[Privilege]] = defaultdict(set)
    by_group: dict[str, set[Privilege]] = defaultdict(set)
    for name, codename in UG._default_manager.filter(content_object_id=securable.pk).values_list(
        "user__username", "permission__codename"
    ):
        by_user[name].add(Privilege.from_codename(codename))
    for name, codename in GG._default_manager.filter(content_object_id=securable.pk).values_list(
        "group__name", "permission__codename"
    ):
        by_group[name].add(Privilege.from_codename(codename))
    result = [Assignment(n, "USER", sorted(p)) for n, p in sorted(by_user.items())]
    result += [Assignment(n, "GROUP", sorted(p)) for n, p in sorted(by_group.items())]
    return result


@governed("permissions.get", atomic=False)
def permissions_get(
    *, actor: Actor, securable_type: object, full_name: object, principal: object = None
) -> list[Assignment]:
    """Grants on a securable. MANAGE holders see all; others only their own and their groups'."""
    securable = securable_lookup(securable_type, full_name)
    authz.require_visible(actor, securable)
    assignments = assignments_of(securable)
    if not authz.check(actor, Privilege.MANAGE, securable):
        p = authz.principals(actor)
        mine = set(Group.objects.filter(pk__in=p.group_ids).values_list("name", flat=True))
        assignments = [
            a
            for a in assignments
            if (a.principal_type == "USER" and a.principal == actor.username)
            or (a.principal_type == "GROUP" and a.principal in mine)
        ]
    if principal not in (None, ""):
        assignments = [a for a in assignments if a.principal == principal]
    return assignments


@dataclass
class Effective:
    principal: str
    sources: list[authz.Source]
    missing_gate: str


@governed("permissions.effective", atomic=False)
def effective_permissions(
    *, actor: Actor, securable_type: object, full_name: object, principal: object = None
) -> Effective:
    """What a principal may do on a securable and why. Asking about someone else needs MANAGE."""
    securable = securable_lookup(securable_type, full_name)
    authz.require_visible(actor, securable)
    if principal in (None, "", actor.username):
        return _effective_for(actor.user, securable)
    if not authz.check(actor, Privilege.MANAGE, securable):
        raise PermissionDenied(
            "Asking about another principal needs MANAGE on the securable.",
            denied=Denial(str(securable.securable_type), securable.full_name, "MANAGE"),
        )
    return _effective_for(principal_by_name(principal), securable)


def _effective_for(who: User | Group, securable: Node) -> Effective:
    if isinstance(who, User):
        p = authz.principals_for_user(who)
        name = who.username
    else:
        p = authz.principals_for_group(who)
        name = who.name
    sources, missing = authz.explain(p, securable)
    return Effective(principal=name, sources=[] if missing else sources, missing_gate=missing)
