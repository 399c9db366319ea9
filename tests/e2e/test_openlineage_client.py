"""Lineage from real clients against a live Steward.

1. The unchanged `openlineage-python` client, its HTTP transport pointed at Steward with a
   Steward token as `api_key`: what it really sends (path, Authorization, Content-Type, gzip),
   every event type, and the graph the query API then returns.
2. The unchanged `mlflow` client: `mlflow.log_input` of a pandas dataset with a source, then
   `log_model` with `registered_model_name`; the model-version shortcut answers
   dataset → run → model version, and an OpenLineage pipeline that produced the same file joins
   the same dataset node. A user who may see the model but not the experiment gets the run as
   a RESTRICTED node.
"""

from __future__ import annotations

import uuid
import warnings

import pytest
import requests
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import parent_run, schema_dataset
from openlineage.client.transport.http import HttpConfig, HttpTransport

from audit.models import AuditEvent
from lineage.models import LineageEdge, LineageNode
from tests.conftest import token_for
from tests.e2e.conftest import _wait_for_request_threads

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PRODUCER = "https://github.com/acme/pipelines/tree/v1"
NOW = "2024-05-01T12:00:00.000000+00:00"


class Recorder:
    """A requests session hook that keeps what the client actually sent."""

    def __init__(self):
        self.sent: list[requests.PreparedRequest] = []
        self.statuses: list[int] = []

    def __call__(self, response, *args, **kwargs):
        self.sent.append(response.request)
        self.statuses.append(response.status_code)


def ol_client(url: str, token: str, *, compression: str | None = None):
    """The client exactly as its docs configure it: HttpTransport, api_key auth."""
    recorder = Recorder()
    session = requests.Session()
    session.hooks["response"].append(recorder)
    params = {
        "type": "http",
        "url": url,
        "endpoint": "api/v1/lineage",
        "auth": {"type": "api_key", "apiKey": token},
        "retry": {"total": 0},
    }
    if compression:
        params["compression"] = compression
    config = HttpConfig.from_dict(params)
    config.session = session
    return OpenLineageClient(transport=HttpTransport(config)), recorder


def graph(url: str, token: str, node_id: str, **params) -> dict:
    response = requests.get(
        f"{url}/api/v1/lineage",
        params={"nodeId": node_id, **params},
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def schema_facet(*names: str):
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type="string") for n in names]
    )


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_openlineage_http_transport_unchanged(live_server, make_user, compression):
    alice = make_user("alice")
    token = token_for(alice)
    client, recorder = ol_client(live_server.url, token, compression=compression)
    run_id, parent_id = str(uuid.uuid4()), str(uuid.uuid4())
    job = Job(namespace="airflow", name="wine_etl.clean")
    raw = InputDataset(
        namespace="s3://lake", name="raw/wine.csv", facets={"schema": schema_facet("a", "b")}
    )
    clean = OutputDataset(namespace="s3://lake", name="clean/wine.parquet")
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent_id), job=parent_run.Job(namespace="airflow", name="wine")
    )
    try:
        for state in (RunState.START, RunState.RUNNING, RunState.COMPLETE):
            client.emit(
                RunEvent(
                    eventType=state,
                    eventTime=NOW,
                    run=Run(runId=run_id, facets={"parent": parent}),
                    job=job,
                    producer=PRODUCER,
                    inputs=[raw],
                    outputs=[clean] if state == RunState.COMPLETE else [],
                )
            )
        client.emit(
            DatasetEvent(
                eventTime=NOW,
                producer=PRODUCER,
                dataset=StaticDataset(
                    namespace="s3://lake",
                    name="ref/grapes.csv",
                    facets={"schema": schema_facet("g")},
                ),
            )
        )
        client.emit(
            JobEvent(
                eventTime=NOW,
                producer=PRODUCER,
                job=Job(namespace="airflow", name="wine_etl.enrich"),
                inputs=[InputDataset(namespace="s3://lake", name="ref/grapes.csv")],
                outputs=[OutputDataset(namespace="s3://lake", name="clean/wine.parquet")],
            )
        )
    finally:
        client.close()
        _wait_for_request_threads()

    # What the client really sends.
    assert recorder.statuses == [201] * 5
    for request in recorder.sent:
        assert request.method == "POST"
        assert request.url == f"{live_server.url}/api/v1/lineage"
        assert request.headers["Authorization"] == f"Bearer {token}"
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers.get("Content-Encoding") == compression
        if compression:
            assert request.body[:2] == b"\x1f\x8b"  # gzip magic

    answer = graph(live_server.url, token, "dataset:s3://lake:clean/wine.parquet", depth=2)
    found = {n["id"]: n for n in answer["nodes"]}
    assert found[f"run:{run_id}"]["data"]["state"] == "COMPLETE"
    fields = found["dataset:s3://lake:raw/wine.csv"]["data"]["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [("a", "string"), ("b", "string")]
    assert "job:airflow:wine_etl.clean" in found
    assert "job:airflow:wine_etl.enrich" in found  # the JobEvent's design-time edge
    assert f"run:{parent_id}" in found
    assert ("dataset:s3://lake:raw/wine.csv", f"run:{run_id}", "INPUT") in {
        (e["source"], e["target"], e["type"]) for e in answer["edges"]
    }
    assert AuditEvent.objects.filter(actor="alice", action="lineage.ingest").count() == 5
    assert AuditEvent.objects.filter(actor="alice", action="lineage.query").count() == 1


def test_openlineage_client_with_a_bad_token_is_refused(live_server, make_user):
    client, recorder = ol_client(live_server.url, "not-a-token")
    try:
        with pytest.raises(requests.HTTPError):
            client.emit(
                RunEvent(
                    eventType=RunState.START,
                    eventTime=NOW,
                    run=Run(runId=str(uuid.uuid4())),
                    job=Job(namespace="airflow", name="x"),
                    producer=PRODUCER,
                )
            )
    finally:
        client.close()
        _wait_for_request_threads()
    assert recorder.statuses == [401]
    assert not LineageNode.objects.exists()


# Runs on SQLite too: it uploads and registers but downloads nothing, so the client never
# reads files in parallel threads (what makes the load_model e2e tests PostgreSQL-only).
def test_mlflow_inputs_and_registration_give_model_version_lineage(
    login, live_server, tree, grant, make_user
):
    import mlflow
    import pandas as pd
    from sklearn.datasets import load_wine
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    tree("main.ml")
    alice = make_user("alice")
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "CREATE MODEL")
    login(alice)

    X, y = load_wine(return_X_y=True, as_frame=True)
    frame = pd.concat([X, y.rename("target")], axis=1)
    source = "s3://lake/clean/wine.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = mlflow.data.from_pandas(frame, source=source, name="wine-train", targets="target")
        model = LogisticRegression(max_iter=300).fit(X, y)
    mlflow.set_experiment("wine-lineage")
    with mlflow.start_run() as run:
        mlflow.log_input(data, context="training")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name="main.ml.wine",
                pip_requirements=["scikit-learn"],
            )
    assert str(info.registered_model_version) == "1"
    run_id = run.info.run_id

    # A pipeline's OpenLineage events produced the very file the run trained on.
    token = token_for(alice)
    pipeline_run = str(uuid.uuid4())
    client, _ = ol_client(live_server.url, token)
    try:
        client.emit(
            RunEvent(
                eventType=RunState.COMPLETE,
                eventTime=NOW,
                run=Run(runId=pipeline_run),
                job=Job(namespace="airflow", name="wine_etl.clean"),
                producer=PRODUCER,
                inputs=[InputDataset(namespace="s3://lake", name="raw/wine.csv")],
                outputs=[OutputDataset(namespace="s3://lake", name="clean/wine.parquet")],
            )
        )
    finally:
        client.close()
        _wait_for_request_threads()

    url = f"{live_server.url}/api/v1/models/main.ml.wine/versions/1/lineage"
    answer = requests.get(
        url,
        params={"depth": 4},
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        timeout=30,
    ).json()
    nodes = {n["id"]: n for n in answer["nodes"]}
    version_id = answer["root"]
    assert nodes[version_id]["type"] == "MODEL_VERSION"
    assert nodes[version_id]["data"]["full_name"] == "main.ml.wine"
    run_node = nodes[f"mlflow_run:{run_id}"]
    assert run_node["type"] == "RUN" and run_node["data"]["source"] == "mlflow"
    dataset = nodes["dataset:s3://lake:clean/wine.parquet"]
    assert dataset["data"]["facets"]["mlflow"]["name"] == "wine-train"
    assert {"name": "target", "type": "long"} in dataset["data"]["facets"]["schema"]["fields"]
    found = {(e["source"], e["target"], e["type"]): e for e in answer["edges"]}
    assert found[(dataset["id"], run_node["id"], "INPUT")]["version"] == data.digest
    assert (run_node["id"], version_id, "OUTPUT") in found
    # ...and beyond the dataset, the pipeline run that wrote it and what it read.
    assert (f"run:{pipeline_run}", dataset["id"], "OUTPUT") in found
    assert "dataset:s3://lake:raw/wine.csv" in nodes

    # Bob may browse the model but not read alice's experiment: the run is RESTRICTED.
    bob = make_user("bob")
    grant("catalog", "main", "bob", "USE CATALOG", "USE SCHEMA", "BROWSE")
    seen = requests.get(
        url,
        params={"depth": 4},
        headers={"Authorization": f"Bearer {token_for(bob)}", "Connection": "close"},
        timeout=30,
    ).json()
    bob_nodes = {n["id"]: n for n in seen["nodes"]}
    assert f"mlflow_run:{run_id}" not in bob_nodes
    assert run_id not in str(seen)
    hidden = [n for n in seen["nodes"] if n["type"] == "RESTRICTED"]
    assert len(hidden) == 1 and set(hidden[0]) == {"id", "type", "depth"}
    assert (dataset["id"], hidden[0]["id"], "INPUT") in {
        (e["source"], e["target"], e["type"]) for e in seen["edges"]
    }
    assert LineageEdge.objects.count() == len(answer["edges"])
