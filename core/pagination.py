"""Opaque page tokens for keyset pagination (UC's max_results / page_token)."""

import base64
import json
import re

from core.errors import InvalidParameter

DEFAULT_PAGE = 100
MAX_PAGE = 1000
# Keys a list can have produced: printable ASCII. Anything else (NUL made PostgreSQL fail) is a
# forged token.
_KEY = re.compile(r"[\x21-\x7e]{1,1024}")


def clamp_page_size(raw) -> int:
    """UC clients ask for 0, 100, 10000 or nothing: clamp to [1, MAX_PAGE], never refuse."""
    if raw in (None, ""):
        return DEFAULT_PAGE
    try:
        size = int(raw)
    except (TypeError, ValueError):
        raise InvalidParameter("max_results must be an integer.") from None
    if size <= 0:
        return DEFAULT_PAGE
    return min(size, MAX_PAGE)


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode().rstrip("=")


def decode_token(token) -> str | None:
    if token in (None, ""):
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        key = data["k"]
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError
        return key
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise InvalidParameter("Invalid page_token.") from None


def page(queryset, *, key_field: str, max_results, page_token):
    """One page by keyset on a unique, ordered field; returns (items, next_page_token)."""
    size = clamp_page_size(max_results)
    after = decode_token(page_token)
    qs = queryset.order_by(key_field)
    if after is not None:
        qs = qs.filter(**{f"{key_field}__gt": after})
    items = list(qs[: size + 1])
    if len(items) > size:
        items = items[:size]
        return items, encode_token(getattr(items[-1], key_field))
    return items, None
