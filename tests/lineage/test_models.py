"""The lineage tables and the names of nodes: identities, public ids, MLflow dataset naming."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, transaction

from lineage import naming
from lineage.models import LineageEdge, LineageNode


@pytest.mark.parametrize(
    ("kind", "namespace", "name", "key"),
    [
        ("dataset", "s3://lake", "raw/wine.csv", "dataset:s3://lake:raw/wine.csv"),
        ("dataset", "postgres://db:5432", "public.t", "dataset:postgres://db:5432:public.t"),
        ("dataset", "a:b", "c", "dataset:a:b:c"),
        ("dataset", "a", "b:c", "dataset:a:b%3Ac"),
        ("dataset", "kafka://k:9092", "topic%1:x", "dataset:kafka://k:9092:topic%251%3Ax"),
        ("job", "airflow", "dag.task", "job:airflow:dag.task"),
        (
            "run",
            "",
            "3f5e6a1c-8d2b-4c1e-9f0a-2b7d4e6c8a10",
            "run:3f5e6a1c-8d2b-4c1e-9f0a-2b7d4e6c8a10",
        ),
        ("mlflow_run", "", "a" * 32, "mlflow_run:" + "a" * 32),
    ],
)
def test_node_ids_round_trip_whatever_the_colons(kind, namespace, name, key):
    assert naming.node_key(kind, namespace, name) == key
    assert naming.parse_key(key) == (kind, namespace, name)


def test_node_ids_never_collide():
    a = naming.node_key("dataset", "a:b", "c")
    b = naming.node_key("dataset", "a", "b:c")
    assert a != b
    assert naming.identity("dataset", "a:b", "c") != naming.identity("dataset", "a", "b:c")
    assert naming.identity("dataset", "ns", "x") != naming.identity("job", "ns", "x")


@pytest.mark.parametrize("bad", ["", "dataset", "dataset:", "dataset:onlyone", "dataset::x", "x"])
def test_parse_key_refuses_what_cannot_be_an_id(bad):
    assert naming.parse_key(bad) is None


def _mlflow(source: dict | None, name="wine", digest="be9dd889") -> dict:
    return {
        "name": name,
        "digest": digest,
        "source_type": "s3",
        "source": json.dumps(source) if source is not None else "",
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"uri": "s3://bucket/wine/train.csv"}, ("s3://bucket", "wine/train.csv")),
        ({"uri": "gs://b/k.parquet"}, ("gs://b", "k.parquet")),
        ({"uri": "/data/wine.csv"}, ("file", "/data/wine.csv")),
        ({"uri": "file:///data/wine.csv"}, ("file", "/data/wine.csv")),
        ({"uri": "C:\\data\\wine.csv"}, ("file", "C:\\data\\wine.csv")),
        ({"url": "https://example.com/x.csv?sig=secret#f"}, ("https://example.com", "/x.csv")),
        ({"uri": "s3://user:pw@bucket/k.csv?X-Amz-Signature=1"}, ("s3://bucket", "k.csv")),
        ({"uri": "hdfs://nn:8020/warehouse/t"}, ("hdfs://nn:8020", "/warehouse/t")),
        ({"tags": {"mlflow.source.name": "train.py"}}, ("mlflow", "wine@be9dd889")),
        (None, ("mlflow", "wine@be9dd889")),
        ({"uri": "s3://"}, ("mlflow", "wine@be9dd889")),
        ({"uri": "s3://b/" + "k" * 2000}, ("mlflow", "wine@be9dd889")),
    ],
)
def test_mlflow_datasets_are_named_as_openlineage_names_them(source, expected):
    assert naming.mlflow_dataset_name(_mlflow(source)) == expected


def test_mlflow_dataset_facets_carry_schema_source_and_digest():
    dataset = _mlflow({"uri": "s3://u:p@bucket/k.csv?sig=1"})
    dataset["schema"] = json.dumps({"mlflow_colspec": [{"name": "a", "type": "long"}]})
    dataset["profile"] = json.dumps({"num_rows": 2})
    facets = naming.mlflow_dataset_facets(dataset, producer="urn:steward:mlflow")
    assert facets["schema"]["fields"] == [{"name": "a", "type": "long"}]
    assert facets["dataSource"]["uri"] == "s3://bucket/k.csv"  # no credentials, no signature
    assert facets["version"]["datasetVersion"] == "be9dd889"
    assert facets["mlflow"]["profile"] == {"num_rows": 2}
    assert all("_producer" in f and "_schemaURL" in f for f in facets.values())


@pytest.mark.django_db
def test_identity_is_unique_and_edges_are_unique_per_kind():
    def node(name):
        return LineageNode.objects.create(
            kind="dataset",
            identity=naming.identity("dataset", "ns", name),
            namespace="ns",
            name=name,
        )

    a, b = node("a"), node("b")
    assert a.key == "dataset:ns:a"
    with pytest.raises(IntegrityError), transaction.atomic():
        node("a")
    LineageEdge.objects.create(src=a, dst=b, kind="input")
    LineageEdge.objects.create(src=a, dst=b, kind="output")
    with pytest.raises(IntegrityError), transaction.atomic():
        LineageEdge.objects.create(src=a, dst=b, kind="input")
    a.delete()
    assert not LineageEdge.objects.exists()  # edges go with their nodes


@pytest.mark.django_db
def test_a_dataset_links_to_one_securable_at_most(tree):
    from catalog.models import Catalog, Schema

    tree("main.raw")
    with pytest.raises(IntegrityError), transaction.atomic():
        LineageNode.objects.create(
            kind="dataset",
            identity=naming.identity("dataset", "ns", "x"),
            namespace="ns",
            name="x",
            catalog=Catalog.objects.get(name="main"),
            schema=Schema.objects.get(full_name="main.raw"),
        )
