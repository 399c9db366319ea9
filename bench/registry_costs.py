"""Where Steward's server time goes under the mlflow client: per-endpoint CPU and queries.

Runs the workload of `bench/mlflow_registry.py` (the same `run_workload`, the real mlflow
client) in one process, with the client's HTTP requests handed straight to Steward's WSGI
application instead of a socket. Only the time inside the WSGI call is counted, so the figures
are the server's cost per request, grouped by route: CPU (`time.thread_time` of the one server
thread), wall, SQL statements and, with `--calls`, Python function calls. `--profile` also
runs cProfile over the server side only and prints the top entries.

    .venv/bin/python bench/registry_costs.py [--versions 100 --models 4] [--profile]

It drops and recreates `steward_bench_costs` (the name must contain `bench`), with production
settings, eager Celery and a temporary artifact root, then drops it again (`--keep` keeps it).
This is a measuring tool for the lead, not the issue's comparison: that is mlflow_registry.py.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_costs"
HOST = "steward.bench"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    ap.add_argument("--versions", type=int, default=100)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--profile", action="store_true", help="cProfile the server side")
    ap.add_argument("--top", type=int, default=45, help="profile entries to print")
    ap.add_argument("--route", default="", help="profile only routes containing this text")
    ap.add_argument("--dump", default="", help="with --profile: also write the profile here")
    ap.add_argument(
        "--calls",
        action="store_true",
        help="also count Python function calls per request (cProfile): unlike CPU time, the "
        "count does not move with the machine's load, so it compares code changes",
    )
    ap.add_argument("--sql", default="", help="print the statements of one request of this route")
    ap.add_argument("--keep", action="store_true")
    return ap.parse_args()


def route_of(method: str, path: str) -> str:
    path = re.sub(r"/artifacts/.+", "/artifacts/<path>", path)
    return f"{method} {path}"


def main() -> None:
    args = parse_args()
    from mlflow_registry import STEWARD_SETUP, recreate_database, run_workload

    work = Path(tempfile.mkdtemp(prefix="steward-costs-"))
    db_name = recreate_database(args.database_url)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DATABASE_URL": args.database_url,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": HOST,
            "STEWARD_DATA_DIR": str(work / "data"),
            "STEWARD_ARTIFACT_ROOT": str(work / "artifacts"),
            "STEWARD_SECURE_COOKIES": "false",
            "CELERY_TASK_ALWAYS_EAGER": "true",
        }
    )
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", "--noinput", verbosity=0)
    out = io.StringIO()
    real_stdout, sys.stdout = sys.stdout, out
    try:
        exec(STEWARD_SETUP, {})  # noqa: S102 - the benchmark's own setup text
    finally:
        sys.stdout = real_stdout
    token = out.getvalue().strip().splitlines()[-1].removeprefix("TOKEN=")

    import requests
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    stats: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    profiler = cProfile.Profile() if args.profile else None
    counting = {"on": False}
    queries = [0]

    statements: list[str] = []
    shown = {"done": False}

    def count_queries(execute, sql, params, many, context):
        queries[0] += 1
        statements.append(sql)
        return execute(sql, params, many, context)

    def send(adapter, request, **kwargs):
        from urllib.parse import urlsplit

        url = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = b"".join(body) if hasattr(body, "__iter__") else body.read()
        environ = {
            "REQUEST_METHOD": request.method,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "SERVER_NAME": HOST,
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
            "CONTENT_LENGTH": str(len(body)),
        }
        for key, value in request.headers.items():
            name = key.upper().replace("-", "_")
            if name == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif name != "CONTENT_LENGTH":
                environ[f"HTTP_{name}"] = value
        environ["HTTP_HOST"] = HOST
        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        route = route_of(request.method, url.path)
        profile_this = profiler is not None and args.route in route and counting["on"]

        def serve():
            # One server thread, as in a gunicorn worker thread: the client's download threads
            # would otherwise each open (and pay for) a new database connection.
            queries[0] = 0
            counter = cProfile.Profile() if args.calls and counting["on"] else None
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            with connection.execute_wrapper(count_queries):
                active = profiler if profile_this else counter
                if active is not None:
                    active.enable()
                result = app(environ, start_response)
                body = b"".join(result)
                if hasattr(result, "close"):
                    result.close()
                if active is not None:
                    active.disable()
            cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
            calls = pstats.Stats(counter).total_calls if counter is not None else 0
            return body, cpu, wall, queries[0], calls

        statements.clear()
        chunks, cpu, wall, nq, ncalls = server.submit(serve).result()
        if args.sql and args.sql in route and counting["on"] and not shown["done"]:
            shown["done"] = True
            print(f"--- {route}: {len(statements)} statements")
            for sql in statements:
                print("   ", sql[:300])
        if counting["on"]:
            entry = stats[route]
            entry["cpu"].append(cpu * 1000)
            entry["wall"].append(wall * 1000)
            entry["q"].append(nq)
            entry["calls"].append(ncalls)
        response = requests.Response()
        response.status_code = int(captured["status"].split()[0])
        response.headers = requests.structures.CaseInsensitiveDict(captured["headers"])
        response._content = chunks
        response._content_consumed = True
        response.raw = io.BytesIO(chunks)
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    from concurrent.futures import ThreadPoolExecutor

    server = ThreadPoolExecutor(max_workers=1)
    requests.adapters.HTTPAdapter.send = send
    os.environ["MLFLOW_TRACKING_URI"] = f"http://{HOST}"
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    from mlflow.tracking import MlflowClient

    class Timer:
        def start(self, phase):
            pass

        def call(self, fn, *a, **kw):
            return fn(*a, **kw)

        def stop(self):
            pass

    client = MlflowClient()
    tmp = work / "client"
    tmp.mkdir()
    run_workload(client, Timer(), prefix="w", n_models=2, n_versions=6, tmp=tmp / "w")
    counting["on"] = True
    t0 = time.perf_counter()
    run_workload(
        client, Timer(), prefix="m", n_models=args.models, n_versions=args.versions, tmp=tmp / "m"
    )
    total = time.perf_counter() - t0
    counting["on"] = False

    print(f"{args.versions} versions over {args.models} models; workload {total:.1f} s wall")
    print(
        f"{'route':62} {'n':>5} {'cpu p50':>8} {'cpu avg':>8} {'wall p50':>8} {'q':>5} {'calls':>7}"
    )
    rows = sorted(stats.items(), key=lambda kv: -sum(kv[1]["cpu"]))
    all_cpu = sum(sum(v["cpu"]) for _, v in rows)
    for route, v in rows:
        print(
            f"{route[:62]:62} {len(v['cpu']):5d} {statistics.median(v['cpu']):8.2f} "
            f"{statistics.fmean(v['cpu']):8.2f} {statistics.median(v['wall']):8.2f} "
            f"{statistics.median(v['q']):5.0f} {statistics.median(v['calls']):7.0f}"
        )
    n = sum(len(v["cpu"]) for _, v in rows)
    print(f"server CPU total {all_cpu / 1000:.2f} s over {n} requests ({all_cpu / n:.2f} ms/req)")
    if profiler is not None:
        if args.dump:
            profiler.dump_stats(args.dump)
        s = io.StringIO()
        pstats.Stats(profiler, stream=s).sort_stats("cumulative").print_stats(args.top)
        print(s.getvalue())
        s = io.StringIO()
        pstats.Stats(profiler, stream=s).sort_stats("tottime").print_stats(args.top)
        print(s.getvalue())
    from django.db import connections

    server.submit(connections.close_all).result()
    server.shutdown()
    connection.close()
    if not args.keep:
        recreate_database(args.database_url, drop_only=True)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept database {db_name} and {work}")


if __name__ == "__main__":
    main()
