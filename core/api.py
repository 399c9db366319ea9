"""Small helpers the API doors share: strict body access, query parsing, timestamps."""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any, NoReturn

from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

from core.errors import InvalidParameter, _flatten


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:64]!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


class StrictJSONParser(JSONParser):
    """JSON bodies without duplicate keys or NaN, and no 500 on absurd nesting.

    With duplicate keys a proxy, a log and Steward could each read a different value; refuse.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.load(
                codecs.getreader(encoding)(stream),
                object_pairs_hook=_no_duplicate_keys,
                parse_constant=_no_constant,
            )
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {str(exc)[:200]}") from None


def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object ({} when there is no body); anything else is refused.

    `null`, `""`, lists, strings and numbers are refused rather than read as "no body".
    """
    data = request.data  # ParseError and UnsupportedMediaType propagate as 400 and 415
    if not isinstance(data, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    return dict(data.items())


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    values = request.query_params.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise InvalidParameter(f"{name} given more than once.")
    value = values[0].strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no", ""}:
        return False
    raise InvalidParameter(f"{name} must be true or false.")


def query_one(request: Request, name: str) -> str | None:
    """A single-valued query parameter; duplicates are refused rather than guessed at."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidParameter(f"{name} given more than once.")
    return values[0] if values else None


def epoch_ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into strings."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            raise serializers.ValidationError("NUL characters are not allowed.")
        return super().to_internal_value(data)


class StrictInputSerializer(serializers.Serializer[Any]):
    """A native-API body (/api/v1/*): fields it does not know are refused, not ignored, so a
    misspelt `required_approvals` or `days` never quietly leaves the default in place. The
    MLflow, Unity Catalog, SCIM and OpenLineage doors ignore unknown fields, as their clients
    and specifications expect."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields), key=str)
            if unknown:
                raise serializers.ValidationError(
                    {"non_field_errors": [f"Unknown field {str(unknown[0])[:64]!r}."]}
                )
        return super().to_internal_value(data)


class StringMapField(serializers.DictField):
    child = StrictCharField(allow_blank=True, trim_whitespace=False)


def validated(
    serializer_class: type[serializers.BaseSerializer[Any]], data: object
) -> dict[str, Any]:
    """Validate a body with a DRF serializer; errors become INVALID_PARAMETER_VALUE."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidParameter("; ".join(_flatten(serializer.errors)))
    return {k: v for k, v in serializer.validated_data.items()}
