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

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from core.actor import Actor
from registry import artifacts, storage
from registry.models import ModelVersion, RetentionRun, VersionRetention
from registry.services import retention as retention_services
from tests.e2e.workers import Workers
from tests.registry.conftest import logged_model, ready_version  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ACTIONS = ("model_version.archive", "model_version.delete")


# --- workers (tests/e2e/workers.py; the `workers` fixture is in tests/e2e/conftest.py) ---------


def send_retention(workers: Workers) -> str:
    """Enqueue registry.tasks.apply_retention for the workers, through the broker."""
    from registry.tasks import apply_retention

    return workers.send(apply_retention)


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
    task_id = send_retention(workers)
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
    task_ids = [send_retention(workers) for _ in range(2)]
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
