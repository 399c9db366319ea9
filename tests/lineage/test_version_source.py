"""model_version_source_record: the version's node and the edge from its run, written on
PostgreSQL in one statement and elsewhere (or when that statement missed a node a concurrent
writer committed) through the graph flush; both write the same rows."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from core.actor import Actor
from lineage import naming, services
from lineage.models import LineageEdge, LineageNode
from lineage.services import model_version_source_record

PATHS = ["statement", "flush"]


@pytest.fixture
def path(request, monkeypatch):
    """Which writer runs: the one statement (PostgreSQL; the flush elsewhere) or the flush."""
    if request.param == "flush":
        monkeypatch.setattr(services, "_record_source", lambda version_pk, run_id: False)
    return request.param


@pytest.fixture
def make_version(tree, grant, alice):
    """make_version(run) -> a new version of main.ml.wine, from that run."""
    from registry.services import model_version_create
    from tracking.services import experiment_create

    tree("main.ml.wine")
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "MODIFY")
    actor = Actor.system(alice)
    experiment = experiment_create(actor=actor, name="source-exp")

    def make(run):
        source = f"runs:/{run.run_id}/model"
        return model_version_create(actor=actor, full_name="main.ml.wine", source=source)

    make.experiment = experiment
    return make


@pytest.fixture
def make_run(alice, make_version):
    from tracking.services import run_create

    def make():
        return run_create(actor=Actor.system(alice), experiment_id=make_version.experiment.pk)

    return make


def node_of(kind: str, name: str) -> LineageNode:
    return LineageNode.objects.get(identity=naming.identity(kind, "", name))


def row(node: LineageNode) -> dict:
    """Every column of a node but its id and timestamps."""
    return {
        f.attname: getattr(node, f.attname)
        for f in LineageNode._meta.concrete_fields
        if f.attname not in ("id", "created_at", "updated_at")
    }


def fresh(kind: str, name: str, **links) -> dict:
    """What a node written by this hook and nothing else holds."""
    return {
        "kind": kind,
        "identity": naming.identity(kind, "", name),
        "namespace": "",
        "name": name,
        "facets": {},
        "facets_time": None,
        "state": "",
        "state_time": None,
        "started_at": None,
        "ended_at": None,
        "openlineage": False,
        "catalog_id": None,
        "schema_id": None,
        "mlflow_run_id": links.get("mlflow_run_id"),
        "model_version_id": links.get("model_version_id"),
    }


def run_edges(version) -> list[tuple]:
    node = node_of("model_version", str(version.pk))
    return list(
        LineageEdge.objects.filter(dst=node).values_list("src__identity", "kind", "version")
    )


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_a_version_of_a_new_run_writes_both_nodes_and_the_edge(path, make_version, make_run):
    run = make_run()
    version = make_version(run)
    run_node = node_of("mlflow_run", run.run_id)
    version_node = node_of("model_version", str(version.pk))
    assert row(run_node) == fresh("mlflow_run", run.run_id, mlflow_run_id=run.run_id)
    assert row(version_node) == fresh("model_version", str(version.pk), model_version_id=version.pk)
    for node in (run_node, version_node):
        assert node.created_at == node.updated_at
    assert run_node.created_at == version_node.created_at  # one write
    assert run_edges(version) == [(run_node.identity, "output", "")]
    assert LineageEdge.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_an_existing_run_node_is_left_as_it_is(path, make_version, make_run):
    run = make_run()
    first = make_version(run)
    old = datetime(2024, 1, 1, tzinfo=UTC)
    LineageNode.objects.filter(kind="mlflow_run").update(
        facets={"note": {"x": 1}},
        facets_time=old,
        state="COMPLETE",
        openlineage=True,
        created_at=old,
        updated_at=old,
    )
    before = LineageNode.objects.get(kind="mlflow_run")
    second = make_version(run)
    after = LineageNode.objects.get(kind="mlflow_run")
    assert (row(after), after.created_at, after.updated_at) == (
        row(before),
        before.created_at,
        before.updated_at,
    )
    for version in (first, second):
        assert run_edges(version) == [(after.identity, "output", "")]
    assert LineageNode.objects.count() == 3 and LineageEdge.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_recording_again_keeps_the_nodes_and_the_edge_version(path, make_version, make_run):
    """An existing edge keeps its version when a write names none (`_upsert_edges`' rule)."""
    run = make_run()
    version = make_version(run)
    LineageEdge.objects.update(version="v7")
    nodes = {n.pk: (row(n), n.updated_at) for n in LineageNode.objects.all()}
    model_version_source_record(version=version, run_exists=True)
    model_version_source_record(version=version)  # run_exists looked up
    assert {n.pk: (row(n), n.updated_at) for n in LineageNode.objects.all()} == nodes
    assert list(LineageEdge.objects.values_list("version", flat=True)) == ["v7"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_a_version_without_a_run_is_a_node_alone(path, make_version, make_run):
    version = make_version(make_run())
    # No run (`run_id` empty), or one its creator says is not there: no run node, no edge.
    for run_id, run_exists in ((None, None), (version.run_id, False)):
        LineageNode.objects.all().delete()
        version.run_id = run_id
        model_version_source_record(version=version, run_exists=run_exists)
        node = LineageNode.objects.get()
        assert row(node) == fresh("model_version", str(version.pk), model_version_id=version.pk)
        assert node.created_at == node.updated_at
        assert not LineageEdge.objects.exists()


@pytest.mark.django_db
@pytest.mark.postgres
def test_on_postgresql_the_hook_is_one_statement(make_version, make_run):
    run = make_run()
    version = make_version(run)
    LineageNode.objects.all().delete()
    for run_exists in (True, False):
        with CaptureQueriesContext(connection) as captured:
            model_version_source_record(version=version, run_exists=run_exists)
        assert len(captured.captured_queries) == 1
    assert run_edges(version) == [(naming.identity("mlflow_run", "", run.run_id), "output", "")]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_node_committed_during_the_statement_still_gets_its_edge(
    make_version, make_run, monkeypatch
):
    """Two versions of one run recorded at once, the run's node new: the second statement
    waits on the first's insert of that node and, once it commits, cannot see it (its snapshot
    is older); the hook then writes through the flush, which does."""
    run = make_run()
    versions = [make_version(run), make_version(run)]
    LineageNode.objects.filter(kind="mlflow_run").delete()  # and its edges
    outcomes: list[bool] = []
    real = services._record_source

    def spied(version_pk, run_id):
        outcomes.append(real(version_pk, run_id))
        return outcomes[-1]

    monkeypatch.setattr(services, "_record_source", spied)
    first_wrote, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def record(version, hold: bool) -> None:
        try:
            with transaction.atomic():
                model_version_source_record(version=version, run_exists=True)
                if hold:
                    first_wrote.set()
                    release.wait(30)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    try:
        first = threading.Thread(target=record, args=(versions[0], True))
        first.start()
        assert first_wrote.wait(30)
        second = threading.Thread(target=record, args=(versions[1], False))
        second.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the second waits on the first's row
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    break
            time.sleep(0.05)
        release.set()
        first.join(30)
        second.join(30)
    finally:
        release.set()
    assert not errors, errors
    assert outcomes == [True, False]
    run_identity = naming.identity("mlflow_run", "", run.run_id)
    for version in versions:
        assert run_edges(version) == [(run_identity, "output", "")]
