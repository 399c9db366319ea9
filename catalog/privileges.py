"""Privileges as Unity Catalog names them on the wire, and where each may be granted."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from core.errors import InvalidParameter

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise  # the type of Meta.permissions' labels


class Privilege(StrEnum):
    CREATE_CATALOG = "CREATE CATALOG"
    USE_CATALOG = "USE CATALOG"
    CREATE_SCHEMA = "CREATE SCHEMA"
    USE_SCHEMA = "USE SCHEMA"
    CREATE_MODEL = "CREATE MODEL"
    EXECUTE = "EXECUTE"
    MODIFY = "MODIFY"
    APPLY_TAG = "APPLY TAG"
    BROWSE = "BROWSE"
    MANAGE = "MANAGE"
    ALL_PRIVILEGES = "ALL PRIVILEGES"

    @property
    def codename(self) -> str:
        """django-guardian permission codename (no spaces)."""
        return self.value.lower().replace(" ", "_")

    @classmethod
    def from_codename(cls, codename: str) -> Privilege:
        return cls(codename.replace("_", " ").upper())


class SecurableType(StrEnum):
    METASTORE = "metastore"
    CATALOG = "catalog"
    SCHEMA = "schema"
    REGISTERED_MODEL = "registered_model"


_MODEL_LEVEL = {
    Privilege.EXECUTE,
    Privilege.MODIFY,
    Privilege.APPLY_TAG,
    Privilege.BROWSE,
    Privilege.MANAGE,
    Privilege.ALL_PRIVILEGES,
}
_SCHEMA_LEVEL = _MODEL_LEVEL | {Privilege.USE_SCHEMA, Privilege.CREATE_MODEL}
_CATALOG_LEVEL = _SCHEMA_LEVEL | {Privilege.USE_CATALOG, Privilege.CREATE_SCHEMA}

# What may be granted on each securable type (a grant there also reaches everything below).
GRANTABLE: dict[SecurableType, frozenset[Privilege]] = {
    SecurableType.METASTORE: frozenset({Privilege.CREATE_CATALOG, Privilege.MANAGE}),
    SecurableType.CATALOG: frozenset(_CATALOG_LEVEL),
    SecurableType.SCHEMA: frozenset(_SCHEMA_LEVEL),
    SecurableType.REGISTERED_MODEL: frozenset(_MODEL_LEVEL),
}

# Privileges that act on the securable itself (holding one makes it visible to you).
APPLICABLE: dict[SecurableType, frozenset[Privilege]] = {
    SecurableType.METASTORE: frozenset({Privilege.CREATE_CATALOG, Privilege.MANAGE}),
    SecurableType.CATALOG: frozenset(_CATALOG_LEVEL),
    SecurableType.SCHEMA: frozenset(_SCHEMA_LEVEL),
    SecurableType.REGISTERED_MODEL: frozenset(_MODEL_LEVEL),
}

# Privileges that only read; a read-scoped token keeps these and loses the rest.
READ_PRIVILEGES = frozenset(
    {Privilege.USE_CATALOG, Privilege.USE_SCHEMA, Privilege.EXECUTE, Privilege.BROWSE}
)


def guardian_permissions(securable_type: SecurableType) -> list[tuple[str, StrOrPromise]]:
    """Meta.permissions for a securable model: one guardian permission per grantable privilege."""
    return sorted((p.codename, p.value) for p in GRANTABLE[securable_type])


def parse_privilege(value) -> Privilege:
    if isinstance(value, str):
        normalized = " ".join(value.replace("_", " ").split()).upper()
        try:
            return Privilege(normalized)
        except ValueError:
            pass
    raise InvalidParameter(f"Unknown privilege {str(value)[:64]!r}.")


def parse_securable_type(value) -> SecurableType:
    try:
        return SecurableType(str(value).lower())
    except ValueError:
        allowed = ", ".join(t.value for t in SecurableType)
        raise InvalidParameter(
            f"Unsupported securable type {str(value)[:64]!r}; use one of {allowed}."
        ) from None
