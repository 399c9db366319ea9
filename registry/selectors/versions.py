"""Reads of versions and aliases: visible when the model is (USE gates + any privilege)."""

from __future__ import annotations

from catalog import authz
from catalog.selectors import model_lookup
from core.actor import Actor
from core.errors import NotFound
from core.pagination import page
from core.services import governed
from registry.models import AliasHistory, ModelAlias, ModelVersion
from registry.services.versions import clean_alias, expire_if_overdue, version_of


def _visible_model(actor: Actor, full_name):
    model = model_lookup(full_name)
    authz.require_visible(actor, model)
    return model


@governed("model_version.get", atomic=False)
def model_version_get(*, actor: Actor, full_name, version) -> ModelVersion:
    return version_of(_visible_model(actor, full_name), version)


@governed("model_version.list", atomic=False)
def model_version_list(*, actor: Actor, full_name, max_results=None, page_token=None):
    """Live versions of one model in version order, keyset-paged."""
    model = _visible_model(actor, full_name)
    qs = (
        ModelVersion.objects.filter(model=model)
        .exclude(lifecycle=ModelVersion.Lifecycle.DELETED)
        .select_related("model__schema__catalog")
    )
    items, token = page(qs, key_field="version", max_results=max_results, page_token=page_token)
    for item in items:
        expire_if_overdue(item)
    return items, token


@governed("alias.get", atomic=False)
def model_version_by_alias(*, actor: Actor, full_name, alias) -> ModelVersion:
    model = _visible_model(actor, full_name)
    name = clean_alias(alias)
    found = ModelAlias.objects.select_related("version").filter(model=model, alias=name).first()
    if found is None:
        raise NotFound(f"Alias {name!r} does not exist on {model.full_name}.")
    found.version.model = model  # already loaded with its schema and catalog
    return found.version


def aliases_of(versions) -> dict:
    """version id -> sorted alias names, for rendering; one query."""
    out: dict = {}
    for version_id, alias in ModelAlias.objects.filter(version__in=list(versions)).values_list(
        "version_id", "alias"
    ):
        out.setdefault(version_id, []).append(alias)
    return {k: sorted(v) for k, v in out.items()}


@governed("alias.history", atomic=False)
def alias_history(*, actor: Actor, full_name, alias=None) -> list[AliasHistory]:
    model = _visible_model(actor, full_name)
    qs = AliasHistory.objects.filter(model=model)
    if alias not in (None, ""):
        qs = qs.filter(alias=clean_alias(alias))
    return list(qs.order_by("id")[:1000])
