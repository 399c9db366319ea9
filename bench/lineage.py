#!/usr/bin/env python
"""Benchmark: lineage walks and OpenLineage ingestion on PostgreSQL.

Not a test. Creates its own database (default `steward_bench_lineage`; the name must contain
`bench`), migrates it and bulk-builds a lineage graph of 100,000 nodes and 300,000 edges behind
real registry and tracking rows (1,000 registered models with 8,000 versions, 100 experiments
with 10,000 MLflow runs, grants and shares for a non-admin user). It checks the walk against a
Python BFS of the same graph, then starts Steward under gunicorn (production settings,
deploy/gunicorn.conf.py) and measures over real HTTP on this machine:

1. walks: `GET /api/v1/models/{name}/versions/{n}/lineage?depth=10` (upstream), one client,
   keep-alive, for a metastore admin and for a user who sees part of the graph (redaction);
   p50/p95/max, nodes per answer, plus queries per request and EXPLAIN ANALYZE of the walk;
2. ingestion: OpenLineage RunEvents posted to `POST /api/v1/lineage` by a client process with
   several keep-alive connections: one event per request (what openlineage-python's HTTP
   transport does), the same through openlineage-python's own client (its synchronous
   HttpTransport, one client per connection, and its AsyncHttpTransport, one client sending
   --connections requests at a time), and batches (JSON arrays at `POST /api/v1/lineage`, and
   the spec's batch endpoint `POST /api/v1/lineage/batch`); plus the
   floor of any request (`/healthz`; `GET /api/v1/tokens`, a bearer token and one small list)
   and a minimal event. Events/s, latency, and the CPU the server (gunicorn workers), their
   PostgreSQL backends and the client spend per event, from which "at most N/s on this
   machine's cores" follows whatever else runs on it;
3. a profile of the ingestion path in-process (cProfile, SQL time), the evidence behind the
   per-event cost.

The database is dropped at the end (--keep keeps it). See bench/README.md.

    .venv/bin/python bench/lineage.py
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_lineage"
PRODUCER = "https://github.com/acme/pipelines/tree/v1"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_URL = "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json"

# The graph: DOMAINS data domains of 1,000 nodes and 3,000 edges each.
DOMAINS = 100
JOBS, OL_RUNS, LEVELS, PER_LEVEL, ML_RUNS, MODELS, VERSIONS = 20, 300, 10, 50, 100, 10, 8
OL_INPUTS, OL_OUTPUTS, ML_INPUTS, PARENTS, CROSS = 4, 2, 8, 20, 0.02
BATCH = 5000
# Requests that show the floor of a request's cost: no auth and no database; a bearer token
# and one small list.
BASELINES = {"healthz": "/healthz", "tokens": "/api/v1/tokens"}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    ap.add_argument("--queries", type=int, default=200, help="timed walks per user")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--events", type=int, default=6000, help="events per ingestion scenario")
    ap.add_argument("--connections", type=int, default=8, help="client keep-alive connections")
    ap.add_argument("--batch", type=int, default=100, help="events per POST in the batch run")
    ap.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    ap.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a database kept by --keep (no rebuild, no reference check)",
    )
    ap.add_argument(
        "--modes",
        default="healthz,tokens,minimal,single,olclient,olasync,batch,batchapi",
        help="ingestion scenarios, in order",
    )
    ap.add_argument("--skip-walks", action="store_true")
    ap.add_argument("--skip-ingest", action="store_true")
    # Internal: the ingestion client, run in its own process.
    ap.add_argument("--client", help=argparse.SUPPRESS)
    ap.add_argument("--token", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# --- the ingestion client (a subprocess: its CPU is not the server's) -------------------------


def make_event(i: int, event_type: str) -> dict:
    """A typical task event: a job, two inputs with a schema facet, one output."""
    run_id = str(uuid.UUID(int=(1 << 100) + i // 2))
    fields = [{"name": f"c{k}", "type": "string"} for k in range(5)]

    def ds(name, **facets):
        return {"namespace": "s3://ingest", "name": name, "facets": facets}

    schema = {"_producer": PRODUCER, "_schemaURL": FACET_URL, "fields": fields}
    return {
        "eventType": event_type,
        "eventTime": f"2024-05-01T12:{(i // 60) % 60:02d}:{i % 60:02d}Z",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "airflow", "name": f"ingest.job{(i // 2) % 200}"},
        "inputs": [
            ds(f"in/{(i * 7) % 5000}.parquet", schema=schema),
            ds(f"in/{(i * 13 + 1) % 5000}.parquet", schema=schema),
        ],
        "outputs": [ds(f"out/{(i // 2) % 5000}.parquet")],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def client_main(args) -> None:
    """Post --events events to --client (a base URL) and print a JSON summary."""
    import http.client

    url = urlparse(args.client)
    n, conns, mode = args.events, args.connections, args.mode
    events = [make_event(args.offset + i, "START" if i % 2 == 0 else "COMPLETE") for i in range(n)]
    if mode in ("olclient", "olasync"):
        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        if mode == "olclient":
            clients = [
                OpenLineageClient(
                    transport=HttpTransport(
                        HttpConfig.from_dict(
                            {
                                "type": "http",
                                "url": args.client,
                                "endpoint": "api/v1/lineage",
                                "auth": {"type": "api_key", "apiKey": args.token},
                                "retry": {"total": 0},
                            }
                        )
                    )
                )
                for _ in range(conns)
            ]
        from openlineage.client.event_v2 import (
            InputDataset,
            Job,
            OutputDataset,
            Run,
            RunEvent,
            RunState,
        )
        from openlineage.client.facet_v2 import schema_dataset

        def typed(e):
            facet = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=f["name"], type=f["type"])
                    for f in e["inputs"][0]["facets"]["schema"]["fields"]
                ]
            )
            return RunEvent(
                eventType=RunState[e["eventType"]],
                eventTime=e["eventTime"],
                run=Run(runId=e["run"]["runId"]),
                job=Job(namespace=e["job"]["namespace"], name=e["job"]["name"]),
                producer=PRODUCER,
                inputs=[
                    InputDataset(namespace=d["namespace"], name=d["name"], facets={"schema": facet})
                    for d in e["inputs"]
                ],
                outputs=[
                    OutputDataset(namespace=d["namespace"], name=d["name"]) for d in e["outputs"]
                ],
            )

        payloads = [typed(e) for e in events]
    elif mode in BASELINES:
        payloads = [None] * n
    elif mode == "minimal":
        payloads = [
            json.dumps(
                {
                    "eventTime": "2024-05-01T12:00:00Z",
                    "dataset": {"namespace": "s3://ingest", "name": f"min/{i % 100}"},
                    "producer": PRODUCER,
                    "schemaURL": SCHEMA_URL,
                }
            ).encode()
            for i in range(n)
        ]
    elif mode in ("batch", "batchapi"):
        payloads = [
            json.dumps(events[i : i + args.batch]).encode() for i in range(0, n, args.batch)
        ]
    else:
        payloads = [json.dumps(e).encode() for e in events]
    if mode == "olasync":
        return _async_client(args, payloads)
    path = "/api/v1/lineage/batch" if mode == "batchapi" else "/api/v1/lineage"
    # Runs sent in order per connection: a run's START goes before its COMPLETE.
    work = deque(range(len(payloads)))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def worker(index: int) -> None:
        if mode == "olclient":
            client = clients[index]
        else:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        headers = {
            "Authorization": f"Bearer {args.token}",
            "Content-Type": "application/json",
        }
        while True:
            with lock:
                if not work:
                    break
                item = work.popleft()
            start = time.perf_counter()
            try:
                if mode == "olclient":
                    client.emit(payloads[item])
                    status = 201
                else:
                    if mode in BASELINES:
                        conn.request("GET", BASELINES[mode], headers=headers)
                    else:
                        conn.request("POST", path, body=payloads[item], headers=headers)
                    response = conn.getresponse()
                    body = response.read()
                    status = response.status
                    if status not in (200, 201):
                        errors.append(f"{status} {body[:200]!r}")
                    elif mode == "batchapi" and json.loads(body)["status"] != "success":
                        errors.append(f"{status} {body[:200]!r}")
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                errors.append(repr(exc)[:200])
                status = 0
            with lock:
                latencies.append(time.perf_counter() - start)
        if mode != "olclient":
            conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "events": n,
                "requests": len(payloads),
                "wall": wall,
                "client_cpu": time.process_time() - cpu0,
                "latencies": sorted(latencies),
                "errors": errors[:5],
                "error_count": len(errors),
            }
        )
    )


def _async_client(args, payloads) -> None:
    """openlineage-python's AsyncHttpTransport: one client, events emitted in order (it holds a
    run's COMPLETE until its START is acknowledged) and sent up to --connections at a time."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.async_http import AsyncHttpConfig, AsyncHttpTransport

    transport = AsyncHttpTransport(
        AsyncHttpConfig.from_dict(
            {
                "type": "async_http",
                "url": args.client,
                "endpoint": "api/v1/lineage",
                "auth": {"type": "api_key", "apiKey": args.token},
                "max_concurrent_requests": args.connections,
                "timeout": 60,
                "retry": {"total": 0},
            }
        )
    )
    client = OpenLineageClient(transport=transport)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for event in payloads:
        client.emit(event)
    complete = transport.close(timeout=600)
    wall = time.perf_counter() - t0
    stats = dict(transport.get_stats())
    failed = stats.get("failed", 0) + (0 if complete else stats.get("pending", 0))
    print(
        json.dumps(
            {
                "events": len(payloads),
                "requests": len(payloads),
                "wall": wall,
                "client_cpu": time.process_time() - cpu0,
                "latencies": [],  # the transport does not report per-request times
                "errors": [f"stats {stats}"] if failed else [],
                "error_count": failed,
            }
        )
    )


if __name__ == "__main__" and "--client" in sys.argv:
    client_main(parse_args())
    sys.exit(0)


# --- the benchmark proper -----------------------------------------------------------------

ARGS = parse_args()
_db = urlparse(ARGS.database_url)
DB_NAME = _db.path.lstrip("/")
if "bench" not in DB_NAME:
    sys.exit(f"refusing to drop/create {DB_NAME!r}: the database name must contain 'bench'")
os.environ["DATABASE_URL"] = ARGS.database_url
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"


def admin_url() -> str:
    return _db._replace(scheme="postgresql", path="/postgres").geturl()


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        if ARGS.reuse:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if found.fetchone():
                return
            ARGS.reuse = False
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


recreate_database()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, Permission  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import api_token_issue  # noqa: E402
from catalog.models import Catalog, Schema, SchemaUserGrant  # noqa: E402
from core.actor import Actor  # noqa: E402
from lineage import naming, selectors  # noqa: E402
from lineage.models import LineageEdge, LineageNode  # noqa: E402
from registry.models import ModelVersion, RegisteredModel  # noqa: E402
from tracking.models import Experiment, ExperimentPermission, Run  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- the data set --------------------------------------------------------------------------


class Graph:
    """Node specs and edges kept in memory (for bulk loading and the reference BFS)."""

    def __init__(self):
        self.nodes: list[dict] = []
        self.index: dict[str, int] = {}
        self.edges: set[tuple[int, int, str]] = set()

    def node(self, kind, namespace, name, **extra) -> int:
        ident = naming.identity(kind, namespace, name)
        if ident not in self.index:
            self.index[ident] = len(self.nodes)
            self.nodes.append(
                {"kind": kind, "namespace": namespace, "name": name, "identity": ident, **extra}
            )
        return self.index[ident]

    def edge(self, src: int, dst: int, kind: str) -> None:
        self.edges.add((src, dst, kind))


def build(rng: random.Random):
    """Principals, securables, experiments, runs, versions and the lineage graph."""
    now = timezone.now()
    admins = Group.objects.create(name=settings.STEWARD_ADMIN_GROUP)
    admin = User.objects.create(username="bench_admin", password="!", date_joined=now)
    admin.groups.add(admins)
    user = User.objects.create(username="bench_user", password="!", date_joined=now)
    owner = User.objects.create(username="bench_owner", password="!", date_joined=now)
    catalog = Catalog.objects.create(name="bench", owner_user=owner)
    schemas = Schema.objects.bulk_create(
        [
            Schema(catalog=catalog, name=f"s{s:02d}", full_name=f"bench.s{s:02d}")
            for s in range(DOMAINS // 10)
        ]
    )
    # bench_user: USE CATALOG; USE SCHEMA + BROWSE on the first 3 of 10 schemas (30% of the
    # models, and the datasets linked to them); CAN_READ on half the experiments.
    perms = {
        p.codename: p
        for p in Permission.objects.filter(
            content_type__in=ContentType.objects.get_for_models(Catalog, Schema).values()
        )
    }
    from catalog.models import CatalogUserGrant

    CatalogUserGrant.objects.create(
        user=user, permission=perms["use_catalog"], content_object=catalog
    )
    SchemaUserGrant.objects.bulk_create(
        [
            SchemaUserGrant(user=user, permission=perms[code], content_object=schemas[s])
            for s in range(3)
            for code in ("use_schema", "browse")
        ]
    )
    models = RegisteredModel.objects.bulk_create(
        [
            RegisteredModel(
                schema=schemas[m // (MODELS * 10)],
                name=f"m{m:03d}",
                full_name=f"bench.s{m // (MODELS * 10):02d}.m{m:03d}",
                next_version=VERSIONS + 1,
            )
            for m in range(DOMAINS * MODELS)
        ],
        batch_size=BATCH,
    )
    experiments = Experiment.objects.bulk_create(
        [Experiment(name=f"domain-{d:03d}", owner=owner) for d in range(DOMAINS)]
    )
    ExperimentPermission.objects.bulk_create(
        [
            ExperimentPermission(experiment=experiments[d], user=user, level="CAN_READ")
            for d in range(DOMAINS // 2)
        ]
    )
    runs = [
        Run(
            run_id=uuid.UUID(int=(d << 32) + r).hex,
            experiment=experiments[d],
            owner=owner,
            user_id="bench_owner",
            status="FINISHED",
            start_time=1714564800000,
            end_time=1714568400000,
        )
        for d in range(DOMAINS)
        for r in range(ML_RUNS)
    ]
    Run.objects.bulk_create(runs, batch_size=BATCH)
    versions = []
    for d in range(DOMAINS):
        for k in range(MODELS * VERSIONS):
            m, v = divmod(k, VERSIONS)
            versions.append(
                ModelVersion(
                    model=models[d * MODELS + m],
                    version=v + 1,
                    status="READY",
                    source=f"models:/m-{d:08x}{k:024x}",
                    run_id=runs[d * ML_RUNS + k].run_id,
                    created_by="bench_owner",
                )
            )
    ModelVersion.objects.bulk_create(versions, batch_size=BATCH)

    g = Graph()
    fields = [{"name": f"col{k}", "type": "double"} for k in range(6)]
    schema_facet = {"_producer": PRODUCER, "_schemaURL": FACET_URL, "fields": fields}
    datasets = [
        [
            [
                g.node(
                    "dataset",
                    f"s3://domain{d:03d}",
                    f"level{lv}/table{i:02d}.parquet",
                    facets={"schema": schema_facet},
                    openlineage=True,
                    schema_id=schemas[d // 10].pk if lv == 0 else None,
                )
                for i in range(PER_LEVEL)
            ]
            for lv in range(LEVELS)
        ]
        for d in range(DOMAINS)
    ]
    started = timezone.now()
    for d in range(DOMAINS):
        jobs = [
            g.node("job", "airflow", f"domain{d:03d}.task{j:02d}", openlineage=True)
            for j in range(JOBS)
        ]
        ol_runs = []
        for r in range(OL_RUNS):
            level = 1 + r % (LEVELS - 1)
            run = g.node(
                "run",
                "",
                str(uuid.UUID(int=(d << 32) + r)),
                openlineage=True,
                state="COMPLETE",
                started_at=started,
                ended_at=started,
                state_time=started,
            )
            ol_runs.append(run)
            g.edge(jobs[r % JOBS], run, "job")

            def source(lv, home=d):
                dom = rng.randrange(DOMAINS) if rng.random() < CROSS else home
                return datasets[dom][lv]

            picks = set(rng.sample(source(level - 1), OL_INPUTS - 1))
            picks.add(rng.choice(source(max(0, level - 2))))
            for ds in picks:
                g.edge(ds, run, "input")
            for ds in rng.sample(datasets[d][level], OL_OUTPUTS):
                g.edge(run, ds, "output")
        for p in range(PARENTS):
            g.edge(ol_runs[p], ol_runs[p + PARENTS], "parent")
        for r in range(ML_RUNS):
            run = runs[d * ML_RUNS + r]
            node = g.node("mlflow_run", "", run.run_id, mlflow_run_id=run.run_id)
            pool = datasets[d][LEVELS - 3] + datasets[d][LEVELS - 2] + datasets[d][LEVELS - 1]
            for ds in rng.sample(pool, ML_INPUTS):
                g.edge(ds, node, "input")
    for version in versions:
        node = g.node("model_version", "", str(version.pk), model_version_id=version.pk)
        run_node = g.index[naming.identity("mlflow_run", "", version.run_id)]
        g.edge(run_node, node, "output")
    # Top up with parent links to exactly 300,000 edges (cross-job dependencies).
    run_nodes = [i for i, n in enumerate(g.nodes) if n["kind"] == "run"]
    while len(g.edges) < 300_000:
        a, b = rng.sample(run_nodes, 2)
        g.edge(a, b, "parent")

    rows = [LineageNode(**spec) for spec in g.nodes]
    for start in range(0, len(rows), BATCH):
        LineageNode.objects.bulk_create(rows[start : start + BATCH])
    pk_of = dict(LineageNode.objects.values_list("identity", "id"))
    pks = [pk_of[n["identity"]] for n in g.nodes]
    edge_rows = [LineageEdge(src_id=pks[s], dst_id=pks[t], kind=k) for s, t, k in sorted(g.edges)]
    for start in range(0, len(edge_rows), BATCH):
        LineageEdge.objects.bulk_create(edge_rows[start : start + BATCH])
    return g, pks, {"admin": admin, "user": user}, versions


def vacuum() -> None:
    import psycopg

    with psycopg.connect(_db._replace(scheme="postgresql").geturl(), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def reference_upstream(g: Graph, start: int, depth: int) -> set[int]:
    """Python BFS over the in-memory graph: what the CTE must find (admin, no cap)."""
    parents: dict[int, list[int]] = defaultdict(list)
    for s, t, _ in g.edges:
        parents[t].append(s)
    seen, frontier = {start}, [start]
    for _ in range(depth):
        nxt = []
        for node in frontier:
            for p in parents[node]:
                if p not in seen:
                    seen.add(p)
                    nxt.append(p)
        frontier = nxt
    return seen


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with deploy/gunicorn.conf.py and production settings, in its own session."""

    def __init__(self, work: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = work / "gunicorn.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DATABASE_URL": ARGS.database_url,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "STEWARD_DATA_DIR": str(work / "data"),
            "STEWARD_SECURE_COOKIES": "false",
            "REDIS_URL": ARGS.redis_url,
            "STEWARD_LOG_LEVEL": "WARNING",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(ARGS.workers),
            "GUNICORN_THREADS": str(ARGS.threads),
        }
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"gunicorn exited; see {self.log}:\n{self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                return
            except (OSError, urllib.error.HTTPError):
                time.sleep(0.3)
        sys.exit(f"gunicorn not answering; see {self.log}")

    def pids(self) -> set[int]:
        out = set()
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.proc.pid:
                        out.add(int(entry.name))
                except OSError:
                    pass
        return out

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pids: set[int]) -> dict[int, float]:
    """CPU seconds (user + system) so far of each live process in `pids`."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
        except (OSError, IndexError, ValueError):
            pass
    return out


def cpu_since(before: dict[int, float], pids: set[int]) -> float:
    """CPU spent since `before` by the processes alive now (new ones count from zero; one that
    exited in between is lost, so this can only undercount)."""
    now = cpu_of(pids)
    return sum(t - before.get(pid, 0.0) for pid, t in now.items())


def backend_pids() -> set[int]:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (DB_NAME,)
        ).fetchall()
    return {r[0] for r in rows}


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- walks ---------------------------------------------------------------------------------


def time_walks(server: Server, token: str, targets: list[str], label: str) -> dict:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    times, nodes, restricted, truncated = [], [], [], 0

    def get(full_name_version):
        full_name, version = full_name_version.rsplit("/", 1)
        return session.get(
            f"{server.url}/api/v1/models/{full_name}/versions/{version}/lineage",
            params={"depth": ARGS.depth, "direction": "upstream"},
            timeout=30,
        )

    for target in targets[: ARGS.warmup]:
        assert get(target).status_code == 200
    backends = backend_pids()
    cpu0 = cpu_of(server.pids()), cpu_of(backends)
    load0 = load_average()
    for target in targets[ARGS.warmup :]:
        t0 = time.perf_counter()
        response = get(target)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.text[:300]
        answer = response.json()
        nodes.append(len(answer["nodes"]))
        restricted.append(sum(1 for n in answer["nodes"] if n["type"] == "RESTRICTED"))
        truncated += answer["truncated"]
    session.close()
    server_cpu = cpu_since(cpu0[0], server.pids()) * 1000 / len(times)
    db_cpu = cpu_since(cpu0[1], backends | backend_pids()) * 1000 / len(times)
    result = {
        "label": label,
        "n": len(times),
        "server_cpu_ms": server_cpu,
        "db_cpu_ms": db_cpu,
        "load": f"{load0} -> {load_average()}",
        "p50": pct(times, 50),
        "p95": pct(times, 95),
        "max": max(times),
        "nodes_p50": statistics.median(nodes),
        "nodes_max": max(nodes),
        "restricted_p50": statistics.median(restricted),
        "truncated": truncated,
    }
    log(
        f"walk {label}: p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, "
        f"max {result['max']:.1f} ms; nodes p50 {result['nodes_p50']:.0f} "
        f"(max {result['nodes_max']}), restricted p50 {result['restricted_p50']:.0f}, "
        f"truncated {truncated}/{len(times)}; CPU per walk: server {server_cpu:.1f} ms, "
        f"PostgreSQL {db_cpu:.1f} ms; load {result['load']}"
    )
    return result


def in_process_profile_of_walk(user: User, target: str) -> dict:
    """Queries per request and the split of one walk's time (in-process, test settings)."""
    client = Client()
    token = api_token_issue(actor=Actor.system(user), user=user, name="p")[1]
    full_name, version = target.rsplit("/", 1)
    url = f"/api/v1/models/{full_name}/versions/{version}/lineage?depth={ARGS.depth}"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    client.get(url, **headers)
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        client.get(url, **headers)
        wall = (time.perf_counter() - t0) * 1000
    sql = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
    walk_sql = max(
        (float(q["time"]) * 1000 for q in ctx.captured_queries if "RECURSIVE" in q["sql"]),
        default=0.0,
    )
    return {"queries": len(ctx.captured_queries), "wall": wall, "sql": sql, "walk_sql": walk_sql}


def explain_walk(root_pk: int) -> str:
    sql = (
        "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) WITH RECURSIVE "
        + selectors._cte("up", "src_id", "dst_id")
        + " SELECT node_id, depth, 'up' FROM"
        + f" (SELECT node_id, depth FROM up LIMIT {selectors.MAX_ROWS + 1}) up_rows"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [root_pk, ARGS.depth])
        return "\n".join(r[0] for r in cursor.fetchall())


# --- ingestion -----------------------------------------------------------------------------


def ingest(server: Server, token: str, mode: str, events: int, offset: int) -> dict:
    pids = server.pids()
    backends = backend_pids()
    cpu0 = cpu_of(pids), cpu_of(backends)
    load0 = load_average()
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            server.url,
            "--token",
            token,
            "--mode",
            mode,
            "--events",
            str(events),
            "--offset",
            str(offset),
            "--connections",
            str(ARGS.connections),
            "--batch",
            str(ARGS.batch),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode:
        sys.exit(f"client failed:\n{out.stderr[-3000:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    server_cpu = cpu_since(cpu0[0], server.pids())
    db_cpu = cpu_since(cpu0[1], backends | backend_pids())
    lat = summary["latencies"] or [float("nan")]
    result = {
        "mode": mode,
        "events": events,
        "requests": summary["requests"],
        "events_per_s": events / summary["wall"],
        "wall": summary["wall"],
        "p50_ms": pct(lat, 50) * 1000,
        "p95_ms": pct(lat, 95) * 1000,
        "server_cpu_ms_per_event": server_cpu * 1000 / events,
        "db_cpu_ms_per_event": db_cpu * 1000 / events,
        "client_cpu_ms_per_event": summary["client_cpu"] * 1000 / events,
        "errors": summary["error_count"],
        "load": f"{load0} -> {load_average()}",
    }
    per_event = (server_cpu + db_cpu) * 1000 / events + result["client_cpu_ms_per_event"]
    # What the machine's cores could sustain at this CPU cost, load from others aside.
    result["cpu_bound_per_s"] = (os.cpu_count() or 1) * 1000 / per_event
    log(
        f"ingest {mode}: {result['events_per_s']:.0f} events/s ({events} events, "
        f"{summary['requests']} requests, {summary['wall']:.1f} s); request p50 "
        f"{result['p50_ms']:.1f} ms p95 {result['p95_ms']:.1f} ms; CPU per event: server "
        f"{result['server_cpu_ms_per_event']:.2f} ms, PostgreSQL "
        f"{result['db_cpu_ms_per_event']:.2f} ms, client "
        f"{result['client_cpu_ms_per_event']:.2f} ms (all of it: at most "
        f"{result['cpu_bound_per_s']:.0f}/s on {os.cpu_count()} cores); "
        f"errors {summary['error_count']} "
        f"{summary['errors'][:1]}; load {result['load']}"
    )
    return result


def profile_ingestion(user: User, n: int = 400) -> str:
    """cProfile of n single-event POSTs in-process, with the SQL time and query count."""
    client = Client()
    token = api_token_issue(actor=Actor.system(user), user=user, name="prof")[1]
    bodies = [json.dumps(make_event(10_000_000 + i, "START")) for i in range(n)]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    for body in bodies[:20]:
        client.post("/api/v1/lineage", body, content_type="application/json", **headers)
    sql_time = [0.0]
    queries = [0]

    def timer(execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_time[0] += time.perf_counter() - t0
            queries[0] += 1

    profiler = cProfile.Profile()
    cpu0, t0 = time.process_time(), time.perf_counter()
    with connection.execute_wrapper(timer):
        profiler.enable()
        for body in bodies[20:]:
            response = client.post(
                "/api/v1/lineage", body, content_type="application/json", **headers
            )
            assert response.status_code == 201, response.content[:300]
        profiler.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    m = n - 20
    stats = pstats.Stats(profiler)
    parts = [
        ("whole request (test client included)", "django/test/client.py", "request"),
        ("middleware + DRF + view", "rest_framework/views.py", "dispatch"),
        ("bearer-token authentication", "accounts/authentication.py", "authenticate"),
        ("governed wrapper (service + transaction)", "core/services.py", "wrapper"),
        ("lineage_events_ingest", "lineage/services.py", "lineage_events_ingest"),
        ("  validation (parse_events)", "lineage/openlineage.py", "parse_events"),
        ("  graph write (_Graph.flush)", "lineage/services.py", "flush"),
        ("  audit_event_write", "audit/services.py", "audit_event_write"),
        ("body parsing (gzip check, strict JSON)", "lineage/api/views.py", "parse"),
    ]
    lines = []
    for label, file_part, func in parts:
        cum = sum(
            v[3]
            for (filename, _, name), v in stats.stats.items()  # type: ignore[attr-defined]
            if name == func and file_part in filename
        )
        lines.append(f"  {label:<44} {cum * 1000 / m:6.2f} ms")
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(12)
    head = (
        f"in-process, {m} single-event POSTs under cProfile: {wall * 1000 / m:.2f} ms wall and "
        f"{cpu * 1000 / m:.2f} ms CPU per event, {queries[0] / m:.1f} queries per event, "
        f"{sql_time[0] * 1000 / m:.2f} ms in SQL per event.\nCumulative time per event "
        "(profiler overhead included):\n" + "\n".join(lines)
    )
    return head + "\n" + stream.getvalue()


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    rng = random.Random(ARGS.seed)
    log(f"database {DB_NAME}; migrating")
    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    if ARGS.reuse:
        g, pks = None, []
        users = {
            "admin": User.objects.get(username="bench_admin"),
            "user": User.objects.get(username="bench_user"),
        }
        versions = list(ModelVersion.objects.select_related("model").order_by("created_at", "id"))
    else:
        g, pks, users, versions = build(rng)
    vacuum()
    log(
        f"built {LineageNode.objects.count():,} nodes and {LineageEdge.objects.count():,} edges "
        f"({len(versions):,} model versions, {Run.objects.count():,} MLflow runs) in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    version_name = {v.pk: f"{v.model.full_name}/{v.version}" for v in versions}

    # Correctness: the CTE finds what a Python BFS finds (admin, depth 10, no cap hit).
    checked = 0
    for v in rng.sample(versions, 20) if g is not None else []:
        idx = g.index[naming.identity("model_version", "", str(v.pk))]
        want = {pks[i] for i in reference_upstream(g, idx, ARGS.depth)}
        hops, truncated = selectors.walk(pks[idx], depth=ARGS.depth, direction="upstream")
        if truncated:
            continue
        if set(hops) != want:
            sys.exit(f"walk disagrees with the reference BFS for {v.pk}")
        checked += 1
    log(f"walk matches the reference BFS on {checked} versions")

    tokens = {
        k: api_token_issue(actor=Actor.system(u), user=u, name="bench", days=1)[1]
        for k, u in users.items()
    }
    work = Path(tempfile.mkdtemp(prefix="steward-bench-lineage-"))
    results: dict = {"walks": [], "ingest": []}
    server = Server(work)
    try:
        if not ARGS.skip_walks:
            n = ARGS.warmup + ARGS.queries
            everyone = [version_name[v.pk] for v in rng.sample(versions, n)]
            # bench_user's targets: versions it may see (schemas s00..s02).
            visible = [name for name in version_name.values() if name.split(".")[1] < "s03"]
            mine = rng.sample(visible, n)
            results["walks"].append(time_walks(server, tokens["admin"], everyone, "admin"))
            results["walks"].append(time_walks(server, tokens["user"], mine, "user (redacted)"))
            results["profile_walk"] = {
                k: in_process_profile_of_walk(users[k], t)
                for k, t in (("admin", everyone[0]), ("user", mine[0]))
            }
            log(f"walk in-process: {results['profile_walk']}")
            median_target = versions[len(versions) // 2]
            ident = naming.identity("model_version", "", str(median_target.pk))
            results["explain"] = explain_walk(LineageNode.objects.get(identity=ident).pk)
            print(results["explain"])
        if not ARGS.skip_ingest:
            offset = 0
            for mode in ARGS.modes.split(","):
                results["ingest"].append(ingest(server, tokens["admin"], mode, ARGS.events, offset))
                offset += ARGS.events + 2
            results["profile_ingest"] = profile_ingestion(users["admin"])
            print(results["profile_ingest"])
    finally:
        server.stop()
    log(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load {load_average()}")
    print(json.dumps({k: v for k, v in results.items() if k != "explain"}, indent=1, default=str))
    if ARGS.keep:
        log(f"kept database {DB_NAME} and {work}")
    else:
        drop_database()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
