"""Retention runs (issue 6; SECURITY_CASES 29, 33): the rules, every "never touched" case at
both steps (archive and delete), the dry run against the real run, idempotence, the reconciler
and the management command and task. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEvent
from core.actor import Actor
from core.errors import NotFound
from registry import artifacts, retention, services, storage
from registry.models import (
    ModelVersion,
    ModelVersionTag,
    PromotionRequest,
    RegisteredModel,
    RetentionRun,
    VersionRetention,
)
from registry.services import retention as retention_services
from registry.services.lookups import version_of

M = "main.ml.wine"
Lifecycle = ModelVersion.Lifecycle
ACTIONS = ("model_version.archive", "model_version.delete")


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def team(tree, make_user, grant, admin_user):
    """dana (data scientist: MODIFY + MANAGE on catalog main), owen (MANAGE on it, writes
    the policies), root (admin)."""
    tree(M)
    users = {"dana": make_user("dana"), "owen": make_user("owen"), "root": admin_user}
    for name in ("dana", "owen"):
        grant("catalog", "main", name, "USE CATALOG", "USE SCHEMA")
    grant("catalog", "main", "dana", "MODIFY", "MANAGE")
    grant("catalog", "main", "owen", "MANAGE")
    return users


@pytest.fixture
def make_versions(team, ready_version):
    """make_versions(n, full_name=M, age_days=100) -> n READY versions created that long ago."""

    def make(n: int, full_name: str = M, age_days: int = 100) -> list[ModelVersion]:
        out = [ready_version(team["dana"], full_name, tags={"k": "v"}) for _ in range(n)]
        ModelVersion.objects.filter(pk__in=[v.pk for v in out]).update(
            created_at=timezone.now() - timedelta(days=age_days)
        )
        return [ModelVersion.objects.get(pk=v.pk) for v in out]

    return make


def policy(team, securable_type="catalog", full_name="main", **rules):
    return retention_services.retention_policy_create(
        actor=Actor.system(team["owen"]),
        securable_type=securable_type,
        full_name=full_name,
        **rules,
    )


def archived_ago(version: ModelVersion, days: int) -> None:
    """Make `version` ARCHIVED, by retention, `days` ago."""
    when = timezone.now() - timedelta(days=days)
    ModelVersion.objects.filter(pk=version.pk).update(
        lifecycle=Lifecycle.ARCHIVED, archived_at=when
    )


def state(version: ModelVersion) -> str:
    return ModelVersion.objects.get(pk=version.pk).lifecycle


def has_files(version: ModelVersion) -> bool:
    return any(True for _ in artifacts.walk(storage.version_prefix(version)))


def run(**kwargs) -> tuple[RetentionRun, list]:
    seen: list = []
    result = retention_services.retention_apply(on_item=seen.append, **kwargs)
    return result, seen


def dry(**kwargs) -> list:
    return list(retention_services.retention_plan(**kwargs))


def acted(items) -> list[tuple[str, str]]:
    return sorted(i.key for i in items if i.action != retention.KEEP)


def events(action=None):
    qs = AuditEvent.objects.filter(action__in=ACTIONS)
    return qs.filter(action=action) if action else qs


# --- the rules ---------------------------------------------------------------------------------


def test_archives_active_versions_older_than_n_days(team, make_versions):
    old, young = make_versions(1, age_days=40)[0], make_versions(1, age_days=10)[0]
    policy(team, archive_after_days=30)
    result, _ = run()
    assert state(old) == Lifecycle.ARCHIVED and state(young) == Lifecycle.ACTIVE
    assert has_files(old), "archiving keeps the files"
    assert result.archived == 1 and result.deleted == 0 and result.state == "DONE"
    event = events("model_version.archive").get()
    assert (event.actor, event.auth_method, event.securable) == ("system", "task", M)
    assert event.details["version"] == old.version and event.details["by"] == "retention"
    assert event.details["run"] == str(result.pk)
    archived = ModelVersion.objects.get(pk=old.pk)
    assert archived.archived_at == archived.updated_at, "set by the archiving UPDATE"
    assert not VersionRetention.objects.filter(version=old).exists(), "no second row"


def test_keeps_the_newest_k_ready_versions(team, make_versions):
    versions = make_versions(4)
    failed = make_versions(1)[0]  # the newest number, but FAILED: it takes no keep slot
    ModelVersion.objects.filter(pk=failed.pk).update(status=ModelVersion.Status.FAILED_REGISTRATION)
    policy(team, archive_after_days=0, keep_last=2)
    run()
    assert [state(v) for v in versions] == ["ARCHIVED", "ARCHIVED", "ACTIVE", "ACTIVE"]
    assert state(failed) == Lifecycle.ARCHIVED


def test_keep_last_larger_than_the_model_keeps_everything(team, make_versions):
    versions = make_versions(2)
    policy(team, archive_after_days=0, keep_last=5)
    assert dry() == []
    run()
    assert [state(v) for v in versions] == ["ACTIVE", "ACTIVE"]


def test_keep_last_also_spares_archived_versions_from_deletion(team, make_versions):
    one, two = make_versions(2)
    archived_ago(one, 30)
    archived_ago(two, 30)
    policy(team, delete_after_days=7, keep_last=1)
    run()
    assert (state(one), state(two)) == ("DELETED", "ARCHIVED")


def test_deletes_archived_versions_after_m_days_keeping_a_tombstone(team, make_versions):
    due, recent = make_versions(2)
    archived_ago(due, 10)
    archived_ago(recent, 3)
    policy(team, delete_after_days=7)
    assert has_files(due)
    result, _ = run()
    assert (state(due), state(recent)) == ("DELETED", "ARCHIVED")
    assert not has_files(due) and has_files(recent)
    record = VersionRetention.objects.get(version=due)
    assert record.files == VersionRetention.Files.REMOVED and record.deleted_at is not None
    assert not ModelVersionTag.objects.filter(version=due).exists()
    with pytest.raises(NotFound):
        version_of(RegisteredModel.objects.get(full_name=M), due.version)
    # The tombstone keeps the number: the next version is not a reused one.
    assert RegisteredModel.objects.get(full_name=M).next_version == 3
    assert result.deleted == 1 and result.files_removed == 1
    event = events("model_version.delete").get()
    assert (event.actor, event.auth_method, event.details["version"]) == ("system", "task", 1)


def test_a_version_archived_by_a_run_is_deleted_only_by_a_later_run(team, make_versions):
    (version,) = make_versions(1)
    policy(team, archive_after_days=0, delete_after_days=0)
    first = dry()
    assert [i.action for i in first] == ["archive"]
    run()
    assert state(version) == Lifecycle.ARCHIVED
    later = timezone.now() + timedelta(seconds=1)
    assert [i.action for i in dry(now=later)] == ["delete"]
    run(now=later)
    assert state(version) == Lifecycle.DELETED


def test_nearest_policy_wins_and_an_empty_policy_exempts(team, tree, make_versions):
    tree("main.ml.other", "main.cv.vision")
    wine = make_versions(1)[0]
    other = make_versions(1, "main.ml.other")[0]
    vision = make_versions(1, "main.cv.vision")[0]
    policy(team, archive_after_days=365)  # catalog: too young for this one
    policy(team, "schema", "main.ml", archive_after_days=30)  # nearer for main.ml.*
    policy(team, "registered_model", "main.ml.other")  # no rule: exempts the model
    run()
    assert state(wine) == Lifecycle.ARCHIVED
    assert state(other) == Lifecycle.ACTIVE
    assert state(vision) == Lifecycle.ACTIVE
    model = RegisteredModel.objects.get(full_name=M)
    assert retention.policy_for(model).schema_id == model.schema_id


def test_pending_registration_versions_are_never_touched(team, make_versions, logged_model):
    version = services.model_version_create(
        actor=Actor.system(team["dana"]), full_name=M, source=logged_model(team["dana"])
    )
    ModelVersion.objects.filter(pk=version.pk).update(
        created_at=timezone.now() - timedelta(days=100),
        pending_deadline=timezone.now() + timedelta(days=1),
    )
    policy(team, archive_after_days=0)
    assert dry() == []
    run()
    assert state(version) == Lifecycle.ACTIVE


# --- never touched -----------------------------------------------------------------------------


def _alias(team, version):
    services.alias_set(actor=Actor.system(team["dana"]), full_name=M, alias="champion", version=1)
    return "holds alias champion"


def _staging(team, version):
    services.model_version_transition_stage(
        actor=Actor.system(team["dana"]), full_name=M, version=1, stage="Staging"
    )
    return "in stage Staging"


def _production(team, version):
    services.model_version_transition_stage(
        actor=Actor.system(team["dana"]), full_name=M, version=1, stage="Production"
    )
    return "in stage Production"


def _request(state):
    def make(team, version):
        services.alias_policy_create(
            actor=Actor.system(team["owen"]),
            securable_type="registered_model",
            full_name=M,
            alias_patterns=["champion"],
            approvers=["owen"],
        )
        request = services.promotion_request_create(
            actor=Actor.system(team["dana"]),
            full_name=M,
            alias="champion",
            version=1,
            justification="best so far",
        )
        PromotionRequest.objects.filter(pk=request.pk).update(state=state)
        return f"target of {state} promotion request {request.pk}"

    return make


def _version_hold(team, version):
    retention_services.legal_hold_set(
        actor=Actor.system(team["root"]), full_name=M, version=1, reason="litigation 42"
    )
    return "under legal hold"


def _model_hold(team, version):
    retention_services.legal_hold_set(
        actor=Actor.system(team["root"]), full_name=M, reason="litigation 42"
    )
    return "model under legal hold"


PROTECTIONS = {
    "alias": _alias,
    "stage Staging": _staging,
    "stage Production": _production,
    "pending promotion request": _request("PENDING"),
    "approved promotion request": _request("APPROVED"),
    "legal hold on the version": _version_hold,
    "legal hold on the model": _model_hold,
}


@pytest.mark.parametrize("step", ["archive", "delete"])
@pytest.mark.parametrize("protection", list(PROTECTIONS))
def test_protected_versions_are_never_touched(team, tree, make_versions, protection, step):
    """SECURITY_CASES 33: an alias, a protected stage, an open promotion request or a legal
    hold keeps a version out of every retention step; the dry run says why."""
    tree("main.ml.other")
    protected = make_versions(1)[0]
    unprotected = make_versions(1, "main.ml.other")[0]
    reason = PROTECTIONS[protection](team, protected)
    if step == "archive":
        policy(team, archive_after_days=30)
    else:
        # Protected while ACTIVE, then archived some other way long ago (the delete step must
        # still refuse it).
        archived_ago(protected, 100)
        archived_ago(unprotected, 100)
        policy(team, delete_after_days=30)
    plan = {(i.full_name, i.version): i for i in dry()}
    assert plan[M, 1].action == retention.KEEP and reason in plan[M, 1].reasons
    assert plan["main.ml.other", 1].action == step
    before = ModelVersion.objects.get(pk=protected.pk)
    result, _ = run()
    after = ModelVersion.objects.get(pk=protected.pk)
    assert (after.lifecycle, after.stage) == (before.lifecycle, before.stage)
    assert has_files(protected)
    assert state(unprotected) == ("ARCHIVED" if step == "archive" else "DELETED")
    assert [(e.securable, e.details["version"]) for e in events()] == [("main.ml.other", 1)]
    assert result.archived + result.deleted == 1


def test_clearing_a_legal_hold_lets_retention_act_again(team, make_versions):
    (version,) = make_versions(1)
    root = Actor.system(team["root"])
    retention_services.legal_hold_set(actor=root, full_name=M, reason="audit 2025")
    policy(team, archive_after_days=30)
    run()
    assert state(version) == Lifecycle.ACTIVE
    retention_services.legal_hold_clear(actor=root, full_name=M)
    run()
    assert state(version) == Lifecycle.ARCHIVED
    actions = list(AuditEvent.objects.values_list("action", flat=True).order_by("id"))
    assert "legal_hold.set" in actions and "legal_hold.clear" in actions


# --- dry run, idempotence, crashes -------------------------------------------------------------


@pytest.fixture
def mixed(team, tree, make_versions):
    """Two models under a catalog policy (archive after 30 days, delete 7 days after archiving,
    keep the newest 2), with every kind of version: due for archive, due for delete, too young,
    kept, protected by an alias and by a legal hold."""
    tree("main.ml.other")
    wine = make_versions(6)
    other = make_versions(3, "main.ml.other")
    young = make_versions(1, age_days=5)
    archived_ago(wine[0], 30)
    archived_ago(wine[1], 3)
    archived_ago(other[0], 8)
    services.alias_set(actor=Actor.system(team["dana"]), full_name=M, alias="champion", version=3)
    retention_services.legal_hold_set(
        actor=Actor.system(team["root"]), full_name=M, version=4, reason="keep for the audit"
    )
    policy(team, archive_after_days=30, delete_after_days=7, keep_last=2)
    return {"wine": wine, "other": other, "young": young}


def test_dry_run_answers_exactly_what_the_run_does(mixed):
    before = AuditEvent.objects.count()
    plan = dry()
    assert AuditEvent.objects.count() == before, "a dry run changes nothing"
    assert RetentionRun.objects.count() == 0
    by_version = {(i.full_name, i.version): i.action for i in plan}
    assert by_version == {
        (M, 1): "delete",
        (M, 3): "keep",
        (M, 4): "keep",
        (M, 5): "archive",
        ("main.ml.other", 1): "delete",
    }
    result, done = run()
    assert [i.key for i in done] == [i.key for i in plan]
    assert acted(done) == acted(plan)
    audited = sorted((e.securable, e.details["version"], e.action.split(".")[1]) for e in events())
    assert audited == sorted(
        (i.full_name, i.version, i.action) for i in plan if i.action != retention.KEEP
    )
    assert (result.archived, result.deleted, result.files_removed) == (1, 2, 2)


def test_a_second_run_finds_nothing_left_to_do(mixed):
    run()
    count = events().count()
    assert acted(dry()) == []
    again, done = run()
    assert acted(done) == [] and events().count() == count
    assert (again.archived, again.deleted) == (0, 0)


def test_a_crash_mid_batch_loses_only_that_batch_and_the_rerun_completes(
    mixed, monkeypatch, settings
):
    """The batch in flight rolls back as a whole (actions, audit events, counters); the next
    run does it, and nothing is done twice."""
    settings.STEWARD_RETENTION_BATCH_SIZE = 1
    expected = acted(dry())
    real = retention_services._audit_spec
    calls = {"n": 0}

    def flaky(item, run_, worker):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker died")
        return real(item, run_, worker)

    monkeypatch.setattr(retention_services, "_audit_spec", flaky)
    with pytest.raises(RuntimeError):
        run()
    assert events().count() == 1
    monkeypatch.setattr(retention_services, "_audit_spec", real)
    run()
    audited = sorted((e.securable, e.details["version"]) for e in events())
    assert len(audited) == len(set(audited)) == len(expected)
    for version in ModelVersion.objects.select_related("model"):
        assert has_files(version) == (version.lifecycle != Lifecycle.DELETED), version


def test_delete_counts_from_retentions_archive_time_or_a_manual_archives_last_change(
    team, make_versions
):
    """`archived_at` (retention's archive) counts, not a later change of the row; a version
    archived by hand (no `archived_at`) counts from its last change. The dry run agrees."""
    by_retention, changed_since, by_hand, by_hand_recent = make_versions(4)
    archived_ago(by_retention, 10)
    archived_ago(changed_since, 3)  # archived 3 days ago, its row touched 10 days ago
    ModelVersion.objects.filter(pk=changed_since.pk).update(
        updated_at=timezone.now() - timedelta(days=10)
    )
    for version, days in ((by_hand, 10), (by_hand_recent, 3)):
        ModelVersion.objects.filter(pk=version.pk).update(
            lifecycle=Lifecycle.ARCHIVED, updated_at=timezone.now() - timedelta(days=days)
        )
    policy(team, delete_after_days=7)
    planned = acted(dry())
    _, seen = run()
    assert (
        planned
        == acted(seen)
        == sorted((str(v.pk), retention.DELETE) for v in (by_retention, by_hand))
    )
    assert [state(v) for v in (by_retention, changed_since, by_hand, by_hand_recent)] == [
        "DELETED",
        "ARCHIVED",
        "DELETED",
        "ARCHIVED",
    ]


def test_reconciler_finishes_file_removal_a_crash_interrupted(team, make_versions, monkeypatch):
    due, manual = make_versions(2)
    archived_ago(due, 30)
    policy(team, delete_after_days=7)

    def storage_down(prefix):
        raise OSError("storage unreachable")

    monkeypatch.setattr(artifacts, "delete_tree", storage_down)
    run()
    # The tombstone is committed, the removal not confirmed: the reconciler's to finish.
    assert state(due) == Lifecycle.DELETED and has_files(due)
    assert not VersionRetention.objects.filter(version=due, files="REMOVED").exists()
    assert retention_services.retention_files_reconcile() == 0  # storage still down
    # A manual delete whose after-commit removal never ran (the process died).
    ModelVersion.objects.filter(pk=manual.pk).update(lifecycle=Lifecycle.DELETED)
    monkeypatch.undo()
    assert retention_services.retention_files_reconcile() == 2
    assert not has_files(due) and not has_files(manual)
    assert set(VersionRetention.objects.values_list("files", flat=True)) == {"REMOVED"}
    assert VersionRetention.objects.filter(deleted_at__isnull=True).count() == 0
    assert retention_services.retention_files_reconcile() == 0
    assert events("model_version.delete").count() == 1


def test_reconciler_confirms_a_tombstone_without_files_without_walking_its_storage(
    team, make_versions, monkeypatch
):
    """Local storage: a tombstone whose directory is gone is confirmed REMOVED without a
    per-version walk; one with files is walked and emptied. A version archived by retention
    (its `archived_at` set, no retention record) and then deleted by hand is reconciled too."""
    gone, stored = make_versions(2)
    archived_ago(gone, 30)
    shutil.rmtree(storage.artifact_root() / storage.version_prefix(gone))
    ModelVersion.objects.filter(pk__in=[gone.pk, stored.pk]).update(lifecycle=Lifecycle.DELETED)
    walked = []
    real = artifacts.delete_tree
    monkeypatch.setattr(
        artifacts, "delete_tree", lambda prefix: walked.append(prefix) or real(prefix)
    )
    assert retention_services.retention_files_reconcile() == 2
    assert walked == [storage.version_prefix(stored)] and not has_files(stored)
    assert set(VersionRetention.objects.values_list("files", flat=True)) == {"REMOVED"}
    assert retention_services.retention_files_reconcile() == 0


def test_a_failing_batch_write_rolls_the_whole_batch_back(team, make_versions, monkeypatch):
    """The batch's write statement (sent in pipeline mode on PostgreSQL) fails: the error
    surfaces as Django's, nothing of the batch stays (no archive, no audit event) and the
    next run does it."""
    old = make_versions(1, age_days=40)[0]
    policy(team, archive_after_days=30)
    real = retention_services._count

    def failing(writes, run, **added):
        if connection.vendor == "postgresql":
            writes.append(
                ("UPDATE registry_retentionrun SET archived = archived / 0 WHERE id = %s", [run.pk])
            )
        else:  # NULL into a NOT NULL column
            RetentionRun.objects.filter(pk=run.pk).update(archived=F("archived") / 0)

    monkeypatch.setattr(retention_services, "_count", failing)
    with pytest.raises(DatabaseError):
        run()
    assert state(old) == Lifecycle.ACTIVE and not events().exists()
    assert ModelVersion.objects.get(pk=old.pk).archived_at is None
    monkeypatch.setattr(retention_services, "_count", real)
    result, _ = run()
    assert state(old) == Lifecycle.ARCHIVED and result.archived == 1
    assert events("model_version.archive").count() == 1


def test_every_run_starts_by_reconciling(team, make_versions):
    (version,) = make_versions(1)
    ModelVersion.objects.filter(pk=version.pk).update(lifecycle=Lifecycle.DELETED)
    result, _ = run()
    assert not has_files(version) and result.files_removed == 1


# --- doors: command and task -------------------------------------------------------------------


def test_command_dry_run_prints_the_plan_and_changes_nothing(mixed, capsys):
    call_command("apply_retention", "--dry-run")
    out = capsys.readouterr().out
    assert f"would archive {M}/5" in out and f"would delete {M}/1" in out
    assert f"keep {M}/3: holds alias champion" in out
    assert "Dry run: would archive 1, delete 2, keep 2 protected version(s)." in out
    assert events().count() == 0
    call_command("apply_retention")
    out = capsys.readouterr().out
    assert f"archive {M}/5" in out and "archived 1, deleted 2" in out
    assert events().count() == 3
    call_command("apply_retention", "--reconcile-only")
    assert "Removed the files of 0" in capsys.readouterr().out


def test_task_runs_eagerly_and_a_redelivery_resumes_the_same_run(mixed):
    from registry.tasks import apply_retention

    result = apply_retention.delay().get()
    assert (result["archived"], result["deleted"]) == (1, 2)
    run_ = RetentionRun.objects.get(pk=result["run"])
    assert (run_.trigger, run_.state, run_.attempts) == ("task", "DONE", 1)
    # A redelivery of the same message (same task id) resumes that run and does nothing twice.
    again = apply_retention.apply(task_id=run_.task_id).get()
    run_.refresh_from_db()
    assert again["run"] == result["run"] and run_.attempts == 2
    assert (run_.archived, run_.deleted) == (1, 2)
    assert events().count() == 3
    event = AuditEvent.objects.filter(action="retention.run").last()
    assert event.details["attempt"] == 2


@pytest.mark.django_db
def test_legal_hold_blocks_manual_deletes_too(admin_actor, tree, grant, make_user, ready_version):
    """A hold is not only for retention: a MANAGE holder cannot delete what it covers."""
    from core.errors import FailedPrecondition
    from registry import services
    from registry.services.retention import legal_hold_clear, legal_hold_set

    tree("main.ml.held")
    owner = make_user("hana")
    grant("catalog", "main", "hana", "USE CATALOG", "USE SCHEMA")
    grant("registered_model", "main.ml.held", "hana", "MODIFY", "MANAGE")
    ready_version(owner, "main.ml.held")
    ready_version(owner, "main.ml.held")
    actor = Actor.system(owner)
    legal_hold_set(actor=admin_actor, full_name="main.ml.held", version=1, reason="case 7")
    with pytest.raises(FailedPrecondition, match="legal hold"):
        services.model_version_delete(actor=actor, full_name="main.ml.held", version=1)
    with pytest.raises(FailedPrecondition, match="legal hold"):
        services.registered_model_delete(actor=actor, full_name="main.ml.held", force=True)
    services.model_version_delete(actor=actor, full_name="main.ml.held", version=2)  # not held
    legal_hold_clear(actor=admin_actor, full_name="main.ml.held", version=1)
    services.model_version_delete(actor=actor, full_name="main.ml.held", version=1)


def test_archive_and_delete_notify_webhook_subscribers(team, make_versions):
    """Steward's own events model_version.archived / .deleted reach a subscriber scoped to the
    catalog; nothing is written when nobody subscribes."""
    from webhooks.models import WebhookDelivery
    from webhooks.services import webhook_create

    old, archived = make_versions(2, age_days=40)
    archived_ago(archived, 10)
    webhook_create(
        actor=Actor.system(team["owen"]),
        name="lifecycle",
        url="https://hooks.example.test/steward",
        events=["model_version.archived", "model_version.deleted"],
        securable_type="catalog",
        full_name="main",
    )
    policy(team, archive_after_days=30, delete_after_days=7)
    run()
    import json

    sent = {
        (d.event, json.loads(d.payload)["data"]["version"])
        for d in WebhookDelivery.objects.filter(webhook__name="lifecycle")
    }
    assert sent == {
        ("model_version.archived", str(old.version)),
        ("model_version.deleted", str(archived.version)),
    }


# --- batches spanning several models -----------------------------------------------------------


@pytest.fixture
def spread(team, tree, make_versions):
    """Four models in two schemas under three policies (the model's own, its schema's, the
    catalog's), each with versions due for something; batches then span several models."""
    tree("main.ml.other", "main.ml.third", "main.cv.vision")
    versions = {
        M: make_versions(4, age_days=40),
        "main.ml.other": make_versions(3, "main.ml.other", age_days=40),
        "main.ml.third": make_versions(3, "main.ml.third", age_days=40),
        "main.cv.vision": make_versions(3, "main.cv.vision", age_days=40),
    }
    archived_ago(versions["main.ml.other"][0], 10)
    archived_ago(versions["main.cv.vision"][0], 10)
    policy(team, archive_after_days=30, delete_after_days=7)  # catalog: main.cv.vision
    policy(team, "schema", "main.ml", archive_after_days=35, keep_last=1)  # other, third
    policy(team, "registered_model", M, archive_after_days=60)  # too young under its own
    return versions


def test_a_batch_spanning_models_applies_each_models_own_policy(spread, monkeypatch):
    batches: list[set] = []
    act = retention_services._act

    def recording(items, run_, worker):
        batches.append({i.full_name for i in items})
        return act(items, run_, worker)

    monkeypatch.setattr(retention_services, "_act", recording)
    plan = dry()
    result, done = run()
    assert any(len(names) > 1 for names in batches), batches
    assert [i.key for i in done] == [i.key for i in plan]
    lifecycles = {name: [state(v) for v in versions] for name, versions in spread.items()}
    assert lifecycles == {
        M: ["ACTIVE"] * 4,  # its own policy: archive after 60 days
        "main.ml.other": ["ARCHIVED", "ARCHIVED", "ACTIVE"],  # schema: no delete; keep 1
        "main.ml.third": ["ARCHIVED", "ARCHIVED", "ACTIVE"],
        "main.cv.vision": ["DELETED", "ARCHIVED", "ARCHIVED"],  # catalog: delete after 7
    }
    audited = sorted((e.securable, e.details["version"], e.details["policy"]) for e in events())
    expected_policy = {
        "main.ml.other": retention.policy_for(
            RegisteredModel.objects.get(full_name="main.ml.other")
        ),
        "main.ml.third": retention.policy_for(
            RegisteredModel.objects.get(full_name="main.ml.third")
        ),
        "main.cv.vision": retention.policy_for(
            RegisteredModel.objects.get(full_name="main.cv.vision")
        ),
    }
    assert audited == sorted(
        (i.full_name, i.version, str(expected_policy[i.full_name].pk))
        for i in plan
        if i.action != retention.KEEP
    )
    assert (result.archived, result.deleted) == (5, 1)


def test_a_crash_in_a_multi_model_batch_rolls_back_every_model_in_it(spread, monkeypatch):
    """A crash while writing the audit events of the first batch that spans several models
    undoes that batch for all of them; the rerun does every version exactly once."""
    expected = acted(dry())
    before = dict(ModelVersion.objects.values_list("pk", "lifecycle"))
    real = retention_services._audit_spec
    batches: list[set] = []
    act = retention_services._act

    def recording(items, run_, worker):
        batches.append({i.full_name for i in items if i.action != retention.KEEP})
        return act(items, run_, worker)

    def flaky(item, run_, worker):
        if len(batches[-1]) > 1:
            raise RuntimeError("worker died")
        return real(item, run_, worker)

    monkeypatch.setattr(retention_services, "_act", recording)
    monkeypatch.setattr(retention_services, "_audit_spec", flaky)
    with pytest.raises(RuntimeError):
        run()
    crashed = batches[-1]
    assert len(crashed) > 1, batches
    for name in crashed:
        assert not events().filter(securable=name).exists()
        for version in spread[name]:
            assert state(version) == before[version.pk], (name, version.version)
    monkeypatch.setattr(retention_services, "_audit_spec", real)
    run()
    audited = sorted((e.securable, e.details["version"]) for e in events())
    assert len(audited) == len(set(audited)) == len(expected)
    assert acted(dry()) == []
    for version in ModelVersion.objects.select_related("model"):
        assert has_files(version) == (version.lifecycle != Lifecycle.DELETED), version


def test_a_model_with_more_due_versions_than_a_batch_is_continued_behind_its_last(
    team, tree, make_versions, settings
):
    """Batches of 2 over models of 5 and 1 due versions: the first model's walk resumes
    behind its last version in each batch, and the dry run walks the same batches."""
    tree("main.ml.other")
    make_versions(5)
    make_versions(1, "main.ml.other")
    policy(team, archive_after_days=30)
    settings.STEWARD_RETENTION_BATCH_SIZE = 2
    plan = dry()
    assert len(plan) == 6
    result, done = run()
    assert [i.key for i in done] == [i.key for i in plan]
    assert result.archived == 6 and events().count() == 6
