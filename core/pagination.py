"""Opaque page tokens for keyset pagination (UC's max_results / page_token)."""

import base64
import json
import re
from typing import TypeVar

from django.db.models import Model, QuerySet

from core.errors import InvalidParameter

M = TypeVar("M", bound=Model)

DEFAULT_PAGE = 100
MAX_PAGE = 1000
# Keys a list can have produced: printable ASCII. Anything else (NUL made PostgreSQL fail) is a
# forged token.
_KEY = re.compile(r"[\x21-\x7e]{1,1024}")


INT64_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def page_size(
    raw: object,
    *,
    default: int = DEFAULT_PAGE,
    maximum: int = MAX_PAGE,
    zero_means_default: bool = False,
) -> int:
    """The one check of a page size (`max_results`) for every door; returns the size to use.

    An integer (JSON number or decimal string) from 1 to 2^63-1; anything else (-1, 0, 2^63,
    1.5, "ten", "", true) is INVALID_PARAMETER_VALUE with the same message at every door. A valid
    size above `maximum` is clamped to it (UC: "the minimum of this value and a server
    configured value"). Unity Catalog alone gives 0 a meaning, "let the server choose"
    (`zero_means_default`); its clients send it.
    """
    if raw is None:
        return default
    least = 0 if zero_means_default else 1
    if isinstance(raw, str) and _DIGITS.fullmatch(raw):
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not least <= raw <= INT64_MAX:
        raise InvalidParameter(f"max_results must be an integer from {least} to {INT64_MAX}.")
    return min(raw, maximum) if raw else default


def uc_page_size(raw: object) -> int:
    """Unity Catalog's `max_results`: page_size, with 0 meaning "the server chooses"."""
    return page_size(raw, zero_means_default=True)


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": key}).encode()).decode().rstrip("=")


def decode_token(token: str | None) -> str | None:
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


def page(
    queryset: QuerySet[M],
    *,
    key_field: str,
    max_results: object,
    page_token: str | None,
    two_step: bool = False,
) -> tuple[list[M], str | None]:
    """One page by keyset on a unique, ordered field; returns (items, next_page_token).

    With `two_step`, the filtered, ordered walk selects only primary keys, and the page's rows
    are fetched afterwards by key (one more query): the walk over a large table with a
    selective visibility filter then reads narrow rows, and the heavy columns and joins are
    loaded for just the rows returned.
    """
    size = page_size(max_results)
    after = decode_token(page_token)
    qs = queryset.order_by(key_field)
    if after is not None:
        qs = qs.filter(**{f"{key_field}__gt": after})
    if two_step:
        keys = list(qs.values_list("pk", flat=True)[: size + 1])
        rows = {obj.pk: obj for obj in queryset.filter(pk__in=keys[:size]).order_by()}
        items = [rows[pk] for pk in keys[:size] if pk in rows]
        more = len(keys) > size
    else:
        items = list(qs[: size + 1])
        more = len(items) > size
        items = items[:size]
    if more and items:
        return items, encode_token(str(getattr(items[-1], key_field)))
    return items, None
