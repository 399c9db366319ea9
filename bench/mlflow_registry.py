#!/usr/bin/env python
"""Benchmark: one mlflow client script against Steward and against MLflow's own `mlflow server`.

Not a test. Issue 3: the same client workload (`run_workload`, only `mlflow.MlflowClient` and
`mlflow.artifacts`) runs once against each server, one after the other on the same machine.
Each server has its own PostgreSQL database (dropped and created here; the names must contain
`bench`) and its own temporary artifact directory:

* Steward: gunicorn with deploy/gunicorn.conf.py and `config.wsgi` (production settings),
  grants and audit on as always. The client is a normal user (no admin) holding USE CATALOG on
  `main` and USE SCHEMA, CREATE MODEL and EXECUTE on `main.bench`, with a bearer token.
  Celery runs eagerly by default (`--celery eager`): the version files are copied and sealed
  inside the create request, after its commit. `--celery worker` starts a real worker on Redis.
* MLflow: `mlflow server` on the same PostgreSQL server (psycopg 3 SQLAlchemy URL) with its
  artifact proxy (`--serve-artifacts --artifacts-destination`), no auth; run twice, with its
  default HTTP server (uvicorn) and with `--gunicorn-opts` (gunicorn gthread, as Steward).
  uvicorn's `--workers N` leaves TCP_NODELAY off (Kludex/uvicorn#3149), which costs about
  40 ms per keep-alive request; gunicorn is the fair comparison.

Both get the same number of worker processes (`--workers`). The client runs in a fresh
subprocess per side (same code, only the tracking URI and the token differ), does a small
untimed warm-up, then the timed phases, and counts every client call as one operation.
After the register phase it runs ANALYZE on that side's database, untimed: the PostgreSQL
server here runs with autovacuum off, and without statistics MLflow's model search takes
about a second per call (`--no-analyze` skips it).

    log       create_experiment; per model one run: create_run, log_artifacts (3 small
              files, about 1.5 KB), set_terminated
    register  create_registered_model per model, then 500 x create_model_version
              (source runs:/<run_id>/model, run_id given; none may come back failed)
    alias     set_registered_model_alias: 2 aliases per model, moved 5 times
    search_models    20 x search_registered_models (name LIKE '<prefix>%')
    search_versions  20 x search_model_versions (name = '<model>'; 50 versions each)
    search_by_run    10 x search_model_versions (run_id = '<run>'; 50 versions each)
    resolve   get_model_version_by_alias, checked against the expected version
    download  mlflow.artifacts.download_artifacts of models:/<name>@champion and
              models:/<name>/<version> (3 files each, contents checked)

It prints ops/s per phase and overall for both sides, latency p50/p95 per call, the CPU the
server processes (and their PostgreSQL backends) spent per operation, and the ratio
Steward/MLflow. See bench/README.md.

    .venv/bin/python bench/mlflow_registry.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
BIN = ROOT / ".venv" / "bin"

DEFAULT_STEWARD_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_registry"
DEFAULT_MLFLOW_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/mlflow_bench_registry"
PHASES = [
    "log",
    "register",
    "alias",
    "search_models",
    "search_versions",
    "search_by_run",
    "resolve",
    "download",
]
CATALOG, SCHEMA = "main", "bench"
USERNAME = "bench_user"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_STEWARD_URL),
        help="Steward's database (dropped and created; the name must contain 'bench')",
    )
    ap.add_argument(
        "--mlflow-database-url",
        default=os.environ.get("BENCH_MLFLOW_DATABASE_URL", DEFAULT_MLFLOW_URL),
        help="MLflow's backend store (SQLAlchemy URL; dropped and created; name with 'bench')",
    )
    ap.add_argument("--versions", type=int, default=500, help="model versions to register")
    ap.add_argument("--models", type=int, default=10, help="registered models")
    ap.add_argument("--workers", type=int, default=2, help="server worker processes, each side")
    ap.add_argument(
        "--threads",
        type=int,
        default=4,
        help="threads per gunicorn worker (Steward, MLflow-gunicorn)",
    )
    ap.add_argument(
        "--celery",
        choices=["eager", "worker"],
        default="eager",
        help="Steward's file copy: in the request (eager) or in a real Celery worker on Redis",
    )
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="for --celery worker")
    ap.add_argument(
        "--mlflow-server",
        choices=["uvicorn", "gunicorn", "both"],
        default="both",
        help="MLflow's HTTP server: its default uvicorn, gunicorn (--gunicorn-opts), or both",
    )
    ap.add_argument("--only", choices=["steward", "mlflow"], help="run one side only")
    ap.add_argument("--order", choices=["steward-first", "mlflow-first"], default="steward-first")
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="run every server this many times, alternating, and report each one's fastest "
        "round (keeps other processes' load on the shared cores out of the comparison)",
    )
    ap.add_argument("--keep", action="store_true", help="keep databases, artifacts and logs")
    # Internal: the client half, run in a subprocess per side.
    ap.add_argument("--client", metavar="TRACKING_URI", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--pgids", default="", help=argparse.SUPPRESS)
    ap.add_argument("--db-name", default="", help=argparse.SUPPRESS)
    ap.add_argument("--analyze-url", default="", help=argparse.SUPPRESS)
    ap.add_argument(
        "--no-analyze",
        action="store_true",
        help="do not ANALYZE the databases after the register phase (see the README)",
    )
    return ap.parse_args(argv)


# --- CPU accounting (server processes and their PostgreSQL backends) --------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pgids: set[int], db_name: str) -> dict[tuple[str, int], int]:
    """CPU ticks (user+system) so far of every process in `pgids` (the server: master,
    workers and helpers) and of every PostgreSQL backend connected to `db_name`, keyed by
    ("srv" | "db", pid)."""
    out: dict[tuple[str, int], int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        comm_end = stat.rfind(")")
        fields = stat[comm_end + 2 :].split()
        # fields[0] is the state; pgrp is fields[2]; utime and stime are fields[11] and [12]
        ticks = int(fields[11]) + int(fields[12])
        if int(fields[2]) in pgids:
            out[("srv", int(entry.name))] = ticks
        elif db_name and stat[stat.find("(") + 1 : comm_end] == "postgres":
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    cmd = fh.read().decode(errors="replace")
            except OSError:
                continue
            if f" {db_name} " in cmd:
                out[("db", int(entry.name))] = ticks
    return out


def cpu_delta(before: dict, after: dict) -> tuple[float, float]:
    """CPU seconds spent between two snapshots by the server and by its database backends.
    A process that exited in between is not counted (both servers keep their workers and
    pooled connections, so this loses little)."""
    srv = db = 0
    for key, ticks in after.items():
        spent = ticks - before.get(key, 0)
        if key[0] == "srv":
            srv += spent
        else:
            db += spent
    return srv / _TICK, db / _TICK


# --- the client workload (identical for both sides) --------------------------------------------


def make_model_dir(base: Path, tag: str) -> Path:
    """A small MLmodel-style directory: MLmodel, weights.json and requirements.txt."""
    import random

    path = base / tag
    path.mkdir(parents=True)
    (path / "MLmodel").write_text(
        "artifact_path: model\n"
        "flavors:\n"
        "  python_function:\n"
        "    data: weights.json\n"
        "    env:\n"
        "      virtualenv: requirements.txt\n"
        "    loader_module: bench_model\n"
        "    python_version: 3.11.7\n"
        "mlflow_version: 3.17.2\n"
        f"model_uuid: {secrets.token_hex(16)}\n"
        "signature:\n"
        '  inputs: \'[{"type": "double", "name": "x", "required": true}]\'\n'
        '  outputs: \'[{"type": "double", "required": true}]\'\n'
    )
    rng = random.Random(tag)
    (path / "weights.json").write_text(json.dumps([round(rng.random(), 6) for _ in range(120)]))
    (path / "requirements.txt").write_text("numpy\n")
    return path


class Timer:
    """Per-phase wall time and per-call latencies; server CPU read at the phase edges."""

    def __init__(self, pgids: set[int], db_name: str):
        self.pgids, self.db_name = pgids, db_name
        self.results: dict[str, dict] = {}
        self.phase = None

    def start(self, phase: str) -> None:
        self.phase = phase
        self.lat: list[float] = []
        self.cpu0 = cpu_ticks(self.pgids, self.db_name) if self.pgids else {}
        self.client_cpu0 = time.process_time()
        self.t0 = time.perf_counter()

    def call(self, fn, *args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        self.lat.append(time.perf_counter() - t)
        return out

    def stop(self) -> None:
        wall = time.perf_counter() - self.t0
        client_cpu = time.process_time() - self.client_cpu0
        srv, db = cpu_delta(self.cpu0, cpu_ticks(self.pgids, self.db_name) if self.pgids else {})
        lat = sorted(self.lat)
        self.results[self.phase] = {
            "ops": len(lat),
            "wall": wall,
            "p50": statistics.median(lat),
            "p95": lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))],
            "server_cpu": srv,
            "db_cpu": db,
            "client_cpu": client_cpu,
        }


def run_workload(
    client, t: Timer, *, prefix: str, n_models: int, n_versions: int, tmp: Path, analyze=None
):
    """The benchmark proper: the same calls, in the same order, on either server. `analyze`
    (untimed, after the register phase) stands in for PostgreSQL's autoanalyze."""
    import mlflow

    names = [f"{CATALOG}.{SCHEMA}.{prefix}{i:03d}" for i in range(n_models)]
    per_model = [
        n_versions // n_models + (1 if i < n_versions % n_models else 0) for i in range(n_models)
    ]

    # log: one run per model with a small model directory.
    t.start("log")
    exp_id = t.call(client.create_experiment, f"bench-registry-{prefix}")
    runs = []
    for name in names:
        local = make_model_dir(tmp / "src", name)
        run = t.call(client.create_run, exp_id)
        t.call(client.log_artifacts, run.info.run_id, str(local), "model")
        t.call(client.set_terminated, run.info.run_id)
        runs.append(run.info.run_id)
    t.stop()

    # register: the models, then their versions (each READY when create returns).
    t.start("register")
    for name in names:
        t.call(client.create_registered_model, name)
    for name, run_id, count in zip(names, runs, per_model, strict=True):
        for _ in range(count):
            mv = t.call(client.create_model_version, name, f"runs:/{run_id}/model", run_id=run_id)
            # The client has waited for READY (it raises otherwise) but returns the answer of
            # the create call, which is PENDING_REGISTRATION when a worker copies the files.
            if mv.status not in ("READY", "PENDING_REGISTRATION"):
                raise RuntimeError(f"{name} v{mv.version} is {mv.status}")
    t.stop()
    if analyze is not None:
        analyze()

    # alias: champion and challenger, moved 5 times each.
    rounds = 5
    expected = {}
    t.start("alias")
    for r in range(rounds):
        for name, count in zip(names, per_model, strict=True):
            step = max(1, count // rounds)
            for alias, version in (
                ("champion", min(count, r * step + step // 2 + 1)),
                ("challenger", min(count, (r + 1) * step)),
            ):
                t.call(client.set_registered_model_alias, name, alias, str(version))
                expected[(name, alias)] = str(version)
    t.stop()

    # search: models by name pattern, versions by model name and by run id.
    t.start("search_models")
    for _ in range(20):
        found = t.call(
            client.search_registered_models,
            filter_string=f"name LIKE '{CATALOG}.{SCHEMA}.{prefix}%'",
            max_results=100,
        )
        if len(found) != n_models:
            raise RuntimeError(f"search_registered_models found {len(found)} of {n_models}")
    t.stop()
    t.start("search_versions")
    for i in range(20):
        k = i % n_models
        found = t.call(
            client.search_model_versions, filter_string=f"name = '{names[k]}'", max_results=100
        )
        if len(found) != per_model[k]:
            raise RuntimeError(f"search_model_versions found {len(found)} of {per_model[k]}")
    t.stop()
    t.start("search_by_run")
    for i in range(10):
        k = i % n_models
        found = t.call(
            client.search_model_versions, filter_string=f"run_id = '{runs[k]}'", max_results=100
        )
        if len(found) != per_model[k]:
            raise RuntimeError(f"search by run_id found {len(found)} of {per_model[k]}")
    t.stop()

    # resolve: every alias, 10 times.
    t.start("resolve")
    for _ in range(10):
        for name in names:
            for alias in ("champion", "challenger"):
                mv = t.call(client.get_model_version_by_alias, name, alias)
                if mv.version != expected[(name, alias)]:
                    raise RuntimeError(f"{name}@{alias} is v{mv.version}")
    t.stop()

    # download: by alias (twice per model) and by version number (once per model).
    uris = [f"models:/{name}@champion" for name in names] * 2
    uris += [
        f"models:/{name}/{min(7, count)}" for name, count in zip(names, per_model, strict=True)
    ]
    t.start("download")
    for i, uri in enumerate(uris):
        dst = tmp / "dl" / f"{prefix}{i}"
        dst.mkdir(parents=True)
        got = Path(t.call(mlflow.artifacts.download_artifacts, artifact_uri=uri, dst_path=str(dst)))
        files = {p.name for p in got.rglob("*") if p.is_file()}
        # (the client adds registered_model_meta itself)
        if not {"MLmodel", "requirements.txt", "weights.json"} <= files or (
            "loader_module: bench_model" not in (got / "MLmodel").read_text()
        ):
            raise RuntimeError(f"{uri} downloaded {sorted(files)}")
    t.stop()


def client_main(args) -> None:
    """The client half: a warm-up, then the timed workload; results as JSON to --out."""
    import logging

    import mlflow
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    uri = args.client
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    pgids = {int(p) for p in args.pgids.split(",") if p}
    tmp = Path(tempfile.mkdtemp(prefix="bench-client-"))
    try:
        warm = Timer(set(), "")
        run_workload(client, warm, prefix="warmup", n_models=3, n_versions=30, tmp=tmp)
        t = Timer(pgids, args.db_name)
        t0 = time.perf_counter()
        run_workload(
            client,
            t,
            prefix="m",
            n_models=args.models,
            n_versions=args.versions,
            tmp=tmp,
            analyze=(lambda: analyze_database(args.analyze_url)) if args.analyze_url else None,
        )
        total = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).write_text(json.dumps({"phases": t.results, "elapsed": total}))


# --- the servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin_conn_url(url: str) -> tuple[str, str]:
    """(libpq URL of the server's `postgres` database, database name) for a database URL."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"refusing to drop/create {name!r}: the database name must contain 'bench'")
    return parsed._replace(scheme="postgresql", path="/postgres").geturl(), name


def libpq_url(url: str) -> str:
    """A database URL as psycopg takes it (no SQLAlchemy driver suffix)."""
    return urlparse(url)._replace(scheme="postgresql").geturl()


def analyze_database(url: str) -> None:
    """ANALYZE every table. The PostgreSQL server here runs with autovacuum off, so without
    this neither server's freshly filled tables would ever have planner statistics; a
    production server's autoanalyze would have run after the first few hundred inserts."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def recreate_database(url: str, *, drop_only: bool = False) -> str:
    import psycopg

    admin, name = admin_conn_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')
    return name


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited ({proc.returncode}); see {log}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.5)
    sys.exit(f"server not answering at {url} after {timeout} s; see {log}")


def stop_group(proc: subprocess.Popen | None) -> None:
    """Stop a server started in its own session: SIGTERM its process group, then SIGKILL."""
    if proc is None:
        return
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


STEWARD_SETUP = f"""
from django.conf import settings
from django.contrib.auth.models import Group
from accounts.models import User
from accounts.services import api_token_issue
from catalog.selectors import metastore
from catalog.services import catalog_create, permissions_update, schema_create
from core.actor import Actor

metastore()
admin = User.objects.create_user(username="bench_admin", password=None)
admin.groups.add(Group.objects.get_or_create(name=settings.STEWARD_ADMIN_GROUP)[0])
root = Actor.system(admin)
catalog_create(actor=root, name="{CATALOG}")
schema_create(actor=root, catalog_name="{CATALOG}", name="{SCHEMA}")
User.objects.create_user(username="{USERNAME}", password=None)
permissions_update(actor=root, securable_type="catalog", full_name="{CATALOG}",
    changes=[{{"principal": "{USERNAME}", "add": ["USE CATALOG"], "remove": []}}])
permissions_update(actor=root, securable_type="schema", full_name="{CATALOG}.{SCHEMA}",
    changes=[{{"principal": "{USERNAME}", "add": ["USE SCHEMA", "CREATE MODEL", "EXECUTE"],
               "remove": []}}])
user = User.objects.get(username="{USERNAME}")
assert not user.is_superuser and not user.is_staff
assert not user.groups.filter(name=settings.STEWARD_ADMIN_GROUP).exists()
_, raw = api_token_issue(actor=Actor.system(user), user=user, name="bench", scope="all")
print("TOKEN=" + raw)
"""


class Side:
    name: str
    db_name: str
    procs: list[subprocess.Popen]
    url: str
    token: str | None = None

    def pgids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_group(proc)
        self.procs = []


class Steward(Side):
    name = "Steward"

    def __init__(self, args, work: Path):
        self.args, self.work, self.procs = args, work, []
        self.db_name = recreate_database(args.database_url)
        self.libpq_url = libpq_url(args.database_url)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DATABASE_URL": args.database_url,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "STEWARD_DATA_DIR": str(work / "steward-data"),
            "STEWARD_ARTIFACT_ROOT": str(work / "steward-artifacts"),
            "STEWARD_SECURE_COOKIES": "false",
            "REDIS_URL": args.redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "true" if args.celery == "eager" else "false",
        }

    def start(self) -> None:
        def manage(*cmd: str) -> str:
            out = subprocess.run(
                [PY, "manage.py", *cmd], cwd=ROOT, env=self.env, capture_output=True, text=True
            )
            if out.returncode:
                sys.exit(f"manage.py {cmd[0]} failed:\n{out.stdout}\n{out.stderr}")
            return out.stdout

        manage("migrate", "--noinput", "-v0")
        lines = manage("shell", "-c", STEWARD_SETUP).strip().splitlines()
        self.token = lines[-1].removeprefix("TOKEN=")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **self.env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(self.args.workers),
            "GUNICORN_THREADS": str(self.args.threads),
        }
        log = self.work / "steward-gunicorn.log"
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        wait_http(self.url + "/api/3.0/mlflow/server-info", proc, log)
        if self.args.celery == "worker":
            wlog = self.work / "steward-celery.log"
            worker = subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "config",
                    "worker",
                    "-l",
                    "warning",
                    "-c",
                    str(self.args.workers),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=wlog.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.procs.append(worker)
            time.sleep(8)  # let it connect to the broker
            if worker.poll() is not None:
                sys.exit(f"celery worker exited; see {wlog}")

    def drop(self) -> None:
        recreate_database(self.args.database_url, drop_only=True)


class MLflow(Side):
    def __init__(self, args, work: Path, server: str):
        self.args, self.work, self.procs, self.server = args, work, [], server
        self.name = f"MLflow-{server}"
        self.db_name = recreate_database(args.mlflow_database_url)
        self.libpq_url = libpq_url(args.mlflow_database_url)

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        artifacts = self.work / f"{self.name}-artifacts"
        artifacts.mkdir()
        log = self.work / f"{self.name}-server.log"
        # uvicorn is `mlflow server`'s default; --gunicorn-opts switches it to gunicorn (gthread
        # with as many threads per worker as Steward's gunicorn).
        extra = ["--gunicorn-opts", f"--threads {self.args.threads}"]
        if self.server == "uvicorn":
            extra = []
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        proc = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                self.args.mlflow_database_url,
                "--artifacts-destination",
                str(artifacts),
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(self.args.workers),
                *extra,
            ],
            cwd=self.work,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        wait_http(self.url + "/health", proc, log)

    def drop(self) -> None:
        recreate_database(self.args.mlflow_database_url, drop_only=True)


def run_client(side: Side, args, work: Path) -> dict:
    out = work / f"result-{side.name}.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLFLOW_") and k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        MLFLOW_TRACKING_URI=side.url,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="120",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
    )
    if side.token:
        env["MLFLOW_TRACKING_TOKEN"] = side.token
    cmd = [
        PY,
        __file__,
        "--client",
        side.url,
        "--out",
        str(out),
        "--models",
        str(args.models),
        "--versions",
        str(args.versions),
        "--pgids",
        ",".join(map(str, side.pgids())),
        "--db-name",
        side.db_name,
    ]
    if not args.no_analyze:
        cmd += ["--analyze-url", side.libpq_url]
    log = work / f"client-{side.name}.log"
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode:
        sys.exit(f"{side.name} client failed; see {log}:\n{log.read_text()[-4000:]}")
    return json.loads(out.read_text())


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_side(make, args, work: Path) -> dict:
    side = make()
    try:
        t = time.perf_counter()
        side.start()
        print(
            f"  {side.name}: server up at {side.url} in {time.perf_counter() - t:.1f} s "
            f"(pids {side.pgids()}); load {load()}",
            flush=True,
        )
        result = run_client(side, args, work)
        result["load_end"] = load()
        print(
            f"  {side.name}: {result['elapsed']:.1f} s timed; load {result['load_end']}", flush=True
        )
        return result
    finally:
        side.stop()
        if not args.keep:
            side.drop()


def _overall(r: dict) -> dict:
    phases = r["phases"].values()
    out = {
        k: sum(p[k] for p in phases) for k in ("ops", "wall", "server_cpu", "db_cpu", "client_cpu")
    }
    return out


def _phase(r: dict, phase: str) -> dict:
    return _overall(r) if phase == "overall" else r["phases"][phase]


def _rate(p: dict) -> float:
    return p["ops"] / p["wall"]


def report(results: dict[str, dict]) -> None:
    """One table per side, then the ratios Steward/MLflow per phase and overall."""
    print()
    print("ops/s = client calls / wall seconds of the phase; p50/p95 = ms per call;")
    print("CPU ms per call of the server processes (srv), of their PostgreSQL backends (db)")
    print("and of the client process (cli)")
    for side, r in results.items():
        print(f"\n{side}  (timed {r['elapsed']:.1f} s, load at end {r['load_end']})")
        head = (
            f"{'phase':<15} {'ops':>4} {'ops/s':>7} {'p50':>6} {'p95':>6} "
            f"{'srv':>5} {'db':>5} {'cli':>5}"
        )
        print(head)
        print("-" * len(head))
        for phase in [*PHASES, "overall"]:
            p = _phase(r, phase)
            p50 = f"{p['p50'] * 1000:6.1f}" if "p50" in p else f"{'':>6}"
            p95 = f"{p['p95'] * 1000:6.1f}" if "p95" in p else f"{'':>6}"
            n = p["ops"]
            print(
                f"{phase:<15} {n:>4} {_rate(p):7.1f} {p50} {p95} "
                f"{p['server_cpu'] / n * 1000:5.1f} {p['db_cpu'] / n * 1000:5.1f} "
                f"{p['client_cpu'] / n * 1000:5.1f}"
            )
    others = [side for side in results if side != "Steward"]
    if "Steward" not in results or not others:
        return
    print("\nRatio of ops/s, Steward / MLflow")
    head = f"{'phase':<15}" + "".join(f" {'/ ' + o:>17}" for o in others)
    print(head)
    print("-" * len(head))
    for phase in [*PHASES, "overall"]:
        rates = {side: _rate(_phase(r, phase)) for side, r in results.items()}
        print(f"{phase:<15}" + "".join(f" {rates['Steward'] / rates[o]:17.2f}" for o in others))
    print()
    for o in others:
        ratio = _rate(_overall(results["Steward"])) / _rate(_overall(results[o]))
        verdict = "met" if ratio >= 1.0 else "NOT met"
        print(f"Overall Steward/{o}: {ratio:.2f} (target >= 1.0: {verdict})")


def main() -> None:
    args = parse_args()
    if args.client:
        client_main(args)
        return
    import django
    import mlflow

    admin_conn_url(args.database_url)
    admin_conn_url(args.mlflow_database_url)
    print(
        f"mlflow registry benchmark: {args.versions} versions over {args.models} models; "
        f"{args.workers} worker processes per server (Steward gunicorn x{args.threads} threads, "
        f"celery {args.celery}; MLflow {args.mlflow_server.replace('both', 'uvicorn and gunicorn')}"
        f"{'' if args.no_analyze else '; ANALYZE after register'})"
    )
    print(
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"mlflow {mlflow.__version__}, {os.cpu_count()} CPUs, load {load()}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="bench-mlflow-registry-"))
    servers = ["uvicorn", "gunicorn"] if args.mlflow_server == "both" else [args.mlflow_server]
    steward = [("Steward", lambda w: Steward(args, w))]
    mlflows = [(f"MLflow-{s}", lambda w, s=s: MLflow(args, w, s)) for s in servers]
    order = steward + mlflows if args.order == "steward-first" else mlflows + steward
    if args.only:
        order = steward if args.only == "steward" else mlflows
    results: dict[str, dict] = {}
    rounds: dict[str, list[float]] = {}
    try:
        for n in range(max(1, args.rounds)):
            if n:
                print(f"round {n + 1} of {args.rounds}", flush=True)
            here = work / f"round-{n + 1}"  # each round's servers get fresh directories
            here.mkdir()
            for name, make in order:
                result = run_side(lambda make=make, here=here: make(here), args, here)
                rounds.setdefault(name, []).append(result["elapsed"])
                if name not in results or result["elapsed"] < results[name]["elapsed"]:
                    results[name] = result
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if max(1, args.rounds) > 1:
        print("\ntimed seconds per round (the fastest of each server is reported below)")
        for name, times in rounds.items():
            print(f"  {name:16} " + "  ".join(f"{t:6.1f}" for t in times))
    report(results)


if __name__ == "__main__":
    main()
