"""MLflow run inputs and model-version sources become lineage, inside the tracking and
registry services' own transactions; the model-version shortcut; nothing carries over to a
model recreated under the same name."""

from __future__ import annotations

import pytest

from core.actor import Actor
from lineage import naming
from lineage.models import LineageEdge, LineageNode
from tests.lineage.conftest import dataset, edges, facet, ids, mlflow_dataset, run_event

pytestmark = pytest.mark.django_db


def test_logged_inputs_become_dataset_to_run_edges(trained):
    node = LineageNode.objects.get(identity=naming.identity("dataset", "s3://lake", "train.csv"))
    assert node.facets["mlflow"]["name"] == "wine-train"
    assert node.facets["schema"]["fields"] == [{"name": "alcohol", "type": "double"}]
    assert node.openlineage  # the pipeline's event named it first
    edge = LineageEdge.objects.get(dst__mlflow_run_id=trained.run_id)
    assert (edge.src_id, edge.kind, edge.version) == (node.pk, "input", "be9dd889")


def test_logging_the_same_input_again_changes_nothing(alice, trained):
    from tracking.services import run_log_inputs

    before = LineageEdge.objects.count(), LineageNode.objects.count()
    run_log_inputs(
        actor=Actor.system(alice),
        run_id=trained.run_id,
        datasets=[mlflow_dataset("s3://lake/train.csv")],
    )
    assert (LineageEdge.objects.count(), LineageNode.objects.count()) == before


def test_an_in_memory_dataset_is_named_by_its_digest(alice):
    from tracking.services import experiment_create, run_create, run_log_inputs

    actor = Actor.system(alice)
    run = run_create(actor=actor, experiment_id=experiment_create(actor=actor, name="e").pk)
    run_log_inputs(
        actor=actor, run_id=run.run_id, datasets=[mlflow_dataset(None, name="df", digest="abc")]
    )
    node = LineageNode.objects.get(kind="dataset")
    assert (node.namespace, node.name, node.openlineage) == ("mlflow", "df@abc", False)


def test_a_model_version_links_to_its_source_run(trained):
    node = LineageNode.objects.get(model_version=trained.version_obj)
    edge = LineageEdge.objects.get(dst=node)
    assert (edge.src.kind, edge.src.mlflow_run_id, edge.kind) == (
        "mlflow_run",
        trained.run_id,
        "output",
    )


def test_the_shortcut_answers_dataset_run_version(lineage_as, alice, trained):
    response = lineage_as(alice).version("main.ml.wine", 1, depth=2)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["root"] == trained.version and answer["direction"] == "upstream"
    assert ids(answer) == {trained.version, trained.run, trained.train}
    assert edges(answer) == {
        (trained.train, trained.run, "INPUT"),
        (trained.run, trained.version, "OUTPUT"),
    }
    nodes = {n["id"]: n for n in answer["nodes"]}
    assert nodes[trained.version]["data"] == {
        "full_name": "main.ml.wine",
        "version": 1,
        "status": "PENDING_REGISTRATION",
        "lifecycle": "ACTIVE",
    }
    assert nodes[trained.run]["data"]["source"] == "mlflow"
    assert nodes[trained.run]["data"]["run_id"] == trained.run_id


@pytest.mark.parametrize(
    ("full_name", "version", "status"),
    [
        ("main.ml.wine", "abc", 400),
        ("main.ml.wine", "0", 400),
        ("main.ml.wine", "7", 404),
        ("main.ml.nope", "1", 404),
        ("main.ml", "1", 400),
    ],
)
def test_the_shortcut_refuses_what_is_not_a_version(
    lineage_as, alice, trained, full_name, version, status
):
    response = lineage_as(alice).version(full_name, version)
    assert response.status_code == status, response.content


def test_the_shortcut_takes_direction_and_depth(lineage_as, alice, trained):
    answer = lineage_as(alice).version("main.ml.wine", 1, direction="both", depth=20).json()
    assert answer["depth"] == 20 and answer["direction"] == "both"
    assert trained.raw in ids(answer)


def test_a_version_from_before_lineage_answers_alone(lineage_as, alice, trained):
    LineageNode.objects.filter(model_version=trained.version_obj).delete()
    answer = lineage_as(alice).version("main.ml.wine", 1).json()
    assert [n["id"] for n in answer["nodes"]] == [trained.version]
    assert answer["edges"] == []


def test_backfill_recreates_what_came_before_lineage(trained):
    """The data migration (0002) for versions and run inputs recorded before this app."""
    import importlib

    from django.apps import apps

    backfill = importlib.import_module("lineage.migrations.0002_backfill").backfill
    wanted = {(e.src.identity, e.dst.identity, e.kind) for e in LineageEdge.objects.all()}
    mlflow_edges = {w for w in wanted if w[2] in ("input", "output")}
    LineageNode.objects.filter(kind__in=["mlflow_run", "model_version"]).delete()
    backfill(apps, None)
    backfill(apps, None)  # idempotent
    found = {(e.src.identity, e.dst.identity, e.kind) for e in LineageEdge.objects.all()}
    run_edges = {
        w for w in mlflow_edges if naming.identity("mlflow_run", "", trained.run_id) in w[:2]
    }
    assert run_edges and run_edges <= found


def test_recreated_model_starts_without_lineage(lineage_as, alice, admin_actor, trained):
    """SECURITY_CASES 8: delete c.s.m and recreate it; its new version 1 has no old lineage."""
    from registry.services import (
        model_version_create,
        registered_model_create,
        registered_model_delete,
    )

    registered_model_delete(actor=admin_actor, full_name="main.ml.wine", force=True)
    assert not LineageNode.objects.filter(kind="model_version").exists()
    registered_model_create(actor=admin_actor, catalog_name="main", schema_name="ml", name="wine")
    from tracking.services import experiment_create, run_create

    actor = Actor.system(alice)
    run = run_create(actor=actor, experiment_id=experiment_create(actor=actor, name="new").pk)
    model_version_create(actor=actor, full_name="main.ml.wine", source=f"runs:/{run.run_id}/model")
    answer = lineage_as(alice).version("main.ml.wine", 1, depth=20, direction="both").json()
    assert ids(answer) == {answer["root"], f"mlflow_run:{run.run_id}"}
    assert trained.version not in ids(answer)


def test_a_linked_dataset_keeps_its_facets_against_an_mlflow_run(alice, bob, tree, grant):
    """A run may read a governed dataset (the edge is recorded); only MODIFY holders change
    what the dataset says about itself."""
    from lineage.services import lineage_events_ingest
    from tracking.services import experiment_create, run_create, run_log_inputs

    tree("main.raw")
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "MODIFY")
    lineage_events_ingest(
        actor=Actor.system(alice),
        body=run_event(
            outputs=[
                dataset(
                    "s3://lake",
                    "gov.csv",
                    stewardSecurable=facet(securableType="schema", fullName="main.raw"),
                    schema=facet(fields=[{"name": "real"}]),
                )
            ]
        ),
    )
    actor = Actor.system(bob)
    run = run_create(actor=actor, experiment_id=experiment_create(actor=actor, name="b").pk)
    run_log_inputs(actor=actor, run_id=run.run_id, datasets=[mlflow_dataset("s3://lake/gov.csv")])
    node = LineageNode.objects.get(identity=naming.identity("dataset", "s3://lake", "gov.csv"))
    assert node.facets["schema"]["fields"] == [{"name": "real"}]
    assert "mlflow" not in node.facets
    assert LineageEdge.objects.filter(src=node, dst__mlflow_run_id=run.run_id).exists()


def test_the_run_inputs_audit_event_is_tracking_s(alice, trained):
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="run.log_inputs", actor="alice").count() == 1


def test_an_mlflow_schema_with_nul_escapes_is_stored_clean(alice):
    """MLflow's dataset schema is a JSON string: a \\u0000 escape inside it decodes to NUL,
    which PostgreSQL's jsonb refuses; the facet drops it instead of failing the run."""
    import json

    from tracking.services import experiment_create, run_create, run_log_inputs

    actor = Actor.system(alice)
    run = run_create(actor=actor, experiment_id=experiment_create(actor=actor, name="n").pk)
    item = mlflow_dataset("s3://lake/nul.csv")
    item["dataset"]["schema"] = '{"mlflow_colspec": [{"name": "a\\u0000b", "type": "long"}]}'
    item["dataset"]["profile"] = '{"rows": 1e999}'
    run_log_inputs(actor=actor, run_id=run.run_id, datasets=[item])
    node = LineageNode.objects.get(identity=naming.identity("dataset", "s3://lake", "nul.csv"))
    assert node.facets["schema"]["fields"] == [{"name": "ab", "type": "long"}]
    assert "profile" not in node.facets["mlflow"]
    assert json.dumps(node.facets)
