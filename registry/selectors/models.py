"""Registered model reads."""

from __future__ import annotations

from audit.governance import governed
from catalog import authz
from catalog.selectors import catalog_lookup, model_lookup, schema_lookup
from core.actor import Actor
from core.errors import InvalidParameter
from core.names import canonical_name
from core.pagination import page
from registry.models import RegisteredModel


@governed("registered_model.get", atomic=False)
def registered_model_get(*, actor: Actor, full_name: object) -> RegisteredModel:
    obj: RegisteredModel = model_lookup(full_name)
    authz.require_visible(actor, obj)
    return obj


@governed("registered_model.list", atomic=False)
def registered_model_list(
    *,
    actor: Actor,
    catalog_name: object = None,
    schema_name: object = None,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[list[RegisteredModel], str | None]:
    """Models the actor may see, optionally within one catalog or schema; keyset pages."""
    qs = RegisteredModel.objects.all()
    if schema_name not in (None, ""):
        if catalog_name in (None, ""):
            raise InvalidParameter("schema_name needs catalog_name.")
        schema = schema_lookup(
            f"{canonical_name(catalog_name, field='catalog_name')}."
            f"{canonical_name(schema_name, field='schema_name')}"
        )
        authz.require_visible(actor, schema)
        qs = qs.filter(schema=schema)
    elif catalog_name not in (None, ""):
        catalog = catalog_lookup(catalog_name)
        authz.require_visible(actor, catalog)
        qs = qs.filter(schema__catalog=catalog)
    qs = (
        authz.visible_models(actor, qs)
        .select_related("schema__catalog", "owner_user", "owner_group")
        .only(*LIST_FIELDS)
    )
    return page(
        qs, key_field="full_name", max_results=max_results, page_token=page_token, two_step=True
    )


# What a listed model renders: its own columns and the names of its parents and owner (not,
# for instance, the owner's password hash).
LIST_FIELDS = [
    *(f.name for f in RegisteredModel._meta.concrete_fields),
    "schema__name",
    "schema__catalog__name",
    "owner_user__username",
    "owner_group__name",
]
