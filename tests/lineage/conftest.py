"""Fixtures for the lineage tests: OpenLineage event builders and an API door."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_SCHEMA = "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json"
LINEAGE = "/api/v1/lineage"


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMA, **fields}


def dataset(namespace: str, name: str, *, version: str | None = None, **facets) -> dict:
    out: dict[str, Any] = {"namespace": namespace, "name": name}
    if version is not None:
        facets["version"] = facet(datasetVersion=version)
    if facets:
        out["facets"] = facets
    return out


def run_event(
    run_id: str | None = None,
    *,
    event_type: str = "COMPLETE",
    job: tuple[str, str] = ("airflow", "etl.clean"),
    inputs: list | None = None,
    outputs: list | None = None,
    when: str = "2024-05-01T12:00:00Z",
    run_facets: dict | None = None,
) -> dict:
    """A valid RunEvent (spec 2-0-2), as the openlineage-python client serializes one."""
    event: dict[str, Any] = {
        "eventType": event_type,
        "eventTime": when,
        "run": {"runId": run_id or str(uuid.uuid4())},
        "job": {"namespace": job[0], "name": job[1]},
        "inputs": inputs or [],
        "outputs": outputs or [],
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
    }
    if run_facets:
        event["run"]["facets"] = run_facets
    return event


def dataset_event(namespace: str, name: str, **facets) -> dict:
    return {
        "eventTime": "2024-05-01T12:00:00Z",
        "dataset": dataset(namespace, name, **facets),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
    }


def job_event(namespace: str, name: str, *, inputs=None, outputs=None) -> dict:
    return {
        "eventTime": "2024-05-01T12:00:00Z",
        "job": {"namespace": namespace, "name": name},
        "inputs": inputs or [],
        "outputs": outputs or [],
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
    }


def mutated(event: dict, path: str, value: Any = ..., *, delete: bool = False) -> dict:
    """A deep copy of `event` with the field at a dotted path (`run.runId`, `inputs.0.name`)
    set to `value` or deleted."""
    out = copy.deepcopy(event)
    *parents, last = path.split(".")
    target: Any = out
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        if delete:
            del target[int(last)]
        else:
            target[int(last)] = value
    elif delete:
        del target[last]
    else:
        target[last] = value
    return out


class Lineage:
    """The lineage door as one user sees it."""

    def __init__(self, client):
        self.client = client

    def post(self, body, **extra):
        return self.client.post(LINEAGE, body, format="json", **extra)

    def graph(self, node_id: str, **params):
        return self.client.get(LINEAGE, {"nodeId": node_id, **params})

    def version(self, full_name: str, version, **params):
        return self.client.get(f"/api/v1/models/{full_name}/versions/{version}/lineage", params)


@pytest.fixture
def lineage_as(api_as):
    """lineage_as(user, scope="all") -> a Lineage door with that user's bearer token."""

    def make(user, scope: str = "all") -> Lineage:
        return Lineage(api_as(user, scope))

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


def ids(answer: dict) -> set[str]:
    return {n["id"] for n in answer["nodes"]}


def edges(answer: dict) -> set[tuple[str, str, str]]:
    return {(e["source"], e["target"], e["type"]) for e in answer["edges"]}


PIPELINE_RUN = "0e1c7d8a-7a53-4f4e-8c3a-5f1b2a9d6e01"


def mlflow_dataset(source: str | None, *, name: str = "wine-train", digest: str = "be9dd889"):
    """A dataset input as the mlflow client sends it to runs/log-inputs."""
    import json

    return {
        "dataset": {
            "name": name,
            "digest": digest,
            "source_type": "s3",
            "source": json.dumps({"uri": source}) if source else "{}",
            "schema": json.dumps({"mlflow_colspec": [{"name": "alcohol", "type": "double"}]}),
        },
        "tags": [{"key": "mlflow.data.context", "value": "training"}],
    }


class Trained:
    """raw.csv -> pipeline run (job etl.clean) -> train.csv -> MLflow run -> main.ml.wine/1"""

    raw = "dataset:s3://lake:raw.csv"
    train = "dataset:s3://lake:train.csv"
    pipeline = f"run:{PIPELINE_RUN}"
    job = "job:airflow:etl.clean"

    def __init__(self, run, version):
        self.run_id = run.run_id
        self.run = f"mlflow_run:{run.run_id}"
        self.version_obj = version
        self.version = f"model_version:{version.pk}"
        self.experiment_id = run.experiment_id


@pytest.fixture
def trained(tree, grant, alice):
    """Alice's pipeline (OpenLineage) and training run (MLflow) behind main.ml.wine version 1."""
    from core.actor import Actor
    from lineage.services import lineage_events_ingest
    from registry.services import model_version_create
    from tracking.services import (
        experiment_create,
        logged_model_create,
        run_create,
        run_log_inputs,
    )

    tree("main.ml.wine")
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "MODIFY")
    actor = Actor.system(alice)
    lineage_events_ingest(
        actor=actor,
        body=run_event(
            PIPELINE_RUN,
            inputs=[dataset("s3://lake", "raw.csv")],
            outputs=[dataset("s3://lake", "train.csv", version="v1")],
        ),
    )
    experiment = experiment_create(actor=actor, name="wine-exp")
    run = run_create(actor=actor, experiment_id=experiment.experiment_id)
    run_log_inputs(actor=actor, run_id=run.run_id, datasets=[mlflow_dataset("s3://lake/train.csv")])
    model = logged_model_create(
        actor=actor,
        experiment_id=experiment.experiment_id,
        name="model",
        source_run_id=run.run_id,
    )
    version = model_version_create(
        actor=actor, full_name="main.ml.wine", source=f"models:/{model.model_id}"
    )
    return Trained(run, version)
