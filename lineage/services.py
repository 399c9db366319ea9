"""Writes to the lineage graph: OpenLineage ingestion, and the hooks through which MLflow run
inputs and model-version sources become edges.

Who may write (lineage/README.md, "Who may do what"):
- any authenticated principal with a token that may write may ingest OpenLineage events (read
  tokens may not): lineage is published by pipelines (Airflow, Spark, dbt) under service
  principals, and what they name is theirs to publish;
- linking a dataset to a catalog or schema (the `stewardSecurable` dataset facet) needs MODIFY on
  that securable, and on the one it was linked to before, if any;
- the facets of a dataset linked to a securable change only for principals holding MODIFY on it;
  anyone else's event still records its edges to the dataset (a pipeline that reads a governed
  table is true lineage), and the audit event lists the facets left unchanged.

Every write is one transaction: an event that fails any check leaves nothing behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db import connection
from django.db.models import Field
from django.utils import timezone

from audit.governance import governed
from audit.services import audit_event_write, audit_events_write
from catalog import authz
from catalog.models import Catalog, Schema
from catalog.privileges import Privilege
from catalog.selectors import catalog_lookup, schema_lookup
from core.actor import Actor
from core.errors import Denial, InvalidParameter, StewardError
from core.rows import concrete_field
from lineage import naming
from lineage.models import LineageEdge, LineageNode
from lineage.openlineage import (
    SECURABLE_FACET,
    TERMINAL,
    DatasetRef,
    Event,
    JobRef,
    parse_event,
    parse_events,
)

if TYPE_CHECKING:
    from registry.models import ModelVersion
    from tracking.models import Run

MAX_BATCH = 1000  # events in one POST
EDGE_CHUNK = 500  # edges per INSERT (4 parameters each; SQLite allows 32,766)
NODE_CHUNK = 500  # nodes per INSERT (11 parameters each)
MLFLOW_PRODUCER = "urn:steward:mlflow"
_RANK = {"START": 1, "RUNNING": 2, "COMPLETE": 3, "FAIL": 3, "ABORT": 3}

Kind = LineageNode.Kind
EdgeKind = LineageEdge.Kind


@dataclass
class _NodeSpec:
    """What one write wants of a node; merged into the stored row by `_Graph.flush`."""

    kind: str
    namespace: str
    name: str
    facets: dict[str, Any] | None = None
    facets_time: datetime | None = None
    openlineage: bool = False
    securable: tuple[str, str] | None = None
    mlflow_run_id: str | None = None
    model_version_id: Any = None
    transitions: list[tuple[str, datetime]] = field(default_factory=list)
    where: str = ""

    @property
    def key(self) -> str:
        return naming.node_key(self.kind, self.namespace, self.name)


class _Graph:
    """Nodes and edges collected from one request and written in a handful of statements:
    insert missing nodes, lock and read them all, update the changed ones, insert edges."""

    def __init__(self, actor: Actor | None):
        self.actor = actor
        self.specs: dict[str, _NodeSpec] = {}
        self.edges: dict[tuple[str, str, str], str] = {}
        self.ignored: list[str] = []

    def node(self, kind: str, namespace: str, name: str, **wants: Any) -> str:
        ident = naming.identity(kind, namespace, name)
        spec = self.specs.get(ident)
        if spec is None:
            spec = self.specs[ident] = _NodeSpec(kind, namespace, name)
        facets = wants.pop("facets", None)
        facets_time = wants.pop("facets_time", None)
        if facets and (spec.facets_time is None or spec.facets_time <= facets_time):
            spec.facets = {**(spec.facets or {}), **facets}
            spec.facets_time = facets_time
        if wants.pop("openlineage", False):
            spec.openlineage = True
        transition = wants.pop("transition", None)
        if transition is not None:
            spec.transitions.append(transition)
        for attr, value in wants.items():
            if value is not None:
                setattr(spec, attr, value)
        return ident

    def dataset(self, ref: DatasetRef, when: datetime) -> str:
        return self.node(
            Kind.DATASET,
            ref.namespace,
            ref.name,
            facets=ref.facets,
            facets_time=when,
            openlineage=True,
            securable=ref.securable,
            where=ref.path,
        )

    def job(self, ref: JobRef, when: datetime) -> str:
        return self.node(
            Kind.JOB, ref.namespace, ref.name, facets=ref.facets, facets_time=when, openlineage=True
        )

    def edge(self, src: str, dst: str, kind: str, version: str = "") -> None:
        key = (src, dst, kind)
        if version or key not in self.edges:
            self.edges[key] = version

    # --- writing ---------------------------------------------------------------------------

    def flush(self) -> dict[str, LineageNode]:
        """Write everything collected: insert missing nodes, lock and read all of them (in id
        order), update the changed ones, upsert the edges. Five statements whatever the size."""
        idents = sorted(self.specs)  # one global order: concurrent writers never deadlock
        _insert_missing([self._new_row(ident) for ident in idents])
        rows = {
            row.identity: row
            for row in LineageNode.objects.select_for_update()
            .filter(identity__in=idents)
            .order_by("id")
        }
        self._load_securables(rows.values())
        changed = [rows[i] for i in idents if self._apply(self.specs[i], rows[i])]
        if changed:
            now = timezone.now()
            for row in changed:
                row.updated_at = now
            _update_rows(sorted(changed, key=lambda row: row.pk))
        _upsert_edges(
            (rows[src].pk, rows[dst].pk, kind, version)
            for (src, dst, kind), version in sorted(self.edges.items())
        )
        return rows

    def _load_securables(self, rows: Iterable[LineageNode]) -> None:
        """The catalogs and schemas linked rows point at, in two queries at most (only linked
        datasets need them: for the MODIFY check on their facets)."""
        linked = [r for r in rows if r.catalog_id or r.schema_id]
        if not linked:
            return
        catalogs = Catalog.objects.in_bulk({r.catalog_id for r in linked if r.catalog_id})
        schemas = Schema.objects.select_related("catalog").in_bulk(
            {r.schema_id for r in linked if r.schema_id}
        )
        for row in linked:
            if row.catalog_id:
                row.catalog = catalogs[row.catalog_id]
            else:
                row.schema = schemas[row.schema_id]

    def _new_row(self, ident: str) -> LineageNode:
        spec = self.specs[ident]
        return LineageNode(
            kind=spec.kind,
            identity=ident,
            namespace=spec.namespace,
            name=spec.name,
            mlflow_run_id=spec.mlflow_run_id,
            model_version_id=spec.model_version_id,
        )

    def _apply(self, spec: _NodeSpec, row: LineageNode) -> set[str]:
        """Merge one spec into its stored row; returns the names of the fields it changed."""
        dirty: set[str] = set()
        if spec.securable is not None:
            dirty |= self._link(spec, row)
        if spec.openlineage and not row.openlineage:
            row.openlineage = True
            dirty.add("openlineage")
        if spec.facets is not None and spec.facets_time is not None:
            if row.catalog_id or row.schema_id:
                if not self._may_modify(row.catalog or row.schema):
                    self.ignored.append(spec.key)
                    spec.facets = None
            if spec.facets is not None and (
                row.facets_time is None or row.facets_time <= spec.facets_time
            ):
                merged = {**row.facets, **spec.facets}
                merged.pop(SECURABLE_FACET, None)
                for key, facet in spec.facets.items():
                    if isinstance(facet, dict) and facet.get("_deleted") is True:
                        merged.pop(key, None)
                if merged != row.facets or row.facets_time != spec.facets_time:
                    row.facets, row.facets_time = merged, spec.facets_time
                    dirty |= {"facets", "facets_time"}
        for event_type, when in spec.transitions:
            dirty |= _transition(row, event_type, when)
        return dirty

    def _may_modify(self, securable: Catalog | Schema | None) -> bool:
        return self.actor is not None and authz.check(self.actor, Privilege.MODIFY, securable)

    def _link(self, spec: _NodeSpec, row: LineageNode) -> set[str]:
        """Link a dataset to the catalog or schema its stewardSecurable facet names: MODIFY
        there, and on the securable it was linked to before."""
        assert spec.securable is not None and self.actor is not None
        current = row.catalog or row.schema
        target = _link_target(self.actor, spec.securable, current, spec.where)
        if target is None:
            return set()
        # catalog_lookup answers a "catalog" link, schema_lookup a "schema" one.
        row.catalog = target if isinstance(target, Catalog) else None
        row.schema = target if isinstance(target, Schema) else None
        return {"catalog", "schema"}


def _link_target(
    actor: Actor, securable: tuple[str, str], current: Catalog | Schema | None, where: str
) -> Catalog | Schema | None:
    """The catalog or schema a stewardSecurable facet names, if the actor may link the dataset
    to it: MODIFY there and on `current` (what it is linked to now). None when it is already
    linked there. Errors name the field at fault and keep their code and audit details."""
    kind, full_name = securable
    try:
        target: Catalog | Schema = (
            catalog_lookup(full_name) if kind == "catalog" else schema_lookup(full_name)
        )
        if current is not None and current.pk == target.pk:
            return None
        authz.require(actor, Privilege.MODIFY, target)
        if current is not None:
            authz.require(actor, Privilege.MODIFY, current)
    except StewardError as exc:
        exc.message = f"{where}.facets.{SECURABLE_FACET}: {exc.message}"
        exc.args = (exc.message,)
        raise
    return target


_UPDATED = [
    concrete_field(LineageNode, name)
    for name in (
        "facets",
        "facets_time",
        "state",
        "state_time",
        "started_at",
        "ended_at",
        "openlineage",
        "catalog",
        "schema",
        "updated_at",
    )
]
_INSERTED = [
    concrete_field(LineageNode, name)
    for name in (
        "kind",
        "identity",
        "namespace",
        "name",
        "facets",
        "state",
        "openlineage",
        "mlflow_run",
        "model_version",
        "created_at",
        "updated_at",
    )
]


def _quoted(f: Field[Any, Any]) -> str:
    """The quoted column of a concrete field (`concrete_field` has given every one above)."""
    assert f.column is not None
    return connection.ops.quote_name(f.column)


_NODE_TABLE = connection.ops.quote_name(LineageNode._meta.db_table)
_EDGE_TABLE = connection.ops.quote_name(LineageEdge._meta.db_table)
# An existing edge takes the version a newer write names, never a blank one.
_EDGE_CONFLICT = (
    "ON CONFLICT (src_id, dst_id, kind) DO UPDATE SET version = excluded.version "
    f"WHERE excluded.version <> '' AND {_EDGE_TABLE}.version <> excluded.version"
)


def _insert_missing(rows: list[LineageNode]) -> None:
    """INSERT ... ON CONFLICT (identity) DO NOTHING, in plain SQL: the ORM's bulk_create costs
    more Python than the statement costs PostgreSQL (bench/README.md, lineage profile)."""
    now = timezone.now()
    table = connection.ops.quote_name(LineageNode._meta.db_table)
    columns = ", ".join(_quoted(f) for f in _INSERTED)
    for row in rows:
        row.created_at = row.updated_at = now
    per_row = "(" + ", ".join(["%s"] * len(_INSERTED)) + ")"
    for start in range(0, len(rows), NODE_CHUNK):
        chunk = rows[start : start + NODE_CHUNK]
        params = [
            f.get_db_prep_save(getattr(row, f.attname), connection)
            for row in chunk
            for f in _INSERTED
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([per_row] * len(chunk))} "
                "ON CONFLICT (identity) DO NOTHING",
                params,
            )


def _update_rows(rows: list[LineageNode]) -> None:
    """One parameterised UPDATE per row, sent with executemany (psycopg pipelines it)."""
    table = connection.ops.quote_name(LineageNode._meta.db_table)
    assignments = ", ".join(f"{_quoted(f)} = %s" for f in _UPDATED)
    params = [
        [f.get_db_prep_save(getattr(row, f.attname), connection) for f in _UPDATED] + [row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s", params)


def _upsert_edges(edges: Iterable[tuple[int, int, str, str]]) -> None:
    """Insert edges, or give an existing one the version a newer event names (never blank it).

    One statement per chunk, in one global order, so that two requests adding the same edges
    (a run's START without versions, its COMPLETE with them) cannot deadlock. Plain SQL: the
    ORM's upsert cannot say "keep the old version when the new one is empty".
    """
    rows = list(edges)
    for start in range(0, len(rows), EDGE_CHUNK):
        chunk = rows[start : start + EDGE_CHUNK]
        values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
        sql = f"INSERT INTO {_EDGE_TABLE} (src_id, dst_id, kind, version) VALUES {values} "
        sql += _EDGE_CONFLICT
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for row in chunk for value in row])


def _transition(row: LineageNode, event_type: str, when: datetime) -> set[str]:
    """Apply one run-state transition, whatever order events arrive in: a later stage wins over
    an earlier one (START < RUNNING < COMPLETE/FAIL/ABORT), and within a stage the later event."""
    dirty: set[str] = set()
    if event_type == "START" and (row.started_at is None or when < row.started_at):
        row.started_at = when
        dirty.add("started_at")
    rank = _RANK.get(event_type, 0)
    if rank == 0:
        return dirty
    current = _RANK.get(row.state, 0)
    if rank > current or (rank == current and (row.state_time is None or when >= row.state_time)):
        if row.state != event_type or row.state_time != when:
            row.state, row.state_time = event_type, when
            dirty |= {"state", "state_time"}
        if event_type in TERMINAL and row.ended_at != when:
            row.ended_at = when
            dirty.add("ended_at")
    return dirty


def _add_event(graph: _Graph, event: Event) -> str:
    """Collect one event's nodes and edges; returns the id of the node it is about."""
    when = event.event_time
    if event.kind == "dataset":
        assert event.dataset is not None
        graph.dataset(event.dataset, when)
        return naming.node_key(Kind.DATASET, event.dataset.namespace, event.dataset.name)
    assert event.job is not None
    job = graph.job(event.job, when)
    if event.kind == "job":
        center = job
        primary = naming.node_key(Kind.JOB, event.job.namespace, event.job.name)
    else:
        center = graph.node(
            Kind.RUN,
            "",
            event.run_id,
            facets=event.run_facets,
            facets_time=when,
            openlineage=True,
            transition=(event.event_type, when) if event.event_type else None,
        )
        graph.edge(job, center, EdgeKind.JOB)
        if event.parent is not None:
            parent = graph.node(Kind.RUN, "", event.parent.run_id, openlineage=True)
            graph.edge(graph.job(event.parent.job, when), parent, EdgeKind.JOB)
            graph.edge(parent, center, EdgeKind.PARENT)
        primary = naming.node_key(Kind.RUN, "", event.run_id)
    for ref in event.inputs:
        graph.edge(graph.dataset(ref, when), center, EdgeKind.INPUT, ref.version)
    for ref in event.outputs:
        graph.edge(center, graph.dataset(ref, when), EdgeKind.OUTPUT, ref.version)
    return primary


def _store(actor: Actor, events: list[Event]) -> tuple[list[str], dict[str, Any]]:
    """Write the events' nodes and edges (one `_Graph.flush`); returns, per event, the id of the
    node it is about, and the keyword arguments of its `lineage.ingest` audit event."""
    graph = _Graph(actor)
    primaries = [_add_event(graph, event) for event in events]
    graph.flush()
    first = events[0]
    details: dict[str, Any] = {
        "events": len(events),
        "event_types": dict(Counter(e.event_type or e.kind.upper() for e in events)),
        "nodes": len(graph.specs),
        "edges": len(graph.edges),
        "producers": sorted({e.producer for e in events})[:10],
    }
    if len(events) > 1:
        details["subjects"] = primaries[:50]
    if graph.ignored:
        details["facets_ignored"] = sorted(set(graph.ignored))[:50]
    audit = {
        "actor": actor,
        "action": "lineage.ingest",
        "securable_type": f"lineage_{first.kind}" if len(events) == 1 else "lineage_batch",
        "securable": primaries[0][:1024],
        "details": details,
    }
    return primaries, audit


@governed("lineage.ingest")
def lineage_events_ingest(*, actor: Actor, body: Any) -> list[str]:
    """Store one OpenLineage event (a JSON object) or a batch (a JSON array of up to
    MAX_BATCH): validate everything first, then upsert nodes, facets, run states and edges in
    one transaction, and audit. Sending the same event again changes nothing (an older event
    replayed after a newer one does not roll facets or run state back). Returns, per event, the
    id of the node it is about. A bad event refuses the whole array (see
    `lineage_event_batch_ingest` for per-event outcomes)."""
    events = parse_events(body, limit=MAX_BATCH)
    authz.require_writer(actor, Denial("lineage", "", "INGEST"), what="ingesting lineage")
    primaries, audit = _store(actor, events)
    audit_event_write(**audit)
    return primaries


def _links(event: Event) -> list[DatasetRef]:
    refs = [event.dataset] if event.dataset is not None else [*event.inputs, *event.outputs]
    return [ref for ref in refs if ref is not None and ref.securable is not None]


def _check_links(actor: Actor, event: Event) -> None:
    """The stewardSecurable checks of `_Graph._link`, against the stored rows, before anything
    is written: a batch reports a link the actor may not make as that event's failure."""
    refs = _links(event)
    rows = {
        row.identity: row
        for row in LineageNode.objects.select_related("catalog", "schema").filter(
            identity__in=[naming.identity(Kind.DATASET, r.namespace, r.name) for r in refs]
        )
    }
    for ref in refs:
        row = rows.get(naming.identity(Kind.DATASET, ref.namespace, ref.name))
        current = None if row is None else row.catalog or row.schema
        assert ref.securable is not None
        _link_target(actor, ref.securable, current, ref.path)


@dataclass
class BatchOutcome:
    """What `POST /api/v1/lineage/batch` reports: how many events came, which failed and why
    (index in the array, reason, whether sending it again could succeed)."""

    received: int
    failed: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        failed = len(self.failed)
        retriable = sum(1 for f in self.failed if f["retriable"])
        if not failed:
            status = "success"
        elif failed < self.received:
            status = "partial_success"
        else:
            status = "failure"
        return {
            "status": status,
            "summary": {
                "received": self.received,
                "successful": self.received - failed,
                "failed": failed,
                "retriable": retriable,
                "non_retriable": failed - retriable,
            },
            "failed_events": self.failed,
        }


def _failure(index: int, exc: StewardError) -> dict[str, Any]:
    # Every per-event failure here is the event's own (its content, or what its actor may do):
    # the same event sent again fails again. Transient failures fail the whole request.
    return {"index": index, "reason": exc.message, "retriable": False, "error_code": str(exc.code)}


@governed("lineage.ingest")
def lineage_event_batch_ingest(*, actor: Actor, body: Any) -> BatchOutcome:
    """OpenLineage's batch endpoint: a JSON array of up to MAX_BATCH events, each validated and
    authorized on its own. The good ones are stored together, in one transaction, exactly as
    `lineage_events_ingest` stores them (same graph write, one `lineage.ingest` audit event);
    an event that is malformed or links a dataset the actor may not link is reported by its
    index and stores nothing (denied links are audited as DENIED). A body that is not a
    non-empty array of at most MAX_BATCH, or a read-only token, refuses the whole request."""
    if not isinstance(body, list):
        raise InvalidParameter("The body must be a JSON array of OpenLineage events.")
    if not body:
        raise InvalidParameter("The batch is empty.")
    if len(body) > MAX_BATCH:
        raise InvalidParameter(f"A batch may hold at most {MAX_BATCH} events.")
    authz.require_writer(actor, Denial("lineage", "", "INGEST"), what="ingesting lineage")
    good: list[Event] = []
    failed: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    for index, item in enumerate(body):
        try:
            event = parse_event(item)
            if _links(event):
                _check_links(actor, event)
        except StewardError as exc:
            failed.append(_failure(index, exc))
            if exc.denied is not None:
                audits.append(
                    {
                        "actor": actor,
                        "action": "lineage.ingest",
                        "outcome": "DENIED",
                        "securable_type": exc.denied.securable_type,
                        "securable": exc.denied.securable,
                        "details": {"reason": exc.message, "index": index, **exc.denied.details()},
                    }
                )
            continue
        good.append(event)
    if good:
        _, audit = _store(actor, good)
        audit["details"]["failed"] = len(failed)
        audits.insert(0, audit)
    audit_events_write(audits)
    return BatchOutcome(received=len(body), failed=failed)


# --- hooks for the tracking and registry services ----------------------------------------------


def mlflow_run_inputs_record(*, actor: Actor, run: Run, datasets: list[dict[str, Any]]) -> None:
    """Dataset → run edges for the datasets an MLflow run logged (`mlflow.log_input`), each at
    its digest. Called by `tracking.services.run_log_inputs` inside its transaction, which has
    authorized the actor (CAN_EDIT) and audits the call. A dataset is named as OpenLineage names
    it (`s3://bucket` + key), so a pipeline's events and the run meet on one node."""
    if not datasets:
        return
    graph = _Graph(actor)
    when = timezone.now()
    target = graph.node(Kind.MLFLOW_RUN, "", run.run_id, mlflow_run_id=run.run_id)
    for item in datasets:
        dataset = item["dataset"]
        namespace, name = naming.mlflow_dataset_name(dataset)
        source = graph.node(
            Kind.DATASET,
            namespace,
            name,
            facets=naming.mlflow_dataset_facets(dataset, producer=MLFLOW_PRODUCER),
            facets_time=when,
        )
        graph.edge(source, target, EdgeKind.INPUT, str(dataset.get("digest", ""))[:255])
    graph.flush()


def model_version_source_record(*, version: ModelVersion, run_exists: bool | None = None) -> None:
    """The model-version node, and the edge from the MLflow run that produced it (its
    `run_id`). Called by `registry.services.versions.model_version_create` inside its
    transaction, which has checked that the actor may read that run (and says so with
    `run_exists`, sparing the lookup). On PostgreSQL one raw statement (`_record_source`);
    elsewhere, and when that statement missed a node, a `_Graph` flush writing the same rows."""
    if run_exists is None:
        run_model = concrete_field(LineageNode, "mlflow_run").related_model  # tracking's Run
        assert isinstance(run_model, type)
        run_exists = (
            bool(version.run_id) and run_model._default_manager.filter(pk=version.run_id).exists()
        )
    run_id = version.run_id if version.run_id and run_exists else None
    if connection.vendor == "postgresql" and _record_source(version.pk, run_id):
        return
    graph = _Graph(None)
    node = graph.node(Kind.MODEL_VERSION, "", str(version.pk), model_version_id=version.pk)
    if run_id:
        run_node = graph.node(Kind.MLFLOW_RUN, "", run_id, mlflow_run_id=run_id)
        graph.edge(run_node, node, EdgeKind.OUTPUT)
    graph.flush()


# The rows `_Graph.flush` writes for `model_version_source_record` (`_insert_missing`'s columns,
# the constant ones inline; per row kind, identity, name, mlflow_run, model_version, created_at,
# updated_at), then its edge as `_upsert_edges` writes it. Neither node has facets, a state, a
# link or the OpenLineage flag to merge into an existing row, so an existing node is left as it
# is, exactly as the flush leaves it.
_SOURCE_NODE = "(%s, %s, '', %s, '{}', '', false, %s, %s, %s, %s)"
_NODE_COLUMNS = ", ".join(_quoted(f) for f in _INSERTED)
_SOURCE_NODES_INSERT = (
    f"INSERT INTO {_NODE_TABLE} ({_NODE_COLUMNS}) VALUES {{rows}} ON CONFLICT (identity) DO NOTHING"
)
# One statement: insert the missing nodes, take the ids of those inserted and of those that
# were there (one snapshot: a row inserted by the CTE is not seen by the SELECT, so each node
# comes from exactly one side), insert the run -> version edge, and count the nodes found.
_SOURCE_WITH_RUN_SQL = (
    "WITH ins AS ("
    + _SOURCE_NODES_INSERT.format(rows=f"{_SOURCE_NODE}, {_SOURCE_NODE}")
    + " RETURNING id, identity), "
    f"node AS (SELECT id, identity FROM ins UNION ALL "
    f"SELECT id, identity FROM {_NODE_TABLE} WHERE identity IN (%s, %s)), "
    f"edge AS (INSERT INTO {_EDGE_TABLE} (src_id, dst_id, kind, version) "
    "SELECT src.id, dst.id, %s, %s FROM node src, node dst "
    f"WHERE src.identity = %s AND dst.identity = %s {_EDGE_CONFLICT}) "
    "SELECT count(*) FROM node"
)
_SOURCE_ALONE_SQL = _SOURCE_NODES_INSERT.format(rows=_SOURCE_NODE)


def _record_source(version_pk: UUID, run_id: str | None) -> bool:
    """`model_version_source_record` on PostgreSQL, in one statement built once per process.
    False when the run -> version edge could not be written because a node was committed by a
    concurrent transaction after this statement's snapshot (ON CONFLICT waited for it, the
    SELECT cannot see it): the caller then writes through `_Graph.flush`, whose next statements
    see it."""
    now = timezone.now()
    version_row = (
        naming.identity(Kind.MODEL_VERSION, "", str(version_pk)),
        (Kind.MODEL_VERSION.value, str(version_pk), None, version_pk),
    )
    with connection.cursor() as cursor:
        if run_id is None:
            cursor.execute(_SOURCE_ALONE_SQL, _node_params(version_row, now))
            return True
        run_row = (
            naming.identity(Kind.MLFLOW_RUN, "", run_id),
            (Kind.MLFLOW_RUN.value, run_id, run_id, None),
        )
        first, second = sorted([version_row, run_row])  # `flush`'s order: by identity
        cursor.execute(
            _SOURCE_WITH_RUN_SQL,
            [
                *_node_params(first, now),
                *_node_params(second, now),
                first[0],
                second[0],
                EdgeKind.OUTPUT.value,
                "",
                run_row[0],
                version_row[0],
            ],
        )
        found: int = cursor.fetchone()[0]
        return found == 2


_NodeRow = tuple[str, tuple[str, str, str | None, UUID | None]]  # identity, insert values


def _node_params(row: _NodeRow, now: datetime) -> list[Any]:
    identity, (kind, name, mlflow_run_id, model_version_id) = row
    return [kind, identity, name, mlflow_run_id, model_version_id, now, now]
