"""Malformed OpenLineage events: 400 naming the field at fault, and nothing stored."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from audit.models import AuditEvent
from lineage.models import LineageEdge, LineageNode
from tests.lineage.conftest import (
    LINEAGE,
    dataset,
    dataset_event,
    facet,
    job_event,
    mutated,
    run_event,
)

pytestmark = pytest.mark.django_db


def good() -> dict:
    return run_event(
        "3f5e6a1c-8d2b-4c1e-9f0a-2b7d4e6c8a10",
        inputs=[dataset("s3://lake", "raw.csv", schema=facet(fields=[]))],
        outputs=[dataset("s3://lake", "clean.csv"), dataset("s3://lake", "rejects.csv")],
        run_facets={
            "parent": facet(
                run={"runId": "0e1c7d8a-7a53-4f4e-8c3a-5f1b2a9d6e01"},
                job={"namespace": "airflow", "name": "dag"},
            )
        },
    )


def assert_nothing_stored():
    assert not LineageNode.objects.exists()
    assert not LineageEdge.objects.exists()
    assert not AuditEvent.objects.filter(action="lineage.ingest", outcome="SUCCESS").exists()


def refused(response, *fragments: str, code: str = "INVALID_PARAMETER_VALUE"):
    assert response.status_code == (415 if code == "UNSUPPORTED_MEDIA_TYPE" else 400), (
        response.status_code,
        response.content[:500],
    )
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code, body
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body["message"])
    assert_nothing_stored()


CASES = [
    # (path, value or DELETE, fragment expected in the message)
    ("eventTime", "DELETE", "eventTime: is required"),
    ("eventTime", None, "eventTime: is required"),
    ("eventTime", 1714564800, "eventTime: must be an RFC 3339"),
    ("eventTime", "yesterday", "eventTime: must be an RFC 3339"),
    ("eventTime", "2024-05-01", "eventTime: must be a date-time"),
    ("eventTime", "2024-13-01T00:00:00Z", "eventTime"),
    ("producer", "DELETE", "producer: is required"),
    ("producer", "", "producer: must not be empty"),
    ("producer", "not a uri", "producer: must be an absolute URI"),
    ("producer", "no-scheme/path", "producer: must be an absolute URI"),
    ("producer", ["https://x"], "producer: must be a string"),
    ("producer", "https://" + "x" * 3000, "producer: is longer than 2048"),
    ("schemaURL", "DELETE", "schemaURL: is required"),
    ("schemaURL", "nope", "schemaURL: must be an absolute URI"),
    ("eventType", "DONE", "eventType: must be one of START, RUNNING, COMPLETE"),
    ("eventType", "complete", "eventType: must be one of"),
    ("eventType", 3, "eventType: must be one of"),
    ("run", "abc", "run: must be a JSON object"),
    ("run", None, "run: must be a JSON object"),
    ("run.runId", "DELETE", "run.runId: is required"),
    ("run.runId", "not-a-uuid", "run.runId: must be a UUID"),
    ("run.runId", "3f5e6a1c8d2b4c1e9f0a2b7d4e6c8a10", "run.runId: must be a UUID"),
    ("run.runId", 12345, "run.runId: must be a UUID"),
    ("run.facets", [], "run.facets: must be a JSON object"),
    ("run.facets.parent.run", "DELETE", "run.facets.parent.run: is required"),
    ("run.facets.parent.run.runId", "x", "run.facets.parent.run.runId: must be a UUID"),
    ("run.facets.parent.job.name", "DELETE", "run.facets.parent.job.name: is required"),
    ("run.facets.parent._producer", "DELETE", "run.facets.parent._producer: is required"),
    ("run.facets.nominalTime", "2024", "run.facets.nominalTime: must be a JSON object"),
    ("job", "DELETE", "job: is required"),
    ("job", "etl", "job: must be a JSON object"),
    ("job.namespace", "DELETE", "job.namespace: is required"),
    ("job.namespace", 5, "job.namespace: must be a string"),
    ("job.name", "", "job.name: must not be empty"),
    ("job.name", "   ", "job.name: must not be empty"),
    ("job.name", "etl\x00x", "job.name: must not contain NUL"),
    ("job.name", "etl\nx", "job.name: must not contain control characters"),
    ("job.name", "x" * 1025, "job.name: is longer than 1024"),
    (
        "job.facets",
        {"sql": {"_producer": "https://x", "query": "select"}},
        "job.facets.sql._schemaURL: is required",
    ),
    ("inputs", "s3://x", "inputs: must be an array"),
    ("inputs", {"namespace": "a", "name": "b"}, "inputs: must be an array"),
    ("inputs.0", "raw.csv", "inputs[0]: must be a JSON object"),
    ("inputs.0.namespace", "DELETE", "inputs[0].namespace: is required"),
    ("inputs.0.name", None, "inputs[0].name: is required"),
    ("inputs.0.name", "\x00", "inputs[0].name: must not contain NUL"),
    ("inputs.0.facets", "x", "inputs[0].facets: must be a JSON object"),
    (
        "inputs.0.facets.schema._producer",
        "DELETE",
        "inputs[0].facets.schema._producer: is required",
    ),
    (
        "inputs.0.facets.schema._schemaURL",
        "nope",
        "inputs[0].facets.schema._schemaURL: must be an absolute URI",
    ),
    (
        "inputs.0.facets.schema._deleted",
        "yes",
        "inputs[0].facets.schema._deleted: must be true or false",
    ),
    (
        "inputs.0.facets.version",
        {"_producer": "https://x", "_schemaURL": "https://y", "datasetVersion": 5},
        "inputs[0].facets.version.datasetVersion: must be a string",
    ),
    ("inputs.0.inputFacets", {"stats": 1}, "inputs[0].inputFacets.stats: must be a JSON object"),
    ("outputs.1.name", "DELETE", "outputs[1].name: is required"),
    (
        "outputs.0.outputFacets",
        {"stats": {"rowCount": 1}},
        "outputs[0].outputFacets.stats._producer: is required",
    ),
    (
        "outputs.0.facets",
        {"stewardSecurable": facet(securableType="table", fullName="a.b")},
        "outputs[0].facets.stewardSecurable.securableType: must be one of catalog, schema",
    ),
    (
        "outputs.0.facets",
        {"stewardSecurable": facet(securableType="schema")},
        "outputs[0].facets.stewardSecurable.fullName: is required",
    ),
]


@pytest.mark.parametrize(("path", "value", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_malformed_run_event_names_the_field_and_stores_nothing(
    lineage_as, alice, path, value, fragment
):
    event = (
        mutated(good(), path, delete=True) if value == "DELETE" else mutated(good(), path, value)
    )
    refused(lineage_as(alice).post(event), fragment)


def test_the_good_event_is_good(lineage_as, alice):
    assert lineage_as(alice).post(good()).status_code == 201


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("just a string", "must be an OpenLineage event"),
        (42, "must be an OpenLineage event"),
        (None, "must be an OpenLineage event"),
        ([], "The batch is empty"),
        ({}, "run: is required"),
        ({"eventTime": "2024-05-01T00:00:00Z"}, "run: is required"),
        (
            {**dataset_event("s3://lake", "x"), "job": {"namespace": "a", "name": "b"}},
            "matches both DatasetEvent and JobEvent",
        ),
        (mutated(dataset_event("s3://lake", "x"), "dataset", "x"), "dataset: must be a JSON"),
        (mutated(dataset_event("s3://lake", "x"), "dataset.name", delete=True), "dataset.name"),
        (mutated(job_event("a", "b"), "job.namespace", delete=True), "job.namespace"),
        (mutated(job_event("a", "b"), "outputs", [{"namespace": "n"}]), "outputs[0].name"),
    ],
)
def test_malformed_bodies_and_other_event_types(lineage_as, alice, body, fragment):
    response = lineage_as(alice).client.post(
        LINEAGE, json.dumps(body), content_type="application/json"
    )
    refused(response, fragment)


@pytest.mark.parametrize(
    ("raw_facet", "fragment"),
    [
        ('{"_producer": "https://x", "_schemaURL": "https://y", "v": "a\\u0000b"}', "NUL"),
        ('{"_producer": "https://x", "_schemaURL": "https://y", "k\\u0000": 1}', "NUL"),
        ('{"_producer": "https://x", "_schemaURL": "https://y", "v": [1e999]}', "infinite"),
        (
            '{"_producer": "https://x", "_schemaURL": "https://y", "v": '
            + "[" * 70
            + "]" * 70
            + "}",
            "nested more than 64",
        ),
    ],
)
def test_facets_postgresql_cannot_store_are_refused(lineage_as, alice, raw_facet, fragment):
    """jsonb refuses NUL and infinities: a 400 naming the facet, not a 500 from the database."""
    event = json.dumps(run_event(outputs=[dataset("s3://lake", "x")])).replace(
        '"name": "x"}', '"name": "x", "facets": {"bad": ' + raw_facet + "}}"
    )
    response = lineage_as(alice).client.post(LINEAGE, event, content_type="application/json")
    refused(response, "outputs[0].facets.bad: ", fragment)


def test_too_many_datasets_in_one_event(lineage_as, alice):
    event = run_event(inputs=[dataset("ns", f"d{i}") for i in range(1001)])
    refused(lineage_as(alice).post(event), "at most 1000 datasets")


def test_a_bad_event_in_a_batch_refuses_the_whole_batch(lineage_as, alice):
    batch = [run_event(), run_event(), mutated(run_event(), "run.runId", "x"), run_event()]
    refused(lineage_as(alice).post(batch), "[2].run.runId: must be a UUID")


def test_a_batch_over_the_limit_is_refused(lineage_as, alice):
    refused(lineage_as(alice).post([run_event()] * 1001), "at most 1000 events")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", "JSON parse error"),
        ('{"eventTime": "a", "eventTime": "b"}', "duplicate key"),
        ('{"eventTime": NaN}', "NaN is not valid JSON"),
        ("[" * 100000, "JSON parse error"),
    ],
)
def test_malformed_json(lineage_as, alice, raw, fragment):
    response = lineage_as(alice).client.post(LINEAGE, raw, content_type="application/json")
    refused(response, fragment, code="MALFORMED_REQUEST")


def test_wrong_content_type(lineage_as, alice):
    response = lineage_as(alice).client.post(
        LINEAGE, json.dumps(run_event()), content_type="text/plain"
    )
    refused(response, code="UNSUPPORTED_MEDIA_TYPE")


def test_unknown_content_encoding(lineage_as, alice):
    response = lineage_as(alice).client.post(
        LINEAGE,
        json.dumps(run_event()),
        content_type="application/json",
        HTTP_CONTENT_ENCODING="br",
    )
    refused(response, code="UNSUPPORTED_MEDIA_TYPE")


def test_broken_gzip(lineage_as, alice):
    body = gzip.compress(json.dumps(run_event()).encode())[:-8]
    response = lineage_as(alice).client.post(
        LINEAGE, body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    refused(response, "gzip", code="MALFORMED_REQUEST")
    response = lineage_as(alice).client.post(
        LINEAGE, b"plain text", content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    refused(response, "not valid gzip", code="MALFORMED_REQUEST")


def test_gzip_bomb_is_refused_without_inflating_it(lineage_as, alice):
    bomb = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB of spaces
    assert len(bomb) < 200_000
    response = lineage_as(alice).client.post(
        LINEAGE, bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    refused(response, "larger than")


def test_a_failure_late_in_the_event_leaves_nothing_half_stored(lineage_as, alice, tree):
    """Nodes are written before the link is checked; the refusal rolls all of it back."""
    tree("main.raw")
    event = run_event(
        str(uuid.uuid4()),
        inputs=[dataset("s3://lake", "a.csv")],
        outputs=[
            dataset(
                "s3://lake",
                "b.csv",
                stewardSecurable=facet(securableType="schema", fullName="main.raw"),
            )
        ],
    )
    response = lineage_as(alice).post(event)
    assert response.status_code == 404, response.content
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert_nothing_stored()
    assert AuditEvent.objects.filter(
        action="lineage.ingest", outcome="DENIED", actor="alice"
    ).exists()
