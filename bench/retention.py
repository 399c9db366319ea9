#!/usr/bin/env python
"""Benchmark: one retention sweep over N model versions (PostgreSQL), as the worker runs it.

Not a test. Creates its own database (default `steward_bench_retention`), migrates it and
bulk-loads N versions (`--versions`, default 100,000) with COPY: N/100 models of 100 versions
each, in 2 catalogs x 4 schemas, created over the last two years, the oldest 30 of each model
already ARCHIVED (half of them by retention, with `archived_at` set; half by hand). Both
catalogs carry the policy "archive after 180 days, keep the newest 3, delete 365 days after
archiving". Some versions hold an alias, sit in Staging or Production, are the target of a
pending promotion request or are under legal hold (on the version or its model), so every
"never touched" check runs.

It then runs the Celery task `registry.tasks.apply_retention` synchronously (`.apply()`, the
task body with a task id, as a worker runs it) in a separate Python process under
`/usr/bin/time -v`, and reports that process's wall time and peak RSS, the counts (due
versions examined, archived, deleted, kept because protected) against the counts expected
from the generated data, and checks that no protected version was touched and that there is
exactly one audit event per archived or deleted version. `--verify-audit` also recomputes the
whole audit hash chain (`manage.py verify_audit`). The database is dropped at the end
(--keep keeps it). See bench/README.md.

    .venv/bin/python bench/retention.py --versions 100000
    .venv/bin/python bench/retention.py --versions 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/steward_bench_retention"
PER_MODEL = 100
N_CATALOGS = 2
N_SCHEMAS = 4  # per catalog
ARCHIVE_AFTER, KEEP_LAST, DELETE_AFTER = 180, 3, 365
SPAN_DAYS = 730
ARCHIVED_OLDEST = 30  # the oldest 30 versions of each model start ARCHIVED


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    ap.add_argument("--versions", type=int, default=100_000, help="number of versions (N)")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--profile", action="store_true", help="run the sweep under cProfile (slower)")
    ap.add_argument(
        "--sql-times", action="store_true", help="print the statements the sweep spent most on"
    )
    ap.add_argument(
        "--verify-audit", action="store_true", help="recompute the audit hash chain afterwards"
    )
    ap.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="STEWARD_RETENTION_BATCH_SIZE for the worker (default: the settings' value)",
    )
    return ap.parse_args()


ARGS = parse_args()
_db = urlparse(ARGS.database_url)
DB_NAME = _db.path.lstrip("/")
if "bench" not in DB_NAME:
    sys.exit(f"refusing to drop/create {DB_NAME!r}: the database name must contain 'bench'")
os.environ["DATABASE_URL"] = ARGS.database_url
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
if ARGS.batch_size:
    os.environ["STEWARD_RETENTION_BATCH_SIZE"] = str(ARGS.batch_size)


def admin_conn():
    import psycopg

    admin_url = _db._replace(scheme="postgresql", path="/postgres").geturl()
    return psycopg.connect(admin_url, autocommit=True)


def recreate_database() -> None:
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    from django.db import connections

    connections.close_all()
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


recreate_database()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit.models import AuditEvent  # noqa: E402
from catalog.models import Catalog, Schema  # noqa: E402
from registry.models import (  # noqa: E402
    LegalHold,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    PromotionRequest,
    RegisteredModel,
    RetentionPolicy,
    RetentionRun,
)

Lifecycle = ModelVersion.Lifecycle


# --- the data set --------------------------------------------------------------------------


def protection_of(m: int) -> dict[int, str]:
    """The protected versions of model number m: {version number: why}; "*" for all."""
    out = {}
    if m % 10 == 0:
        out[10] = "alias"
    if m % 10 == 1:
        out[20] = "production"
    if m % 10 == 2:
        out[5] = "staging"
    if m % 10 == 3:
        out[15] = "request"
    if m % 10 == 5:
        out[1] = "hold"
    return out


def model_hold(m: int) -> bool:
    return m % 50 == 4


def copy_rows(table: str, columns: list[str], rows) -> int:
    n = 0
    with connection.cursor() as cur:
        raw = cur.cursor
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def build(n_versions: int, rng: random.Random, now: dt.datetime) -> dict:
    """Load the data set; return the counts a sweep at (about) `now` must produce and the ids
    of the protected versions."""
    n_models = max(1, n_versions // PER_MODEL)
    catalogs = [Catalog(name=f"c{c}", created_at=now, updated_at=now) for c in range(N_CATALOGS)]
    Catalog.objects.bulk_create(catalogs)
    schemas = [
        Schema(catalog=cat, name=f"s{s}", full_name=f"{cat.name}.s{s}")
        for cat in catalogs
        for s in range(N_SCHEMAS)
    ]
    Schema.objects.bulk_create(schemas)
    for cat in catalogs:
        RetentionPolicy.objects.create(
            catalog=cat,
            archive_after_days=ARCHIVE_AFTER,
            keep_last=KEEP_LAST,
            delete_after_days=DELETE_AFTER,
            created_by="bench",
        )
    models = []
    for m in range(n_models):
        schema = schemas[m % len(schemas)]
        name = f"m{m:06d}"
        models.append(
            RegisteredModel(
                id=uuid.uuid4(),
                schema=schema,
                name=name,
                full_name=f"{schema.full_name}.{name}",
                next_version=PER_MODEL + 1,
            )
        )
    RegisteredModel.objects.bulk_create(models, batch_size=5000)

    expected = {"archive": 0, "delete": 0, "keep": 0}
    protected_ids: list[uuid.UUID] = []
    aliases, requests, holds = [], [], []
    archive_cut = now - dt.timedelta(days=ARCHIVE_AFTER)
    delete_cut = now - dt.timedelta(days=DELETE_AFTER)
    step = dt.timedelta(days=SPAN_DAYS / PER_MODEL)

    def versions():
        for m, model in enumerate(models):
            # whole days + 12 h: no version sits within hours of a cut-off at run time
            start = now - dt.timedelta(days=SPAN_DAYS - rng.randrange(0, 8), hours=12)
            protect = protection_of(m)
            held = model_hold(m)
            if held:
                holds.append(
                    LegalHold(model_id=model.pk, reason="bench", created_by="b", updated_by="b")
                )
            for v in range(1, PER_MODEL + 1):
                vid = uuid.uuid4()
                created = start + step * (v - 1)
                updated = created
                lifecycle = Lifecycle.ACTIVE
                archived_when = archived_at = None
                if v <= ARCHIVED_OLDEST:
                    lifecycle = Lifecycle.ARCHIVED
                    archived_when = updated = created + dt.timedelta(days=ARCHIVE_AFTER)
                    if v % 2 == 0:  # archived by retention; odd: by hand (updated_at counts)
                        archived_at = archived_when
                why = protect.get(v)
                stage = {"production": "Production", "staging": "Staging"}.get(why, "None")
                if why == "alias":
                    aliases.append(ModelAlias(model_id=model.pk, alias="champion", version_id=vid))
                elif why == "request":
                    requests.append((model.pk, vid, v))
                elif why == "hold":
                    holds.append(
                        LegalHold(
                            model_id=model.pk,
                            version_id=vid,
                            reason="bench",
                            created_by="b",
                            updated_by="b",
                        )
                    )
                # expected outcome (keep_last: versions PER_MODEL-2..PER_MODEL are never due)
                due = None
                if v <= PER_MODEL - KEEP_LAST:
                    if lifecycle == Lifecycle.ACTIVE and created <= archive_cut:
                        due = "archive"
                    elif lifecycle == Lifecycle.ARCHIVED and archived_when <= delete_cut:
                        due = "delete"
                if due is not None:
                    if why or held:
                        expected["keep"] += 1
                    else:
                        expected[due] += 1
                if why or held:
                    protected_ids.append(vid)
                yield (
                    vid,
                    model.pk,
                    v,
                    "READY",
                    "",
                    lifecycle,
                    stage,
                    f"runs:/{uuid.uuid4().hex}/model",
                    "",
                    "",
                    "",
                    "",
                    "0" * 64,
                    created,
                    "bench",
                    updated,
                    "bench",
                    archived_at,
                )

    cols = [
        "id",
        "model_id",
        "version",
        "status",
        "status_message",
        "lifecycle",
        "stage",
        "source",
        "run_id",
        "logged_model_id",
        "storage_location",
        "description",
        "artifact_digest",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "archived_at",
    ]
    with transaction.atomic():
        loaded = copy_rows(ModelVersion._meta.db_table, cols, versions())
        # one tag per version, every fourth version (retention deletes a deleted version's tags)
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {ModelVersionTag._meta.db_table} (version_id, key, value) "
                f"SELECT id, 'team', 'bench' FROM {ModelVersion._meta.db_table} "
                "WHERE version % 4 = 0"
            )
        ModelAlias.objects.bulk_create(aliases, batch_size=5000)
        LegalHold.objects.bulk_create(holds, batch_size=5000)
        PromotionRequest.objects.bulk_create(
            [
                PromotionRequest(
                    model_id=mid,
                    alias="champion",
                    version_id=vid,
                    version_number=v,
                    requester_name="bench",
                    expires_at=now + dt.timedelta(days=7),
                )
                for mid, vid, v in requests
            ],
            batch_size=5000,
        )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    return {
        "models": n_models,
        "versions": loaded,
        "expected": expected,
        "protected": protected_ids,
        "aliases": len(aliases),
        "requests": len(requests),
        "holds": len(holds),
    }


# --- the sweep -----------------------------------------------------------------------------

WORKER = """
import json, time, django
django.setup()
from registry.tasks import apply_retention
t0 = time.perf_counter()
result = apply_retention.apply().get()
result["task_seconds"] = time.perf_counter() - t0
print("RESULT " + json.dumps(result))
"""

PROFILED = WORKER.replace(
    "result = apply_retention.apply().get()",
    "import cProfile, pstats\n"
    "prof = cProfile.Profile()\n"
    "result = prof.runcall(lambda: apply_retention.apply().get())\n"
    "stats = pstats.Stats(prof)\n"
    "stats.sort_stats('cumulative').print_stats(40)\n"
    "stats.sort_stats('tottime').print_stats(25)",
)

SQL_TIMED = WORKER.replace(
    "result = apply_retention.apply().get()",
    "import re, collections\n"
    "from django.db import connection\n"
    "spent = collections.defaultdict(lambda: [0, 0.0])\n"
    "def timed(execute, sql, params, many, context):\n"
    "    t = time.perf_counter()\n"
    "    try:\n"
    "        return execute(sql, params, many, context)\n"
    "    finally:\n"
    "        key = re.sub(r'\\s+', ' ', re.sub(r'%s(, %s)*', '%s', sql))[:110]\n"
    "        spent[key][0] += 1\n"
    "        spent[key][1] += time.perf_counter() - t\n"
    "with connection.execute_wrapper(timed):\n"
    "    result = apply_retention.apply().get()\n"
    "for key, (n, t) in sorted(spent.items(), key=lambda kv: -kv[1][1])[:15]:\n"
    "    print(f'{t:8.2f} s {n:7d}x  {key}')",
)

IDLE = "import django; django.setup(); import registry.tasks"


def timed_process(code: str) -> dict:
    """Run `code` in a fresh Python under /usr/bin/time -v: wall s, peak RSS MB, stdout."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", code],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"worker failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", proc.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", proc.stderr).group(1))
    return {"wall": wall, "rss_mb": rss_kb / 1024, "cpu": user + system, "stdout": proc.stdout}


def db_stats() -> dict:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, tup_returned "
            "FROM pg_stat_database WHERE datname = current_database()"
        )
        keys = ("commits", "inserted", "updated", "deleted", "returned")
        return dict(zip(keys, cur.fetchone(), strict=True))


def main() -> None:
    rng = random.Random(ARGS.seed)
    print(f"Steward retention benchmark, {dt.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"python {platform.python_version()}, django {django.get_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}, load average {os.getloadavg()[0]:.1f}"
    )
    try:
        t0 = time.perf_counter()
        call_command("migrate", verbosity=0)
        with connection.cursor() as cur:
            cur.execute("SELECT version()")
            pg = cur.fetchone()[0].split(" on ")[0]
        print(f"{pg}; database {DB_NAME} created and migrated in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        data = build(ARGS.versions, rng, timezone.now())
        exp = data["expected"]
        print(
            f"loaded {data['versions']:,} versions of {data['models']:,} models in "
            f"{N_CATALOGS * N_SCHEMAS} schemas in {time.perf_counter() - t0:.1f} s; "
            f"{data['aliases']:,} aliases, {data['requests']:,} pending requests, "
            f"{data['holds']:,} legal holds, {len(data['protected']):,} protected versions"
        )
        print(
            f"expected: archive {exp['archive']:,}, delete {exp['delete']:,}, "
            f"keep (protected) {exp['keep']:,}"
        )
        audit_before = AuditEvent.objects.count()

        idle = timed_process(IDLE)
        print(f"\nidle worker (django.setup + imports): peak RSS {idle['rss_mb']:.1f} MB")
        connection.close()
        stats0 = db_stats()
        load0 = os.getloadavg()[0]
        sweep = timed_process(PROFILED if ARGS.profile else SQL_TIMED if ARGS.sql_times else WORKER)
        time.sleep(1.5)  # let the server flush its statistics
        stats1 = db_stats()
        profile, _, tail = sweep["stdout"].partition("RESULT ")
        if ARGS.profile or ARGS.sql_times:
            print(profile)
        result = json.loads(tail)
        run = RetentionRun.objects.get(pk=result["run"])

        # checks
        examined = result["archived"] + result["deleted"]
        touched = (
            ModelVersion.objects.filter(pk__in=data["protected"])
            .filter(updated_by="system")
            .count()
        )
        audit_new = AuditEvent.objects.count() - audit_before
        per_version = AuditEvent.objects.filter(
            action__in=("model_version.archive", "model_version.delete")
        ).count()
        ok = (
            result["archived"] == exp["archive"]
            and result["deleted"] == exp["delete"]
            and touched == 0
            and per_version == examined
            and audit_new == examined + 1
        )
        total = data["versions"]
        examined_all = examined + exp["keep"]
        print(
            f"\nSweep of {total:,} versions ({data['models']:,} models), run {run.pk} "
            f"state {run.state}, load average {load0:.1f} -> {os.getloadavg()[0]:.1f}"
        )
        print(f"  batch size              {settings.STEWARD_RETENTION_BATCH_SIZE:8,}")
        print(f"  wall time (process)     {sweep['wall']:8.1f} s")
        print(f"  task body               {result['task_seconds']:8.1f} s")
        print(f"  CPU (user+sys)          {sweep['cpu']:8.1f} s")
        print(f"  peak RSS                {sweep['rss_mb']:8.1f} MB")
        print(f"  due versions examined   {examined_all:8,}")
        print(f"  archived                {result['archived']:8,}   (expected {exp['archive']:,})")
        print(f"  deleted                 {result['deleted']:8,}   (expected {exp['delete']:,})")
        print(f"  kept (protected)        {exp['keep']:8,}   protected rows touched: {touched}")
        print(f"  untouched in total      {total - examined:8,}")
        print(f"  files removed           {result['files_removed']:8,}")
        print(f"  audit events written    {audit_new:8,}")
        print(f"  throughput              {total / sweep['wall']:8,.0f} versions/s scanned")
        print(f"                          {examined / sweep['wall']:8,.0f} versions/s acted on")
        print(
            "  server: "
            + ", ".join(
                f"{k} {stats1[k] - stats0[k]:,}" for k in ("commits", "inserted", "updated")
            )
        )
        if ARGS.verify_audit:
            t0 = time.perf_counter()
            call_command("verify_audit")
            print(f"  audit chain verified in {time.perf_counter() - t0:.1f} s")
        print("\nchecks: " + ("all passed" if ok else "FAILED"))
        if not ok:
            sys.exit(1)
    finally:
        if ARGS.keep:
            print(f"\nkept database {DB_NAME}")
        else:
            drop_database()
            print(f"\ndropped database {DB_NAME}")


if __name__ == "__main__":
    main()
