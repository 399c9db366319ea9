"""The canonical form of an audit event, defined once: the values an event is stored with and
the JSON its hash is taken over.

An event's hash is the SHA-256 (hex) of the previous event's hash followed by the canonical
JSON of its hashed fields: keys sorted, no spaces, ASCII only (what `json.dumps(...,
sort_keys=True, separators=(",", ":"))` writes). `FIELDS` lists those fields in key order with
the kind of each; `payload` is generated from it and is the only code that writes the JSON.
Every writer (one event or many; the ORM, PostgreSQL's one statement, COPY) and the verifier
take it from here, and PostgreSQL's half of the hash (`digest_sql`, the same SHA-256 as
`digest`) is the only part of the form the database ever sees: the JSON always comes from
Python, so no second encoder in SQL has to agree with this one.

The form is taken over the values as the database gives them back, so that the verifier,
reading a row, recomputes what the writer hashed. Hence `stored_details` and `stored_text`:
PostgreSQL's jsonb keeps no float exponent (1e+16 comes back as the integer 10000000000000000),
no negative zero and no NaN, and neither its text nor its jsonb holds a NUL character. Both
databases store the same normalised values, so a chain does not depend on where it was written.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64

TEXT, INTEGER, TIME, JSON = "text", "integer", "time", "json"

# The hashed fields in the canonical JSON's key order (sorted), each with its kind: TEXT a str,
# INTEGER an int or None, TIME an aware datetime (ISO 8601), JSON the details (a dict).
FIELDS: tuple[tuple[str, str], ...] = (
    ("action", TEXT),
    ("actor", TEXT),
    ("actor_id", INTEGER),
    ("auth_method", TEXT),
    ("details", JSON),
    ("occurred_at", TIME),
    ("outcome", TEXT),
    ("request_id", TEXT),
    ("securable", TEXT),
    ("securable_type", TEXT),
    ("source_address", TEXT),
)
assert [name for name, _ in FIELDS] == sorted(name for name, _ in FIELDS), "keys sort"
TEXT_FIELDS = tuple(name for name, kind in FIELDS if kind == TEXT)

# The canonical JSON of a value (details), and plain JSON (a round trip's first step), as
# reusable encoders: json.dumps builds a new encoder per call when given options.
CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode
_PLAIN_JSON = json.JSONEncoder(default=str).encode
_text = json.encoder.encode_basestring_ascii  # a str as the encoder writes it (ASCII)

# Each kind's JSON, as an expression over the values mapping `v` (the field's name in `{}`);
# JSON's value is handed in already encoded (`details`), as writers have it at hand.
_ENCODERS = {
    TEXT: "_text(v[{!r}])",
    INTEGER: '("null" if v[{0!r}] is None else _int(v[{0!r}]))',
    TIME: "_text(v[{!r}].isoformat())",
    JSON: "details",
}


def _generate_payload():
    """`payload(v, details)`, written out from FIELDS: one expression, no loop, no call per
    field but its encoder (every audit write runs it)."""
    parts = []
    for i, (name, kind) in enumerate(FIELDS):
        parts.append(repr(("{" if i == 0 else ",") + json.dumps(name) + ":"))
        parts.append(_ENCODERS[kind].format(name))
    source = f"def payload(v, details):\n    return {' + '.join(parts)} + '}}'\n"
    namespace = {"_text": _text, "_int": int.__repr__}
    exec(compile(source, f"<{__name__}.payload>", "exec"), namespace)
    return namespace["payload"]


payload = _generate_payload()
payload.__doc__ = """The canonical JSON of an event's hashed fields: `v` maps each field of
FIELDS to its stored value (a dict of values, or a model instance's `__dict__`), `details` is
`CANONICAL_JSON` of its details."""


def event_payload(event: Any) -> str:
    """The canonical JSON of a stored event (an AuditEvent as read from the database)."""
    return payload(event.__dict__, CANONICAL_JSON(event.details))


def digest(prev_hash: str, payload_json: str) -> str:
    """An event's hash: SHA-256, in hex, of the previous hash followed by its payload."""
    return hashlib.sha256((prev_hash + payload_json).encode()).hexdigest()


def digest_sql(prev_hash: str, payload_json: str) -> str:
    """`digest` as a PostgreSQL expression over two text expressions."""
    return f"encode(sha256(convert_to({prev_hash} || {payload_json}, 'UTF8')), 'hex')"


_SCALARS = frozenset({str, int, bool, type(None)})  # not float: see `_stored_number`


def _plain(details: Any) -> bool:
    """Is `details` a dict with text keys whose values are text, integers, booleans, None or
    lists of those (what system work records)? Then its JSON round trip, and the database's,
    is itself: its canonical JSON is also what is stored. Anything else (floats, dates,
    tuples, nested objects, non-text keys) takes `stored_details`' round trip."""
    if type(details) is not dict:
        return False
    for key, value in details.items():
        if type(key) is not str:
            return False
        kind = type(value)
        if kind is list:
            if not all(type(item) in _SCALARS for item in value):
                return False
        elif kind not in _SCALARS:
            return False
    return True


def _stored_number(literal: str) -> int | float:
    """A JSON number with a fraction or exponent (as Python writes a float), as it comes back
    from PostgreSQL's jsonb: its exact decimal value, an integer when jsonb keeps no fraction
    digits (any positive exponent: 1e+16, 1.5e+16), and no negative zero."""
    if "e+" in literal or "E+" in literal:
        return int(Decimal(literal))
    value = float(literal)
    return 0.0 if value == 0 else value


def _constant(name: str) -> str:
    """NaN and the infinities, which JSON (and jsonb) cannot hold, stored as their names."""
    return name


_loads = json.JSONDecoder(parse_float=_stored_number, parse_constant=_constant).decode
# An escaped NUL in JSON text: `\u0000` behind an even number of backslashes (an odd number
# would make it the text "\u0000" after an escaped backslash).
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def stored_details(details: Any) -> str:
    """The canonical JSON of an event's details, which is also the JSON text they are stored
    as: the details through JSON (`default=str`) as the database gives them back (see the
    module's docstring)."""
    if not details:
        return "{}"
    if _plain(details):  # its round trip is itself
        text = CANONICAL_JSON(details)
        if "\\u0000" not in text:
            return text
    else:
        text = _PLAIN_JSON(details)
    if "\\u0000" in text:  # PostgreSQL holds no NUL: U+FFFD instead, on every database
        text = _JSON_NUL.sub(r"\1\\ufffd", text)
    return CANONICAL_JSON(_loads(text))


def stored_text(value: Any) -> str:
    """A text field's value as stored: text (`str()` of anything else, as a CharField does),
    NUL replaced with U+FFFD."""
    text = value if type(value) is str else str(value)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text
