"""MLflow's JSON shapes for registered models and model versions.

Proto `string` fields (version, run_id) are strings, int64 timestamps numbers, and a version
always carries its `status` (a missing one parses as PENDING_REGISTRATION and makes the client
poll for minutes). Names are rendered as Steward stores them: `catalog.schema.model`.
"""

from __future__ import annotations

from core.api import epoch_ms
from registry import selectors


def _kv(rows) -> list[dict]:
    return [{"key": row.key, "value": row.value} for row in rows]


def version_out(version, aliases: list[str] | None = None) -> dict:
    out = {
        "name": version.model.full_name,
        "version": str(version.version),
        "creation_timestamp": epoch_ms(version.created_at),
        "last_updated_timestamp": epoch_ms(version.updated_at),
        "user_id": version.created_by,
        "current_stage": version.stage,
        "description": version.description,
        "source": version.source,
        "run_id": version.run_id,
        "status": version.status,
        "status_message": version.status_message,
        "tags": _kv(version.tags.all()),
        "aliases": list(aliases or []),
        "run_link": "",
    }
    if version.logged_model_id:
        out["model_id"] = version.logged_model_id
    return out


def versions_out(versions, aliases: dict | None = None) -> list[dict]:
    """Several versions with their tags and aliases (one statement for all of them, unless
    the caller knows them: a version just created has none, and its tags are the ones it
    was created with)."""
    versions = list(versions)
    if aliases is None:
        aliases = selectors.version_extras(versions)
    return [version_out(v, aliases.get(v.pk)) for v in versions]


def models_out(models) -> list[dict]:
    """Registered models with tags, aliases and their latest version per stage (one
    statement for the whole list, not per model: selectors.model_extras)."""
    models = list(models)
    extras = selectors.model_extras(models)
    out = []
    for model in models:
        out.append(
            {
                "name": model.full_name,
                "creation_timestamp": epoch_ms(model.created_at),
                "last_updated_timestamp": epoch_ms(model.updated_at),
                "user_id": model.created_by,
                "description": model.comment,
                "tags": [{"key": k, "value": v} for k, v in extras.tags.get(model.pk, [])],
                "aliases": [
                    {"alias": alias, "version": str(number)}
                    for alias, number in extras.aliases.get(model.pk, [])
                ],
                "latest_versions": [
                    version_out(v, extras.version_aliases.get(v.pk))
                    for v in extras.latest.get(model.pk, [])
                ],
            }
        )
    return out


def model_out(model) -> dict:
    return models_out([model])[0]
