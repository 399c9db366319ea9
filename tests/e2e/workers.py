"""Real Celery worker processes for the e2e tests (tests/e2e/test_retention_worker.py,
tests/e2e/test_webhook_worker.py): a Redis broker, PostgreSQL (the test run's database) and
`celery worker` subprocesses with tests/e2e/worker_settings.py. The fixtures `broker` and
`workers` (tests/e2e/conftest.py) give each test a queue of its own, so nothing else on the
Redis database meets its workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("STEWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
HOST = socket.gethostname()


def database_url() -> str:
    """The test database pytest-django created (test_<name>), for the workers."""
    cfg = connection.settings_dict
    user = quote(cfg.get("USER") or "")
    password = f":{quote(cfg['PASSWORD'])}" if cfg.get("PASSWORD") else ""
    host = cfg.get("HOST") or "127.0.0.1"
    port = cfg.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{cfg['NAME']}"


class Workers:
    """Starts Celery workers as subprocesses, each its own process group; kills them all.
    The workers consume `queue` only, and send the tasks they enqueue themselves (a retry,
    the sweep's deliveries) to it too (STEWARD_TEST_CELERY_QUEUE)."""

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
            "STEWARD_TEST_CELERY_QUEUE": self.queue,
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

    def send(self, task, *args) -> str:
        """Enqueue `task` on the workers' queue through the broker (the test settings run
        tasks eagerly: not this one); returns the task id."""
        from kombu import Connection

        from config.celery_app import app

        eager = app.conf.task_always_eager
        app.conf.task_always_eager = False
        try:
            with Connection(REDIS_URL) as conn:
                return task.apply_async(args, queue=self.queue, connection=conn).id
        finally:
            app.conf.task_always_eager = eager

    @contextlib.contextmanager
    def publishing(self):
        """While open, tasks this process enqueues the ordinary way (`.delay()`, e.g. a
        webhook delivery after commit, from the test or the live server's threads) go through
        the broker to the workers' queue instead of running eagerly here."""
        from config.celery_app import app

        saved = {
            key: app.conf[key] for key in ("task_always_eager", "broker_url", "task_default_queue")
        }
        _drop_producer_pool(app)
        app.conf.update(
            task_always_eager=False, broker_url=REDIS_URL, task_default_queue=self.queue
        )
        try:
            yield
        finally:
            app.conf.update(saved)
            _drop_producer_pool(app)


def _drop_producer_pool(app) -> None:
    """Forget the producers and connections made for the previous broker URL (the app caches
    them on first use, kombu's registry per URL): closed and dropped, made again on demand."""
    from kombu import pools

    pools.reset()
    app.amqp._producer_pool = None
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None


def worker_pool(tmp_path: Path, broker, prefix: str):
    """The body of the `workers` fixture (tests/e2e/conftest.py)."""
    queue = f"steward-test-{prefix}-{uuid.uuid4().hex[:12]}"
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
