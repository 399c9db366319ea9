"""The lineage graph: one node table and one edge table.

Nodes are datasets, jobs, OpenLineage runs, MLflow runs and model versions; edges are
dataset → run (input), run → dataset or model version (output), job → run (job) and parent run
→ child run (parent). Walks are recursive CTEs over `LineageEdge` alone, which holds nothing but
two node ids, a kind and a version: narrow rows and two covering indexes, (src, dst, kind) for
downstream and (dst, src) for upstream, keep every hop an index-only lookup on PostgreSQL and
SQLite alike. What a node is (names, facets, its link to a securable, run or model version)
lives in `LineageNode` and is read only for the nodes a walk returns.
"""

from __future__ import annotations

from django.db import models

from catalog.models import Catalog, Schema
from lineage.naming import node_key


class LineageNode(models.Model):
    """A dataset, job, run or model version in the lineage graph.

    `identity` is the SHA-256 of (kind, namespace, name), unique, so that an upsert by key is one
    indexed statement whatever the length of the names. A model-version or MLflow-run node
    points at its row and goes with it (deleting `c.s.m` deletes its versions' nodes and their
    edges: nothing carries over to a model created later under the same name). A dataset linked
    to a catalog or schema goes with that securable for the same reason.
    """

    class Kind(models.TextChoices):
        DATASET = "dataset"
        JOB = "job"
        RUN = "run"  # an OpenLineage run (name: its runId)
        MLFLOW_RUN = "mlflow_run"  # name: the MLflow run id
        MODEL_VERSION = "model_version"  # name: the version's UUID (stable across renames)

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    identity = models.CharField(max_length=64, unique=True)
    namespace = models.TextField(blank=True, default="")
    name = models.TextField()
    # The latest facets (OpenLineage's, keyed by facet name) and the event time they are from:
    # an older event replayed later does not overwrite newer facets.
    facets = models.JSONField(default=dict, blank=True)
    facets_time = models.DateTimeField(null=True, blank=True)
    # OpenLineage runs: the state of the latest transition (START, RUNNING, COMPLETE, FAIL,
    # ABORT) and when the run started and ended.
    state = models.CharField(max_length=16, blank=True, default="")
    state_time = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Named by an OpenLineage event (published by an ingesting client): an unlinked dataset with
    # this flag is visible to every authenticated principal (lineage/README.md).
    openlineage = models.BooleanField(default=False)
    catalog = models.ForeignKey(
        Catalog, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    schema = models.ForeignKey(
        Schema, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    mlflow_run = models.ForeignKey(
        "tracking.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~(models.Q(catalog__isnull=False) & models.Q(schema__isnull=False)),
                name="lineage_node_one_securable",
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        """The public node id (`dataset:<namespace>:<name>`, `run:<uuid>`, ...)."""
        return node_key(self.kind, self.namespace, self.name)


class LineageEdge(models.Model):
    """A directed edge in the direction data flows: src feeds dst."""

    class Kind(models.TextChoices):
        INPUT = "input"  # dataset -> run or job
        OUTPUT = "output"  # run or job -> dataset or model version
        JOB = "job"  # job -> its run
        PARENT = "parent"  # parent run -> child run

    id = models.BigAutoField(primary_key=True)
    src = models.ForeignKey(
        LineageNode, on_delete=models.CASCADE, related_name="out_edges", db_index=False
    )
    dst = models.ForeignKey(
        LineageNode, on_delete=models.CASCADE, related_name="in_edges", db_index=False
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # The dataset version (OpenLineage datasetVersion, MLflow digest) the run read or wrote.
    version = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [
            # Also the downstream index: (src) -> dst without touching the table.
            models.UniqueConstraint(fields=["src", "dst", "kind"], name="uniq_lineage_edge"),
        ]
        indexes = [models.Index(fields=["dst", "src"], name="lineage_edge_upstream")]

    def __str__(self) -> str:
        return f"{self.src_id}-{self.kind}->{self.dst_id}"
