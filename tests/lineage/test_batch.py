"""OpenLineage's batch endpoint, `POST /api/v1/lineage/batch` (spec 2-0-2 `postEventBatch`):
good batches, bad events inside a batch (reported by index, the rest stored), links the caller
may not make, size limits, gzip, who may post, and the audit trail."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from audit.models import AuditEvent
from lineage import naming
from lineage.models import LineageEdge, LineageNode
from tests.lineage.conftest import dataset, dataset_event, facet, job_event, mutated, run_event

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/lineage/batch"


def post(client, body, **extra):
    return client.post(BATCH, json.dumps(body), content_type="application/json", **extra)


def runs(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def stored(kind: str, namespace: str, name: str) -> bool:
    return LineageNode.objects.filter(identity=naming.identity(kind, namespace, name)).exists()


def outcome(response, status: str, received: int, failed: int) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == status
    assert body["summary"] == {
        "received": received,
        "successful": received - failed,
        "failed": failed,
        "retriable": 0,
        "non_retriable": failed,
    }
    assert len(body["failed_events"]) == failed
    return body


def refused(response, fragment: str = "", code: str = "INVALID_PARAMETER_VALUE", status=400):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error_code"] == code, body
    assert fragment in body["message"], body
    assert set(body) == {"error_code", "message"}


@pytest.fixture
def door(api_as, alice):
    return api_as(alice)


# --- good batches ----------------------------------------------------------------------------


def test_a_good_batch_is_stored_and_audited_once(door, alice):
    ids = runs(3)
    batch = [run_event(r, outputs=[dataset("s3://lake", f"{r}.csv")]) for r in ids]
    batch += [dataset_event("s3://lake", "solo.csv"), job_event("airflow", "design")]
    body = outcome(post(door, batch), "success", 5, 0)
    assert body["failed_events"] == []
    assert all(stored("run", "", r) for r in ids)
    assert stored("dataset", "s3://lake", "solo.csv") and stored("job", "airflow", "design")
    assert LineageEdge.objects.count() == 6
    event = AuditEvent.objects.get(action="lineage.ingest")
    assert (event.actor, event.outcome, event.securable_type) == (
        "alice",
        "SUCCESS",
        "lineage_batch",
    )
    assert event.details["events"] == 5 and event.details["failed"] == 0
    assert event.details["subjects"][0] == f"run:{ids[0]}"


def test_the_same_batch_twice_changes_nothing(door):
    batch = [run_event(r, inputs=[dataset("s3://lake", "in.csv", version="v1")]) for r in runs(2)]
    outcome(post(door, batch), "success", 2, 0)
    before = sorted(LineageNode.objects.values_list("identity", "facets", "state", "ended_at"))
    edges = sorted(LineageEdge.objects.values_list("src_id", "dst_id", "kind", "version"))
    outcome(post(door, batch), "success", 2, 0)
    assert sorted(LineageNode.objects.values_list("identity", "facets", "state", "ended_at")) == (
        before
    )
    assert sorted(LineageEdge.objects.values_list("src_id", "dst_id", "kind", "version")) == edges


def test_events_of_one_run_in_one_batch_end_in_the_latest_state(door):
    run = runs(1)[0]
    batch = [
        run_event(run, event_type="COMPLETE", when="2024-05-01T12:05:00Z"),
        run_event(run, event_type="START", when="2024-05-01T12:00:00Z"),
    ]
    outcome(post(door, batch), "success", 2, 0)
    node = LineageNode.objects.get(identity=naming.identity("run", "", run))
    assert node.state == "COMPLETE" and node.started_at is not None


def test_gzip_bodies(door):
    ids = runs(2)
    body = gzip.compress(json.dumps([run_event(r) for r in ids]).encode())
    response = door.post(BATCH, body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    outcome(response, "success", 2, 0)
    assert all(stored("run", "", r) for r in ids)


# --- bad events inside a batch ------------------------------------------------------------


def test_a_bad_event_is_reported_by_index_and_the_others_are_stored(door):
    ids = runs(4)
    batch = [run_event(r, outputs=[dataset("s3://lake", f"{r}.csv")]) for r in ids]
    batch[1] = mutated(batch[1], "run.runId", "not-a-uuid")
    batch[3] = mutated(batch[3], "eventTime", delete=True)
    body = outcome(post(door, batch), "partial_success", 4, 2)
    assert [f["index"] for f in body["failed_events"]] == [1, 3]
    first = body["failed_events"][0]
    assert first["reason"].startswith("run.runId: must be a UUID")
    assert (first["retriable"], first["error_code"]) == (False, "INVALID_PARAMETER_VALUE")
    assert body["failed_events"][1]["reason"] == "eventTime: is required."
    assert stored("run", "", ids[0]) and stored("run", "", ids[2])
    assert not stored("dataset", "s3://lake", f"{ids[1]}.csv")
    assert not stored("run", "", ids[3]) and not stored("dataset", "s3://lake", f"{ids[3]}.csv")
    event = AuditEvent.objects.get(action="lineage.ingest")
    assert event.details["events"] == 2 and event.details["failed"] == 2


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("a string", "event: must be a JSON object."),
        ([run_event()], "event: must be a JSON object."),
        ({"producer": "https://x"}, "run: is required"),
        (mutated(run_event(), "eventType", "DONE"), "eventType: must be one of"),
        (
            run_event(inputs=[dataset("ns", f"d{i}") for i in range(1001)]),
            "at most 1000 datasets",
        ),
    ],
)
def test_what_makes_an_event_bad(door, item, fragment):
    good = run_event()
    body = outcome(post(door, [good, item]), "partial_success", 2, 1)
    assert body["failed_events"][0]["index"] == 1
    assert fragment in body["failed_events"][0]["reason"]
    assert stored("run", "", good["run"]["runId"])


def test_a_batch_of_only_bad_events_stores_and_audits_nothing(door):
    batch = [mutated(run_event(), "run.runId", "x"), {"eventTime": "nope"}]
    body = outcome(post(door, batch), "failure", 2, 2)
    assert [f["index"] for f in body["failed_events"]] == [0, 1]
    assert not LineageNode.objects.exists()
    assert not AuditEvent.objects.filter(action="lineage.ingest").exists()


# --- links to securables -----------------------------------------------------------------------


def linked(name: str, full_name: str = "main.raw") -> dict:
    return dataset(
        "s3://lake", name, stewardSecurable=facet(securableType="schema", fullName=full_name)
    )


@pytest.fixture
def raw_schema(tree, grant, alice, bob):
    tree("main.raw")
    grant("catalog", "main", "alice", "USE CATALOG")
    grant("schema", "main.raw", "alice", "USE SCHEMA", "MODIFY")
    grant("catalog", "main", "bob", "USE CATALOG")
    grant("schema", "main.raw", "bob", "USE SCHEMA", "BROWSE")


def test_a_link_the_caller_may_not_make_fails_that_event_only(api_as, bob, raw_schema):
    ids = runs(2)
    batch = [run_event(ids[0], outputs=[linked("t.csv")]), run_event(ids[1])]
    body = outcome(post(api_as(bob), batch), "partial_success", 2, 1)
    failure = body["failed_events"][0]
    assert failure["index"] == 0 and failure["error_code"] == "PERMISSION_DENIED"
    assert failure["reason"].startswith("outputs[0].facets.stewardSecurable: ")
    assert "MODIFY" in failure["reason"]
    assert not stored("run", "", ids[0]) and not stored("dataset", "s3://lake", "t.csv")
    assert stored("run", "", ids[1])
    denied = AuditEvent.objects.get(action="lineage.ingest", outcome="DENIED")
    assert denied.actor == "bob" and denied.details["index"] == 0
    assert AuditEvent.objects.get(action="lineage.ingest", outcome="SUCCESS").details["failed"] == 1


def test_a_link_to_a_missing_schema_fails_as_not_found(door):
    body = outcome(post(door, [run_event(outputs=[linked("t.csv", "main.nope")])]), "failure", 1, 1)
    assert body["failed_events"][0]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert not LineageNode.objects.exists()


def test_a_link_the_caller_may_make_is_stored(door, raw_schema):
    outcome(post(door, [run_event(outputs=[linked("t.csv")])]), "success", 1, 0)
    node = LineageNode.objects.get(identity=naming.identity("dataset", "s3://lake", "t.csv"))
    assert node.schema is not None and node.schema.full_name == "main.raw"


# --- the request as a whole -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (run_event(), "must be a JSON array"),
        ([], "The batch is empty."),
        ([run_event()] * 1001, "at most 1000 events"),
    ],
)
def test_a_body_that_is_not_a_batch_is_refused(door, body, fragment):
    refused(post(door, body), fragment)
    assert not LineageNode.objects.exists()


def test_size_limits_before_and_after_gzip(door):
    big = b"[" + b" " * (8 * 1024 * 1024) + b"]"
    refused(door.post(BATCH, big, content_type="application/json"), "large")
    bomb = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)
    response = door.post(BATCH, bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    refused(response, "larger than")


def test_malformed_json_and_gzip(door):
    response = door.post(BATCH, "[{not json", content_type="application/json")
    refused(response, "JSON parse error", code="MALFORMED_REQUEST")
    response = door.post(
        BATCH, b"plain", content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    refused(response, "not valid gzip", code="MALFORMED_REQUEST")
    response = door.post(BATCH, json.dumps([run_event()]), content_type="text/plain")
    refused(response, code="UNSUPPORTED_MEDIA_TYPE", status=415)


def test_anonymous_and_bad_tokens_are_refused(client):
    refused(post(client, [run_event()]), code="UNAUTHENTICATED", status=401)
    response = post(client, [run_event()], HTTP_AUTHORIZATION="Bearer nope")
    refused(response, code="UNAUTHENTICATED", status=401)
    assert not LineageNode.objects.exists()


def test_a_read_only_token_may_not_post_a_batch(api_as, alice):
    refused(post(api_as(alice, "read"), [run_event()]), "read-only", "PERMISSION_DENIED", 403)
    assert not LineageNode.objects.exists()
    denied = AuditEvent.objects.get(action="lineage.ingest", outcome="DENIED")
    assert denied.actor == "alice"


def test_only_post(door):
    assert door.get(BATCH).status_code == 405


def test_the_batch_route_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "post" in schema["paths"]["/api/v1/lineage/batch"]
