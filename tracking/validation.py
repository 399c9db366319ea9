"""Input checks for the tracking services, with MLflow's limits and wording.

Everything a client sends is checked here before it reaches the database: types (a JSON number
is not a string), lengths, NUL characters (PostgreSQL refuses them with an error, which would
otherwise be a 500), MLflow's key syntax and path rules, and int64 ranges.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
import unicodedata
from typing import Any

from core.errors import InvalidParameter, NotFound

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_RUN_NAME_LENGTH = 250
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
MAX_TAGS_PER_CREATE = 1000
MAX_DATASETS_PER_BATCH = 1000
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_SCHEMA_SIZE = 1048575
# MLflow allows 16 MB; a profile is a summary, and the run keeps inputs in one JSON column.
MAX_DATASET_PROFILE_SIZE = 65535
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT_MAX = 1.7976931348623157e308

_KEY = re.compile(r"^[/\w.\- :]*$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_RUN_ID_SYNTAX = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_EXPERIMENT_ID = re.compile(r"^[0-9]{1,18}$")
_INT = re.compile(r"^-?[0-9]{1,19}$")


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        text = "<value>"
    return text if len(text) <= 100 else text[:100] + "..."


def invalid(path: str, value: Any, message: str = "") -> InvalidParameter:
    """MLflow's wording: Invalid value <v> for parameter '<path>' supplied[: message]."""
    tail = f": {message}" if message else "."
    return InvalidParameter(f"Invalid value {_shown(value)} for parameter '{path}' supplied{tail}")


def missing(path: str) -> InvalidParameter:
    return InvalidParameter(f"Missing value for required parameter '{path}'.")


def text(value: Any, path: str, *, limit: int, required: bool = False, blank: bool = True) -> str:
    """A string field: no other JSON type, no NUL, at most `limit` characters."""
    if value is None:
        if required:
            raise missing(path)
        return ""
    if not isinstance(value, str):
        raise invalid(path, value, "expected a string.")
    if "\x00" in value:
        raise invalid(path, value, "NUL characters are not allowed.")
    if len(value) > limit:
        raise invalid(path, value, f"length {len(value)} exceeds the limit of {limit}.")
    if not value and (required or not blank):
        raise missing(path)
    return value


def key(value: Any, path: str = "key") -> str:
    """A param, metric or tag key: MLflow's character set, no path tricks, at most 250 chars."""
    if value is None or value == "":
        raise missing(path)
    if not isinstance(value, str):
        raise invalid(path, value, "expected a string.")
    if len(value) > MAX_ENTITY_KEY_LENGTH:
        raise invalid(path, value, f"length exceeds the limit of {MAX_ENTITY_KEY_LENGTH}.")
    if not _KEY.match(value):
        raise invalid(
            path,
            value,
            "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), "
            "spaces ( ), colon(:) and slashes (/).",
        )
    norm = posixpath.normpath(value)
    if norm != value or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise invalid(
            path,
            value,
            "Names may be treated as files in certain cases, and must not resolve to other "
            f"names when treated as such. This name would resolve to {norm!r}",
        )
    return value


def int64(value: Any, path: str, *, required: bool = False, default: int | None = None):
    """A proto int64: a JSON integer or a decimal string (proto3 JSON allows both)."""
    if value is None:
        if required:
            raise missing(path)
        return default
    if isinstance(value, bool):
        raise invalid(path, value, "expected an integer.")
    if isinstance(value, float):
        if not value.is_integer():
            raise invalid(path, value, "expected an integer.")
        value = int(value)
    elif isinstance(value, str):
        if not _INT.match(value.strip()):
            raise invalid(path, value, "expected an integer.")
        value = int(value.strip())
    elif not isinstance(value, int):
        raise invalid(path, value, "expected an integer.")
    if not INT64_MIN <= value <= INT64_MAX:
        raise invalid(path, value, "out of the int64 range.")
    return value


def metric_value(value: Any, path: str = "value") -> tuple[float, bool]:
    """A proto double: a JSON number or "NaN"/"Infinity"/"-Infinity" or a numeric string.
    Returns (value to store, is_nan); infinities are clamped like MLflow does."""
    if value is None:
        raise missing(path)
    if isinstance(value, bool):
        raise invalid(path, value, "expected a number.")
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise invalid(path, value, "expected a number.") from None
    elif isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf if value > 0 else -math.inf
    else:
        raise invalid(path, value, "expected a number.")
    if math.isnan(number):
        return 0.0, True
    if math.isinf(number):
        return (FLOAT_MAX if number > 0 else -FLOAT_MAX), False
    return number, False


def enum(value: Any, path: str, choices, *, default=None, numbers: dict[int, str] | None = None):
    """A proto enum given by name (or, for a few, by number)."""
    if value is None or value == "":
        return default
    if numbers and isinstance(value, int) and not isinstance(value, bool) and value in numbers:
        return numbers[value]
    if not isinstance(value, str) or value not in choices:
        raise invalid(path, value, f"expected one of {sorted(choices)}.")
    return value


def boolean(value: Any, path: str, *, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise invalid(path, value, "expected true or false.")


def list_of(value: Any, path: str, *, limit: int) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(path, value, "expected a list.")
    if len(value) > limit:
        raise InvalidParameter(
            f"A batch logging request can contain at most {limit} {path}. Got {len(value)} "
            f"{path}. Please split up {path} across multiple requests and try again."
        )
    return value


def obj(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise invalid(path, value, "expected an object.")
    return value


def key_values(
    value: Any, path: str, *, limit: int, value_limit: int, check_key=key
) -> list[tuple[str, str]]:
    """A list of {"key", "value"} objects (tags or params); duplicate keys keep the last."""
    out: list[tuple[str, str]] = []
    for index, item in enumerate(list_of(value, path, limit=limit)):
        item = obj(item, f"{path}[{index}]")
        k = check_key(item.get("key"), f"{path}[{index}].key")
        v = text(item.get("value"), f"{path}[{index}].value", limit=value_limit)
        out.append((k, v))
    return out


def experiment_name(value: Any, path: str = "name") -> str:
    """An experiment name: a non-empty string without control characters, NFC-normalized so
    that two spellings of the same text are one name."""
    if value is None or value == "":
        raise InvalidParameter(f"Invalid experiment name: '{value or ''}'")
    if not isinstance(value, str):
        raise InvalidParameter(f"Invalid experiment name: {_shown(value)}. Expects a string.")
    name = unicodedata.normalize("NFC", value)
    if not name.strip() or any(unicodedata.category(c) in {"Cc", "Cs"} for c in name):
        raise invalid(path, value, "experiment names must be printable, non-blank text.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise invalid(path, value, f"length exceeds the limit of {MAX_EXPERIMENT_NAME_LENGTH}.")
    return name


def logged_model_name(value: Any, path: str = "name") -> str | None:
    if value is None or value == "":
        return None
    name = text(value, path, limit=500)
    bad = ("/", ":", ".", "%", '"', "'")
    if any(c in name for c in bad) or any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidParameter(
            f"Invalid model name ({name[:100]!r}) provided. Model name must be a non-empty "
            f"string and cannot contain the following characters: {bad}"
        )
    return name


# --- ids -------------------------------------------------------------------------------------


def experiment_id(value: Any, path: str = "experiment_id") -> int:
    """An experiment id as MLflow sends it (a string of digits). Anything that cannot be one
    of ours is simply not found."""
    if value is None or value == "":
        raise missing(path)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid(path, value, "expected a string.")
    text_id = str(value)
    if "\x00" in text_id or len(text_id) > 64:
        raise invalid(path, value)
    if not _EXPERIMENT_ID.match(text_id):
        raise NotFound(f"No Experiment with id={text_id} exists")
    return int(text_id)


def run_id(value: Any, path: str = "run_id") -> str:
    if value is None or value == "":
        raise missing(path)
    if not isinstance(value, str):
        raise invalid(path, value, "expected a string.")
    if not _RUN_ID_SYNTAX.match(value):
        raise invalid(path, value)
    if not _RUN_ID.match(value):
        raise NotFound(f"Run with id={value} not found")
    return value


def model_id(value: Any, path: str = "model_id") -> str:
    if value is None or value == "":
        raise missing(path)
    if not isinstance(value, str):
        raise invalid(path, value, "expected a string.")
    if "\x00" in value or len(value) > 300:
        raise invalid(path, value)
    if not _MODEL_ID.match(value):
        raise NotFound(f"Logged model with ID '{value}' not found.")
    return value
