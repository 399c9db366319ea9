"""Resolve a validated version source to what it names, checking the actor may read it.

A source names a logged model, a run's artifacts, or a path in this server's artifact store;
in each case the run or experiment behind it must be readable by the actor (SECURITY_CASES 2:
no registering another principal's run).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.actor import Actor
from core.errors import InvalidParameter
from registry.storage import LOGGED_MODEL_ID, Source
from tracking import selectors as tracking


@dataclass
class Resolved:
    run_id: str
    logged_model_id: str
    artifact_prefix: str  # where the files are in the artifact store ("" if unknown)


def _artifact_prefix(uri: str) -> str:
    prefix = "mlflow-artifacts:/"
    return uri[len(prefix) :].strip("/") if uri.startswith(prefix) else ""


def resolve_source(actor: Actor, source: Source, *, run_id="", logged_model_id="") -> Resolved:
    if run_id not in ("", None) and not isinstance(run_id, str):
        raise InvalidParameter("run_id must be a string.")
    if source.kind == "logged_model":
        model = tracking.logged_model_for_actor(actor=actor, model_id=source.ident, need="read")
        resolved = Resolved(
            run_id=model.source_run.run_id if model.source_run is not None else "",
            logged_model_id=source.ident,
            artifact_prefix=_artifact_prefix(model.artifact_location),
        )
    elif source.kind == "run":
        run = tracking.run_for_actor(actor=actor, run_id=source.ident, need="read")
        base = _artifact_prefix(run.artifact_uri)
        resolved = Resolved(run.run_id, "", f"{base}/{source.path}" if source.path else base)
    else:
        resolved = _resolve_artifact_path(actor, source.path)
    if run_id and run_id != resolved.run_id:
        # The client may name the run separately; it must be readable too.
        tracking.run_for_actor(actor=actor, run_id=run_id, need="read")
        resolved.run_id = run_id
    if logged_model_id not in ("", None):
        # MLflow 3 sends the logged model beside the source; it must agree with a models:/
        # source, and (for a run or artifact source) be one the actor may read.
        if not isinstance(logged_model_id, str) or not LOGGED_MODEL_ID.match(logged_model_id):
            raise InvalidParameter("model_id must name a logged model (m-<id>).")
        if resolved.logged_model_id and logged_model_id != resolved.logged_model_id:
            raise InvalidParameter("model_id does not match the logged model in source.")
        if not resolved.logged_model_id:
            tracking.logged_model_for_actor(actor=actor, model_id=logged_model_id, need="read")
            resolved.logged_model_id = logged_model_id
    return resolved


def _resolve_artifact_path(actor: Actor, path: str) -> Resolved:
    """`<experiment>/<run_id>/artifacts/...` or `<experiment>/models/<m-id>/artifacts/...`."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[1] == "models":
        model = tracking.logged_model_for_actor(actor=actor, model_id=parts[2], need="read")
        if str(model.experiment_id) != parts[0]:
            raise InvalidParameter("source does not match its logged model's experiment.")
        run_id = model.source_run.run_id if model.source_run is not None else ""
        return Resolved(run_id, parts[2], path)
    if len(parts) >= 3 and parts[2] == "artifacts":
        run = tracking.run_for_actor(actor=actor, run_id=parts[1], need="read")
        if str(run.experiment_id) != parts[0]:
            raise InvalidParameter("source does not match its run's experiment.")
        return Resolved(run.run_id, "", path)
    raise InvalidParameter("source must point into a run's or a logged model's artifacts.")
