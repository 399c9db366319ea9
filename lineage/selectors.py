"""Reads of the lineage graph: walks up, down or both ways from a node, with redaction.

A walk is one recursive CTE (PostgreSQL and SQLite alike) over `LineageEdge`, bounded by depth
(at most MAX_DEPTH hops) and by rows (the CTE stops producing rows once it has enough), followed
by a constant number of queries whatever the depth: the nodes, the edges among them, the model
versions and MLflow runs they stand for, and one visibility query per kind of securable.

Who sees what (lineage/README.md, "Who may do what"):
- a model-version node: who can see its registered model (catalog.authz);
- an MLflow-run node: who can read its experiment (tracking's rules);
- a dataset linked to a catalog or schema: who can see that securable;
- an unlinked dataset named by an OpenLineage event, a job, an OpenLineage run: every
  authenticated principal (an ingesting client published them to the shared lineage service);
- an unlinked dataset known only from MLflow run inputs: who can read one of those runs (its name
  came from a private experiment, so it is exactly as private as the runs that used it).
Everything else is answered as an opaque RESTRICTED node: same place in the graph, same edges,
no name, no kind, no facets. A node the caller may not see cannot be the start of a walk: it
answers RESOURCE_DOES_NOT_EXIST, as a missing one does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import connection
from django.utils.dateparse import parse_datetime

from audit.governance import governed
from audit.services import audit_event_write
from catalog import authz
from catalog.models import Catalog, Schema
from core.actor import Actor
from core.errors import Denial, InvalidParameter, NotFound
from core.rows import concrete_field
from lineage import naming
from lineage.models import LineageEdge, LineageNode

if TYPE_CHECKING:
    from registry.models import ModelVersion, RegisteredModel
    from tracking.models import Experiment, Run

_UUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
MAX_DEPTH = 20
DEFAULT_DEPTH = 5
MAX_NODES = 1000
# Rows the CTE may produce per direction: a node reached at several depths is one row per depth.
MAX_ROWS = 4 * MAX_NODES
DIRECTIONS = ("upstream", "downstream", "both")

Kind = LineageNode.Kind
TYPE: dict[str, str] = {
    Kind.DATASET: "DATASET",
    Kind.JOB: "JOB",
    Kind.RUN: "RUN",
    Kind.MLFLOW_RUN: "RUN",
    Kind.MODEL_VERSION: "MODEL_VERSION",
}


# --- parameters ------------------------------------------------------------------------------


def clean_depth(value: object) -> int:
    """Hops to walk: default DEFAULT_DEPTH, clamped to MAX_DEPTH; not a number → 400."""
    if value in (None, ""):
        return DEFAULT_DEPTH
    text = str(value).strip()
    if not text.isdigit() or len(text) > 6:
        raise InvalidParameter("depth must be a non-negative integer.")
    return min(int(text), MAX_DEPTH)


def clean_direction(value: object, default: str = "both") -> str:
    if value in (None, ""):
        return default
    if not isinstance(value, str) or value not in DIRECTIONS:
        raise InvalidParameter(f"direction must be one of {', '.join(DIRECTIONS)}.")
    return value


def _missing(node_id: str) -> NotFound:
    return NotFound(
        f"Lineage node '{node_id[:300]}' does not exist.",
        denied=Denial("lineage_node", node_id[:300], "BROWSE"),
    )


def node_lookup(node_id: object) -> LineageNode:
    """A node by its public id (`dataset:<namespace>:<name>`, `run:<uuid>`, ...), no
    authorization (internal: callers check). One query."""
    if not isinstance(node_id, str) or not node_id or len(node_id) > 4096 or "\x00" in node_id:
        raise InvalidParameter("nodeId must be a node id such as dataset:<namespace>:<name>.")
    kind = node_id.partition(":")[0]
    if kind not in Kind.values:
        raise InvalidParameter(
            f"nodeId must start with one of {', '.join(k + ':' for k in Kind.values)}."
        )
    parsed = naming.parse_key(node_id)
    if parsed is not None and parsed[0] in (Kind.RUN, Kind.MODEL_VERSION):
        if _UUID.match(parsed[2]):  # stored in canonical (lower-case) form
            parsed = (parsed[0], "", parsed[2].lower())
    row = None
    if parsed is not None:
        row = LineageNode.objects.filter(identity=naming.identity(*parsed)).first()
    if row is None:
        raise _missing(node_id)
    return row


# --- the walk --------------------------------------------------------------------------------


class RawJSON:
    """Stored facets, passed through as their JSON text: a 1,000-node answer then costs no
    decode and re-encode of every facet (lineage.api.views.LineageRenderer splices the text
    in). `value` decodes it for Python callers."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    @property
    def value(self) -> Any:
        return json.loads(self.text)


@dataclass(slots=True)
class NodeRow:
    """What a walk reads of one node (a plain row: no model instance per node)."""

    pk: int | None
    kind: str
    namespace: str
    name: str
    facets: RawJSON
    state: str
    started_at: datetime | None
    ended_at: datetime | None
    openlineage: bool
    catalog_id: uuid.UUID | None
    schema_id: uuid.UUID | None
    mlflow_run_id: str | None
    model_version_id: uuid.UUID | None
    depth: int = 0
    # Rendered by PostgreSQL in the walk (`_sql_json`): the id as a JSON string, and the whole
    # node as `_node_json` would render it for a caller who may see it; None where Python
    # renders them (SQLite; linked datasets, MLflow runs, model versions).
    key_json: str | None = None
    json: str | None = None

    @property
    def key(self) -> str:
        return naming.node_key(self.kind, self.namespace, self.name)

    @classmethod
    def of(cls, node: LineageNode) -> NodeRow:
        return cls(
            node.pk,
            node.kind,
            node.namespace,
            node.name,
            RawJSON(json.dumps(node.facets)),
            node.state,
            node.started_at,
            node.ended_at,
            node.openlineage,
            node.catalog_id,
            node.schema_id,
            node.mlflow_run_id,
            node.model_version_id,
        )


NODE_COLUMNS = (
    "id",
    "kind",
    "namespace",
    "name",
    "facets",
    "state",
    "started_at",
    "ended_at",
    "openlineage",
    "catalog_id",
    "schema_id",
    "mlflow_run_id",
    "model_version_id",
)

# Nodes whose whole answer comes from their own row: OpenLineage runs, jobs and unlinked
# datasets (the bulk of any graph). On PostgreSQL the walk renders them to JSON text in the
# statement itself; linked datasets (their securable's name), MLflow runs and model versions
# (their rows elsewhere) are rendered in Python, as everything is on SQLite.
_SELF_CONTAINED = (
    "(n.kind IN ('run', 'job') OR (n.kind = 'dataset' AND n.catalog_id IS NULL"
    " AND n.schema_id IS NULL))"
)


def _sql_iso(column: str) -> str:
    """PostgreSQL text of a timestamp as `_iso` writes it (UTC, `Z`, microseconds only when
    there are any, as `datetime.isoformat`)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"CAST(extract(microseconds FROM {column}) AS BIGINT) %% 1000000 <> 0 "
        f"THEN to_char({utc}, '.US') ELSE '' END || 'Z')"
    )


def _sql_json() -> tuple[str, str]:
    """PostgreSQL expressions for a node's id as a JSON string and for the whole node as
    `_node_json` renders it (self-contained kinds only, else NULL). `%` doubled: the walk's
    statement has parameters."""
    key = (
        "to_json(CASE WHEN n.kind IN ('dataset', 'job') THEN n.kind || ':' || n.namespace"
        " || ':' || replace(replace(n.name, '%%', '%%25'), ':', '%%3A')"
        " ELSE n.kind || ':' || n.name END)::text"
    )
    data = (
        "CASE n.kind"
        " WHEN 'run' THEN json_build_object('source', 'openlineage', 'run_id', n.name,"
        f" 'state', NULLIF(n.state, ''), 'started_at', {_sql_iso('n.started_at')},"
        f" 'ended_at', {_sql_iso('n.ended_at')}, 'facets', n.facets)"
        " WHEN 'job' THEN json_build_object('namespace', n.namespace, 'name', n.name,"
        " 'facets', n.facets)"
        " ELSE json_build_object('namespace', n.namespace, 'name', n.name,"
        " 'facets', n.facets, 'securable', NULL) END::text"
    )
    node = (
        f'CASE WHEN {_SELF_CONTAINED} THEN \'{{"id":\' || k.key_json || \',"type":"\''
        ' || upper(n.kind) || \'","depth":\' || best.depth || \',"data":\' || '
        f"{data} || '}}' END"
    )
    return key, node


def _uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    return None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _dt(value: datetime | str | None) -> datetime | None:
    """A timestamp from a raw row: PostgreSQL gives datetimes, SQLite gives text."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(value)
    return parsed.replace(tzinfo=UTC) if parsed and parsed.tzinfo is None else parsed


def _row(raw: tuple[Any, ...]) -> NodeRow:
    pk, kind, namespace, name, facets, state, started, ended, ol, cat, sch, run, mv, depth = raw[
        :14
    ]
    key_json, rendered = raw[14], raw[15]
    if facets is None:
        facets = "{}"
    elif not isinstance(facets, str):  # a driver that decodes JSON columns itself
        facets = json.dumps(facets)
    return NodeRow(
        pk,
        kind,
        namespace,
        name,
        RawJSON(facets),
        state or "",
        _dt(started),
        _dt(ended),
        bool(ol),
        _uuid(cat),
        _uuid(sch),
        run,
        _uuid(mv),
        depth,
        key_json,
        rendered,
    )


def _cte(name: str, follow: str, back: str) -> str:
    edges = connection.ops.quote_name(LineageEdge._meta.db_table)
    return (
        f"{name}(node_id, depth) AS ("
        f" SELECT CAST(%s AS BIGINT), 0"
        f" UNION"
        f" SELECT e.{follow}, w.depth + 1 FROM {edges} e"
        f" JOIN {name} w ON e.{back} = w.node_id WHERE w.depth < %s)"
    )


def walk_rows(root_id: int, *, depth: int, direction: str) -> tuple[list[NodeRow], bool]:
    """Every node within `depth` hops of the root in `direction` (nearest first, at most
    MAX_NODES), each with its distance, and whether the answer was cut short.

    One query: the recursive walk, the shortest distance per node, and the nodes' columns (on
    PostgreSQL, the self-contained nodes already rendered to JSON, their facets, state and
    times not fetched). Both engines produce a recursive CTE's rows breadth-first, so the LIMIT
    of MAX_ROWS rows per direction keeps the nearest ones and stops the recursion early on a
    graph that fans out.
    """
    parts, selects, params = [], [], []
    for name, follow, back, wanted in (
        ("up", "src_id", "dst_id", ("upstream", "both")),
        ("down", "dst_id", "src_id", ("downstream", "both")),
    ):
        if direction in wanted:
            parts.append(_cte(name, follow, back))
            selects.append(
                f"SELECT node_id, depth, '{name}' AS way FROM "
                f"(SELECT node_id, depth FROM {name} LIMIT {MAX_ROWS + 1}) {name}_rows"
            )
            params += [root_id, depth]
    nodes = connection.ops.quote_name(LineageNode._meta.db_table)
    if connection.vendor == "postgresql":
        key, node = _sql_json()
        columns = (
            f"n.id, n.kind, n.namespace, n.name, CASE WHEN {_SELF_CONTAINED} THEN NULL "
            "ELSE n.facets END, NULL, NULL, NULL, n.openlineage, n.catalog_id, n.schema_id, "
            f"n.mlflow_run_id, n.model_version_id, best.depth, k.key_json, {node}"
        )
        source = (
            f"best JOIN {nodes} n ON n.id = best.node_id "
            f"CROSS JOIN LATERAL (SELECT {key} AS key_json) k"
        )
    else:
        columns = ", ".join(f"n.{c}" for c in NODE_COLUMNS) + ", best.depth, NULL, NULL"
        source = f"best JOIN {nodes} n ON n.id = best.node_id"
    sql = (
        f"WITH RECURSIVE {', '.join(parts)}, "
        f"found(node_id, depth, way) AS ({' UNION ALL '.join(selects)}), "
        f"best(node_id, depth) AS (SELECT node_id, MIN(depth) FROM found GROUP BY node_id) "
        f"SELECT {columns}, "
        f"(SELECT COUNT(*) FROM found WHERE way = 'up'), "
        f"(SELECT COUNT(*) FROM found WHERE way = 'down') "
        f"FROM {source} "
        f"ORDER BY best.depth, n.id LIMIT {MAX_NODES + 1}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        raw = cursor.fetchall()
    truncated = len(raw) > MAX_NODES or any(count > MAX_ROWS for r in raw[:1] for count in r[-2:])
    return [_row(r) for r in raw[:MAX_NODES]], truncated


def walk(root_id: int, *, depth: int, direction: str) -> tuple[dict[int, int], bool]:
    """{node pk: hops from the root} of `walk_rows` (for tests and the benchmark's check)."""
    rows, truncated = walk_rows(root_id, depth=depth, direction=direction)
    # Every walked row is a stored node: the filter only tells mypy its pk is set.
    return {row.pk: row.depth for row in rows if row.pk is not None}, truncated


def _edges_among(pks: list[int]) -> list[tuple[int, int, str, str]]:
    """The edges whose two ends are among `pks`; one query whatever their number (one array
    parameter on PostgreSQL, one JSON parameter on SQLite, not thousands of placeholders)."""
    if not pks:
        return []
    table = connection.ops.quote_name(LineageEdge._meta.db_table)
    param: list[int] | str
    if connection.vendor == "postgresql":
        ids, param = "SELECT unnest(CAST(%s AS BIGINT[])) AS id", pks
    else:
        ids, param = "SELECT value AS id FROM json_each(%s)", json.dumps(pks)
    sql = (
        f"WITH ids(id) AS ({ids}) SELECT src_id, dst_id, kind, version FROM {table} "
        "WHERE src_id IN (SELECT id FROM ids) AND dst_id IN (SELECT id FROM ids) "
        "ORDER BY src_id, dst_id, kind"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [param])
        rows: list[tuple[int, int, str, str]] = cursor.fetchall()
        return rows


# --- visibility ------------------------------------------------------------------------------


def linked_models() -> tuple[
    type[ModelVersion], type[RegisteredModel], type[Run], type[Experiment]
]:
    """The registry's ModelVersion and RegisteredModel and tracking's Run and Experiment, the
    rows a node can stand for, reached through the node's own foreign keys: lineage sits below
    both apps (they record their lineage here) and imports neither (only their types)."""
    version = cast("type[ModelVersion]", concrete_field(LineageNode, "model_version").related_model)
    run = cast("type[Run]", concrete_field(LineageNode, "mlflow_run").related_model)
    return (
        version,
        cast("type[RegisteredModel]", concrete_field(version, "model").related_model),
        run,
        cast("type[Experiment]", concrete_field(run, "experiment").related_model),
    )


class _Details:
    """What the nodes of one answer stand for, and which of them the actor may see."""

    def __init__(
        self, actor: Actor, nodes: list[NodeRow], *, seen_models: frozenset[uuid.UUID] = frozenset()
    ):
        version_model, registered_model, run_model, experiment_model = linked_models()
        self.versions: dict[uuid.UUID | None, ModelVersion] = {}
        self.runs: dict[str | None, Run] = {}
        version_ids = [n.model_version_id for n in nodes if n.model_version_id]
        run_ids = [n.mlflow_run_id for n in nodes if n.mlflow_run_id]
        if version_ids:
            self.versions = {
                v.pk: v
                for v in version_model.objects.filter(pk__in=version_ids)
                .select_related("model")
                .only("id", "version", "status", "lifecycle", "model__id", "model__full_name")
            }
        if run_ids:
            self.runs = {
                r.pk: r
                for r in run_model.objects.filter(pk__in=run_ids).only(
                    "run_id",
                    "experiment_id",
                    "run_name",
                    "status",
                    "start_time",
                    "end_time",
                    "lifecycle_stage",
                )
            }
        p = authz.principals(actor)
        self.admin = p.is_admin
        self.authenticated = p.user_id is not None
        # `seen_models`: models the caller has just been checked to see (the shortcut's own).
        self.visible_models = set(seen_models)
        self.visible_experiments: set[int] = set()
        # Linked securables the actor may see, with their names: {id: full name}.
        self.catalogs: dict[uuid.UUID, str] = {}
        self.schemas: dict[uuid.UUID, str] = {}
        self.mlflow_datasets: set[int] = set()
        catalog_ids = {n.catalog_id for n in nodes if n.catalog_id}
        schema_ids = {n.schema_id for n in nodes if n.schema_id}
        if not self.authenticated:
            return
        if catalog_ids:
            catalogs = Catalog.objects.filter(pk__in=catalog_ids)
            catalogs = catalogs if self.admin else authz.visible_catalogs(actor, catalogs)
            self.catalogs = dict(catalogs.values_list("pk", "name"))
        if schema_ids:
            schemas = Schema.objects.filter(pk__in=schema_ids)
            schemas = schemas if self.admin else authz.visible_schemas(actor, schemas)
            self.schemas = dict(schemas.values_list("pk", "full_name"))
        if self.admin:
            return
        model_ids = {v.model_id for v in self.versions.values()} - self.visible_models
        if model_ids:
            models = registered_model.objects.filter(pk__in=model_ids)
            self.visible_models |= set(
                authz.visible_models(actor, models).values_list("pk", flat=True)
            )
        experiment_ids = {r.experiment_id for r in self.runs.values()}
        if experiment_ids:
            experiments = experiment_model.objects.filter(pk__in=experiment_ids)
            self.visible_experiments = set(
                authz.visible(actor, experiments).values_list("pk", flat=True)
            )
        private = [
            n.pk
            for n in nodes
            if n.kind == Kind.DATASET and not n.openlineage and not n.catalog_id and not n.schema_id
        ]
        if private:
            # Visible through any MLflow run that read it and that the actor may read.
            self.mlflow_datasets = set(
                LineageEdge.objects.filter(
                    src_id__in=private,
                    kind=LineageEdge.Kind.INPUT,
                    dst__kind=Kind.MLFLOW_RUN,
                    dst__mlflow_run__experiment__in=authz.visible(
                        actor, experiment_model.objects.all()
                    ),
                )
                .values_list("src_id", flat=True)
                .distinct()
            )

    def visible(self, node: NodeRow) -> bool:
        if not self.authenticated:
            return False
        if node.kind == Kind.MODEL_VERSION:
            version = self.versions.get(node.model_version_id)
            return version is not None and (self.admin or version.model_id in self.visible_models)
        if node.kind == Kind.MLFLOW_RUN:
            run = self.runs.get(node.mlflow_run_id)
            return run is not None and (self.admin or run.experiment_id in self.visible_experiments)
        if node.catalog_id:
            return node.catalog_id in self.catalogs
        if node.schema_id:
            return node.schema_id in self.schemas
        if self.admin:
            return True
        if node.kind == Kind.DATASET and not node.openlineage:
            return node.pk in self.mlflow_datasets
        return True  # jobs, OpenLineage runs, datasets named by OpenLineage events


# --- rendering -------------------------------------------------------------------------------


def restricted_id(pk: int | None) -> str:
    """An opaque, stable id for a node the caller may not see (no name, no kind, no row id)."""
    mac = hmac.new(settings.SECRET_KEY.encode(), f"lineage-node:{pk}".encode(), hashlib.sha256)
    return f"restricted:{mac.hexdigest()[:24]}"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _ms(value: int | None) -> str | None:
    if value is None:
        return None
    return _iso(datetime.fromtimestamp(value / 1000, tz=UTC))


def _data(node: NodeRow, details: _Details) -> dict[str, Any]:
    if node.kind == Kind.MODEL_VERSION:
        v = details.versions[node.model_version_id]
        return {
            "full_name": v.model.full_name,
            "version": v.version,
            "status": v.status,
            "lifecycle": v.lifecycle,
        }
    if node.kind == Kind.MLFLOW_RUN:
        r = details.runs[node.mlflow_run_id]
        return {
            "source": "mlflow",
            "run_id": r.run_id,
            "experiment_id": str(r.experiment_id),
            "name": r.run_name,
            "state": r.status,
            "lifecycle_stage": r.lifecycle_stage,
            "started_at": _ms(r.start_time),
            "ended_at": _ms(r.end_time),
        }
    if node.kind == Kind.RUN:
        return {
            "source": "openlineage",
            "run_id": node.name,
            "state": node.state or None,
            "started_at": _iso(node.started_at),
            "ended_at": _iso(node.ended_at),
            "facets": node.facets,
        }
    data: dict[str, Any] = {"namespace": node.namespace, "name": node.name, "facets": node.facets}
    if node.kind == Kind.DATASET:
        if node.catalog_id:
            data["securable"] = {"type": "catalog", "full_name": details.catalogs[node.catalog_id]}
        elif node.schema_id:
            data["securable"] = {"type": "schema", "full_name": details.schemas[node.schema_id]}
        else:
            data["securable"] = None
    return data


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _json_of(value: Any) -> str:
    """Compact JSON of a `_data` value: stored facets (RawJSON) spliced in as they are."""
    if isinstance(value, RawJSON):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{_encode(k)}:{_json_of(v)}" for k, v in value.items()) + "}"
    return _encode(value)


def _node_json(node: NodeRow, details: _Details) -> str:
    """A visible node as the answer carries it, `{"id", "type", "depth", "data"}`: PostgreSQL's
    rendering from the walk where there is one (`_sql_json`, the same object), else Python's."""
    if node.json is not None:
        return node.json
    return _json_of(
        {"id": node.key, "type": TYPE[node.kind], "depth": node.depth, "data": _data(node, details)}
    )


@dataclass(slots=True)
class GraphAnswer:
    """A redacted graph, its nodes and edges already JSON text: `{"root", "depth",
    "direction", "truncated", "nodes", "edges"}` once rendered. A 1,000-node answer is mostly
    stored facets; it is joined, never decoded and re-encoded (lineage.api.views renders it
    with `render`)."""

    root: str
    depth: int
    direction: str
    truncated: bool
    nodes: list[str]
    edges: list[str]
    restricted: int

    def render(self) -> bytes:
        text = (
            f'{{"root":{_encode(self.root)},"depth":{self.depth},'
            f'"direction":{_encode(self.direction)},'
            f'"truncated":{"true" if self.truncated else "false"},'
            f'"nodes":[{",".join(self.nodes)}],"edges":[{",".join(self.edges)}]}}'
        )
        # As DRF's JSONRenderer: U+2028/2029 are valid JSON but not valid JavaScript.
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()

    def data(self) -> dict[str, Any]:
        """The answer as Python values."""
        data: dict[str, Any] = json.loads(self.render())
        return data


_EDGE_TYPE = {kind: f'"type":"{kind.upper()}"' for kind in LineageEdge.Kind.values}


def graph_of(
    actor: Actor,
    root: LineageNode,
    *,
    depth: int,
    direction: str,
    root_id: str,
    seen_models: frozenset[uuid.UUID] = frozenset(),
) -> GraphAnswer:
    """The redacted graph around `root`; raises NotFound when the root itself is hidden."""
    if root.pk is None:  # a model version registered before lineage was recorded
        nodes, truncated = [NodeRow.of(root)], False
    else:
        nodes, truncated = walk_rows(root.pk, depth=depth, direction=direction)
    details = _Details(actor, nodes, seen_models=seen_models)
    ids: dict[int | None, str] = {}  # row id -> the node's id as a JSON string
    shown: list[str] = []
    hidden: set[int | None] = set()
    for node in nodes:
        if details.visible(node):
            ids[node.pk] = node.key_json or _encode(node.key)
            shown.append(_node_json(node, details))
        else:
            ids[node.pk] = key = f'"{restricted_id(node.pk)}"'
            hidden.add(node.pk)
            shown.append(f'{{"id":{key},"type":"RESTRICTED","depth":{node.depth}}}')
    if root.pk in hidden or root.pk not in ids:
        raise _missing(root_id)
    edges = []
    for src, dst, kind, version in _edges_among([n.pk for n in nodes if n.pk is not None]):
        text = f'{{"source":{ids[src]},"target":{ids[dst]},{_EDGE_TYPE[kind]}'
        if version and src not in hidden and dst not in hidden:
            text += f',"version":{_encode(version)}'
        edges.append(text + "}")
    # Nodes come nearest first (then by row id), edges by their ends' row ids: a stable order
    # that costs no sorting of a thousand strings here.
    return GraphAnswer(root.key, depth, direction, truncated, shown, edges, len(hidden))


def audit_graph_query(
    actor: Actor, securable_type: str, securable: str, answer: GraphAnswer
) -> None:
    audit_event_write(
        actor=actor,
        action="lineage.query",
        securable_type=securable_type,
        securable=securable[:1024],
        details={
            "depth": answer.depth,
            "direction": answer.direction,
            "nodes": len(answer.nodes),
            "edges": len(answer.edges),
            "restricted": answer.restricted,
            "truncated": answer.truncated,
        },
    )


# --- selectors -------------------------------------------------------------------------------


@governed("lineage.query", atomic=False)
def lineage_graph(
    *, actor: Actor, node_id: str, depth: str | None = None, direction: str | None = None
) -> GraphAnswer:
    """`{root, nodes, edges, truncated}` within `depth` hops of a node, upstream (what it came
    from), downstream (what it fed) or both; nodes the actor may not see are RESTRICTED."""
    hops = clean_depth(depth)
    way = clean_direction(direction)
    root = node_lookup(node_id)
    answer = graph_of(actor, root, depth=hops, direction=way, root_id=node_id)
    audit_graph_query(actor, "lineage_node", root.key, answer)
    return answer
