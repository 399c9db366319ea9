"""Retention with real Celery worker processes, a real Redis broker and PostgreSQL (issue 6;
SECURITY_CASES 29, 30).

1. A worker is killed with SIGKILL (its whole process group, as a crashed machine would be) in
   the middle of a retention run, and a new one is started. The task is `acks_late`, so the
   broker still holds the message; Redis hands an unacknowledged message out again once its
   visibility timeout has passed (an hour by default: the workers here use 5 seconds, see
   tests/e2e/worker_settings.py). The redelivered task resumes the same run and completes it:
   every due version is acted on exactly once (one audit event each), none is lost, and storage
   agrees with the database (files exist if and only if the version is not DELETED).
2. Two workers run retention at the same time and split the versions between them: each
   version's audit event appears exactly once, and the events name the worker that acted.

The runs are slowed per version by STEWARD_TEST_RETENTION_ITEM_DELAY (a setting only the
workers' test settings define) so that the kill lands mid-run and the two runs overlap.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from core.actor import Actor
from registry import artifacts, storage
from registry.models import ModelVersion, RetentionRun, VersionRetention
from registry.services import retention as retention_services
from tests.registry.conftest import logged_model, ready_version  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("STEWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
ACTIONS = ("model_version.archive", "model_version.delete")
HOST = socket.gethostname()


# --- workers -----------------------------------------------------------------------------------


def database_url() -> str:
    """The test database pytest-django created (test_<name>), for the workers."""
    cfg = connection.settings_dict
    user = quote(cfg.get("USER") or "")
    password = f":{quote(cfg['PASSWORD'])}" if cfg.get("PASSWORD") else ""
    host = cfg.get("HOST") or "127.0.0.1"
    port = cfg.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{cfg['NAME']}"


class Workers:
    """Starts Celery workers as subprocesses, each its own process group; kills them all."""

    def __init__(self, tmp_path: Path, queue: str):
        self.tmp_path = tmp_path
        self.queue = queue
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, **env) -> str:
        log = self.tmp_path / f"{name}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.e2e.worker_settings",
            "DATABASE_URL": database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "REDIS_URL": REDIS_URL,
            "STEWARD_ARTIFACT_ROOT": str(settings.STEWARD_ARTIFACT_ROOT),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **{key: str(value) for key, value in env.items()},
        }
        handle = open(log, "wb")  # noqa: SIM115  (closed with the process)
        self.procs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--hostname",
                f"{name}@{HOST}",
                "--queues",
                self.queue,
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL takes the pool children too
        )
        handle.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                pytest.fail(f"worker {name} exited at start:\n{self.log(name)}")
            if " ready." in self.log(name):
                return f"{name}@{HOST}"
            time.sleep(0.1)
        pytest.fail(f"worker {name} did not start:\n{self.log(name)}")

    def log(self, name: str) -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log(name)[-4000:]}" for name in self.procs)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(10)

    def kill_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)
        self.wait_sessions_gone()

    def wait_sessions_gone(self) -> None:
        """The killed workers' PostgreSQL sessions end with their sockets (a COMMIT already
        sent may still land first); wait for them, so that what the test reads next is final
        and the flush after the test and the drop of the test database do not meet them."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
                if cursor.fetchone()[0] == 0:
                    return
            time.sleep(0.1)


@pytest.fixture
def broker():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"these tests need a Redis broker at {REDIS_URL}: {exc}")
    return client


@pytest.fixture
def workers(tmp_path, broker):
    """Workers on a queue of this test's own, so nothing else on the Redis database meets
    them; every worker is killed and the queue's leftovers removed afterwards."""
    queue = f"steward-test-retention-{uuid.uuid4().hex[:12]}"
    pool = Workers(tmp_path, queue)
    try:
        yield pool
    finally:
        pool.kill_all()
        broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        for tag, payload in (broker.hgetall("unacked") or {}).items():
            if queue.encode() in payload:
                broker.hdel("unacked", tag)
                broker.zrem("unacked_index", tag)


def send_retention(queue: str) -> str:
    """Enqueue registry.tasks.apply_retention through the broker (the test settings run tasks
    eagerly: not this one)."""
    from kombu import Connection

    from config.celery_app import app
    from registry.tasks import apply_retention

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with Connection(REDIS_URL) as conn:
            return apply_retention.apply_async(queue=queue, connection=conn).id
    finally:
        app.conf.task_always_eager = eager


# --- data --------------------------------------------------------------------------------------


@pytest.fixture
def due_versions(tree, make_user, grant, request):
    """make(archive=n, delete=m) -> versions of main.ml.a (ACTIVE, due for archive) and
    main.ml.d (ARCHIVED long ago, due for delete), all with files, under a catalog policy
    (archive after 30 days, delete 7 days after archiving). Returns the expected plan."""
    ready = request.getfixturevalue("ready_version")  # tests/registry/conftest.py's
    tree("main.ml.a", "main.ml.d")
    dana = make_user("dana")
    grant("catalog", "main", "dana", "USE CATALOG", "USE SCHEMA", "MODIFY", "MANAGE")

    def make(*, archive: int, delete: int) -> set[tuple[str, str]]:
        for full_name, count in (("main.ml.a", archive), ("main.ml.d", delete)):
            for _ in range(count):
                ready(dana, full_name)
        old = timezone.now() - timedelta(days=100)
        ModelVersion.objects.update(created_at=old)
        deleting = list(ModelVersion.objects.filter(model__full_name="main.ml.d"))
        ModelVersion.objects.filter(pk__in=[v.pk for v in deleting]).update(
            lifecycle="ARCHIVED", archived_at=old
        )
        retention_services.retention_policy_create(
            actor=Actor.system(dana),
            securable_type="catalog",
            full_name="main",
            archive_after_days=30,
            delete_after_days=7,
        )
        plan = list(retention_services.retention_plan())
        assert len(plan) == archive + delete
        return {(i.full_name, i.version, i.action) for i in plan}

    return make


def acted() -> list[tuple[str, int, str]]:
    return [
        (e.securable, e.details["version"], e.action.split(".")[1])
        for e in AuditEvent.objects.filter(action__in=ACTIONS)
    ]


def wait_for(condition, timeout: float, workers: Workers, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}; {len(acted())} acted\n{workers.logs()}")


def assert_storage_agrees() -> None:
    for version in ModelVersion.objects.select_related("model"):
        files = any(True for _ in artifacts.walk(storage.version_prefix(version)))
        assert files == (version.lifecycle != "DELETED"), (version, version.lifecycle, files)
    # Every tombstone's file removal is confirmed, none is left for the reconciler.
    deleted = set(ModelVersion.objects.filter(lifecycle="DELETED").values_list("pk", flat=True))
    removed = set(VersionRetention.objects.filter(files="REMOVED").values_list("pk", flat=True))
    assert deleted == removed


# --- the tests ---------------------------------------------------------------------------------


def test_worker_killed_mid_run_the_redelivered_task_completes_it_exactly_once(
    workers, due_versions
):
    expected = due_versions(archive=20, delete=20)
    slow = {
        "STEWARD_TEST_RETENTION_ITEM_DELAY": 0.08,
        "STEWARD_RETENTION_BATCH_SIZE": 5,
        "STEWARD_TEST_VISIBILITY_TIMEOUT": 5,
    }
    first = workers.start("crash1", **slow)
    task_id = send_retention(workers.queue)
    # Kill once two batches have committed: the third is in flight.
    wait_for(lambda: len(acted()) >= 10, 20, workers, "the run to get going")
    time.sleep(0.15)
    workers.kill("crash1")
    workers.wait_sessions_gone()
    done_before = acted()
    assert 10 <= len(done_before) < len(expected), "the kill must land mid-run"
    run = RetentionRun.objects.get(task_id=task_id)
    assert run.state == "RUNNING" and run.attempts == 1

    second = workers.start("crash2", **slow)
    wait_for(
        lambda: RetentionRun.objects.filter(task_id=task_id, state="DONE").exists(),
        30,
        workers,
        "the redelivered task to finish the run",
    )
    run.refresh_from_db()
    done = acted()
    # None lost, none done twice (a delete event is written in the transaction that marks the
    # version DELETED, so one event per version means one delete per version).
    assert Counter((full_name, number) for full_name, number, _ in done) == Counter(
        {(full_name, number): 1 for full_name, number, _ in expected}
    )
    assert set(done) == expected
    assert run.attempts >= 2 and (run.archived, run.deleted) == (20, 20)
    assert run.files_removed == 20
    workers_seen = Counter(
        e.details["worker"] for e in AuditEvent.objects.filter(action__in=ACTIONS)
    )
    assert set(workers_seen) == {first, second}, workers_seen
    assert workers_seen[first] == len(done_before)
    assert_storage_agrees()
    assert set(ModelVersion.objects.values_list("model__full_name", "lifecycle")) == {
        ("main.ml.a", "ARCHIVED"),
        ("main.ml.d", "DELETED"),
    }


def test_two_workers_at_once_process_disjoint_versions(workers, due_versions):
    expected = due_versions(archive=20, delete=20)
    slow = {"STEWARD_TEST_RETENTION_ITEM_DELAY": 0.05, "STEWARD_RETENTION_BATCH_SIZE": 4}
    names = {workers.start("pair1", **slow), workers.start("pair2", **slow)}
    task_ids = [send_retention(workers.queue) for _ in range(2)]
    wait_for(
        lambda: RetentionRun.objects.filter(task_id__in=task_ids, state="DONE").count() == 2,
        30,
        workers,
        "both runs to finish",
    )
    events = list(AuditEvent.objects.filter(action__in=ACTIONS))
    per_version = Counter((e.securable, e.details["version"]) for e in events)
    assert per_version == Counter({(full_name, number): 1 for full_name, number, _ in expected})
    by_worker = Counter(e.details["worker"] for e in events)
    assert set(by_worker) == names, f"both workers must have taken part: {by_worker}"
    runs = RetentionRun.objects.filter(task_id__in=task_ids)
    assert {r.worker for r in runs} == names
    assert sum(r.archived + r.deleted for r in runs) == len(expected)
    for run in runs:
        assert Counter(e.details["run"] for e in events)[str(run.pk)] == run.archived + run.deleted
    assert_storage_agrees()
