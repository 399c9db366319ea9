"""MLflow's JSON shapes for experiments, runs, metrics and logged models.

Proto `string` fields (experiment_id, run_id) are strings, int64 fields are numbers, enums are
their proto names, and a NaN metric is the string "NaN" (proto JSON; the client parses it).
"""

from __future__ import annotations

from tracking.models import (
    Experiment,
    LatestMetric,
    LoggedModel,
    LoggedModelMetric,
    Metric,
    Run,
)


def _kv(rows) -> list[dict]:
    return [{"key": row.key, "value": row.value} for row in rows]


def metric_value(row) -> float | str:
    return "NaN" if row.is_nan else row.value


def experiment_out(obj: Experiment) -> dict:
    return {
        "experiment_id": obj.experiment_id,
        "name": obj.name,
        "artifact_location": obj.artifact_location,
        "lifecycle_stage": obj.lifecycle_stage,
        "last_update_time": obj.last_update_time,
        "creation_time": obj.creation_time,
        "tags": _kv(obj.tags.all()),
    }


def run_info_out(run: Run) -> dict:
    info = {
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "run_name": run.run_name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user_id,
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def metric_out(row: Metric | LatestMetric | LoggedModelMetric) -> dict:
    return {
        "key": row.key,
        "value": metric_value(row),
        "timestamp": row.timestamp,
        "step": row.step,
    }


def run_out(run: Run) -> dict:
    inputs = run.inputs or {}
    return {
        "info": run_info_out(run),
        "data": {
            "metrics": [metric_out(m) for m in run.latest_metrics.all()],
            "params": _kv(run.params.all()),
            "tags": _kv(run.tags.all()),
        },
        "inputs": {
            "dataset_inputs": inputs.get("dataset_inputs", []),
            "model_inputs": inputs.get("model_inputs", []),
        },
        "outputs": {
            "model_outputs": [
                {"model_id": o.model_id, "step": o.step} for o in run.model_outputs.all()
            ]
        },
    }


def logged_model_out(model: LoggedModel) -> dict:
    info = {
        "model_id": model.model_id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "artifact_uri": model.artifact_location,
        "creation_timestamp_ms": model.creation_timestamp_ms,
        "last_updated_timestamp_ms": model.last_updated_timestamp_ms,
        "status": model.status,
        "model_type": model.model_type,
        "tags": _kv(model.tags.all()),
    }
    if model.status_message:
        info["status_message"] = model.status_message
    if model.source_run_id:
        info["source_run_id"] = model.source_run_id
    metrics = []
    for m in model.metrics.all():
        point = {**metric_out(m), "model_id": model.model_id}
        if m.run_id:
            point["run_id"] = m.run_id
        if m.dataset_name:
            point["dataset_name"] = m.dataset_name
        if m.dataset_digest:
            point["dataset_digest"] = m.dataset_digest
        metrics.append(point)
    return {"info": info, "data": {"params": _kv(model.params.all()), "metrics": metrics}}
