"""The securable types the tree knows, registered by the apps that own them.

`catalog` owns the metastore, catalogs and schemas; a feature app that adds a securable type
(the registry's registered models) registers it here from its AppConfig.ready(), naming its
model, its grant tables and its parent. The authorization module, the lookups and the rename
service read this table, so `catalog` never imports the apps above it (docs/architecture.md).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import models

from catalog.privileges import Privilege, SecurableType


class Node(Protocol):
    """What the authorization module reads of any object of the tree: the metastore, a
    catalog, a schema or an object of a registered type."""

    @property
    def pk(self) -> Any: ...
    @property
    def securable_type(self) -> SecurableType: ...
    @property
    def name(self) -> str: ...
    @property
    def full_name(self) -> str: ...


@dataclass(frozen=True)
class SecurableKind:
    """One type of securable: its model, its guardian grant tables, and where it hangs."""

    type: SecurableType
    # `builtins.type`: inside this class `type` names the field above.
    model: builtins.type[models.Model]
    user_grants: builtins.type[models.Model]
    group_grants: builtins.type[models.Model]
    label: str  # as messages name it: "Registered model"
    parent: SecurableType | None = None  # the securable type above it in the tree
    parent_field: str = ""  # the foreign key to that parent
    name_field: str = "full_name"  # the unique column holding its full dotted name
    # What creating one (and so renaming one) needs on its parent (the metastore at the top).
    create_privilege: Privilege | None = None


_KINDS: dict[SecurableType, SecurableKind] = {}


def register(kind: SecurableKind) -> None:
    """Called once per type from an AppConfig.ready(); registering a type twice is a bug."""
    if kind.type in _KINDS and _KINDS[kind.type] != kind:
        raise RuntimeError(f"Securable type {kind.type} is registered twice.")
    _KINDS[kind.type] = kind


def kind(securable_type: SecurableType) -> SecurableKind:
    try:
        return _KINDS[securable_type]
    except KeyError:
        raise RuntimeError(
            f"No app registered securable type {securable_type!s}; is it in INSTALLED_APPS?"
        ) from None


def model(securable_type: SecurableType) -> type[models.Model]:
    return kind(securable_type).model


def kinds() -> list[SecurableKind]:
    return list(_KINDS.values())


def chain_types(securable_type: SecurableType) -> list[SecurableKind]:
    """The kinds from the top of the tree (below the metastore) down to `securable_type`."""
    chain = [kind(securable_type)]
    while chain[0].parent is not None:
        chain.insert(0, kind(chain[0].parent))
    return chain


def path_to(securable_type: SecurableType, ancestor: SecurableType) -> str | None:
    """The ORM lookup path from objects of one type to their ancestor of another type
    ("schema__catalog" from a model to its catalog), None when it is not an ancestor."""
    steps: list[str] = []
    current = kind(securable_type)
    while current.parent is not None:
        steps.append(current.parent_field)
        if current.parent == ancestor:
            return "__".join(steps)
        current = kind(current.parent)
    return None
