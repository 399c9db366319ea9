"""The MLflow filter and order_by syntax Steward understands (tracking.search)."""

from __future__ import annotations

import pytest

from core.errors import InvalidParameter
from tracking.search import Clause, OrderTerm, parse_filter, parse_order_by


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", []),
        ("   ", []),
        (None, []),
        ("metrics.acc > 0.5", [Clause("metric", "acc", ">", 0.5)]),
        ("metric.val.loss <= -1e-3", [Clause("metric", "val.loss", "<=", -0.001)]),
        ("params.C = '1.0'", [Clause("param", "C", "=", "1.0")]),
        ('param.C != "x"', [Clause("param", "C", "!=", "x")]),
        ("params.C <> 'x'", [Clause("param", "C", "!=", "x")]),
        ("tags.`my tag` LIKE 'a%'", [Clause("tag", "my tag", "LIKE", "a%")]),
        ("tags.\"mlflow.runName\" ilike '%X'", [Clause("tag", "mlflow.runName", "ILIKE", "%X")]),
        ("tags.mlflow.user = 'it''s'", [Clause("tag", "mlflow.user", "=", "it's")]),
        ("tag.t IS NULL", [Clause("tag", "t", "IS NULL", None)]),
        ("tag.t is not null", [Clause("tag", "t", "IS NOT NULL", None)]),
        (
            "attributes.status IN ('FINISHED', 'FAILED')",
            [Clause("attribute", "status", "IN", ("FINISHED", "FAILED"))],
        ),
        ("run.run_name NOT IN ('a')", [Clause("attribute", "run_name", "NOT IN", ("a",))]),
        ("status = 'RUNNING'", [Clause("attribute", "status", "=", "RUNNING")]),
        (
            "metrics.a > 1 AND params.b = 'c' and tags.d = 'e'",
            [
                Clause("metric", "a", ">", 1.0),
                Clause("param", "b", "=", "c"),
                Clause("tag", "d", "=", "e"),
            ],
        ),
        (
            "tag.`mlflow.prompt.is_prompt` != 'true'",
            [Clause("tag", "mlflow.prompt.is_prompt", "!=", "true")],
        ),
    ],
)
def test_filters_parse(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a = 'b' OR c = 'd'",
        "metrics.",
        "foo.bar = 'x'",
        "metrics.a >> 1",
        "tags.t = 'x",
        "tags.t IS 'x'",
        "tags.t IN ()",
        "tags.t IN ('a' 'b')",
        "tags.t NOT 'a'",
        "1 = 1",
        "metrics.a > 1 AND",
        "metrics.a > 1 metrics.b > 2",
        5,
        ["tags.t = 'x'"],
    ],
)
def test_bad_filters_are_refused(text):
    with pytest.raises(InvalidParameter):
        parse_filter(text)


def test_order_by_parses():
    assert parse_order_by(["metrics.acc DESC", "name", "attributes.start_time asc"]) == [
        OrderTerm("metric", "acc", False),
        OrderTerm("attribute", "name", True),
        OrderTerm("attribute", "start_time", True),
    ]
    assert parse_order_by(None) == []
    for bad in [["metrics.acc DESC extra"], [5], ["x" * 600], ["a"] * 11, "metrics.acc; x"]:
        with pytest.raises(InvalidParameter):
            parse_order_by(bad)


@pytest.mark.django_db
def test_like_is_case_sensitive_and_ilike_is_not_on_every_database(door, alice):
    api = door(alice)
    exp_id = api.post("experiments/create", {"name": "exp"}).json()["experiment_id"]
    values = ["Alpha", "alpha", "a_b", "a%b", "a*b", "a[b]", "aXb"]
    for value in values:
        run_id = api.post("runs/create", {"experiment_id": exp_id}).json()["run"]["info"]["run_id"]
        api.post("runs/set-tag", {"run_id": run_id, "key": "v", "value": value})

    def match(op, pattern):
        body = {"experiment_ids": [exp_id], "filter": f"tags.v {op} '{pattern}'"}
        runs = api.post("runs/search", body).json().get("runs", [])
        return sorted(next(t["value"] for t in r["data"]["tags"] if t["key"] == "v") for r in runs)

    assert match("LIKE", "a%") == sorted(["alpha", "a_b", "a%b", "a*b", "a[b]", "aXb"])
    assert match("LIKE", "A%") == ["Alpha"]
    assert match("ILIKE", "A%") == sorted(values)
    assert match("LIKE", "a_b") == sorted(["a_b", "a%b", "a*b", "aXb"])
    assert match("LIKE", "a\\_b") == ["a_b"]
    assert match("LIKE", "a\\%b") == ["a%b"]
    assert match("LIKE", "a*b") == ["a*b"]
    assert match("LIKE", "a[b]") == ["a[b]"]
    assert match("LIKE", "%ph%") == ["Alpha", "alpha"]
