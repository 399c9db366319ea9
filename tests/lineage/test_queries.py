"""Graph queries: walks up, down and both ways with a depth, cycles, bounds, parameters, the
number of queries, and the audit trail."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from core.actor import Actor
from lineage import selectors, services
from tests.lineage.conftest import LINEAGE, dataset, edges, ids, run_event

pytestmark = pytest.mark.django_db


def runs(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


@pytest.fixture
def chain(alice):
    """d0 -> r1 -> d1 -> r2 -> ... -> dN (each run also has its job)."""

    def make(n: int, *, prefix: str = "d") -> list[str]:
        body = [
            run_event(
                run_id,
                job=("etl", f"step{i + 1}"),
                inputs=[dataset("s3://lake", f"{prefix}{i}")],
                outputs=[dataset("s3://lake", f"{prefix}{i + 1}")],
            )
            for i, run_id in enumerate(runs(n))
        ]
        services.lineage_events_ingest(actor=Actor.system(alice), body=body)
        return [f"dataset:s3://lake:{prefix}{i}" for i in range(n + 1)]

    return make


def test_upstream_walk_stops_at_the_depth(lineage_as, alice, chain):
    d = chain(5)
    r = [f"run:{x}" for x in runs(5)]
    answer = lineage_as(alice).graph(d[5], depth=2, direction="upstream").json()
    assert answer["root"] == d[5] and answer["truncated"] is False
    assert ids(answer) == {d[5], r[4], d[4], "job:etl:step5"}
    depths = {n["id"]: n["depth"] for n in answer["nodes"]}
    assert depths == {d[5]: 0, r[4]: 1, d[4]: 2, "job:etl:step5": 2}
    assert edges(answer) == {
        (d[4], r[4], "INPUT"),
        ("job:etl:step5", r[4], "JOB"),
        (r[4], d[5], "OUTPUT"),
    }


def test_downstream_walk(lineage_as, alice, chain):
    d = chain(5)
    r = [f"run:{x}" for x in runs(5)]
    answer = lineage_as(alice).graph(d[0], depth=4, direction="downstream").json()
    assert ids(answer) == {d[0], r[0], d[1], r[1], d[2]}
    assert "job:etl:step1" not in ids(answer)  # a job is upstream of its run


def test_both_ways_is_upstream_plus_downstream(lineage_as, alice, chain):
    d = chain(6)
    r = [f"run:{x}" for x in runs(6)]
    answer = lineage_as(alice).graph(d[3], depth=2).json()
    assert answer["direction"] == "both"
    assert ids(answer) == {d[2], r[2], "job:etl:step3", d[3], r[3], d[4]}
    assert {n["depth"] for n in answer["nodes"] if n["id"] in (d[2], d[4])} == {2}


def test_depth_zero_is_the_node_alone(lineage_as, alice, chain):
    d = chain(2)
    answer = lineage_as(alice).graph(d[1], depth=0).json()
    assert ids(answer) == {d[1]} and answer["edges"] == []


def test_depth_is_clamped_to_twenty(lineage_as, alice, chain):
    d = chain(15)  # 30 hops from end to end
    answer = lineage_as(alice).graph(d[15], depth=999, direction="upstream").json()
    assert answer["depth"] == 20
    assert d[5] in ids(answer) and d[4] not in ids(answer)  # d5 is 20 hops up, d4 is 22


def test_default_depth_is_five(lineage_as, alice, chain):
    d = chain(4)
    answer = lineage_as(alice).graph(d[4], direction="upstream").json()
    assert answer["depth"] == 5
    assert d[2] in ids(answer) and d[1] not in ids(answer)


def test_cycles_do_not_loop(lineage_as, alice):
    a, b = "dataset:s3://lake:a", "dataset:s3://lake:b"
    r1, r2 = runs(2)
    body = [
        run_event(r1, inputs=[dataset("s3://lake", "a")], outputs=[dataset("s3://lake", "b")]),
        run_event(r2, inputs=[dataset("s3://lake", "b")], outputs=[dataset("s3://lake", "a")]),
    ]
    services.lineage_events_ingest(actor=Actor.system(alice), body=body)
    for direction in ("upstream", "downstream", "both"):
        answer = lineage_as(alice).graph(a, depth=20, direction=direction).json()
        assert len(answer["nodes"]) == len(ids(answer))  # every node once
        assert {a, b, f"run:{r1}", f"run:{r2}"} <= ids(answer)
        assert answer["truncated"] is False
        depth_of = {n["id"]: n["depth"] for n in answer["nodes"]}
        assert depth_of[a] == 0  # the shortest way, not a lap around the cycle


def test_a_self_loop(lineage_as, alice):
    (r,) = runs(1)
    body = run_event(r, inputs=[dataset("s3://lake", "a")], outputs=[dataset("s3://lake", "a")])
    services.lineage_events_ingest(actor=Actor.system(alice), body=body)
    answer = lineage_as(alice).graph("dataset:s3://lake:a", depth=20).json()
    assert ids(answer) == {"dataset:s3://lake:a", f"run:{r}", "job:airflow:etl.clean"}


def test_a_large_fan_in_is_cut_at_the_node_limit(lineage_as, alice, monkeypatch):
    monkeypatch.setattr(selectors, "MAX_NODES", 10)
    monkeypatch.setattr(selectors, "MAX_ROWS", 40)
    body = run_event(
        runs(1)[0],
        inputs=[dataset("s3://lake", f"in{i}") for i in range(30)],
        outputs=[dataset("s3://lake", "out")],
    )
    services.lineage_events_ingest(actor=Actor.system(alice), body=body)
    answer = lineage_as(alice).graph("dataset:s3://lake:out", depth=3, direction="upstream").json()
    assert answer["truncated"] is True
    assert len(answer["nodes"]) == 10
    depths = sorted(n["depth"] for n in answer["nodes"])
    assert depths[:2] == [0, 1]  # the nearest nodes are kept
    assert all(e["source"] in ids(answer) and e["target"] in ids(answer) for e in answer["edges"])


def test_ids_with_colons_in_names_are_unambiguous(lineage_as, alice):
    body = [
        run_event(runs(1)[0], outputs=[dataset("a:b", "c"), dataset("a", "b:c")]),
    ]
    services.lineage_events_ingest(actor=Actor.system(alice), body=body)
    door = lineage_as(alice)
    first = door.graph("dataset:a:b:c", depth=0).json()
    second = door.graph("dataset:a:b%3Ac", depth=0).json()
    assert first["nodes"][0]["data"]["namespace"] == "a:b"
    assert second["nodes"][0]["data"]["name"] == "b:c"
    whole = door.graph(f"run:{runs(1)[0]}", depth=1).json()
    assert {"dataset:a:b:c", "dataset:a:b%3Ac"} <= ids(whole)


def test_run_ids_are_found_in_any_case(lineage_as, alice, chain):
    chain(1)
    answer = lineage_as(alice).graph(f"run:{runs(1)[0].upper()}", depth=0).json()
    assert answer["root"] == f"run:{runs(1)[0]}"


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({}, 400, "nodeId is required"),
        ({"nodeId": ""}, 400, "nodeId is required"),
        ({"nodeId": "table:x:y"}, 400, "nodeId must start with one of"),
        ({"nodeId": "dataset:s3://lake:nope"}, 404, "does not exist"),
        ({"nodeId": "dataset:nocolon"}, 404, "does not exist"),
        ({"nodeId": "run:not-a-uuid"}, 404, "does not exist"),
        ({"nodeId": "dataset:s3://lake:d0", "depth": "-1"}, 400, "depth must be"),
        ({"nodeId": "dataset:s3://lake:d0", "depth": "two"}, 400, "depth must be"),
        ({"nodeId": "dataset:s3://lake:d0", "depth": "1e3"}, 400, "depth must be"),
        ({"nodeId": "dataset:s3://lake:d0", "direction": "sideways"}, 400, "direction must be"),
        ({"nodeId": ["dataset:s3://lake:d0", "dataset:s3://lake:d1"]}, 400, "more than once"),
        ({"nodeId": "dataset:s3://lake:d0", "depth": ["1", "2"]}, 400, "more than once"),
    ],
)
def test_bad_query_parameters(lineage_as, alice, chain, params, status, fragment):
    chain(1)
    response = lineage_as(alice).client.get(LINEAGE, params)
    assert response.status_code == status, response.content
    assert fragment in response.json()["message"]


def test_anonymous_query_is_refused(client, chain):
    chain(1)
    response = client.get(LINEAGE, {"nodeId": "dataset:s3://lake:d0"})
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    shortcut = client.get("/api/v1/models/main.ml.m/versions/1/lineage")
    assert shortcut.status_code == 401


def test_queries_are_audited(lineage_as, alice, chain):
    d = chain(2)
    lineage_as(alice).graph(d[2], depth=3, direction="upstream")
    event = AuditEvent.objects.get(action="lineage.query")
    assert (event.actor, event.outcome, event.securable) == ("alice", "SUCCESS", d[2])
    assert event.details == {
        "depth": 3,
        "direction": "upstream",
        "nodes": 5,
        "edges": 4,
        "restricted": 0,
        "truncated": False,
    }
    lineage_as(alice).graph("dataset:s3://lake:missing")
    missing = AuditEvent.objects.get(action="lineage.query", outcome="DENIED")
    assert missing.securable == "dataset:s3://lake:missing"


@pytest.mark.parametrize("direction", ["upstream", "downstream", "both"])
def test_query_count_does_not_grow_with_depth(
    lineage_as, alice, chain, direction, django_assert_max_num_queries
):
    d = chain(12)
    door = lineage_as(alice)
    door.graph(d[0], depth=0)  # the token's first use of the minute writes last_used_at
    counts = {}
    for depth in (1, 4, 12, 20):
        with CaptureQueriesContext(connection) as ctx:
            response = door.graph(d[6], depth=depth, direction=direction)
        assert response.status_code == 200
        counts[depth] = len(ctx.captured_queries)
    assert len(set(counts.values())) == 1, counts
    with django_assert_max_num_queries(16):
        door.graph(d[6], depth=20, direction=direction)


def test_stored_facets_are_passed_through_intact(lineage_as, alice):
    """The renderer splices stored facets in as JSON text; odd content survives it."""
    odd = {
        "_producer": "https://x",
        "_schemaURL": "https://y",
        "text": 'line\u2028sep \u2029 "\\u0000ab:0\\u0000" é 😀 \\',
        "nested": {"list": [1, 2.5, None, True], "empty": {}},
    }
    body = run_event(
        runs(1)[0], outputs=[dataset("s3://lake", "odd", odd=odd)], run_facets={"odd": odd}
    )
    services.lineage_events_ingest(actor=Actor.system(alice), body=body)
    response = lineage_as(alice).graph("dataset:s3://lake:odd", depth=1)
    assert b"\xe2\x80\xa8" not in response.content  # U+2028 escaped, as DRF does
    nodes = {n["id"]: n for n in response.json()["nodes"]}
    assert nodes["dataset:s3://lake:odd"]["data"]["facets"]["odd"] == odd
    assert nodes[f"run:{runs(1)[0]}"]["data"]["facets"]["odd"] == odd


def test_lineage_routes_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/lineage"])
    assert "get" in schema["paths"]["/api/v1/models/{full_name}/versions/{version}/lineage"]


@pytest.mark.postgres
def test_postgresql_renders_nodes_as_python_does(alice):
    """The walk renders runs, jobs and unlinked datasets in SQL; the same objects as Python's
    rendering, whatever the names, facets and times hold."""
    from lineage.models import LineageNode
    from lineage.selectors import _Details, _json_of, _node_json

    odd = {"_producer": "https://x", "_schemaURL": "https://y", "t": 'a"b\\c\n\u2028é😀\x01'}
    run = runs(1)[0]
    events = [
        run_event(
            run,
            event_type="START",
            when="2024-05-01T12:00:00.123456Z",
            inputs=[dataset("postgres://db:5432", "public.a%b:c", odd=odd)],
            outputs=[dataset("s3://lake", 'qu"ote\\ é')],
            job=("air:flow", "etl:%x"),
            run_facets={"odd": odd},
        ),
        run_event(run, event_type="COMPLETE", when="2024-05-01T13:00:00Z"),
        run_event(runs(1)[0], event_type="OTHER", when="1999-12-31T23:59:59Z"),
    ]
    services.lineage_events_ingest(actor=Actor.system(alice), body=events)
    for root in LineageNode.objects.all():
        rows, _ = selectors.walk_rows(root.pk, depth=3, direction="both")
        details = _Details(Actor.system(alice), rows)
        for row in rows:
            assert row.json is not None and row.key_json is not None
            plain = selectors.NodeRow.of(LineageNode.objects.get(pk=row.pk))
            plain.depth = row.depth
            assert json.loads(row.key_json) == plain.key
            assert json.loads(row.json) == json.loads(_node_json(plain, details))
            assert json.loads(_json_of(plain.facets)) == LineageNode.objects.get(pk=row.pk).facets
