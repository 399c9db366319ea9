"""Things attached to one securable of the tree: a catalog, a schema or a registered model.

Alias policies, retention policies and webhooks each hang on one level of the tree and apply
to everything below it. They share the three foreign keys (at most one set), the lookup of
"attached here or above" and the nearest-wins rule, defined once here. The registered model
is named by its label: catalog never imports the registry (catalog/securables.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models
from django.db.models import Q, QuerySet

from catalog import authz
from catalog.models import Catalog, Schema
from catalog.privileges import SecurableType, parse_securable_type
from catalog.selectors import securable_lookup
from core.actor import Actor
from core.errors import InvalidParameter

# The foreign key of each level, nearest first.
LEVELS = (
    (SecurableType.REGISTERED_MODEL, "model"),
    (SecurableType.SCHEMA, "schema"),
    (SecurableType.CATALOG, "catalog"),
)
_FIELD = dict(LEVELS)


class ScopedToSecurable(models.Model):
    """Attached to one catalog, schema or registered model (none: the whole metastore, where
    the concrete model's constraint allows it)."""

    catalog = models.ForeignKey(
        Catalog, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    schema = models.ForeignKey(
        Schema, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    model = models.ForeignKey(
        "registry.RegisteredModel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )

    class Meta:
        abstract = True

    @property
    def securable(self) -> Any:
        """The catalog, schema or model it hangs on; None for the whole metastore."""
        return self.model or self.schema or self.catalog

    @property
    def securable_type(self) -> str:
        return str(self.securable.securable_type)

    @property
    def securable_full_name(self) -> str:
        return self.securable.full_name

    @property
    def securable_id(self) -> Any:
        """The id of the securable it hangs on (no query); None for the whole metastore."""
        return self.model_id or self.schema_id or self.catalog_id

    @property
    def level(self) -> int:
        """0 on a model, 1 on a schema, 2 on a catalog, 3 on the metastore: lower is nearer."""
        for depth, (_, name) in enumerate(LEVELS):
            if getattr(self, f"{name}_id") is not None:
                return depth
        return len(LEVELS)

    def attach(self, securable: Any) -> None:
        """Hang it on `securable` (a catalog, schema or registered model)."""
        for name in _FIELD.values():
            setattr(self, name, None)
        field = _FIELD.get(securable.securable_type)
        if field is None:
            raise InvalidParameter(
                f"Only a catalog, a schema or a model can be named, not {securable.securable_type}."
            )
        setattr(self, field, securable)

    @staticmethod
    def attached_q(securable: Any) -> Q:
        """Attached to `securable` itself (the filter a one-per-securable rule checks)."""
        return Q(**{_FIELD[securable.securable_type]: securable})

    @staticmethod
    def around_q(securable: Any, *, metastore: bool = False) -> Q:
        """Attached to `securable` or to a level above it (and, with `metastore`, to none:
        the whole metastore)."""
        q = Q(catalog__isnull=True, schema__isnull=True, model__isnull=True) if metastore else Q()
        st = getattr(securable, "securable_type", None)
        if st == SecurableType.REGISTERED_MODEL:
            own = (
                Q(model_id=securable.pk)
                | Q(schema_id=securable.schema_id)
                | Q(catalog_id=securable.schema.catalog_id)
            )
        elif st == SecurableType.SCHEMA:
            own = Q(schema_id=securable.pk) | Q(catalog_id=securable.catalog_id)
        elif st == SecurableType.CATALOG:
            own = Q(catalog_id=securable.pk)
        else:
            return q if metastore else Q(pk__in=[])
        return q | own if metastore else own


def target(securable_type: Any, full_name: Any, *, what: str) -> Any:
    """The catalog, schema or model named to attach `what` ("Alias policies") to."""
    st = parse_securable_type(securable_type)
    if st == SecurableType.METASTORE:
        raise InvalidParameter(f"{what} attach to a catalog, a schema or a model.")
    return securable_lookup(st, full_name)


def listed(
    actor: Actor, queryset: QuerySet[Any], *, securable_type: Any, full_name: Any, what: str
) -> QuerySet[Any]:
    """The things of `queryset` on securables the actor may see; with `securable_type` only
    those on that level, with `full_name` too only those on that one securable. `what` names
    them in refusals ("Alias policies")."""
    if full_name not in (None, ""):
        if securable_type in (None, ""):
            raise InvalidParameter("full_name needs securable_type.")
        securable = securable_lookup(securable_type, full_name)
        authz.require_visible(actor, securable)
        if securable.securable_type not in _FIELD:
            raise InvalidParameter(f"{what} attach to a catalog, a schema or a model.")
        return queryset.filter(ScopedToSecurable.attached_q(securable))
    if securable_type not in (None, ""):
        field = _FIELD.get(parse_securable_type(securable_type))
        if field is None:
            raise InvalidParameter(f"{what} attach to a catalog, a schema or a model.")
        queryset = queryset.filter(**{f"{field}__isnull": False})
    if authz.is_admin(actor):
        return queryset
    return queryset.filter(
        Q(catalog__in=authz.visible_catalogs(actor).values("pk"))
        | Q(schema__in=authz.visible_schemas(actor).values("pk"))
        | Q(model__in=authz.visible_models(actor).values("pk"))
    )


_Scoped = TypeVar("_Scoped", bound=ScopedToSecurable)


def nearest(candidates: Iterable[_Scoped]) -> list[_Scoped]:
    """Of things attached along one securable's chain (`around_q`), those on the nearest level
    (nearest wins: a model's own over its schema's over its catalog's); [] when none."""
    items = list(candidates)
    if not items:
        return []
    best = min(item.level for item in items)
    return [item for item in items if item.level == best]
