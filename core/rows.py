"""Hot-path loads in one raw SELECT, built into ordinary model instances.

Every authenticated request loads the same few rows (its token and user, the securable it names
with its parents). Through the ORM each of those costs about a millisecond of query compilation
before the database is even asked; here the SQL text is built once per process and the rows are
turned into instances exactly as the ORM would (`Model.from_db` after the backend's and the
fields' converters), so callers get the same objects, related caches filled, as
`select_related` gives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Field, Model
from django.db.models.expressions import Col
from django.db.models.fields.mixins import FieldCacheMixin

Converters = list[tuple[Col, list[Callable[..., Any]]]]


def concrete_field(model: type[Model], name: str) -> Field[Any, Any]:
    """A concrete field by name (`_meta.get_field` also answers reverse relations)."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return field


@dataclass(frozen=True)
class Part:
    """One table of the join: a model under an alias, some of its fields (all by default), and
    where the built instance hangs: `attach` is (alias of the parent part, field name)."""

    model: type[Model]
    alias: str
    fields: tuple[str, ...] = ()
    attach: tuple[str, str] | None = None
    nullable: bool = False  # a LEFT JOIN: all-NULL columns mean "no such related row"

    @functools.cached_property
    def concrete(self) -> list[Field[Any, Any]]:
        if not self.fields:
            return list(self.model._meta.concrete_fields)
        return [concrete_field(self.model, name) for name in self.fields]

    @functools.cached_property
    def columns(self) -> str:
        return ", ".join(f'{self.alias}."{f.column}"' for f in self.concrete)

    @functools.cached_property
    def attnames(self) -> list[str]:
        return [f.attname for f in self.concrete]

    def converters(self) -> Converters:
        """(column expression, its converters) per field, as the ORM's compiler applies them."""
        out: Converters = []
        for f in self.concrete:
            col = f.get_col(self.alias)
            out.append(
                (col, connection.ops.get_db_converters(col) + f.get_db_converters(connection))
            )
        return out


def select_list(parts: list[Part]) -> str:
    return ", ".join(p.columns for p in parts)


def build(parts: list[Part], row: Sequence[Any]) -> list[Any]:
    """Instances for one row, one per part (None for an absent LEFT JOIN), parents attached."""
    instances: dict[str, Model | None] = {}
    built: list[Model | None] = []
    offset = 0
    for part in parts:
        width = len(part.concrete)
        values = list(row[offset : offset + width])
        offset += width
        if part.nullable and all(v is None for v in values):
            built.append(None)
            instances[part.alias] = None
            continue
        for i, (col, convs) in enumerate(_converters(part)):
            for conv in convs:
                values[i] = conv(values[i], col, connection)
        obj = part.model.from_db(connection.alias, part.attnames, values)
        instances[part.alias] = obj
        built.append(obj)
        if part.attach is not None:
            parent_alias, field_name = part.attach
            parent = instances.get(parent_alias)
            if parent is not None:
                field = parent._meta.get_field(field_name)
                if not isinstance(field, FieldCacheMixin):
                    raise TypeError(f"{type(parent).__name__}.{field_name} is not a relation")
                field.set_cached_value(parent, obj)
    return built


_CONVERTERS: dict[tuple[str, int], Converters] = {}


def _converters(part: Part) -> Converters:
    key = (connection.vendor, id(part))
    found = _CONVERTERS.get(key)
    if found is None:
        found = _CONVERTERS[key] = part.converters()
    return found


def column(model: type[Model], name: str) -> str:
    """The database column of a concrete field, for hand-written SQL."""
    found = concrete_field(model, name).column
    if found is None:
        raise TypeError(f"{model.__name__}.{name} has no column")
    return found


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row


def db_value(model: type[Model], field_name: str, value: Any) -> Any:
    """A lookup value as the database stores it (e.g. a UUID on SQLite is 32 hex digits)."""
    return concrete_field(model, field_name).get_db_prep_value(value, connection)


def any_of(vendor: str, n: int) -> str:
    """The right-hand side of a match against a list of n values: on PostgreSQL `= ANY(%s)`
    with the list as one array parameter (one statement text, and one prepared statement, for
    any length), elsewhere `IN (%s, ...)` with one parameter per value."""
    return "= ANY(%s)" if vendor == "postgresql" else "IN (" + ", ".join(["%s"] * n) + ")"
