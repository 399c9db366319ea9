"""The acting principal, as every service and selector receives it."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accounts.models import ApiToken, User


@dataclass
class Actor:
    """Who acts, how they authenticated and from where; carries the per-request authz cache."""

    user: User
    auth_method: str = "internal"
    token: ApiToken | None = None
    source_address: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    cache: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def read_only(self) -> bool:
        """A read-scoped token narrows its user to reading."""
        return self.token is not None and self.token.scope == "read"

    @classmethod
    def system(cls, user: User, *, request_id: str | None = None) -> Actor:
        """An actor for management commands and tasks acting as a named user."""
        return cls(user=user, auth_method="system", request_id=request_id or uuid.uuid4().hex)
