"""One canonical form for securable names: ASCII letters, digits, underscores; lower case."""

import re

from core.errors import InvalidParameter

_NAME = re.compile(r"[A-Za-z0-9_]{1,255}")


def canonical_name(value: object, *, field: str = "name") -> str:
    """Validate a securable name and return its canonical (lower-case) form."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        shown = value if isinstance(value, str) and len(value) <= 64 else "<value>"
        raise InvalidParameter(
            f"Invalid {field} {shown!r}: use 1 to 255 ASCII letters, digits or underscores."
        )
    return value.lower()


def split_full_name(full_name: object, parts: int, *, field: str = "full_name") -> list[str]:
    """Split 'a.b.c' into canonical parts, refusing anything that is not exactly `parts` names."""
    if not isinstance(full_name, str):
        raise InvalidParameter(f"Invalid {field}.")
    pieces = full_name.split(".")
    if len(pieces) != parts:
        raise InvalidParameter(
            f"Invalid {field} {full_name[:200]!r}: expected {parts} dot-separated names."
        )
    return [canonical_name(p, field=field) for p in pieces]
