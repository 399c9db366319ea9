"""Concurrent ingestion on PostgreSQL: writers sharing datasets and jobs, a run's START and
COMPLETE racing each other, never deadlock or lose an edge."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from core.actor import Actor
from lineage import naming
from lineage.models import LineageEdge, LineageNode
from lineage.services import lineage_events_ingest
from tests.lineage.conftest import dataset, facet, run_event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 6
RUNS = 12


def test_concurrent_writers_share_nodes_without_deadlock(alice):
    runs = [str(uuid.UUID(int=i + 1)) for i in range(RUNS)]
    schema = facet(fields=[{"name": "a"}])
    shared = [dataset("s3://lake", f"shared{k}", schema=schema) for k in range(4)]

    def events(thread: int) -> list[dict]:
        out = []
        for i, run in enumerate(runs):
            for event_type in ("START", "COMPLETE") if thread % 2 else ("COMPLETE", "START"):
                out.append(
                    run_event(
                        run,
                        event_type=event_type,
                        job=("etl", f"job{i % 3}"),
                        when="2024-05-01T12:00:00Z"
                        if event_type == "START"
                        else "2024-05-01T13:00:00Z",
                        inputs=list(reversed(shared)) if thread % 2 else shared,
                        outputs=[
                            dataset(
                                "s3://lake",
                                f"out{i}",
                                version="v2" if event_type != "START" else None,
                            )
                        ],
                    )
                )
        return out

    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def work(thread: int) -> None:
        try:
            barrier.wait()
            for event in events(thread):
                lineage_events_ingest(actor=Actor.system(alice), body=event)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    for run in runs:
        node = LineageNode.objects.get(identity=naming.identity("run", "", run))
        assert node.state == "COMPLETE" and node.started_at and node.ended_at
    # 12 runs x (4 inputs + 1 output + 1 job edge), each edge once, versions kept.
    assert LineageEdge.objects.count() == RUNS * 6
    assert not LineageEdge.objects.filter(kind="output").exclude(version="v2").exists()
