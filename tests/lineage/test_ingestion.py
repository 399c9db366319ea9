"""OpenLineage ingestion: each event type, idempotency, run states in any order, facets,
batches, gzip, who may ingest, linking datasets to securables, and the audit trail."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime

import pytest

from audit.models import AuditEvent
from lineage import naming
from lineage.models import LineageEdge, LineageNode
from tests.lineage.conftest import (
    LINEAGE,
    dataset,
    dataset_event,
    facet,
    job_event,
    run_event,
)

pytestmark = pytest.mark.django_db

RUN = "3f5e6a1c-8d2b-4c1e-9f0a-2b7d4e6c8a10"


def node(kind: str, namespace: str, name: str) -> LineageNode:
    return LineageNode.objects.get(identity=naming.identity(kind, namespace, name))


def edge_set() -> set[tuple[str, str, str, str]]:
    return {
        (e.src.key, e.dst.key, e.kind, e.version)
        for e in LineageEdge.objects.select_related("src", "dst")
    }


def snapshot() -> tuple:
    nodes = sorted(
        LineageNode.objects.values_list(
            "identity", "facets", "state", "state_time", "started_at", "ended_at", "openlineage"
        )
    )
    return nodes, edge_set()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_run_event_stores_job_run_datasets_and_edges(lineage_as, alice):
    event = run_event(
        RUN,
        event_type="START",
        inputs=[dataset("s3://lake", "raw.csv", version="v7")],
        outputs=[dataset("postgres://db:5432", "public.clean")],
    )
    response = lineage_as(alice).post(event)
    assert response.status_code == 201, response.content
    assert response.json() == {"accepted": 1, "node_ids": [f"run:{RUN}"]}
    assert edge_set() == {
        ("job:airflow:etl.clean", f"run:{RUN}", "job", ""),
        ("dataset:s3://lake:raw.csv", f"run:{RUN}", "input", "v7"),
        (f"run:{RUN}", "dataset:postgres://db:5432:public.clean", "output", ""),
    }
    run = node("run", "", RUN)
    assert run.state == "START" and run.started_at == at("2024-05-01T12:00:00Z")
    assert run.ended_at is None and run.openlineage


@pytest.mark.parametrize("final", ["COMPLETE", "FAIL", "ABORT"])
def test_every_run_state_is_recorded(lineage_as, alice, final):
    door = lineage_as(alice)
    door.post(run_event(RUN, event_type="START", when="2024-05-01T12:00:00Z"))
    door.post(run_event(RUN, event_type="RUNNING", when="2024-05-01T12:01:00Z"))
    assert node("run", "", RUN).state == "RUNNING"
    door.post(run_event(RUN, event_type=final, when="2024-05-01T12:05:00Z"))
    run = node("run", "", RUN)
    assert (run.state, run.started_at, run.ended_at) == (
        final,
        at("2024-05-01T12:00:00Z"),
        at("2024-05-01T12:05:00Z"),
    )
    door.post(run_event(RUN, event_type="OTHER", when="2024-05-01T13:00:00Z"))
    assert node("run", "", RUN).state == final  # OTHER adds metadata, not a state


def test_events_arriving_out_of_order_end_in_the_same_state(lineage_as, alice):
    door = lineage_as(alice)
    door.post(run_event(RUN, event_type="COMPLETE", when="2024-05-01T12:05:00Z"))
    door.post(run_event(RUN, event_type="RUNNING", when="2024-05-01T12:01:00Z"))
    door.post(run_event(RUN, event_type="START", when="2024-05-01T12:00:00Z"))
    run = node("run", "", RUN)
    assert (run.state, run.started_at, run.ended_at) == (
        "COMPLETE",
        at("2024-05-01T12:00:00Z"),
        at("2024-05-01T12:05:00Z"),
    )


def test_the_same_event_twice_changes_nothing(lineage_as, alice):
    door = lineage_as(alice)
    event = run_event(
        RUN,
        inputs=[dataset("s3://lake", "raw.csv", version="v1", schema=facet(fields=[]))],
        outputs=[dataset("s3://lake", "clean.csv")],
        run_facets={"nominalTime": facet(nominalStartTime="2024-05-01T00:00:00Z")},
    )
    assert door.post(event).status_code == 201
    first = snapshot()
    assert door.post(event).status_code == 201
    assert snapshot() == first
    assert LineageNode.objects.count() == 4 and LineageEdge.objects.count() == 3


def test_an_older_event_replayed_does_not_roll_facets_back(lineage_as, alice):
    door = lineage_as(alice)
    old = run_event(
        RUN,
        event_type="START",
        when="2024-05-01T12:00:00Z",
        outputs=[dataset("s3://lake", "x.csv", version="v1", owner=facet(name="old"))],
    )
    new = run_event(
        RUN,
        event_type="COMPLETE",
        when="2024-05-01T13:00:00Z",
        outputs=[dataset("s3://lake", "x.csv", version="v2", owner=facet(name="new"))],
    )
    door.post(old)
    door.post(new)
    after = snapshot()
    door.post(old)
    facets = node("dataset", "s3://lake", "x.csv").facets
    assert facets["owner"]["name"] == "new"
    assert facets["version"]["datasetVersion"] == "v2"
    assert snapshot()[0] == after[0]


def test_facets_merge_and_deleted_facets_go(lineage_as, alice):
    door = lineage_as(alice)
    door.post(dataset_event("s3://lake", "x.csv", schema=facet(fields=[{"name": "a"}])))
    door.post(dataset_event("s3://lake", "x.csv", owner=facet(owners=[{"name": "team"}])))
    assert set(node("dataset", "s3://lake", "x.csv").facets) == {"schema", "owner"}
    door.post(dataset_event("s3://lake", "x.csv", schema=facet(_deleted=True)))
    assert set(node("dataset", "s3://lake", "x.csv").facets) == {"owner"}


def test_the_version_of_an_edge_is_kept_when_a_later_event_omits_it(lineage_as, alice):
    door = lineage_as(alice)
    door.post(run_event(RUN, event_type="START", inputs=[dataset("s3://lake", "a", version="v3")]))
    door.post(run_event(RUN, event_type="COMPLETE", inputs=[dataset("s3://lake", "a")]))
    assert ("dataset:s3://lake:a", f"run:{RUN}", "input", "v3") in edge_set()


def test_dataset_event(lineage_as, alice):
    response = lineage_as(alice).post(
        dataset_event("s3://lake", "ref.csv", schema=facet(fields=[{"name": "g"}]))
    )
    assert response.status_code == 201
    assert response.json()["node_ids"] == ["dataset:s3://lake:ref.csv"]
    stored = node("dataset", "s3://lake", "ref.csv")
    assert stored.facets["schema"]["fields"] == [{"name": "g"}]
    assert not LineageEdge.objects.exists()


def test_job_event_records_design_time_edges(lineage_as, alice):
    response = lineage_as(alice).post(
        job_event(
            "dbt", "model.orders", inputs=[dataset("pg", "raw")], outputs=[dataset("pg", "o")]
        )
    )
    assert response.status_code == 201
    assert response.json()["node_ids"] == ["job:dbt:model.orders"]
    assert edge_set() == {
        ("dataset:pg:raw", "job:dbt:model.orders", "input", ""),
        ("job:dbt:model.orders", "dataset:pg:o", "output", ""),
    }


def test_parent_run_facet_links_parent_run_and_job(lineage_as, alice):
    parent = "0e1c7d8a-7a53-4f4e-8c3a-5f1b2a9d6e01"
    lineage_as(alice).post(
        run_event(
            RUN,
            run_facets={
                "parent": facet(
                    run={"runId": parent.upper()}, job={"namespace": "airflow", "name": "dag"}
                )
            },
        )
    )
    assert (f"run:{parent}", f"run:{RUN}", "parent", "") in edge_set()
    assert ("job:airflow:dag", f"run:{parent}", "job", "") in edge_set()


def test_a_batch_is_stored_at_once_and_audited_once(lineage_as, alice):
    runs = [str(uuid.uuid4()) for _ in range(3)]
    batch = [run_event(r, outputs=[dataset("s3://lake", f"{r}.csv")]) for r in runs]
    response = lineage_as(alice).post(batch)
    assert response.status_code == 201
    assert response.json()["node_ids"] == [f"run:{r}" for r in runs]
    assert LineageEdge.objects.count() == 6
    events = AuditEvent.objects.filter(action="lineage.ingest")
    assert events.count() == 1
    assert events.get().details["events"] == 3


def test_gzip_bodies_as_the_client_sends_them(lineage_as, alice):
    body = gzip.compress(json.dumps(run_event(RUN)).encode(), compresslevel=3)
    response = lineage_as(alice).client.post(
        LINEAGE, body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 201, response.content
    assert node("run", "", RUN).state == "COMPLETE"


def test_event_time_without_offset_is_read_as_utc(lineage_as, alice):
    lineage_as(alice).post(run_event(RUN, event_type="START", when="2024-05-01T12:00:00.123456"))
    assert node("run", "", RUN).started_at == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    lineage_as(alice).post(run_event(RUN, event_type="COMPLETE", when="2024-05-01T14:00:00+02:00"))
    assert node("run", "", RUN).ended_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


# --- who may ingest ------------------------------------------------------------------------


def test_anonymous_is_refused(client):
    response = client.post(LINEAGE, json.dumps(run_event()), content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert not LineageNode.objects.exists()
    assert AuditEvent.objects.filter(action="api.access", outcome="DENIED").exists()


def test_a_bad_token_is_refused(client):
    response = client.post(
        LINEAGE,
        json.dumps(run_event()),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer nope",
    )
    assert response.status_code == 401
    assert not LineageNode.objects.exists()


def test_a_read_only_token_may_not_ingest(lineage_as, alice):
    response = lineage_as(alice, scope="read").post(run_event())
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert not LineageNode.objects.exists()
    denied = AuditEvent.objects.get(action="lineage.ingest", outcome="DENIED")
    assert denied.actor == "alice" and "read-only" in denied.details["reason"]


def test_ingestion_is_audited(lineage_as, alice):
    lineage_as(alice).post(
        run_event(RUN, event_type="START", inputs=[dataset("a", "b")], outputs=[dataset("a", "c")])
    )
    event = AuditEvent.objects.get(action="lineage.ingest")
    assert (event.actor, event.outcome, event.auth_method) == ("alice", "SUCCESS", "token")
    assert (event.securable_type, event.securable) == ("lineage_run", f"run:{RUN}")
    assert event.details["event_types"] == {"START": 1}
    assert event.details["nodes"] == 4 and event.details["edges"] == 3


# --- linking datasets to securables ------------------------------------------------------


def linked(name: str, full_name: str = "main.raw", kind: str = "schema", **facets) -> dict:
    return dataset(
        "s3://lake",
        name,
        stewardSecurable=facet(securableType=kind, fullName=full_name),
        **facets,
    )


@pytest.fixture
def raw_schema(tree, grant, alice, bob):
    tree("main.raw", "main.other")
    grant("catalog", "main", "alice", "USE CATALOG")
    grant("schema", "main.raw", "alice", "USE SCHEMA", "MODIFY")
    grant("schema", "main.other", "alice", "USE SCHEMA", "MODIFY")
    grant("catalog", "main", "bob", "USE CATALOG")
    grant("schema", "main.raw", "bob", "USE SCHEMA", "BROWSE")


def test_linking_a_dataset_needs_modify_on_the_schema(lineage_as, alice, bob, raw_schema):
    response = lineage_as(bob).post(run_event(outputs=[linked("t.csv")]))
    assert response.status_code == 403, response.content
    message = response.json()["message"]
    assert message.startswith("outputs[0].facets.stewardSecurable: ") and "MODIFY" in message
    assert not LineageNode.objects.exists()

    assert lineage_as(alice).post(run_event(outputs=[linked("t.csv")])).status_code == 201
    stored = node("dataset", "s3://lake", "t.csv")
    assert stored.schema.full_name == "main.raw"
    assert "stewardSecurable" not in stored.facets


def test_linking_to_an_invisible_or_missing_schema_answers_not_found(lineage_as, bob, raw_schema):
    for target in ("main.other", "main.nope"):
        response = lineage_as(bob).post(run_event(outputs=[linked("t.csv", target)]))
        assert response.status_code == 404
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert not LineageNode.objects.exists()


def test_moving_a_link_needs_modify_on_both(lineage_as, alice, bob, grant, raw_schema):
    lineage_as(alice).post(dataset_event("s3://lake", "t.csv", **linked("t.csv")["facets"]))
    grant("schema", "main.other", "bob", "USE SCHEMA", "MODIFY")
    move = dataset_event(
        "s3://lake",
        "t.csv",
        stewardSecurable=facet(securableType="schema", fullName="main.other"),
    )
    assert lineage_as(bob).post(move).status_code == 403  # no MODIFY on main.raw
    assert node("dataset", "s3://lake", "t.csv").schema.full_name == "main.raw"
    assert lineage_as(alice).post(move).status_code == 201
    assert node("dataset", "s3://lake", "t.csv").schema.full_name == "main.other"


def test_link_to_a_catalog(lineage_as, alice, grant, raw_schema):
    grant("catalog", "main", "alice", "MODIFY")
    event = dataset_event(
        "s3://lake", "t.csv", stewardSecurable=facet(securableType="catalog", fullName="main")
    )
    assert lineage_as(alice).post(event).status_code == 201
    assert node("dataset", "s3://lake", "t.csv").catalog.name == "main"


def test_others_may_read_a_linked_dataset_but_not_change_its_facets(
    lineage_as, alice, bob, raw_schema
):
    lineage_as(alice).post(
        dataset_event("s3://lake", "t.csv", **linked("t.csv", schema=facet(fields=[]))["facets"])
    )
    event = run_event(
        RUN,
        when="2030-01-01T00:00:00Z",
        inputs=[dataset("s3://lake", "t.csv", schema=facet(fields=[{"name": "forged"}]))],
    )
    assert lineage_as(bob).post(event).status_code == 201
    assert node("dataset", "s3://lake", "t.csv").facets["schema"]["fields"] == []
    assert ("dataset:s3://lake:t.csv", f"run:{RUN}", "input", "") in edge_set()
    audit = AuditEvent.objects.filter(action="lineage.ingest", actor="bob").get()
    assert audit.details["facets_ignored"] == ["dataset:s3://lake:t.csv"]


def test_deleting_the_schema_takes_its_datasets_lineage_along(
    lineage_as, alice, admin_actor, raw_schema
):
    """SECURITY_CASES 8: delete main.raw, recreate it: nothing of the old lineage carries over."""
    from catalog.services import schema_create, schema_delete

    lineage_as(alice).post(run_event(RUN, inputs=[linked("t.csv")]))
    schema_delete(actor=admin_actor, full_name="main.raw", force=True)
    assert not LineageNode.objects.filter(kind="dataset").exists()
    assert not LineageEdge.objects.filter(kind="input").exists()
    schema_create(actor=admin_actor, catalog_name="main", name="raw")
    assert not LineageNode.objects.filter(schema__full_name="main.raw").exists()
