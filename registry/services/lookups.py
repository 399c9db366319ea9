"""The registry's shared lookups and input rules: a locked model, a live version by number
or alias, and the clean_* checks of aliases, tags, free text and ids. The lowest module of
registry.services: every other service module builds on it and it imports none of them."""

from __future__ import annotations

import functools
import re
import uuid
from typing import Any

from django.db import connection
from django.utils import timezone

from catalog.selectors import model_lookup
from catalog.services import audit_write
from core import rows
from core.actor import Actor
from core.errors import InvalidParameter, NotFound
from registry.models import (
    ModelAlias,
    ModelVersion,
    RegisteredModel,
)

MAX_TAG_KEY = 250


MAX_TAG_VALUE = 5000


_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,255}")


_VERSION_LIKE = re.compile(r"^(v?\d+|latest)$", re.IGNORECASE)


def locked_model(full_name: object) -> RegisteredModel:
    """The model row, locked for the rest of the transaction (version numbers, aliases)."""
    model: RegisteredModel = model_lookup(full_name, lock=True)
    return model


_VERSION_PART = rows.Part(ModelVersion, "v")


@functools.cache
def _version_sql(by_alias: bool) -> str:
    """A live version of a model by number, or by alias: one raw SELECT whose text is built
    once (every version read and alias resolve goes through here)."""
    meta = ModelVersion._meta
    head = f'SELECT {_VERSION_PART.columns} FROM "{meta.db_table}" v '
    live = f'v."{meta.get_field("lifecycle").column}" <> %s'
    if by_alias:
        alias = ModelAlias._meta
        return (
            head + f'JOIN "{alias.db_table}" a ON a."{alias.get_field("version").column}" = v.id '
            f'WHERE a."{alias.get_field("model").column}" = %s AND a.alias = %s'
        )
    return head + f'WHERE v."{meta.get_field("model").column}" = %s AND v.version = %s AND {live}'


def _version_row(sql: str, params: list[Any], model: RegisteredModel) -> ModelVersion | None:
    row = rows.fetch_one(sql, params)
    if row is None:
        return None
    obj: ModelVersion
    (obj,) = rows.build([_VERSION_PART], row)
    obj.model = model  # already loaded with its schema and catalog
    show_overdue(obj)
    return obj


def version_of(model: RegisteredModel, version: object, *, lock: bool = False) -> ModelVersion:
    """A live (not deleted) version by number; tombstones answer RESOURCE_DOES_NOT_EXIST.
    `lock` locks the version's row for the rest of the transaction."""
    number = parse_version(version)
    sql = _version_sql(False)
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    model_id = rows.db_value(RegisteredModel, "id", model.pk)
    obj = _version_row(sql, [model_id, number, ModelVersion.Lifecycle.DELETED], model)
    if obj is None:
        raise NotFound(f"Model version {model.full_name}/{number} does not exist.")
    return obj


def version_by_alias(model: RegisteredModel, name: str) -> ModelVersion | None:
    """The version an alias of this model points at (None: no such alias)."""
    model_id = rows.db_value(RegisteredModel, "id", model.pk)
    return _version_row(_version_sql(True), [model_id, name], model)


def parse_version(value: object) -> int:
    if isinstance(value, bool):
        raise InvalidParameter("version must be a positive integer.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isdigit() and len(value) <= 10:
        number = int(value)
    else:
        raise InvalidParameter(f"version must be a positive integer, not {str(value)[:20]!r}.")
    if number < 1 or number > 2**31 - 1:
        raise InvalidParameter("version must be a positive integer.")
    return number


def clean_alias(value: object) -> str:
    """Alias names: letters, digits, '_' and '-'; never version-like (`v3`, `7`, `latest`)."""
    if not isinstance(value, str) or not _ALIAS.fullmatch(value):
        raise InvalidParameter("alias must be 1-255 letters, digits, '_' or '-'.")
    if _VERSION_LIKE.match(value):
        raise InvalidParameter(
            f"alias {value!r} looks like a version reference; choose another name."
        )
    return value.lower()


def clean_tag(key: object, value: object) -> tuple[str, str]:
    if not isinstance(key, str) or not key or len(key) > MAX_TAG_KEY or "\x00" in key:
        raise InvalidParameter(f"tag key must be a string of 1 to {MAX_TAG_KEY} characters.")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > MAX_TAG_VALUE or "\x00" in value:
        raise InvalidParameter(f"tag value must be a string of at most {MAX_TAG_VALUE} characters.")
    return key, value


OVERDUE_MESSAGE = "Upload did not finish before the registration deadline."


def is_overdue(version: ModelVersion) -> bool:
    """Still pending past its registration deadline."""
    return (
        version.status == ModelVersion.Status.PENDING_REGISTRATION
        and version.pending_deadline is not None
        and version.pending_deadline <= timezone.now()
    )


def show_overdue(version: ModelVersion) -> None:
    """A version still pending past its deadline reads as FAILED_REGISTRATION (in memory: reads
    never write; registry.tasks.expire_pending_versions settles the row)."""
    if is_overdue(version):
        version.status = ModelVersion.Status.FAILED_REGISTRATION
        version.status_message = OVERDUE_MESSAGE


def version_audit(
    actor: Actor, action: str, version: ModelVersion, details: dict[str, Any] | None = None
) -> None:
    audit_write(actor, action, version.model, {"version": version.version, **(details or {})})


MAX_TEXT = 5000


def clean_text(value: object, field: str, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
        raise InvalidParameter(f"{field} must be a string of at most {MAX_TEXT} characters.")
    if required and not value.strip():
        raise InvalidParameter(f"{field} is required.")
    return value.strip()


def clean_uuid(value: object, field: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound(f"No {field} {str(value)[:64]!r}.") from None
