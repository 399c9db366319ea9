"""Reads of versions and aliases: visible when the model is (USE gates + any privilege)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from uuid import UUID

from django.db import connection

from audit.governance import governed
from catalog import authz
from catalog.selectors import model_lookup
from core import rows
from core.actor import Actor
from core.errors import NotFound
from core.pagination import page
from registry.models import (
    AliasHistory,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
)
from registry.services.lookups import (
    clean_alias,
    show_overdue,
    version_by_alias,
    version_of,
)
from registry.services.versions import prefetched_tags


def _visible_model(actor: Actor, full_name: object) -> RegisteredModel:
    model: RegisteredModel = model_lookup(full_name)
    authz.require_visible(actor, model)
    return model


@governed("model_version.get", atomic=False)
def model_version_get(*, actor: Actor, full_name: object, version: object) -> ModelVersion:
    return version_of(_visible_model(actor, full_name), version)


@governed("model_version.list", atomic=False)
def model_version_list(
    *,
    actor: Actor,
    full_name: object,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[list[ModelVersion], str | None]:
    """Live versions of one model in version order, keyset-paged."""
    model = _visible_model(actor, full_name)
    qs = (
        ModelVersion.objects.filter(model=model)
        .exclude(lifecycle=ModelVersion.Lifecycle.DELETED)
        .select_related("model__schema__catalog")
    )
    items, token = page(qs, key_field="version", max_results=max_results, page_token=page_token)
    for item in items:
        show_overdue(item)
    return items, token


@governed("alias.get", atomic=False)
def model_version_by_alias(*, actor: Actor, full_name: object, alias: object) -> ModelVersion:
    model = _visible_model(actor, full_name)
    name = clean_alias(alias)
    found = version_by_alias(model, name)
    if found is None:
        raise NotFound(f"Alias {name!r} does not exist on {model.full_name}.")
    return found


def aliases_of(versions: Iterable[UUID | ModelVersion]) -> dict[UUID, list[str]]:
    """version id -> sorted alias names, for rendering; one query."""
    out: dict[UUID, list[str]] = {}
    for version_id, alias in ModelAlias.objects.filter(version__in=list(versions)).values_list(
        "version_id", "alias"
    ):
        out.setdefault(version_id, []).append(alias)
    return {k: sorted(v) for k, v in out.items()}


@functools.cache
def _extras_sql(vendor: str, n: int) -> str:
    tag, alias = ModelVersionTag._meta.db_table, ModelAlias._meta.db_table
    ids = rows.any_of(vendor, n)
    return (
        f'SELECT 0, t.version_id, t.key, t.value FROM "{tag}" t WHERE t.version_id {ids} '
        f'UNION ALL SELECT 1, a.version_id, a.alias, NULL FROM "{alias}" a '
        f"WHERE a.version_id {ids}"
    )


def version_extras(versions: Iterable[ModelVersion]) -> dict[UUID, list[str]]:
    """For rendering these versions: version id -> sorted alias names, and each version's
    tags loaded into its `tags` prefetch cache (sorted by key; as prefetch_related would),
    in one raw statement whose text is built once, instead of a prefetch and an alias
    query compiled by the ORM on every request."""
    by_raw = {rows.db_value(ModelVersion, "id", v.pk): v for v in versions}
    if not by_raw:
        return {}
    ids = list(by_raw)
    vendor = connection.vendor
    params = [ids, ids] if vendor == "postgresql" else [*ids, *ids]
    with connection.cursor() as cursor:
        cursor.execute(_extras_sql(vendor, len(ids)), params)
        found = cursor.fetchall()
    tags: dict[UUID, list[tuple[str, str]]] = {}
    aliases: dict[UUID, list[str]] = {}
    for kind, raw, name, value in found:
        version = by_raw[raw]
        if kind == 0:
            tags.setdefault(version.pk, []).append((name, value))
        else:
            aliases.setdefault(version.pk, []).append(name)
    for version in by_raw.values():
        prefetched_tags(
            version,
            [
                ModelVersionTag(version_id=version.pk, key=key, value=value)
                for key, value in sorted(tags.get(version.pk, ()))
            ],
        )
    return {pk: sorted(names) for pk, names in aliases.items()}


@governed("alias.history", atomic=False)
def alias_history(*, actor: Actor, full_name: object, alias: object = None) -> list[AliasHistory]:
    model = _visible_model(actor, full_name)
    qs = AliasHistory.objects.filter(model=model)
    if alias not in (None, ""):
        qs = qs.filter(alias=clean_alias(alias))
    return list(qs.order_by("id")[:1000])
