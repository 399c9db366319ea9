"""Lineage for what was recorded before the lineage app: every model version gets its node and
the edge from its source run, and every MLflow run's logged dataset inputs become dataset → run
edges (at their digests). Idempotent; the reverse is a no-op (0001's reverse drops the tables)."""

from django.db import migrations

from lineage import naming

BATCH = 2000


def _upsert_nodes(Node, specs: dict[str, dict]) -> dict[str, int]:
    idents = sorted(specs)
    for start in range(0, len(idents), BATCH):
        chunk = idents[start : start + BATCH]
        Node.objects.bulk_create(
            [Node(identity=i, **specs[i]) for i in chunk], ignore_conflicts=True
        )
    found: dict[str, int] = {}
    for start in range(0, len(idents), BATCH):
        chunk = idents[start : start + BATCH]
        found.update(Node.objects.filter(identity__in=chunk).values_list("identity", "id"))
    return found


def backfill(apps, schema_editor):
    Node = apps.get_model("lineage", "LineageNode")
    Edge = apps.get_model("lineage", "LineageEdge")
    ModelVersion = apps.get_model("registry", "ModelVersion")
    Run = apps.get_model("tracking", "Run")
    run_ids = set(Run.objects.values_list("run_id", flat=True))
    specs: dict[str, dict] = {}
    wanted: list[tuple[str, str, str, str]] = []

    def node(kind, namespace, name, **links):
        ident = naming.identity(kind, namespace, name)
        specs.setdefault(ident, {"kind": kind, "namespace": namespace, "name": name, **links})
        return ident

    for pk, run_id in ModelVersion.objects.values_list("pk", "run_id").iterator():
        version = node("model_version", "", str(pk), model_version_id=pk)
        if run_id and run_id in run_ids:
            run = node("mlflow_run", "", run_id, mlflow_run_id=run_id)
            wanted.append((run, version, "output", ""))
    for run_id, inputs in Run.objects.exclude(inputs={}).values_list("run_id", "inputs").iterator():
        for item in (inputs or {}).get("dataset_inputs") or []:
            dataset = item.get("dataset") if isinstance(item, dict) else None
            if not isinstance(dataset, dict):
                continue
            namespace, name = naming.mlflow_dataset_name(dataset)
            source = node("dataset", namespace, name)
            run = node("mlflow_run", "", run_id, mlflow_run_id=run_id)
            wanted.append((source, run, "input", str(dataset.get("digest", ""))[:255]))
    if not specs:
        return
    ids = _upsert_nodes(Node, specs)
    rows = [
        Edge(src_id=ids[src], dst_id=ids[dst], kind=kind, version=version)
        for src, dst, kind, version in wanted
    ]
    for start in range(0, len(rows), BATCH):
        Edge.objects.bulk_create(rows[start : start + BATCH], ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("lineage", "0001_initial")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
