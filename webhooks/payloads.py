"""The `data` of each registry event, built from Steward's objects (MLflow's payload shapes
for MLflow's events: mlflow/webhooks/types.py; names are Steward's full names)."""

from __future__ import annotations


def registered_model_created(model, tags: dict[str, str]) -> dict:
    return {"name": model.full_name, "tags": dict(tags), "description": model.comment or None}


def model_version_created(version) -> dict:
    return {
        "name": version.model.full_name,
        "version": str(version.version),
        "source": version.source,
        "run_id": version.run_id or None,
        "tags": {t.key: t.value for t in version.tags.all()},
        "description": version.description or None,
    }


def model_version_tag(version, key: object, value: str | None = None) -> dict:
    # `key` as the client sent it: a delete echoes whatever matched the stored key.
    out = {"name": version.model.full_name, "version": str(version.version), "key": key}
    if value is not None:
        out["value"] = value
    return out


def alias_created(model, alias: str, version) -> dict:
    return {"name": model.full_name, "alias": alias, "version": str(version.version)}


def alias_deleted(model, alias: str) -> dict:
    return {"name": model.full_name, "alias": alias}


def model_version_lifecycle(version, reason: str = "") -> dict:
    """model_version.archived / model_version.deleted."""
    return {"name": version.model.full_name, "version": str(version.version), "reason": reason}


def promotion_request(request) -> dict:
    return {
        "id": str(request.id),
        "name": request.model.full_name,
        "alias": request.alias,
        "kind": request.kind,
        "version": str(request.version_number),
        "from_version": None if request.from_version is None else str(request.from_version),
        "state": request.state,
        "requester": request.requester_name,
        "justification": request.justification,
        "break_glass": request.break_glass,
    }
