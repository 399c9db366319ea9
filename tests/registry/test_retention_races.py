"""Retention under real concurrency on PostgreSQL (issue 6; SECURITY_CASES 29, 30, 33).

Each racer runs in its own thread with its own database connection. The runs are slowed down
per version (the test-only setting STEWARD_TEST_RETENTION_ITEM_DELAY) so that they overlap
for certain: two runs at once must split the versions between them (FOR UPDATE SKIP LOCKED)
and act on each exactly once, and an alias move that arrives while a batch holds a version
must wait for it (the model row lock) rather than point an alias at an archived version.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from core.actor import Actor
from core.errors import FailedPrecondition
from registry import services
from registry.models import ModelAlias, ModelVersion, RegisteredModel, RetentionRun
from registry.services import retention as retention_services

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

M = "main.ml.wine"


@pytest.fixture
def due(tree, make_user, grant, ready_version):
    """make(n) -> n READY versions of main.ml.wine, 100 days old, under a catalog policy that
    archives after 30 days."""
    tree(M)
    dana = make_user("dana")
    grant("catalog", "main", "dana", "USE CATALOG", "USE SCHEMA", "MODIFY", "MANAGE")

    def make(n: int):
        versions = [ready_version(dana, M) for _ in range(n)]
        ModelVersion.objects.update(created_at=timezone.now() - timedelta(days=100))
        retention_services.retention_policy_create(
            actor=Actor.system(dana),
            securable_type="catalog",
            full_name="main",
            archive_after_days=30,
        )
        return dana, versions

    return make


def in_thread(target, results: dict, key: str) -> threading.Thread:
    def body():
        try:
            results[key] = target()
        except Exception as exc:  # reported by the test
            results[key] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_two_runs_at_once_act_on_disjoint_versions_each_exactly_once(due, settings):
    _, versions = due(24)
    settings.STEWARD_RETENTION_BATCH_SIZE = 3
    settings.STEWARD_TEST_RETENTION_ITEM_DELAY = 0.05
    results: dict = {}
    threads = [
        in_thread(lambda name=name: retention_services.retention_apply(worker=name), results, name)
        for name in ("w1", "w2")
    ]
    for thread in threads:
        thread.join(60)
    assert all(isinstance(results[name], RetentionRun) for name in ("w1", "w2")), results
    events = list(AuditEvent.objects.filter(action="model_version.archive"))
    per_version = Counter(e.details["version"] for e in events)
    assert per_version == Counter({v.version: 1 for v in versions})
    by_worker = Counter(e.details["worker"] for e in events)
    assert set(by_worker) == {"w1", "w2"}, f"both runs must have taken part: {by_worker}"
    assert results["w1"].archived + results["w2"].archived == len(versions)
    runs = {r.worker: r.archived for r in RetentionRun.objects.all()}
    assert runs == dict(by_worker)
    assert set(ModelVersion.objects.values_list("lifecycle", flat=True)) == {"ARCHIVED"}


def test_an_alias_move_waits_for_the_batch_holding_its_version(due, settings, monkeypatch):
    """The alias move arrives while a retention batch holds version 1: it waits for the
    model row lock, then finds the version archived and refuses; no alias ever points at an
    archived version."""
    dana, _ = due(2)
    settings.STEWARD_RETENTION_BATCH_SIZE = 2
    settings.STEWARD_TEST_RETENTION_ITEM_DELAY = 0.4
    holding = threading.Event()
    act = retention_services._act

    def act_holding_the_locks(*args, **kwargs):
        holding.set()  # the batch has the model FOR SHARE and its versions FOR UPDATE
        return act(*args, **kwargs)

    monkeypatch.setattr(retention_services, "_act", act_holding_the_locks)
    results: dict = {}
    runner = in_thread(lambda: retention_services.retention_apply(), results, "run")
    assert holding.wait(10)
    started = time.monotonic()
    with pytest.raises(FailedPrecondition, match="ARCHIVED"):
        services.alias_set(actor=Actor.system(dana), full_name=M, alias="champion", version=1)
    waited = time.monotonic() - started
    runner.join(30)
    assert isinstance(results["run"], RetentionRun), results
    assert waited > 0.2, "the alias move must have waited for the batch"
    assert not ModelAlias.objects.exists()
    assert set(ModelVersion.objects.values_list("lifecycle", flat=True)) == {"ARCHIVED"}


def test_an_alias_set_before_the_batch_protects_its_version(due, settings):
    """The other order: the alias lands first, so the batch (which takes the model lock after
    it) sees it and keeps the version."""
    dana, _ = due(2)
    services.alias_set(actor=Actor.system(dana), full_name=M, alias="champion", version=1)
    result = retention_services.retention_apply()
    assert result.archived == 1
    assert ModelVersion.objects.get(version=1).lifecycle == "ACTIVE"
    assert ModelAlias.objects.get().version.version == 1


@pytest.fixture
def many_models(tree, make_user, grant, ready_version):
    """make(models, per_model) -> names of that many models of main.ml, each with that many
    READY versions 100 days old, under a catalog policy that archives after 30 days."""
    dana = make_user("dana")

    def make(models: int, per_model: int) -> list[str]:
        names = [f"main.ml.m{i}" for i in range(models)]
        tree(*names)
        grant("catalog", "main", "dana", "USE CATALOG", "USE SCHEMA", "MODIFY", "MANAGE")
        for name in names:
            for _ in range(per_model):
                ready_version(dana, name)
        ModelVersion.objects.update(created_at=timezone.now() - timedelta(days=100))
        retention_services.retention_policy_create(
            actor=Actor.system(dana),
            securable_type="catalog",
            full_name="main",
            archive_after_days=30,
        )
        return names

    return make


def test_two_runs_over_many_models_act_on_each_version_exactly_once(many_models, settings):
    """Batches spanning several models: two runs at once still split the versions (the model
    rows are shared, the version rows claimed with SKIP LOCKED) and act on each once."""
    names = many_models(6, 4)
    settings.STEWARD_RETENTION_BATCH_SIZE = 5
    settings.STEWARD_TEST_RETENTION_ITEM_DELAY = 0.03
    results: dict = {}
    threads = [
        in_thread(lambda name=name: retention_services.retention_apply(worker=name), results, name)
        for name in ("w1", "w2")
    ]
    for thread in threads:
        thread.join(60)
    assert all(isinstance(results[name], RetentionRun) for name in ("w1", "w2")), results
    events = list(AuditEvent.objects.filter(action="model_version.archive"))
    per_version = Counter((e.securable, e.details["version"]) for e in events)
    assert per_version == Counter({(name, n): 1 for name in names for n in range(1, 5)})
    by_worker = Counter(e.details["worker"] for e in events)
    assert set(by_worker) == {"w1", "w2"}, f"both runs must have taken part: {by_worker}"
    assert results["w1"].archived + results["w2"].archived == 24
    assert set(ModelVersion.objects.values_list("lifecycle", flat=True)) == {"ARCHIVED"}


def test_a_model_another_transaction_holds_is_skipped_and_done_at_the_end(many_models):
    """A model locked FOR UPDATE (an alias move, a legal hold in progress) does not hold up
    the batch it falls in: the run settles the other models, comes back to it at the end and
    waits for it then."""
    names = many_models(3, 2)
    held = names[1]
    locked, release = threading.Event(), threading.Event()

    def hold():
        from django.db import transaction

        with transaction.atomic():
            RegisteredModel.objects.select_for_update().get(full_name=held)
            locked.set()
            release.wait(30)
        return "released"

    results: dict = {}
    holder = in_thread(hold, results, "holder")
    assert locked.wait(10)
    runner = in_thread(lambda: retention_services.retention_apply(), results, "run")
    others = [name for name in names if name != held]

    def settled() -> bool:
        done = AuditEvent.objects.filter(action="model_version.archive", securable__in=others)
        return done.count() == 2 * len(others)

    deadline = time.monotonic() + 20
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert settled(), "the other models must be settled while one is held"
    assert not AuditEvent.objects.filter(securable=held, action="model_version.archive").exists()
    assert set(
        ModelVersion.objects.filter(model__full_name=held).values_list("lifecycle", flat=True)
    ) == {"ACTIVE"}
    assert runner.is_alive(), "the run must be waiting for the held model"
    release.set()
    holder.join(10)
    runner.join(30)
    assert isinstance(results["run"], RetentionRun), results
    assert results["run"].archived == 6
    per_version = Counter(
        (e.securable, e.details["version"])
        for e in AuditEvent.objects.filter(action="model_version.archive")
    )
    assert per_version == Counter({(name, n): 1 for name in names for n in (1, 2)})
