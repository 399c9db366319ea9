"""The OpenAPI document (/api/schema/) covers every door and says what the server answers.

tests/e2e/test_schemathesis.py checks it against a live server; these check its shape fast.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def _routes(patterns=None, prefix=""):
    """Every API route of the URL configuration, as the schema spells paths."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        text = str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + text)
        elif isinstance(entry, URLPattern) and not text.startswith("^"):
            route = "/" + prefix + text
            yield re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_every_api_route_is_documented(schema):
    routes = {r for r in _routes() if r.startswith("/api/") and not r.startswith("/api/docs")}
    routes.discard("/api/schema/")
    missing = sorted(routes - set(schema["paths"]))
    assert missing == []


def test_the_mlflow_doors_are_documented(schema):
    paths = set(schema["paths"])
    for path in [
        "/api/2.0/mlflow/registered-models/create",
        "/api/2.0/mlflow/model-versions/search",
        "/api/2.0/mlflow/runs/log-batch",
        "/api/3.0/mlflow/runs/log-batch",
        "/api/2.0/mlflow/webhooks/{webhook_id}",
        "/api/2.0/mlflow-artifacts/artifacts/{artifact_path}",
    ]:
        assert path in paths
    mlflow = [p for p, _, _ in _operations(schema) if "/mlflow" in p]
    assert len(mlflow) >= 95
    search = schema["paths"]["/api/2.0/mlflow/registered-models/search"]["post"]
    body = search["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]
    assert {"filter", "max_results", "order_by", "page_token"} <= set(fields)


def test_every_authenticated_operation_documents_its_errors(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        if path in ("/healthz", "/readyz", "/api/schema/"):
            continue
        assert "401" in responses, (method, path)
        content = responses["401"]["content"]
        body = next(iter(content.values()))["schema"]["$ref"]  # SCIM: application/scim+json
        expected = "ScimError" if path.startswith("/api/scim/") else "Error"
        assert body.endswith(f"/{expected}"), (method, path, body)
        if method != "get" or operation.get("parameters"):
            assert "400" in responses, (method, path)
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error_code", "message"}


def test_success_statuses_are_the_ones_the_server_answers(schema):
    # drf-spectacular's default documents DELETE as 204 with no body; these answer 200 with one
    # (schemathesis checks every route against the live server).
    by_id = {op["operationId"]: op for _, _, op in _operations(schema)}
    for operation_id in [
        "tokens_revoke",
        "uc_delete_catalog",
        "uc_delete_model",
        "mlflow_registry_registered_model_delete_delete",
        "mlflow_tracking_logged_model_detail_delete",
        "mlflow_artifacts_delete",
    ]:
        success = [code for code in by_id[operation_id]["responses"] if code.startswith("2")]
        assert success == ["200"], operation_id
    issued = [code for code in by_id["tokens_issue"]["responses"] if code.startswith("2")]
    assert issued == ["201"]


def _answer(schema, path, method, status="200"):
    content = schema["paths"][path][method]["responses"][status]["content"]
    ref = content["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_lists_are_documented_as_the_objects_they_answer(schema):
    audit = _answer(schema, "/api/v1/audit-events", "get")
    assert audit["type"] == "object" and {"events", "next_page_token"} <= set(audit["properties"])
    tokens = _answer(schema, "/api/v1/tokens", "get")
    assert tokens["type"] == "object" and "tokens" in tokens["properties"]
    issued = _answer(schema, "/api/v1/tokens", "post", "201")
    assert "token" in issued["properties"]


def test_native_bodies_refuse_unknown_fields_in_the_schema(schema):
    body = schema["paths"]["/api/v1/tokens"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["additionalProperties"] is False


def test_page_sizes_are_documented_with_their_bounds(schema):
    def max_results(path):
        params = schema["paths"][path]["get"]["parameters"]
        return next(p["schema"] for p in params if p["name"] == "max_results")

    assert max_results("/api/v1/audit-events")["minimum"] == 1
    assert max_results("/api/2.1/unity-catalog/catalogs")["minimum"] == 0
    assert max_results("/api/2.1/unity-catalog/catalogs")["maximum"] == 2**63 - 1
