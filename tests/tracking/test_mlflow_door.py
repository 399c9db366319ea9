"""Each endpoint of the MLflow tracking door, with the shapes the mlflow client parses (ids as
strings, int64 as numbers, proto enum names) and the sequences it sends
(docs/research/mlflow-client-wire.md §2, §3)."""

from __future__ import annotations

import pytest

from tests.tracking.conftest import error_of
from tracking.models import Metric

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(door, alice):
    return door(alice)


def _experiment(api, name="exp") -> str:
    response = api.post("experiments/create", {"name": name})
    assert response.status_code == 200, response.content
    return response.json()["experiment_id"]


def _run(api, experiment_id, **extra) -> dict:
    response = api.post("runs/create", {"experiment_id": experiment_id, **extra})
    assert response.status_code == 200, response.content
    return response.json()["run"]


def _get_run(api, run_id) -> dict:
    response = api.get("runs/get", {"run_id": run_id, "run_uuid": run_id})
    assert response.status_code == 200, response.content
    return response.json()["run"]


def test_set_experiment_sequence(api):
    missing = api.get("experiments/get-by-name", {"experiment_name": "wine"})
    assert missing.status_code == 404 and error_of(missing) == "RESOURCE_DOES_NOT_EXIST"
    created = api.post("experiments/create", {"name": "wine", "tags": [{"key": "k", "value": "v"}]})
    experiment_id = created.json()["experiment_id"]
    assert isinstance(experiment_id, str) and experiment_id.isdigit()
    body = api.get("experiments/get", {"experiment_id": experiment_id}).json()["experiment"]
    assert body["experiment_id"] == experiment_id
    assert body["name"] == "wine"
    assert body["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"
    assert body["lifecycle_stage"] == "active"
    assert isinstance(body["creation_time"], int) and isinstance(body["last_update_time"], int)
    assert body["tags"] == [{"key": "k", "value": "v"}]
    by_name = api.get("experiments/get-by-name", {"experiment_name": "wine"}).json()
    assert by_name == {"experiment": body}
    again = api.post("experiments/create", {"name": "wine"})
    assert error_of(again) == "RESOURCE_ALREADY_EXISTS"


def test_api_3_0_prefix_and_server_info(api):
    response = api.post("experiments/create", {"name": "v3"}, prefix="/api/3.0/mlflow")
    assert response.status_code == 200
    info = api.get("server-info", prefix="/api/3.0/mlflow").json()
    assert info["multipart_uploads_enabled"] is False
    assert info["multipart_downloads_enabled"] is False


def test_run_create_invents_a_name_and_records_the_real_user(api):
    experiment_id = _experiment(api)
    run = _run(
        api,
        experiment_id,
        user_id="root",
        start_time=1795674816318,
        tags=[
            {"key": "mlflow.user", "value": "root"},
            {"key": "mlflow.source.type", "value": "LOCAL"},
        ],
    )
    info = run["info"]
    assert len(info["run_id"]) == 32 and info["run_uuid"] == info["run_id"]
    assert info["experiment_id"] == experiment_id
    assert info["user_id"] == "alice"  # the authenticated principal, not the client's claim
    assert info["status"] == "RUNNING" and info["lifecycle_stage"] == "active"
    assert info["start_time"] == 1795674816318
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{info['run_id']}/artifacts"
    assert "end_time" not in info
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.runName"] == info["run_name"] and info["run_name"]
    assert tags["mlflow.user"] == "alice" and tags["mlflow.source.type"] == "LOCAL"
    assert run["inputs"] == {"dataset_inputs": [], "model_inputs": []}
    assert run["outputs"] == {"model_outputs": []}


def test_run_name_and_run_name_tag(api):
    experiment_id = _experiment(api)
    named = _run(api, experiment_id, run_name="mine")
    assert named["info"]["run_name"] == "mine"
    by_tag = _run(api, experiment_id, tags=[{"key": "mlflow.runName", "value": "tagged"}])
    assert by_tag["info"]["run_name"] == "tagged"
    both = api.post(
        "runs/create",
        {
            "experiment_id": experiment_id,
            "run_name": "a",
            "tags": [{"key": "mlflow.runName", "value": "b"}],
        },
    )
    assert both.status_code == 400 and error_of(both) == "INVALID_PARAMETER_VALUE"
    run_id = named["info"]["run_id"]
    api.post("runs/set-tag", {"run_id": run_id, "key": "mlflow.runName", "value": "renamed"})
    assert _get_run(api, run_id)["info"]["run_name"] == "renamed"


def test_log_and_read_back(api):
    experiment_id = _experiment(api)
    run_id = _run(api, experiment_id)["info"]["run_id"]
    ok = [
        api.post(
            "runs/log-parameter", {"run_id": run_id, "run_uuid": run_id, "key": "C", "value": "1.0"}
        ),
        api.post(
            "runs/log-metric",
            {
                "run_id": run_id,
                "run_uuid": run_id,
                "key": "acc",
                "value": 0.5,
                "timestamp": 10,
                "step": 0,
            },
        ),
        api.post(
            "runs/log-metric",
            {"run_uuid": run_id, "key": "acc", "value": 0.9, "timestamp": 11, "step": 1},
        ),
        api.post(
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [
                    {"key": "loss", "value": "NaN", "timestamp": 12, "step": 0},
                    {"key": "big", "value": "Infinity", "timestamp": 12, "step": 0},
                    {"key": "acc", "value": 0.7, "timestamp": "13", "step": "2"},
                ],
                "params": [{"key": "solver", "value": "lbfgs"}, {"key": "C", "value": "1.0"}],
                "tags": [{"key": "team", "value": "ml"}],
            },
        ),
        api.post(
            "runs/set-tag", {"run_id": run_id, "run_uuid": run_id, "key": "stage", "value": "dev"}
        ),
    ]
    for response in ok:
        assert response.status_code == 200 and response.json() == {}, response.content
    run = _get_run(api, run_id)
    metrics = {m["key"]: m for m in run["data"]["metrics"]}
    assert metrics["acc"] == {"key": "acc", "value": 0.7, "timestamp": 13, "step": 2}
    assert metrics["loss"]["value"] == "NaN"
    assert metrics["big"]["value"] == pytest.approx(1.7976931348623157e308)
    assert run["data"]["params"] == [
        {"key": "C", "value": "1.0"},
        {"key": "solver", "value": "lbfgs"},
    ]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["team"] == "ml" and tags["stage"] == "dev"
    deleted = api.post("runs/delete-tag", {"run_id": run_id, "key": "stage"})
    assert deleted.status_code == 200
    assert "stage" not in {t["key"] for t in _get_run(api, run_id)["data"]["tags"]}
    again = api.post("runs/delete-tag", {"run_id": run_id, "key": "stage"})
    assert error_of(again) == "RESOURCE_DOES_NOT_EXIST"


def test_get_by_run_uuid_alone(api):
    run_id = _run(api, _experiment(api))["info"]["run_id"]
    response = api.get("runs/get", {"run_uuid": run_id})
    assert response.json()["run"]["info"]["run_id"] == run_id


def test_metric_history_pages(api):
    run_id = _run(api, _experiment(api))["info"]["run_id"]
    metrics = [{"key": "acc", "value": i / 10, "timestamp": 100 + i, "step": i} for i in range(7)]
    api.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
    # Re-logging the same points (the client does when it links metrics to a model) is a no-op.
    api.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
    assert Metric.objects.filter(run_id=run_id).count() == 7
    seen, token, pages = [], None, 0
    while True:
        params = {"run_id": run_id, "run_uuid": run_id, "metric_key": "acc", "max_results": 3}
        if token:
            params["page_token"] = token
        body = api.get("metrics/get-history", params).json()
        seen.extend(m["step"] for m in body["metrics"])
        pages += 1
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == list(range(7)) and pages == 3
    everything = api.get("metrics/get-history", {"run_id": run_id, "metric_key": "acc"}).json()
    assert len(everything["metrics"]) == 7 and "next_page_token" not in everything
    nothing = api.get("metrics/get-history", {"run_id": run_id, "metric_key": "nope"}).json()
    assert nothing == {"metrics": []}


def test_run_update_delete_restore(api):
    run_id = _run(api, _experiment(api))["info"]["run_id"]
    response = api.post(
        "runs/update",
        {"run_id": run_id, "run_uuid": run_id, "status": "FINISHED", "end_time": 1795674820000},
    )
    info = response.json()["run_info"]
    assert info["status"] == "FINISHED" and info["end_time"] == 1795674820000
    renamed = api.post("runs/update", {"run_id": run_id, "run_name": "new-name"}).json()
    assert renamed["run_info"]["run_name"] == "new-name"
    assert api.post("runs/delete", {"run_id": run_id}).status_code == 200
    assert _get_run(api, run_id)["info"]["lifecycle_stage"] == "deleted"
    refused = api.post("runs/log-parameter", {"run_id": run_id, "key": "a", "value": "b"})
    assert error_of(refused) == "INVALID_PARAMETER_VALUE" and "active" in refused.json()["message"]
    assert api.post("runs/restore", {"run_id": run_id}).status_code == 200
    assert _get_run(api, run_id)["info"]["lifecycle_stage"] == "active"


def test_run_search_filters_order_and_view_types(api):
    experiment_id = _experiment(api)
    runs = []
    for index, (acc, solver, team) in enumerate(
        [(0.9, "lbfgs", "ml"), (0.5, "saga", "ml"), (0.7, "lbfgs", "ops")]
    ):
        run_id = _run(api, experiment_id, run_name=f"r{index}", start_time=1000 + index)["info"][
            "run_id"
        ]
        api.post(
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{"key": "acc", "value": acc, "timestamp": 1, "step": 0}],
                "params": [{"key": "solver", "value": solver}],
                "tags": [{"key": "team", "value": team}, {"key": "my tag", "value": "x"}],
            },
        )
        runs.append(run_id)
    api.post("runs/update", {"run_id": runs[2], "status": "FINISHED"})

    def search(**body):
        response = api.post("runs/search", {"experiment_ids": [experiment_id], **body})
        assert response.status_code == 200, response.content
        return [r["info"]["run_name"] for r in response.json().get("runs", [])]

    assert search() == ["r2", "r1", "r0"]  # newest first
    assert search(filter="metrics.acc > 0.6") == ["r2", "r0"]
    assert search(filter="metrics.acc >= 0.5 AND metrics.acc < 0.9") == ["r2", "r1"]
    assert search(filter="params.solver = 'lbfgs'") == ["r2", "r0"]
    assert search(filter='param.solver != "lbfgs"') == ["r1"]
    assert search(filter="tags.team = 'ml' and params.solver = 'saga'") == ["r1"]
    assert search(filter="tags.`my tag` = 'x'") == ["r2", "r1", "r0"]
    assert search(filter="tags.\"my tag\" LIKE '%'") == ["r2", "r1", "r0"]
    assert search(filter="tags.team LIKE 'M%'") == []  # LIKE is case-sensitive
    assert search(filter="tags.team ILIKE 'M%'") == ["r1", "r0"]
    assert search(filter="attributes.status = 'FINISHED'") == ["r2"]
    assert search(filter="status != 'FINISHED'") == ["r1", "r0"]
    assert search(filter="attributes.run_name IN ('r0', 'r1')") == ["r1", "r0"]
    assert search(filter=f"attributes.run_id = '{runs[0]}'") == ["r0"]
    assert search(filter="attributes.start_time > 1000") == ["r2", "r1"]
    assert search(filter="tags.absent IS NULL") == ["r2", "r1", "r0"]
    assert search(filter="tags.team IS NOT NULL and metrics.acc < 0.8") == ["r2", "r1"]
    assert search(order_by=["metrics.acc DESC"]) == ["r0", "r2", "r1"]
    assert search(order_by=["metrics.acc"]) == ["r1", "r2", "r0"]
    assert search(order_by=["params.solver ASC", "attributes.run_name DESC"]) == [
        "r2",
        "r0",
        "r1",
    ]
    page1 = api.post("runs/search", {"experiment_ids": [experiment_id], "max_results": 2}).json()
    assert len(page1["runs"]) == 2 and page1["next_page_token"]
    page2 = api.post(
        "runs/search",
        {
            "experiment_ids": [experiment_id],
            "max_results": 2,
            "page_token": page1["next_page_token"],
        },
    ).json()
    assert [r["info"]["run_name"] for r in page2["runs"]] == ["r0"]
    assert "next_page_token" not in page2
    api.post("runs/delete", {"run_id": runs[1]})
    assert search() == ["r2", "r0"]
    assert search(run_view_type="DELETED_ONLY") == ["r1"]
    assert search(run_view_type="ALL") == ["r2", "r1", "r0"]
    # Unknown experiments contribute nothing, as in MLflow.
    assert api.post("runs/search", {"experiment_ids": ["424242"]}).json() == {"runs": []}


def test_experiments_update_tags_delete_restore_search(api):
    first = _experiment(api, "first")
    second = _experiment(api, "second")
    run_kept = _run(api, first)["info"]["run_id"]
    run_deleted_before = _run(api, first)["info"]["run_id"]
    api.post("runs/delete", {"run_id": run_deleted_before})

    assert (
        api.post("experiments/update", {"experiment_id": first, "new_name": "renamed"}).json() == {}
    )
    clash = api.post("experiments/update", {"experiment_id": first, "new_name": "second"})
    assert error_of(clash) == "RESOURCE_ALREADY_EXISTS"
    api.post("experiments/set-experiment-tag", {"experiment_id": first, "key": "k", "value": "v"})
    body = api.get("experiments/get", {"experiment_id": first}).json()["experiment"]
    assert body["name"] == "renamed" and body["tags"] == [{"key": "k", "value": "v"}]
    api.post("experiments/delete-experiment-tag", {"experiment_id": first, "key": "k"})
    assert api.get("experiments/get", {"experiment_id": first}).json()["experiment"]["tags"] == []

    assert api.post("experiments/delete", {"experiment_id": first}).status_code == 200
    body = api.get("experiments/get", {"experiment_id": first}).json()["experiment"]
    assert body["lifecycle_stage"] == "deleted"
    assert _get_run(api, run_kept)["info"]["lifecycle_stage"] == "deleted"
    names = [e["name"] for e in api.post("experiments/search", {}).json()["experiments"]]
    assert names == ["second"]
    deleted = api.post("experiments/search", {"view_type": "DELETED_ONLY"}).json()
    assert [e["name"] for e in deleted["experiments"]] == ["renamed"]
    refused = api.post("runs/create", {"experiment_id": first})
    assert error_of(refused) == "INVALID_PARAMETER_VALUE"

    assert api.post("experiments/restore", {"experiment_id": first}).status_code == 200
    assert _get_run(api, run_kept)["info"]["lifecycle_stage"] == "active"
    # A run deleted on its own before the experiment was deleted stays deleted.
    assert _get_run(api, run_deleted_before)["info"]["lifecycle_stage"] == "deleted"

    listed = api.get("experiments/search", {"filter": "name LIKE 'sec%'", "max_results": 5})
    assert [e["name"] for e in listed.json()["experiments"]] == ["second"]
    ordered = api.get("experiments/search", {"order_by": ["name DESC"]}).json()
    assert [e["name"] for e in ordered["experiments"]] == ["second", "renamed"]
    assert second


def test_experiment_search_pages(api):
    for index in range(5):
        _experiment(api, f"e{index}")
    names, token = [], None
    while True:
        body = {"max_results": 2, "order_by": ["name ASC"]}
        if token:
            body["page_token"] = token
        page = api.post("experiments/search", body).json()
        names.extend(e["name"] for e in page["experiments"])
        token = page.get("next_page_token")
        if not token:
            break
    assert names == [f"e{i}" for i in range(5)]


def test_inputs_and_outputs_show_on_the_run(api):
    experiment_id = _experiment(api)
    run_id = _run(api, experiment_id)["info"]["run_id"]
    model_id = api.post("logged-models", {"experiment_id": experiment_id, "source_run_id": run_id})
    model_id = model_id.json()["model"]["info"]["model_id"]
    dataset = {
        "name": "wine",
        "digest": "abc123",
        "source_type": "local",
        "source": '{"uri": "/data/wine.csv"}',
        "schema": '{"mlflow_colspec": []}',
    }
    body = {
        "run_id": run_id,
        "datasets": [
            {"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": dataset}
        ],
        "models": [{"model_id": model_id}],
    }
    assert api.post("runs/log-inputs", body).status_code == 200
    assert api.post("runs/log-inputs", body).status_code == 200  # recorded once
    outputs = {"run_id": run_id, "models": [{"model_id": model_id, "step": 3}]}
    assert api.post("runs/outputs", outputs).status_code == 200
    assert api.post("runs/outputs", outputs).status_code == 200
    run = _get_run(api, run_id)
    assert run["inputs"]["dataset_inputs"] == [
        {"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": dataset}
    ]
    assert run["inputs"]["model_inputs"] == [{"model_id": model_id}]
    assert run["outputs"] == {"model_outputs": [{"model_id": model_id, "step": 3}]}


def test_logged_model_lifecycle(api):
    experiment_id = _experiment(api)
    run_id = _run(api, experiment_id)["info"]["run_id"]
    created = api.post(
        "logged-models",
        {
            "experiment_id": experiment_id,
            "name": "model",
            "model_type": "sklearn",
            "source_run_id": run_id,
            "params": [{"key": "C", "value": "1.0"}],
            "tags": [{"key": "mlflow.user", "value": "alice"}],
        },
    )
    assert created.status_code == 200, created.content
    model = created.json()["model"]
    info = model["info"]
    model_id = info["model_id"]
    assert model_id.startswith("m-") and len(model_id) == 34
    assert info["experiment_id"] == experiment_id and info["source_run_id"] == run_id
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"
    assert isinstance(info["creation_timestamp_ms"], int)
    assert model["data"]["params"] == [{"key": "C", "value": "1.0"}]

    more = api.post(
        f"logged-models/{model_id}/params",
        {"model_id": model_id, "params": [{"key": "D", "value": "2"}]},
    )
    assert more.status_code == 200
    finalized = api.patch(
        f"logged-models/{model_id}", {"model_id": model_id, "status": "LOGGED_MODEL_READY"}
    )
    assert finalized.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    tags = {"tags": [{"key": "mlflow.modelVersions", "value": '[{"name": "wine", "version": 1}]'}]}
    assert api.patch(f"logged-models/{model_id}/tags", tags).status_code == 200
    # Metrics logged with a model_id become the model's metrics too.
    api.post(
        "runs/log-batch",
        {
            "run_id": run_id,
            "metrics": [
                {"key": "acc", "value": 0.9, "timestamp": 5, "step": 0, "model_id": model_id}
            ],
        },
    )
    got = api.get(f"logged-models/{model_id}").json()["model"]
    assert {t["key"]: t["value"] for t in got["info"]["tags"]}["mlflow.modelVersions"]
    assert got["data"]["params"] == [{"key": "C", "value": "1.0"}, {"key": "D", "value": "2"}]
    assert got["data"]["metrics"] == [
        {
            "key": "acc",
            "value": 0.9,
            "timestamp": 5,
            "step": 0,
            "model_id": model_id,
            "run_id": run_id,
        }
    ]
    removed = api.delete(f"logged-models/{model_id}/tags/mlflow.user", {"model_id": model_id})
    assert removed.status_code == 200
    assert "mlflow.user" not in {
        t["key"] for t in api.get(f"logged-models/{model_id}").json()["model"]["info"]["tags"]
    }

    found = api.post(
        "logged-models/search", {"experiment_ids": [experiment_id], "filter": "name = 'model'"}
    ).json()
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]
    for filter_string, expected in [
        ("name = 'other'", []),
        ("status = 'LOGGED_MODEL_READY'", [model_id]),
        (f"source_run_id = '{run_id}'", [model_id]),
        ("params.C = '1.0'", [model_id]),
        ("metrics.acc > 0.5", [model_id]),
        ("tags.`mlflow.modelVersions` LIKE '%wine%'", [model_id]),
    ]:
        body = {"experiment_ids": [experiment_id], "filter": filter_string}
        models = api.post("logged-models/search", body).json()["models"]
        assert [m["info"]["model_id"] for m in models] == expected, filter_string
    ordered = api.post(
        "logged-models/search",
        {
            "experiment_ids": [experiment_id],
            "order_by": [{"field_name": "name", "ascending": False}],
        },
    )
    assert ordered.status_code == 200

    assert api.delete(f"logged-models/{model_id}", {"model_id": model_id}).status_code == 200
    gone = api.get(f"logged-models/{model_id}")
    assert gone.status_code == 404 and error_of(gone) == "RESOURCE_DOES_NOT_EXIST"
    kept = api.get(f"logged-models/{model_id}", {"allow_deleted": "True"})
    assert kept.status_code == 200
    assert api.post("logged-models/search", {"experiment_ids": [experiment_id]}).json() == {
        "models": []
    }


def test_logged_model_without_name_or_run(api):
    experiment_id = _experiment(api)
    created = api.post("logged-models", {"experiment_id": experiment_id}).json()["model"]
    assert created["info"]["name"] and "source_run_id" not in created["info"]


def test_logged_model_source_run_must_be_in_the_same_experiment(api):
    first, second = _experiment(api, "one"), _experiment(api, "two")
    run_id = _run(api, first)["info"]["run_id"]
    response = api.post("logged-models", {"experiment_id": second, "source_run_id": run_id})
    assert response.status_code == 400 and error_of(response) == "INVALID_PARAMETER_VALUE"


def test_unknown_mlflow_routes_are_endpoint_not_found(api):
    response = api.get("no-such/thing")
    assert response.status_code == 404 and error_of(response) == "ENDPOINT_NOT_FOUND"
