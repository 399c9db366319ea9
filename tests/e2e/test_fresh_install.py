"""A fresh `pip install` of Steward, without the dev extras, queues Celery tasks on Redis and a
`celery -A config worker` from that install runs them (issue 12, part 5).

The dev extras bring in packages (`packaging` among them) that the base dependencies lacked,
so every other test passed while a plain install could not import kombu's Redis transport:
no task could be queued, eagerly or not, and no worker started. This test builds one virtual
environment per run in a temporary folder, installs the project's files into it the way a
newcomer would (`pip install .`, no extras), and then, with that environment only and outside
the repository (so the installed package is what runs):

1. migrates a SQLite database and creates the demo (`bootstrap_demo`);
2. starts a real worker (`celery -A config worker`) on a Redis queue of this test's own;
3. queues the app's own beat task `registry.tasks.expire_pending_versions` through the broker
   and waits until the worker has failed the overdue version it was given and audited it.

pip's cache keeps the install to seconds after the first run; the whole test takes well under a
minute on a warm cache.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.workers import REDIS_URL, ROOT

pytestmark = [pytest.mark.e2e]

# Seeds the demo and an overdue version; run in the fresh environment.
SETUP = """
import django
from datetime import timedelta
django.setup()
from django.core.management import call_command
from django.utils import timezone
from registry.models import ModelVersion, RegisteredModel
call_command("migrate", verbosity=0, interactive=False)
call_command("bootstrap_demo", verbosity=0)
model = RegisteredModel.objects.get(full_name="main.default.wine_quality")
ModelVersion.objects.create(
    model=model, version=1, status=ModelVersion.Status.PENDING_REGISTRATION,
    pending_deadline=timezone.now() - timedelta(hours=1),
)
print("seeded")
"""

# Queues the task through the broker and waits for the worker's effect; prints what it saw.
SEND = """
import json, sys, time
import django
django.setup()
from audit.models import AuditEvent
from registry.models import ModelVersion
from registry.tasks import expire_pending_versions
expire_pending_versions.apply_async(queue=sys.argv[1])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    version = ModelVersion.objects.get(model__full_name="main.default.wine_quality", version=1)
    if version.status != ModelVersion.Status.PENDING_REGISTRATION:
        break
    time.sleep(0.2)
events = AuditEvent.objects.filter(action="model_version.expired")
print(json.dumps({
    "status": version.status,
    "events": list(events.values("actor", "auth_method", "securable", "details")),
}))
"""


def _run(cmd: list[str], *, cwd: Path, env: dict, timeout: int) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd[:4])} ... failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    return result.stdout


def _project_copy(target: Path) -> Path:
    """The project's files as a clone has them (tracked, plus new files not ignored), so the
    build never writes into the working tree and sees exactly what would be committed."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is skipped
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory) -> Path:
    """A virtual environment with `pip install .` (no extras) of the project; its bin/."""
    base = tmp_path_factory.mktemp("fresh-install")
    source = _project_copy(base / "src")
    venv = base / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    _run([sys.executable, "-m", "venv", str(venv)], cwd=base, env=env, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "install", str(source)], cwd=base, env=env, timeout=600)
    return venv / "bin"


def test_fresh_install_has_no_dev_extras(fresh_env):
    """The environment really is a plain install: the test tools are not in it."""
    probe = subprocess.run(
        [str(fresh_env / "python"), "-c", "import pytest"], capture_output=True, check=False
    )
    assert probe.returncode != 0


def test_fresh_install_runs_tasks_eagerly_as_dev_up_does(fresh_env, tmp_path):
    """`./dev up`'s default (eager Celery) also goes through kombu's transport on `.delay()`:
    webhook deliveries and approval emails failed there too."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.embedded",
        "DATABASE_URL": "",
        "STEWARD_DATA_DIR": str(tmp_path / "data"),
        "CELERY_TASK_ALWAYS_EAGER": "true",
    }
    code = SETUP + (
        "from registry.tasks import expire_pending_versions\n"
        "print('expired', expire_pending_versions.delay().get())\n"
    )
    out = _run([str(fresh_env / "python"), "-c", code], cwd=tmp_path, env=env, timeout=300)
    assert "expired 1" in out


def test_worker_from_fresh_install_runs_a_task_queued_on_redis(fresh_env, tmp_path):
    import redis

    broker = redis.Redis.from_url(REDIS_URL)
    try:
        broker.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"this test needs a Redis broker at {REDIS_URL}: {exc}")
    queue = f"fresh-install-{uuid.uuid4().hex[:12]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.embedded",
        "DATABASE_URL": "",
        "STEWARD_DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    python = str(fresh_env / "python")
    # cwd is a scratch folder: `config` and the apps come from the install, not the checkout.
    assert "seeded" in _run([python, "-c", SETUP], cwd=tmp_path, env=env, timeout=300)
    log = tmp_path / "worker.log"
    with open(log, "wb") as handle:
        worker = subprocess.Popen(
            [
                str(fresh_env / "celery"),
                "-A",
                "config",
                "worker",
                "--queues",
                queue,
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                f"{queue}@%h",
                "--loglevel",
                "INFO",
            ],
            cwd=tmp_path,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        seen = json.loads(_run([python, "-c", SEND, queue], cwd=tmp_path, env=env, timeout=120))
        worker_log = log.read_text(errors="replace")
        assert seen["status"] == "FAILED_REGISTRATION", worker_log
        assert seen["events"] == [
            {
                "actor": "system",
                "auth_method": "task",
                "securable": "main.default.wine_quality",
                "details": {"version": 1},
            }
        ], worker_log
        assert "registry.tasks.expire_pending_versions" in worker_log
        assert "succeeded" in worker_log
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
        broker.delete(queue)
