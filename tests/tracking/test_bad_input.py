"""Bad input at the MLflow door (SECURITY_CASES 7, 13): wrong types, missing ids, oversized
batches, param overwrites, forged tokens, unsupported filters. Always a clear 4xx in MLflow's
error format, never a 500 (the client retries 5xx for minutes), and nothing half-written."""

from __future__ import annotations

import json

import pytest

from tests.tracking.conftest import error_of
from tracking.models import Experiment, LatestMetric, Metric, Param, Run, RunTag

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(door, alice):
    return door(alice)


@pytest.fixture
def exp_id(api) -> str:
    return api.post("experiments/create", {"name": "exp"}).json()["experiment_id"]


@pytest.fixture
def run_id(api, exp_id) -> str:
    return api.post("runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]


def _bad(response, code="INVALID_PARAMETER_VALUE", status=400) -> str:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert error_of(response) == code, response.json()
    return response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": 123},
        {"name": ["a"]},
        {"name": None},
        {"name": "a\x00b"},
        {"name": "line\nbreak"},
        {"name": "x" * 501},
        {"name": "ok", "artifact_location": "file:///etc"},
        {"name": "ok", "tags": "k=v"},
        {"name": "ok", "tags": [{"key": "../x", "value": "v"}]},
        {"name": "ok", "tags": [{"key": "k", "value": 1}]},
    ],
)
def test_experiment_create_refuses_bad_bodies(api, body):
    _bad(api.post("experiments/create", body))
    assert not Experiment.objects.exists()


def test_experiment_names_are_normalized(api):
    composed = api.post("experiments/create", {"name": "caf\u00e9"})
    decomposed = api.post("experiments/create", {"name": "cafe\u0301"})
    assert composed.status_code == 200
    _bad(decomposed, "RESOURCE_ALREADY_EXISTS", 409)
    found = api.get("experiments/get-by-name", {"experiment_name": "cafe\u0301"})
    assert found.json()["experiment"]["experiment_id"] == composed.json()["experiment_id"]


@pytest.mark.parametrize(
    "params,code,status",
    [
        ({}, "INVALID_PARAMETER_VALUE", 400),
        ({"experiment_id": "abc"}, "RESOURCE_DOES_NOT_EXIST", 404),
        ({"experiment_id": "-1"}, "RESOURCE_DOES_NOT_EXIST", 404),
        ({"experiment_id": "99999999999999999999999"}, "RESOURCE_DOES_NOT_EXIST", 404),
        ({"experiment_id": "0"}, "RESOURCE_DOES_NOT_EXIST", 404),
        ({"experiment_id": "1\x00"}, "INVALID_PARAMETER_VALUE", 400),
    ],
)
def test_experiment_get_bad_ids(api, params, code, status):
    _bad(api.get("experiments/get", params), code, status)


def test_duplicate_query_parameters_are_refused(api, exp_id):
    response = api.client.get(
        f"/api/2.0/mlflow/experiments/get?experiment_id={exp_id}&experiment_id=2"
    )
    _bad(response)


@pytest.mark.parametrize(
    "params,code",
    [
        ({}, "INVALID_PARAMETER_VALUE"),
        ({"run_id": "not-a-run"}, "RESOURCE_DOES_NOT_EXIST"),
        ({"run_id": "../../etc/passwd"}, "INVALID_PARAMETER_VALUE"),
        ({"run_id": "a" * 32, "run_uuid": "b" * 32}, "INVALID_PARAMETER_VALUE"),
        ({"run_id": "f" * 32}, "RESOURCE_DOES_NOT_EXIST"),
    ],
)
def test_run_get_bad_ids(api, params, code):
    _bad(api.get("runs/get", params), code, 404 if code == "RESOURCE_DOES_NOT_EXIST" else 400)


def test_run_id_as_number_or_list(api):
    for value in (12, [1], {"a": 1}, True):
        _bad(api.post("runs/log-parameter", {"run_id": value, "key": "a", "value": "b"}))


@pytest.mark.parametrize(
    "metric",
    [
        {"key": "acc", "value": "abc", "timestamp": 1},
        {"key": "acc", "value": True, "timestamp": 1},
        {"key": "acc", "value": None, "timestamp": 1},
        {"key": "acc", "value": [1], "timestamp": 1},
        {"key": "acc", "value": 1},
        {"key": "acc", "value": 1, "timestamp": "soon"},
        {"key": "acc", "value": 1, "timestamp": 1.5},
        {"key": "acc", "value": 1, "timestamp": 1, "step": 2**70},
        {"key": "acc", "value": 1, "timestamp": 1, "step": "x"},
        {"key": "", "value": 1, "timestamp": 1},
        {"key": "a$b", "value": 1, "timestamp": 1},
        {"key": "../up", "value": 1, "timestamp": 1},
        {"key": "/abs", "value": 1, "timestamp": 1},
        {"key": "a//b", "value": 1, "timestamp": 1},
        {"key": "k" * 251, "value": 1, "timestamp": 1},
        {"key": 5, "value": 1, "timestamp": 1},
        {"key": "acc", "value": 1, "timestamp": 1, "model_id": "m-nope"},
    ],
)
def test_log_metric_refuses_bad_points(api, run_id, metric):
    response = api.post("runs/log-metric", {"run_id": run_id, **metric})
    assert response.status_code in {400, 404}, response.content
    assert not Metric.objects.exists() and not LatestMetric.objects.exists()


def test_huge_values_are_accepted_as_numbers(api, run_id):
    response = api.post(
        "runs/log-metric", {"run_id": run_id, "key": "huge", "value": 10**400, "timestamp": 1}
    )
    assert response.status_code == 200
    assert Metric.objects.get().value == pytest.approx(1.7976931348623157e308)


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [{"key": f"m{i}", "value": 1, "timestamp": 1} for i in range(1001)]},
        {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
        {"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]},
        {
            "metrics": [{"key": f"m{i}", "value": 1, "timestamp": 1} for i in range(950)],
            "params": [{"key": f"p{i}", "value": "v"} for i in range(51)],
        },
        {"metrics": {"key": "m", "value": 1}},
        {"params": [["k", "v"]]},
        {"params": [{"key": "p", "value": "x" * 6001}]},
        {"tags": [{"key": "t", "value": "x" * 8001}]},
        {"params": [{"key": "p", "value": 1.0}]},
        {"params": [{"key": "p", "value": "a"}, {"key": "p", "value": "b"}]},
        {"tags": [{"key": "t", "value": "nul\x00"}]},
        {
            "metrics": [{"key": "ok", "value": 1, "timestamp": 1}],
            "params": [{"key": "bad key!", "value": "v"}],
        },
    ],
)
def test_log_batch_is_all_or_nothing(api, run_id, body):
    response = api.post("runs/log-batch", {"run_id": run_id, **body})
    message = _bad(response)
    assert message
    assert not Metric.objects.exists() and not Param.objects.exists()
    assert set(RunTag.objects.values_list("key", flat=True)) == {"mlflow.runName", "mlflow.user"}


def test_batch_limits_are_inclusive(api, run_id):
    body = {
        "run_id": run_id,
        "metrics": [{"key": f"m{i}", "value": 1, "timestamp": 1} for i in range(800)],
        "params": [{"key": f"p{i}", "value": "v"} for i in range(100)],
        "tags": [{"key": f"t{i}", "value": "v"} for i in range(100)],
    }
    assert api.post("runs/log-batch", body).status_code == 200
    assert Metric.objects.count() == 800 and Param.objects.count() == 100


def test_params_are_immutable(api, run_id):
    assert (
        api.post("runs/log-parameter", {"run_id": run_id, "key": "C", "value": "1"}).status_code
        == 200
    )
    assert (
        api.post("runs/log-parameter", {"run_id": run_id, "key": "C", "value": "1"}).status_code
        == 200
    )
    message = _bad(api.post("runs/log-parameter", {"run_id": run_id, "key": "C", "value": "2"}))
    assert "Changing param values is not allowed" in message and "'1'" in message
    batch = {"run_id": run_id, "params": [{"key": "D", "value": "x"}, {"key": "C", "value": "3"}]}
    _bad(api.post("runs/log-batch", batch))
    assert dict(Param.objects.values_list("key", "value")) == {"C": "1"}


def test_run_writes_need_an_active_run_and_experiment(api, exp_id, run_id):
    long_name = api.post("runs/update", {"run_id": run_id, "run_name": "n" * 251})
    _bad(long_name)
    _bad(api.post("runs/update", {"run_id": run_id, "status": "DONE"}))
    _bad(api.post("runs/update", {"run_id": run_id, "end_time": "tomorrow"}))
    api.post("experiments/delete", {"experiment_id": exp_id})
    _bad(api.post("runs/create", {"experiment_id": exp_id}))
    _bad(api.post("runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"}))
    _bad(api.post("logged-models", {"experiment_id": exp_id}))
    _bad(api.post("experiments/delete", {"experiment_id": exp_id}))
    _bad(api.post("experiments/update", {"experiment_id": exp_id, "new_name": "x"}))


@pytest.mark.parametrize(
    "filter_string",
    [
        "metrics.acc > 1 OR metrics.acc < 0",
        "(metrics.acc > 1)",
        "metrics.acc > 'high'",
        "metrics.acc LIKE '1%'",
        "params.C > 1",
        "attributes.nope = 'x'",
        "datasets.name = 'x'",
        "unknown.thing = 'x'",
        "tags.t = 'unterminated",
        "tags.t = ",
        "tags.t",
        "tags.t = 'a' AND",
        "tags.t = 'a' tags.u = 'b'",
        "attributes.status IS NULL",
        "tags.t IN 'a'",
        "tags.t NOT LIKE 'a'",
        "metrics.acc IS NULL",
        "x" * 5000,
        "tags.t = 'a\x00'",
    ],
)
def test_unsupported_filters_are_refused(api, exp_id, filter_string):
    response = api.post("runs/search", {"experiment_ids": [exp_id], "filter": filter_string})
    _bad(response)


@pytest.mark.parametrize(
    "body",
    [
        {"max_results": -1},
        {"max_results": 50001},
        {"max_results": "many"},
        {"page_token": "not-a-token"},
        {"page_token": "eyJrIjogIngifQ"},  # {"k": "x"}: well-formed, not an offset
        {"page_token": 5},
        {"order_by": "metrics.acc DESC; DROP TABLE"},
        {"order_by": ["metrics.acc SIDEWAYS"]},
        {"order_by": ["attributes.artifact_uri"]},
        {"order_by": [{"field": "x"}]},
        {"run_view_type": "SOME"},
        {"experiment_ids": "1,2"},
        {"experiment_ids": [{"id": 1}]},
    ],
)
def test_bad_search_parameters(api, exp_id, body):
    body = {"experiment_ids": [exp_id], **body}
    _bad(api.post("runs/search", body))


def test_bad_experiment_search_parameters(api):
    _bad(api.post("experiments/search", {"view_type": "EVERYTHING"}))
    _bad(api.post("experiments/search", {"filter": "metrics.acc > 1"}))
    _bad(api.get("experiments/search", {"max_results": "x"}))


@pytest.mark.parametrize(
    "status",
    ["READY", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_STATUS_UNSPECIFIED", None, 7, ""],
)
def test_finalize_needs_a_final_status(api, exp_id, status):
    model_id = api.post("logged-models", {"experiment_id": exp_id}).json()["model"]["info"][
        "model_id"
    ]
    _bad(api.patch(f"logged-models/{model_id}", {"model_id": model_id, "status": status}))


def test_logged_model_bad_input(api, exp_id):
    _bad(api.post("logged-models", {"experiment_id": exp_id, "name": "a/b"}))
    _bad(
        api.post("logged-models", {"experiment_id": exp_id, "source_run_id": "f" * 32}),
        "RESOURCE_DOES_NOT_EXIST",
        404,
    )
    _bad(api.post("logged-models", {"experiment_id": exp_id, "params": [{"key": "p"}] * 101}))
    model_id = api.post("logged-models", {"experiment_id": exp_id}).json()["model"]["info"][
        "model_id"
    ]
    other = "m-" + "0" * 32
    _bad(
        api.patch(f"logged-models/{model_id}", {"model_id": other, "status": "LOGGED_MODEL_READY"})
    )
    _bad(api.get("logged-models/m-nothing"), "RESOURCE_DOES_NOT_EXIST", 404)
    _bad(api.patch(f"logged-models/{model_id}/tags", {"tags": {"k": "v"}}))
    _bad(api.delete(f"logged-models/{model_id}/tags/absent"), "RESOURCE_DOES_NOT_EXIST", 404)
    _bad(
        api.post(
            f"logged-models/{model_id}/params",
            {"params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]},
        )
    )
    _bad(api.get(f"logged-models/{model_id}", {"allow_deleted": "maybe"}))


@pytest.mark.parametrize(
    "raw,content_type,code,status",
    [
        ("{bad json", "application/json", "MALFORMED_REQUEST", 400),
        ('{"name": "a", "name": "b"}', "application/json", "MALFORMED_REQUEST", 400),
        ('{"value": NaN}', "application/json", "MALFORMED_REQUEST", 400),
        ("[]", "application/json", "INVALID_PARAMETER_VALUE", 400),
        ("null", "application/json", "INVALID_PARAMETER_VALUE", 400),
        ('"name"', "application/json", "INVALID_PARAMETER_VALUE", 400),
        ("name=x", "application/x-www-form-urlencoded", "UNSUPPORTED_MEDIA_TYPE", 415),
        ("[" * 100000, "application/json", "MALFORMED_REQUEST", 400),
    ],
)
def test_malformed_bodies(api, raw, content_type, code, status):
    response = api.raw("POST", "experiments/create", raw, content_type=content_type)
    _bad(response, code, status)


def test_oversized_body_is_a_client_error(api):
    response = api.raw("POST", "experiments/create", '{"name": "' + "x" * 3_000_000 + '"}')
    assert "too large" in _bad(response)


GARBAGE = [None, -1, 2**64, 1.5, True, "", "\x00", "../../etc/passwd", [None], {"a": None}]
# The fields each POST route reads; list fields also get garbage inside their items.
ROUTE_FIELDS = {
    "experiments/create": ["name", "tags", "artifact_location"],
    "experiments/search": ["view_type", "filter", "max_results", "order_by", "page_token"],
    "experiments/update": ["experiment_id", "new_name"],
    "experiments/delete": ["experiment_id"],
    "experiments/restore": ["experiment_id"],
    "experiments/set-experiment-tag": ["experiment_id", "key", "value"],
    "experiments/delete-experiment-tag": ["experiment_id", "key"],
    "runs/create": ["experiment_id", "start_time", "tags", "run_name", "user_id"],
    "runs/update": ["run_id", "run_uuid", "status", "end_time", "run_name"],
    "runs/delete": ["run_id"],
    "runs/restore": ["run_id"],
    "runs/search": [
        "experiment_ids",
        "filter",
        "run_view_type",
        "max_results",
        "order_by",
        "page_token",
    ],
    "runs/log-metric": ["run_id", "key", "value", "timestamp", "step", "model_id"],
    "runs/log-parameter": ["run_id", "key", "value"],
    "runs/log-batch": ["run_id", "metrics", "params", "tags"],
    "runs/set-tag": ["run_id", "key", "value"],
    "runs/delete-tag": ["run_id", "key"],
    "runs/log-inputs": ["run_id", "datasets", "models"],
    "runs/outputs": ["run_id", "models"],
    "logged-models": [
        "experiment_id",
        "name",
        "model_type",
        "source_run_id",
        "params",
        "tags",
    ],
    "logged-models/search": [
        "experiment_ids",
        "filter",
        "datasets",
        "max_results",
        "order_by",
        "page_token",
    ],
}
LIST_FIELDS = {"tags", "params", "metrics", "datasets", "models", "order_by", "experiment_ids"}


def _junk_for(field: str) -> list:
    values = list(GARBAGE)
    if field in LIST_FIELDS:
        values += [[junk] for junk in GARBAGE]
        values += [
            [{"key": junk, "value": junk, "dataset": junk, "model_id": junk}] for junk in GARBAGE
        ]
    return values


@pytest.mark.parametrize("route", sorted(ROUTE_FIELDS))
def test_garbage_never_gives_a_500(api, exp_id, run_id, route):
    """Every field a POST route reads, set to each kind of garbage: a 2xx or a clear 4xx."""
    for field in ROUTE_FIELDS[route]:
        for junk in _junk_for(field):
            body = {"experiment_id": exp_id, "run_id": run_id, field: junk}
            response = api.post(route, body)
            assert response.status_code < 500, (route, field, junk, response.content[:300])
            if response.status_code >= 400:
                assert set(json.loads(response.content)) == {"error_code", "message"}


@pytest.mark.parametrize(
    "path",
    [
        "experiments/get",
        "experiments/get-by-name",
        "experiments/search",
        "runs/get",
        "metrics/get-history",
    ],
)
def test_garbage_queries_never_give_a_500(api, run_id, path):
    for field in [
        "experiment_id",
        "experiment_name",
        "run_id",
        "run_uuid",
        "metric_key",
        "max_results",
        "page_token",
        "filter",
        "order_by",
        "view_type",
    ]:
        for junk in ["", "x" * 2000, "\x00", "-1", "1e9", "%00", "'", "`"]:
            response = api.get(path, {"run_id": run_id, field: junk})
            assert response.status_code < 500, (path, field, junk, response.content[:300])


def test_nothing_was_half_written_by_refused_requests(api, exp_id, run_id):
    api.post("runs/log-batch", {"run_id": run_id, "params": [{"key": "a", "value": "1"}] * 101})
    api.post("runs/create", {"experiment_id": exp_id, "tags": [{"key": "../bad", "value": "x"}]})
    assert Run.objects.count() == 1 and not Param.objects.exists()
