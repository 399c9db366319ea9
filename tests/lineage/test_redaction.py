"""Redaction: nodes under securables or experiments the caller may not see are opaque
RESTRICTED nodes; the shape of the graph stays, names do not leak."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from core.actor import Actor
from lineage.services import lineage_events_ingest
from tests.lineage.conftest import dataset, edges, facet, ids, run_event
from tracking.services import experiment_permission_set

pytestmark = pytest.mark.django_db


def by_id(answer: dict) -> dict[str, dict]:
    return {n["id"]: n for n in answer["nodes"]}


def restricted(answer: dict) -> list[dict]:
    return [n for n in answer["nodes"] if n["type"] == "RESTRICTED"]


def share(owner, experiment_id, principal: str, level: str = "CAN_READ") -> None:
    experiment_permission_set(
        actor=Actor.system(owner), experiment_id=experiment_id, principal=principal, level=level
    )


def test_the_owner_sees_the_whole_lineage(lineage_as, alice, trained):
    answer = lineage_as(alice).graph(trained.version, depth=4, direction="upstream").json()
    assert ids(answer) == {
        trained.version,
        trained.run,
        trained.train,
        trained.pipeline,
        trained.raw,
        trained.job,
    }
    assert not restricted(answer)


def test_hidden_model_and_experiment_are_restricted_and_edges_stay(lineage_as, bob, trained):
    """Bob may see the pipeline's datasets (published by OpenLineage) but neither alice's
    experiment nor the model: from train.csv downstream, two RESTRICTED nodes, same edges."""
    answer = lineage_as(bob).graph(trained.train, depth=2, direction="downstream").json()
    hidden = restricted(answer)
    assert len(hidden) == 2
    for node in hidden:
        assert set(node) == {"id", "type", "depth"}
        assert node["id"].startswith("restricted:")
    run_hidden, version_hidden = sorted(hidden, key=lambda n: n["depth"])
    assert edges(answer) == {
        (trained.train, run_hidden["id"], "INPUT"),
        (run_hidden["id"], version_hidden["id"], "OUTPUT"),
    }
    text = json.dumps(answer)
    for secret in (trained.run_id, "main.ml.wine", "wine-exp", str(trained.version_obj.pk)):
        assert secret not in text
    # The version of the restricted run's input is not shown either.
    assert all("version" not in e for e in answer["edges"])


def test_a_hidden_node_cannot_be_the_start_of_a_walk(lineage_as, bob, trained):
    for node_id in (trained.run, trained.version):
        response = lineage_as(bob).graph(node_id)
        assert response.status_code == 404
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert (
        AuditEvent.objects.filter(actor="bob", action="lineage.query", outcome="DENIED").count()
        == 2
    )
    response = lineage_as(bob).version("main.ml.wine", 1)
    assert response.status_code == 404


def test_seeing_the_model_shows_the_version_but_not_the_run(lineage_as, bob, grant, trained):
    grant("catalog", "main", "bob", "USE CATALOG", "USE SCHEMA", "BROWSE")
    answer = lineage_as(bob).version("main.ml.wine", 1, depth=4).json()
    nodes = by_id(answer)
    assert nodes[trained.version]["data"]["full_name"] == "main.ml.wine"
    assert trained.run not in nodes
    (hidden,) = restricted(answer)
    assert hidden["depth"] == 1
    assert (hidden["id"], trained.version, "OUTPUT") in edges(answer)
    assert (trained.train, hidden["id"], "INPUT") in edges(answer)
    # Beyond the restricted run the walk goes on: the pipeline that made train.csv.
    assert {trained.train, trained.pipeline, trained.raw, trained.job} <= set(nodes)


def test_reading_the_experiment_shows_the_run(lineage_as, alice, bob, trained):
    share(alice, trained.experiment_id, "bob")
    answer = lineage_as(bob).graph(trained.train, depth=2, direction="downstream").json()
    nodes = by_id(answer)
    assert nodes[trained.run]["data"]["experiment_id"] == str(trained.experiment_id)
    assert len(restricted(answer)) == 1  # the model version: no grant on the model
    edge = next(e for e in answer["edges"] if e["target"] == trained.run)
    assert edge["version"] == "be9dd889"  # the digest the run read


def test_a_dataset_only_mlflow_knows_is_as_private_as_its_runs(lineage_as, alice, bob, tree, grant):
    from tests.lineage.conftest import mlflow_dataset
    from tracking.services import experiment_create, run_create, run_log_inputs

    actor = Actor.system(alice)
    experiment = experiment_create(actor=actor, name="private")
    run = run_create(actor=actor, experiment_id=experiment.experiment_id)
    run_log_inputs(
        actor=actor, run_id=run.run_id, datasets=[mlflow_dataset("s3://hr/salaries.csv")]
    )
    node_id = "dataset:s3://hr:salaries.csv"
    assert lineage_as(alice).graph(node_id).status_code == 200
    assert lineage_as(bob).graph(node_id).status_code == 404
    share(alice, experiment.experiment_id, "bob")
    assert lineage_as(bob).graph(node_id).status_code == 200


def test_datasets_linked_to_a_hidden_schema_are_restricted(lineage_as, alice, bob, tree, grant):
    tree("main.hr", "main.pub")
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "MODIFY")
    grant("catalog", "main", "bob", "USE CATALOG")
    grant("schema", "main.pub", "bob", "USE SCHEMA", "BROWSE")

    def link(name, schema):
        return dataset(
            "s3://lake", name, stewardSecurable=facet(securableType="schema", fullName=schema)
        )

    lineage_events_ingest(
        actor=Actor.system(alice),
        body=run_event(
            inputs=[link("salaries.csv", "main.hr")], outputs=[link("report", "main.pub")]
        ),
    )
    answer = lineage_as(bob).graph("dataset:s3://lake:report", depth=2).json()
    nodes = by_id(answer)
    assert nodes["dataset:s3://lake:report"]["data"]["securable"] == {
        "type": "schema",
        "full_name": "main.pub",
    }
    assert len(restricted(answer)) == 1 and "salaries" not in json.dumps(answer)
    assert lineage_as(bob).graph("dataset:s3://lake:salaries.csv").status_code == 404
    assert lineage_as(alice).graph("dataset:s3://lake:salaries.csv").status_code == 200


def test_restricted_ids_are_stable_and_opaque(lineage_as, bob, trained):
    first = lineage_as(bob).graph(trained.train, depth=2, direction="downstream").json()
    again = lineage_as(bob).graph(trained.raw, depth=4, direction="downstream").json()
    assert {n["id"] for n in restricted(first)} == {n["id"] for n in restricted(again)}
    from lineage.models import LineageNode

    pks = {str(pk) for pk in LineageNode.objects.values_list("pk", flat=True)}
    for node in restricted(first):
        assert node["id"].removeprefix("restricted:") not in pks


def test_admins_see_everything(lineage_as, admin_user, trained):
    answer = lineage_as(admin_user).graph(trained.raw, depth=4, direction="downstream").json()
    assert not restricted(answer)
    assert {trained.run, trained.version} <= ids(answer)


def test_redaction_costs_a_constant_number_of_queries(
    lineage_as, bob, grant, trained, django_assert_max_num_queries
):
    """Every kind of node in the answer (model version, MLflow run, linked and unlinked
    datasets, job, OpenLineage run) and a user who sees some of them: the same count at any
    depth that reaches them all."""
    grant("catalog", "main", "bob", "USE CATALOG", "USE SCHEMA", "BROWSE")
    door = lineage_as(bob)
    door.graph(trained.raw, depth=0)  # the token's first use of the minute writes last_used_at
    counts = set()
    for depth in (4, 8, 20):
        with CaptureQueriesContext(connection) as ctx:
            response = door.graph(trained.raw, depth=depth, direction="both")
        assert response.status_code == 200
        assert len(restricted(response.json())) == 1
        counts.add(len(ctx.captured_queries))
    assert len(counts) == 1, counts
    with django_assert_max_num_queries(22):
        door.graph(trained.version, depth=20, direction="both")
