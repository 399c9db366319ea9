"""Small helpers the API doors share: strict body access, query parsing, timestamps."""

from __future__ import annotations

from datetime import datetime

from rest_framework import serializers
from rest_framework.exceptions import ParseError

from core.errors import InvalidParameter


def json_body(request) -> dict:
    """The request body as a JSON object ({} when empty); anything else is refused."""
    try:
        data = request.data
    except ParseError:
        raise
    if data is None or data == {} or data == "":
        return {}
    if not hasattr(data, "keys"):
        raise InvalidParameter("The request body must be a JSON object.")
    return dict(data.items()) if not isinstance(data, dict) else data


def query_bool(request, name: str, default: bool = False) -> bool:
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


def query_one(request, name: str) -> str | None:
    """A single-valued query parameter; duplicates are refused rather than guessed at."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidParameter(f"{name} given more than once.")
    return values[0] if values else None


def epoch_ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into strings."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            raise serializers.ValidationError("NUL characters are not allowed.")
        return super().to_internal_value(data)


class StringMapField(serializers.DictField):
    child = StrictCharField(allow_blank=True, trim_whitespace=False)


def validated(serializer_class, data) -> dict:
    """Validate a body with a DRF serializer; errors become INVALID_PARAMETER_VALUE."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        from core.errors import _flatten

        raise InvalidParameter("; ".join(_flatten(serializer.errors)))
    return {k: v for k, v in serializer.validated_data.items()}
