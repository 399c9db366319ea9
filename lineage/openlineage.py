"""OpenLineage events: validation against the spec (2-0-x) and what Steward reads from them.

The OpenLineage JSON schema ships in no Python package that could be pinned (openlineage-python
carries generated classes, not the schema), so this module checks events by hand against the
spec's definitions: `RunEvent` (eventType START, RUNNING, COMPLETE, ABORT, FAIL or OTHER, run,
job, inputs, outputs), `DatasetEvent` (dataset) and `JobEvent` (job, inputs, outputs), each with
the `BaseEvent` fields eventTime, producer and schemaURL, and every facet with `_producer` and
`_schemaURL` (the `BaseFacet`). Unknown properties are allowed, as the spec allows them. On top of
the spec Steward sets limits (lengths, list sizes, no NUL or control characters in names) so that
bad input is a 400 naming the field, never a 500.

One deliberate leniency: an `eventTime` without a UTC offset (what `datetime.now().isoformat()`
gives, as in the client's own examples) is read as UTC.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from core.errors import InvalidParameter

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
TERMINAL = frozenset({"COMPLETE", "ABORT", "FAIL"})
MAX_NAME = 1024  # namespace or name of a job or dataset
MAX_URI = 2048  # producer, schemaURL, _producer, _schemaURL
MAX_VERSION = 255
MAX_DATASETS = 1000  # inputs + outputs of one event
MAX_FACETS = 200  # facets in one facets object
MAX_FACET_KEY = 255
MAX_FACET_DEPTH = 64
# A custom dataset facet that links the dataset to a catalog or schema (needs MODIFY there).
SECURABLE_FACET = "stewardSecurable"
SECURABLE_TYPES = ("catalog", "schema")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")


def _fail(path: str, message: str) -> InvalidParameter:
    return InvalidParameter(f"{path}: {message}")


@dataclass
class DatasetRef:
    """A dataset as an event names it: identity, facets, and the version it was read/written at."""

    namespace: str
    name: str
    facets: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    securable: tuple[str, str] | None = None  # ("schema", "main.raw") from stewardSecurable
    path: str = ""  # where in the event (for error messages)


@dataclass
class JobRef:
    namespace: str
    name: str
    facets: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParentRef:
    run_id: str
    job: JobRef


@dataclass
class Event:
    """One validated OpenLineage event, reduced to what the lineage graph stores."""

    kind: str  # "run", "dataset" or "job"
    event_time: datetime
    producer: str
    event_type: str = ""  # RunEvent only ("" when absent)
    run_id: str = ""  # RunEvent only, canonical lower-case UUID
    run_facets: dict[str, Any] = field(default_factory=dict)
    job: JobRef | None = None
    parent: ParentRef | None = None
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)
    dataset: DatasetRef | None = None  # DatasetEvent only


# --- primitives ----------------------------------------------------------------------------


def _object(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, "must be a JSON object.")
    return value


def _required(obj: dict, key: str, path: str) -> Any:
    if key not in obj or obj[key] is None:
        raise _fail(path, "is required.")
    return obj[key]


def _string(value: Any, path: str, *, limit: int, blank: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(path, "must be a string.")
    if "\x00" in value:
        raise _fail(path, "must not contain NUL characters.")
    if len(value) > limit:
        raise _fail(path, f"is longer than {limit} characters.")
    if not blank and not value.strip():
        raise _fail(path, "must not be empty.")
    return value


def _name(value: Any, path: str) -> str:
    text = _string(value, path, limit=MAX_NAME)
    if _CONTROL.search(text):
        raise _fail(path, "must not contain control characters.")
    return text


def _uri(value: Any, path: str) -> str:
    """JSON Schema's `uri` format: an absolute URI (a scheme, then anything without spaces)."""
    text = _string(value, path, limit=MAX_URI)
    scheme, sep, _ = text.partition(":")
    if not sep or not _SCHEME.match(scheme) or _CONTROL.search(text) or " " in text:
        raise _fail(path, "must be an absolute URI (e.g. https://example.com/producer).")
    try:
        urlsplit(text)
    except ValueError:
        raise _fail(path, "must be an absolute URI (e.g. https://example.com/producer).") from None
    return text


def _uuid(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _UUID.match(value):
        raise _fail(path, "must be a UUID (e.g. 3f5e6a1c-8d2b-4c1e-9f0a-2b7d4e6c8a10).")
    return str(uuid.UUID(value))


def _datetime(value: Any, path: str) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise _fail(path, "must be an RFC 3339 date-time string.")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(path, "must be an RFC 3339 date-time (e.g. 2024-05-01T12:00:00Z).") from None
    if "T" not in text.upper() and " " not in text:
        raise _fail(path, "must be a date-time, not a date.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _fail(path, "is out of range.") from None


def storable_problem(value: Any, *, max_depth: int = MAX_FACET_DEPTH) -> str | None:
    """Why a decoded JSON value cannot be stored as-is (PostgreSQL's jsonb refuses NUL
    characters and non-finite numbers; nesting is bounded), or None. Iterative: no recursion
    limit to hit."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"is nested more than {max_depth} levels deep."
        if isinstance(item, str):
            if "\x00" in item:
                return "must not contain NUL characters."
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "must not contain infinite numbers."
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return "must not contain NUL characters."
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


def _facets(value: Any, path: str) -> dict[str, Any]:
    """A facets object: each facet an object with `_producer` and `_schemaURL` (BaseFacet)."""
    if value is None:
        return {}
    facets = _object(value, path)
    if len(facets) > MAX_FACETS:
        raise _fail(path, f"has more than {MAX_FACETS} facets.")
    for key, facet in facets.items():
        if not key or len(key) > MAX_FACET_KEY or _CONTROL.search(key):
            raise _fail(f"{path}.{key[:64]}", "is not a valid facet name.")
        where = f"{path}.{key}"
        facet = _object(facet, where)
        _uri(_required(facet, "_producer", f"{where}._producer"), f"{where}._producer")
        _uri(_required(facet, "_schemaURL", f"{where}._schemaURL"), f"{where}._schemaURL")
        if "_deleted" in facet and not isinstance(facet["_deleted"], bool):
            raise _fail(f"{where}._deleted", "must be true or false.")
        problem = storable_problem(facet)
        if problem:
            raise _fail(where, problem)
    return facets


def _array(value: Any, path: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(path, "must be an array.")
    return value


# --- entities --------------------------------------------------------------------------------


def _job(value: Any, path: str) -> JobRef:
    job = _object(value, path)
    return JobRef(
        namespace=_name(_required(job, "namespace", f"{path}.namespace"), f"{path}.namespace"),
        name=_name(_required(job, "name", f"{path}.name"), f"{path}.name"),
        facets=_facets(job.get("facets"), f"{path}.facets"),
    )


def _securable(facets: dict[str, Any], path: str) -> tuple[str, str] | None:
    facet = facets.get(SECURABLE_FACET)
    if facet is None or facet.get("_deleted") is True:
        return None
    where = f"{path}.{SECURABLE_FACET}"
    kind = _string(
        _required(facet, "securableType", f"{where}.securableType"),
        f"{where}.securableType",
        limit=32,
    ).lower()
    if kind not in SECURABLE_TYPES:
        raise _fail(f"{where}.securableType", f"must be one of {', '.join(SECURABLE_TYPES)}.")
    full_name = _string(
        _required(facet, "fullName", f"{where}.fullName"), f"{where}.fullName", limit=511
    )
    return kind, full_name


def _dataset(value: Any, path: str, *, io_key: str | None) -> DatasetRef:
    dataset = _object(value, path)
    facets = _facets(dataset.get("facets"), f"{path}.facets")
    if io_key is not None:
        _facets(dataset.get(io_key), f"{path}.{io_key}")
    version = ""
    version_facet = facets.get("version")
    if version_facet is not None and version_facet.get("_deleted") is not True:
        raw = version_facet.get("datasetVersion")
        if raw is not None:
            version = _string(
                raw, f"{path}.facets.version.datasetVersion", limit=MAX_VERSION, blank=True
            )
    return DatasetRef(
        namespace=_name(_required(dataset, "namespace", f"{path}.namespace"), f"{path}.namespace"),
        name=_name(_required(dataset, "name", f"{path}.name"), f"{path}.name"),
        facets=facets,
        version=version,
        securable=_securable(facets, f"{path}.facets"),
        path=path,
    )


def _datasets(body: dict, key: str, io_key: str) -> list[DatasetRef]:
    return [
        _dataset(item, f"{key}[{i}]", io_key=io_key)
        for i, item in enumerate(_array(body.get(key), key))
    ]


def _parent(run_facets: dict[str, Any]) -> ParentRef | None:
    facet = run_facets.get("parent")
    if facet is None:
        return None
    where = "run.facets.parent"
    run = _object(_required(facet, "run", f"{where}.run"), f"{where}.run")
    return ParentRef(
        run_id=_uuid(_required(run, "runId", f"{where}.run.runId"), f"{where}.run.runId"),
        job=_job(_required(facet, "job", f"{where}.job"), f"{where}.job"),
    )


# --- events ----------------------------------------------------------------------------------


def event_kind(body: dict) -> str:
    """Which of the spec's three events a body is (its root schema is oneOf the three)."""
    if "run" in body:
        return "run"
    if "dataset" in body and "job" in body:
        raise InvalidParameter(
            "An event with dataset and job but no run matches both DatasetEvent and JobEvent; "
            "send one of them."
        )
    if "dataset" in body:
        return "dataset"
    if "job" in body:
        return "job"
    raise InvalidParameter(
        "run: is required (a RunEvent carries run and job; a DatasetEvent carries dataset; "
        "a JobEvent carries job)."
    )


def parse_event(value: Any) -> Event:
    """Validate one OpenLineage event (a decoded JSON value) and reduce it to an `Event`.

    Raises InvalidParameter naming the field at fault (`run.runId: must be a UUID ...`).
    """
    body = _object(value, "event")
    kind = event_kind(body)
    event = Event(
        kind=kind,
        event_time=_datetime(_required(body, "eventTime", "eventTime"), "eventTime"),
        producer=_uri(_required(body, "producer", "producer"), "producer"),
    )
    _uri(_required(body, "schemaURL", "schemaURL"), "schemaURL")
    if kind == "run":
        raw_type = body.get("eventType")
        if raw_type is not None:
            if raw_type not in EVENT_TYPES:
                raise _fail("eventType", f"must be one of {', '.join(EVENT_TYPES)}.")
            event.event_type = raw_type
        run = _object(body["run"], "run")
        event.run_id = _uuid(_required(run, "runId", "run.runId"), "run.runId")
        event.run_facets = _facets(run.get("facets"), "run.facets")
        event.parent = _parent(event.run_facets)
        event.job = _job(_required(body, "job", "job"), "job")
    elif kind == "job":
        event.job = _job(body["job"], "job")
    else:
        event.dataset = _dataset(body["dataset"], "dataset", io_key=None)
    if kind in ("run", "job"):
        event.inputs = _datasets(body, "inputs", "inputFacets")
        event.outputs = _datasets(body, "outputs", "outputFacets")
        if len(event.inputs) + len(event.outputs) > MAX_DATASETS:
            raise _fail("inputs", f"an event may name at most {MAX_DATASETS} datasets.")
    return event


def parse_events(value: Any, *, limit: int) -> list[Event]:
    """One event (a JSON object) or a batch (a JSON array of up to `limit` events); a bad event
    in a batch is named by its index (`[3].run.runId: ...`) and refuses the whole batch."""
    if isinstance(value, dict):
        return [parse_event(value)]
    if not isinstance(value, list):
        raise InvalidParameter("The body must be an OpenLineage event (a JSON object).")
    if not value:
        raise InvalidParameter("The batch is empty.")
    if len(value) > limit:
        raise InvalidParameter(f"A batch may hold at most {limit} events.")
    events = []
    for index, item in enumerate(value):
        try:
            events.append(parse_event(item))
        except InvalidParameter as exc:
            raise InvalidParameter(f"[{index}].{exc.message}") from None
    return events
