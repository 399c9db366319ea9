"""catalog's hand-written statements: the grants of a securable chain and the actor's grants
and ownerships at the catalog and schema levels, each one UNION ALL the authorization hot path
runs instead of several ORM queries (bench/README.md, "What a request pays"). Table and
column names come from the models' `_meta`; tests/catalog/test_sql.py runs each on the suite's
database (SQLite and PostgreSQL in CI)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import Model

from core import rows


# Names are looked up once per process: these statements run on every authorization.
@functools.cache
def _col(model: type[Model], field: str) -> str:
    return connection.ops.quote_name(rows.column(model, field))


@functools.cache
def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


@functools.cache
def _permission_join(grant_table: type[Model]) -> str:
    return (
        f"JOIN {_table(Permission)} ap ON ap.{_col(Permission, 'id')} = "
        f"g.{_col(grant_table, 'permission')}"
    )


def chain_grants(
    user_id: int | None,
    group_ids: Sequence[int],
    targets: Sequence[tuple[type[Model], type[Model], Any]],
) -> list[tuple[int, str]]:
    """(index, permission codename) of every grant to the user or to the groups on each target
    (its user grant table, its group grant table, the object's id as the database stores it),
    in one statement."""
    parts: list[str] = []
    params: list[Any] = []
    codename = _col(Permission, "codename")
    for index, (user_table, group_table, object_id) in enumerate(targets):
        if user_id is not None:
            parts.append(
                f"SELECT {index}, ap.{codename} FROM {_table(user_table)} g "
                f"{_permission_join(user_table)} "
                f"WHERE g.{_col(user_table, 'user')} = %s "
                f"AND g.{_col(user_table, 'content_object')} = %s"
            )
            params += [user_id, object_id]
        if group_ids:
            parts.append(
                f"SELECT {index}, ap.{codename} FROM {_table(group_table)} g "
                f"{_permission_join(group_table)} "
                f"WHERE g.{_col(group_table, 'group')} IN ({_marks(group_ids)}) "
                f"AND g.{_col(group_table, 'content_object')} = %s"
            )
            params += [*group_ids, object_id]
    if not parts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return [(int(index), str(name)) for index, name in cursor.fetchall()]


def level_grants(
    user_id: int | None,
    group_ids: Sequence[int],
    levels: Sequence[tuple[type[Model], str | None, type[Model], type[Model]]],
    owner_codename: str,
) -> list[tuple[int, Any, Any, str]]:
    """(level, object id, parent id, codename) of every grant to the user or the groups on the
    objects of each level (a model, the foreign key to its parent or None, its user and group
    grant tables), and of every object they own (with `owner_codename`), in one statement. The
    parent id of a top-level object is its own id."""
    parts: list[str] = []
    params: list[Any] = []
    codename = _col(Permission, "codename")
    for level, (model, parent, user_table, group_table) in enumerate(levels):
        pk = _col(model, model._meta.pk.name)
        parent_col = _col(model, parent) if parent else pk
        head = f"SELECT {level}, o.{pk}, o.{parent_col}"
        for grant_table, column, ids in (
            (user_table, "user", [user_id] if user_id is not None else []),
            (group_table, "group", list(group_ids)),
        ):
            if not ids:
                continue
            parts.append(
                f"{head}, ap.{codename} FROM {_table(grant_table)} g "
                f"{_permission_join(grant_table)} "
                f"JOIN {_table(model)} o ON o.{pk} = g.{_col(grant_table, 'content_object')} "
                f"WHERE g.{_col(grant_table, column)} IN ({_marks(ids)})"
            )
            params += ids
        owned: list[str] = []
        owned_params: list[Any] = []
        if user_id is not None:
            owned.append(f"o.{_col(model, 'owner_user')} = %s")
            owned_params.append(user_id)
        if group_ids:
            owned.append(f"o.{_col(model, 'owner_group')} IN ({_marks(group_ids)})")
            owned_params += list(group_ids)
        if owned:
            parts.append(f"{head}, %s FROM {_table(model)} o WHERE {' OR '.join(owned)}")
            params += [owner_codename, *owned_params]
    if not parts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return [(int(row[0]), row[1], row[2], str(row[3])) for row in cursor.fetchall()]
