"""The events a webhook can subscribe to, their wire forms, and the delivery envelope.

MLflow's registry events (mlflow/entities/webhook.py, mlflow/webhooks/types.py) keep MLflow's
names and payloads, so a receiver written for MLflow works unchanged; Steward's own events
(promotion requests, version archive and delete) use the same envelope. MLflow's prompt and
budget-policy events have no counterpart here and are refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

MLFLOW_EVENTS: tuple[str, ...] = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)
STEWARD_EVENTS: tuple[str, ...] = (
    "promotion_request.created",
    "promotion_request.approved",
    "promotion_request.rejected",
    "promotion_request.applied",
    "model_version.archived",
    "model_version.deleted",
)
ALL: tuple[str, ...] = MLFLOW_EVENTS + STEWARD_EVENTS
# Defined by MLflow, not served by Steward (it has no prompts and no budget policies).
MLFLOW_UNSUPPORTED = (
    "prompt",
    "prompt_version",
    "prompt_tag",
    "prompt_version_tag",
    "prompt_alias",
    "budget_policy",
)

# MLflow's proto enums (mlflow/protos/webhooks.proto): names on the JSON wire.
_ENTITY_NUMBERS = {
    "REGISTERED_MODEL": 1,
    "MODEL_VERSION": 2,
    "MODEL_VERSION_TAG": 3,
    "MODEL_VERSION_ALIAS": 4,
    "PROMPT": 5,
    "PROMPT_VERSION": 6,
    "PROMPT_TAG": 7,
    "PROMPT_VERSION_TAG": 8,
    "PROMPT_ALIAS": 9,
    "BUDGET_POLICY": 10,
}
_ACTION_NUMBERS = {"CREATED": 1, "UPDATED": 2, "DELETED": 3, "SET": 4, "EXCEEDED": 5}


class EventError(ValueError):
    """An event name or wire object that is not a supported event."""


def clean_events(value, *, allowed: tuple[str, ...] = ALL) -> list[str]:
    """A non-empty list of distinct supported event names (order kept)."""
    if not isinstance(value, list) or not value:
        raise EventError("events must be a non-empty list of event names.")
    if len(value) > len(ALL):
        raise EventError(f"events lists at most {len(ALL)} events.")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise EventError("events must be a list of strings such as 'model_version.created'.")
        if item not in allowed:
            entity = item.split(".", 1)[0]
            if entity in MLFLOW_UNSUPPORTED:
                raise EventError(f"Event {item[:64]!r} is MLflow's but Steward does not serve it.")
            raise EventError(
                f"Unknown event {item[:64]!r}; supported events: {', '.join(allowed)}."
            )
        if item not in out:
            out.append(item)
    return out


def _enum_name(value, numbers: dict[str, int], field: str) -> str:
    if isinstance(value, bool):
        raise EventError(f"event {field} must be an enum name.")
    if isinstance(value, int):
        for name, number in numbers.items():
            if number == value:
                return name
    if isinstance(value, str) and value in numbers:
        return value
    raise EventError(f"Invalid event {field} {str(value)[:40]!r}.")


def from_wire(obj) -> str:
    """MLflow's `{"entity": "MODEL_VERSION", "action": "CREATED"}` as `model_version.created`."""
    if not isinstance(obj, dict) or set(obj) - {"entity", "action"}:
        raise EventError('each event must be an object {"entity": ..., "action": ...}.')
    entity = _enum_name(obj.get("entity"), _ENTITY_NUMBERS, "entity").lower()
    action = _enum_name(obj.get("action"), _ACTION_NUMBERS, "action").lower()
    name = f"{entity}.{action}"
    clean_events([name], allowed=MLFLOW_EVENTS)
    return name


def to_wire(name: str) -> dict[str, str]:
    entity, action = name.split(".", 1)
    return {"entity": entity.upper(), "action": action.upper()}


def envelope(event: str, data: dict, *, at: datetime | None = None) -> str:
    """The JSON body of a delivery, as MLflow builds it (mlflow/webhooks/delivery.py):
    entity, action, an ISO-8601 UTC timestamp and the event's data."""
    entity, action = event.split(".", 1)
    return json.dumps(
        {
            "entity": entity,
            "action": action,
            "timestamp": (at or datetime.now(UTC)).isoformat(),
            "data": data,
        }
    )


# Example data for test deliveries (MLflow's `test_webhook` sends the same kind of example).
EXAMPLES: dict[str, dict] = {
    "registered_model.created": {
        "name": "example_catalog.example_schema.example_model",
        "tags": {"example_key": "example_value"},
        "description": "An example registered model",
    },
    "model_version.created": {
        "name": "example_catalog.example_schema.example_model",
        "version": "1",
        "source": "models:/m-123",
        "run_id": "abcd1234abcd5678",
        "tags": {"example_key": "example_value"},
        "description": "An example model version",
    },
    "model_version_tag.set": {
        "name": "example_catalog.example_schema.example_model",
        "version": "1",
        "key": "example_key",
        "value": "example_value",
    },
    "model_version_tag.deleted": {
        "name": "example_catalog.example_schema.example_model",
        "version": "1",
        "key": "example_key",
    },
    "model_version_alias.created": {
        "name": "example_catalog.example_schema.example_model",
        "alias": "example_alias",
        "version": "1",
    },
    "model_version_alias.deleted": {
        "name": "example_catalog.example_schema.example_model",
        "alias": "example_alias",
    },
    "model_version.archived": {
        "name": "example_catalog.example_schema.example_model",
        "version": "1",
        "reason": "retention: older than 90 days",
    },
    "model_version.deleted": {
        "name": "example_catalog.example_schema.example_model",
        "version": "1",
        "reason": "",
    },
}
for _action in ("created", "approved", "rejected", "applied"):
    EXAMPLES[f"promotion_request.{_action}"] = {
        "id": "00000000-0000-0000-0000-000000000000",
        "name": "example_catalog.example_schema.example_model",
        "alias": "champion",
        "kind": "ALIAS",
        "version": "2",
        "from_version": "1",
        "state": _action.upper() if _action != "created" else "PENDING",
        "requester": "alice",
        "justification": "better recall",
        "break_glass": False,
    }
