"""Retention: policies, legal holds, and the run that archives and deletes old versions.

Policies and holds are ordinary governed services (MANAGE on the securable for a policy;
metastore admins for a legal hold). The run (`retention_apply`) is system work, started by the
daily Celery beat task `registry.tasks.apply_retention` or `manage.py apply_retention`, and is
built to survive crashes and to run on several workers at once:

- Work is claimed in batches that span models: a batch takes the models of a page (as many
  as hold about a batch-size of due versions) FOR SHARE SKIP LOCKED (every alias move, stage
  transition, promotion request, version creation and legal hold takes the model row FOR
  UPDATE, so none of them can slip in between the check and the action; a model one of them
  holds is skipped, and done at the end of the run, waiting for it then), then selects the
  due versions of all of them in one statement, `FOR UPDATE SKIP LOCKED`, at most a
  batch-size. Another worker skips the rows this one holds, and PostgreSQL re-checks the
  statement's conditions on the row versions it locks, so two workers never act on the same
  version and a version already handled is no longer due. The updates (an archive
  sets the version's `archived_at` in the same UPDATE), the tags and the audit events of the
  batch are a fixed number of set-based statements, whatever its size.
- A batch commits its actions, their audit events and the run's counters together; a crash
  loses the batch in flight, nothing else, and a rerun (the task is `acks_late`, redelivered
  after a worker dies) finds the rest still due. Nothing is done twice.
- Storage is deleted only after the database says so: a delete commits the tombstone
  (lifecycle DELETED) first; a DELETED version whose retention record does not say REMOVED
  (no record, PRESENT, or PENDING_DELETE from older runs) has files to remove. The files go
  afterwards (after a few models' batches, one pass per batch-size of deleted versions), then
  the record says REMOVED. The reconciler (`retention_files_reconcile`, run at the start of
  every run and as its own task) finishes any removal a crash interrupted, and that of
  manual deletes whose after-commit removal never ran.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any, TypedDict

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from audit.governance import governed
from audit.services import (
    audit_event_write,
    audit_events_append_prepared,
    audit_events_prepare,
)
from catalog import authz, scoped
from catalog.privileges import Privilege
from catalog.services import audit_write
from core import rows as sql_rows
from core.actor import Actor
from core.errors import AlreadyExists, Denial, InvalidParameter, NotFound, PermissionDenied
from registry import artifacts, retention, storage
from registry.models import (
    LegalHold,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RetentionPolicy,
    RetentionRun,
    VersionRetention,
)
from registry.retention import ARCHIVE, DELETE, PlanItem, PolicyIndex
from registry.services.lookups import clean_text, clean_uuid, locked_model, version_of
from webhooks.models import Webhook
from webhooks.services import emit

logger = logging.getLogger(__name__)

Lifecycle = ModelVersion.Lifecycle
Files = VersionRetention.Files
SYSTEM = "system"
POLICY_FIELDS = ("archive_after_days", "delete_after_days", "keep_last", "description")


# --- policies --------------------------------------------------------------------------------


def _apply_policy_fields(policy: RetentionPolicy, fields: Mapping[str, object]) -> dict[str, Any]:
    """Validate and set the given fields; returns what changed (for the audit event)."""
    changes: dict[str, Any] = {}
    for name in ("archive_after_days", "delete_after_days"):
        if name in fields:
            setattr(policy, name, retention.clean_days(fields[name], name))
            changes[name] = getattr(policy, name)
    if "keep_last" in fields:
        policy.keep_last = retention.clean_keep_last(fields["keep_last"])
        changes["keep_last"] = policy.keep_last
    if "description" in fields:
        policy.description = clean_text(fields["description"], "description")
        changes["description"] = policy.description
    return changes


@governed("retention_policy.create")
def retention_policy_create(
    *,
    actor: Actor,
    securable_type: object,
    full_name: object,
    archive_after_days: object = None,
    delete_after_days: object = None,
    keep_last: object = 0,
    description: object = "",
) -> RetentionPolicy:
    """Put a retention policy on a catalog, schema or model (MANAGE on it; one per
    securable). A policy without an archive or delete rule exempts its level from the
    policies above it (the nearest level wins)."""
    securable = scoped.target(securable_type, full_name, what="Retention policies")
    authz.require(actor, Privilege.MANAGE, securable)
    if RetentionPolicy.objects.filter(RetentionPolicy.attached_q(securable)).exists():
        raise AlreadyExists(
            f"{str(securable.securable_type).replace('_', ' ').capitalize()} "
            f"'{securable.full_name}' already has a retention policy; change that one."
        )
    policy = RetentionPolicy(created_by=actor.username, updated_by=actor.username)
    policy.attach(securable)
    details = _apply_policy_fields(
        policy,
        {
            "archive_after_days": archive_after_days,
            "delete_after_days": delete_after_days,
            "keep_last": keep_last,
            "description": description,
        },
    )
    try:
        with transaction.atomic():
            policy.save()
    except IntegrityError:  # a concurrent create for the same securable won
        raise AlreadyExists(
            f"'{securable.full_name}' already has a retention policy; change that one."
        ) from None
    audit_write(actor, "retention_policy.create", securable, {"policy": str(policy.id), **details})
    return policy


def retention_policy_lookup(
    actor: Actor, policy_id: object, *, lock: bool = False
) -> RetentionPolicy:
    """A policy on a securable the actor can see; otherwise not found."""
    qs = RetentionPolicy.objects.select_related(
        "catalog", "schema__catalog", "model__schema__catalog"
    )
    if lock:
        qs = qs.select_for_update(of=("self",))
    policy = qs.filter(pk=clean_uuid(policy_id, "retention policy")).first()
    if policy is None or not authz.can_see(actor, policy.securable):
        raise NotFound(f"Retention policy {str(policy_id)[:64]} does not exist.")
    return policy


@governed("retention_policy.update")
def retention_policy_update(
    *, actor: Actor, policy_id: object, **fields: object
) -> RetentionPolicy:
    """Change a policy's rules or description (MANAGE on its securable); the next run applies
    them."""
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:
        raise InvalidParameter(f"Unknown field {sorted(unknown)[0]!r}.")
    policy = retention_policy_lookup(actor, policy_id, lock=True)
    authz.require(actor, Privilege.MANAGE, policy.securable)
    changes = _apply_policy_fields(policy, fields)
    policy.updated_by = actor.username
    policy.save()
    audit_write(
        actor, "retention_policy.update", policy.securable, {"policy": str(policy.id), **changes}
    )
    return policy


@governed("retention_policy.delete")
def retention_policy_delete(*, actor: Actor, policy_id: object) -> None:
    """Remove a policy (MANAGE); the models it governed fall to the next level's policy."""
    policy = retention_policy_lookup(actor, policy_id, lock=True)
    securable = policy.securable
    authz.require(actor, Privilege.MANAGE, securable)
    audit_write(actor, "retention_policy.delete", securable, {"policy": str(policy.id)})
    policy.delete()


# --- legal holds -----------------------------------------------------------------------------


def _require_admin(actor: Actor, model: RegisteredModel, version: object) -> None:
    if authz.is_admin(actor) and not actor.read_only:
        return
    exc = PermissionDenied(
        "This token is read-only."
        if authz.is_admin(actor)
        else "Only metastore admins may set or clear a legal hold."
    )
    exc.denied = Denial(
        "registered_model",
        model.full_name,
        "LEGAL HOLD",
        {"version": version} if version is not None else {},
    )
    raise exc


def _hold_target(
    actor: Actor, full_name: object, version: object
) -> tuple[RegisteredModel, ModelVersion | None]:
    """The model (locked: retention batches take it FOR SHARE, so a hold never lands between a
    batch's check and its action) and, for a version hold, the live version."""
    model = locked_model(full_name)
    authz.require_visible(actor, model)
    _require_admin(actor, model, version)
    target = version_of(model, version) if version is not None else None
    return model, target


def _hold_details(hold: LegalHold) -> dict[str, Any]:
    # `version` is None exactly when `version_id` is (no query then).
    return {
        "version": hold.version.version if hold.version is not None else None,
        "reason": hold.reason,
    }


@governed("legal_hold.set")
def legal_hold_set(
    *, actor: Actor, full_name: object, version: object = None, reason: object
) -> LegalHold:
    """Put a model (version None) or one version under legal hold (metastore admins): no
    retention step touches it until the hold is cleared. Setting it again changes the reason."""
    model, target = _hold_target(actor, full_name, version)
    reason = clean_text(reason, "reason", required=True)
    hold = LegalHold.objects.filter(model=model, version=target).first()
    if hold is not None and hold.reason == reason:
        return hold
    previous = hold.reason if hold is not None else None
    if hold is None:
        hold = LegalHold(model=model, version=target, created_by=actor.username)
    hold.reason = reason
    hold.updated_by = actor.username
    hold.save()
    details = _hold_details(hold)
    if previous is not None:
        details["previous_reason"] = previous
    audit_write(actor, "legal_hold.set", model, details)
    return hold


@governed("legal_hold.clear")
def legal_hold_clear(*, actor: Actor, full_name: object, version: object = None) -> None:
    """Lift a legal hold (metastore admins); retention may touch the version(s) again."""
    model, target = _hold_target(actor, full_name, version)
    hold = LegalHold.objects.filter(model=model, version=target).first()
    if hold is None:
        where = f"version {target.version} of " if target is not None else ""
        raise NotFound(f"There is no legal hold on {where}{model.full_name}.")
    audit_write(actor, "legal_hold.clear", model, _hold_details(hold))
    hold.delete()


# --- the run ---------------------------------------------------------------------------------


def default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _batch_size(batch: int | None) -> int:
    configured: int = getattr(settings, "STEWARD_RETENTION_BATCH_SIZE", 500)
    return max(1, int(batch or configured))


def _test_item_delay() -> float:
    """Seconds to sleep per acted-on version. Only the crash tests' worker settings
    (tests/e2e/worker_settings.py) define it, so they can kill a worker mid-run; no
    environment variable of the production settings reaches it."""
    try:
        delay = float(getattr(settings, "STEWARD_TEST_RETENTION_ITEM_DELAY", 0) or 0)
    except (TypeError, ValueError):
        return 0.0
    return delay if 0 < delay <= 10 else 0.0


def _share_lock_models(
    page: list[retention.Pair], *, wait: bool
) -> tuple[list[retention.Pair], set[uuid.UUID], set[uuid.UUID]]:
    """FOR SHARE on the models of a batch, in primary-key order: compatible with other
    retention workers, exclusive with the row lock every alias move, stage transition,
    promotion request, legal hold (FOR UPDATE) and rename or new version (an UPDATE of the
    row) takes; SQLite locks the whole database for a write anyway. Unless `wait`, a model
    someone else holds so is skipped (SKIP LOCKED) rather than waited for, so that one busy
    model does not hold up the batch's others: the run comes back to it at the end.

    Returns the locked models as they are now (a name may have changed since the run listed
    it), the primary keys of the models held by someone else, and of those gone."""
    ids = [model.pk for model, _ in page]
    meta = RegisteredModel._meta
    table, pk = meta.db_table, meta.pk.column
    name = sql_rows.column(RegisteredModel, "full_name")
    if connection.vendor != "postgresql":
        names = dict(RegisteredModel.objects.filter(pk__in=ids).values_list("pk", "full_name"))
    else:
        skip = "" if wait else " SKIP LOCKED"
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT "{pk}", "{name}" FROM "{table}" WHERE "{pk}" = ANY(%s) '
                f'ORDER BY "{pk}" FOR SHARE{skip}',
                [ids],
            )
            names = dict(cursor.fetchall())
    missing = [i for i in ids if i not in names]
    busy: set[uuid.UUID] = set()
    if missing and connection.vendor == "postgresql" and not wait:
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT "{pk}" FROM "{table}" WHERE "{pk}" = ANY(%s)', [missing])
            busy = {row[0] for row in cursor.fetchall()}
    locked = [
        (replace(model, full_name=names[model.pk]), policy)
        for model, policy in page
        if model.pk in names
    ]
    return locked, busy, set(missing) - busy


def _start_run(*, task_id: str, trigger: str, worker: str, now: datetime | None) -> RetentionRun:
    """A new run, or for a redelivered task the run it started (same cut-off time)."""
    with transaction.atomic():
        if task_id:
            run, _ = RetentionRun.objects.select_for_update().get_or_create(
                task_id=task_id,
                defaults={"started_at": now or timezone.now(), "trigger": trigger},
            )
        else:
            run = RetentionRun(started_at=now or timezone.now(), trigger=trigger)
        run.attempts += 1
        run.worker = worker[:255]
        run.state = RetentionRun.State.RUNNING
        run.finished_at = None
        run.save()
    return run


# A batch names few policies and one run, once per version each.
_text_id = functools.lru_cache(maxsize=1024)(str)


def _audit_spec(item: PlanItem, run: RetentionRun, worker: str) -> dict[str, Any]:
    """The audit event of one archived or deleted version (keyword arguments of
    audit.services.audit_event_write)."""
    return {
        "actor": None,
        "actor_name": SYSTEM,
        "auth_method": "task",
        "action": f"model_version.{item.action}",
        "securable_type": "registered_model",
        "securable": item.full_name,
        "details": {
            "version": item.version,
            "by": "retention",
            "policy": _text_id(item.policy_id),
            "reasons": list(item.reasons),
            "run": _text_id(run.pk),
            "trigger": run.trigger,
            "worker": worker,
        },
    }


def _notify_webhooks(items: list[PlanItem]) -> None:
    """model_version.archived / model_version.deleted for webhook subscribers, in the batch's
    transaction (webhooks.services.emit); one query per batch when nobody subscribes."""

    if not items or not Webhook.objects.filter(status=Webhook.Status.ACTIVE).exists():
        return
    models_by_id = RegisteredModel.objects.select_related("schema__catalog").in_bulk(
        {i.model_id for i in items}
    )
    for item in items:
        emit(
            "model_version.archived" if item.action == ARCHIVE else "model_version.deleted",
            {
                "name": item.full_name,
                "version": str(item.version),
                "reason": "; ".join(item.reasons),
            },
            securable=models_by_id.get(item.model_id),
        )


def _id_set(ids: Iterable[uuid.UUID | str]) -> RawSQL | list[uuid.UUID | str]:
    """The right-hand side of a `pk__in` filter on many version ids: on PostgreSQL one array
    parameter (`unnest`), instead of one placeholder, and one client-side quoting, per id."""
    listed = list(ids)
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::uuid[])", [_uuid_array(listed)])
    return listed


# PostgreSQL writes of a batch, run together by `_write_all`: (statement, parameters).
Writes = list[tuple[str, list[Any]]]


def _uuid_array(ids: Iterable[object]) -> str:
    """A PostgreSQL array literal of UUIDs (None: NULL)."""
    return "{" + ",".join("NULL" if i is None else str(i) for i in ids) + "}"


def _write_all(writes: Writes) -> None:
    """Run these PostgreSQL writes as one statement (each a data-modifying `WITH` part): a
    batch's writes wait on the server once, not once each, which counts on a loaded machine.
    They touch different rows, so running them on one snapshot changes nothing."""
    if writes:
        parts = ", ".join(f"w{n} AS ({sql})" for n, (sql, _) in enumerate(writes))
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {parts} SELECT 1", [p for _, ps in writes for p in ps])


def _update_versions(writes: Writes, ids: list[str], **values: Any) -> None:
    """Set `values` on these versions: on PostgreSQL one UPDATE with the ids as one array
    parameter (`= ANY`), which the planner answers with the primary key index, appended to
    `writes`; elsewhere written now."""
    if connection.vendor != "postgresql":
        ModelVersion.objects.filter(pk__in=ids).update(**values)
        return
    meta = ModelVersion._meta
    sets = ", ".join(f'"{sql_rows.column(ModelVersion, name)}" = %s' for name in values)
    writes.append(
        (
            f'UPDATE "{meta.db_table}" SET {sets} WHERE "{meta.pk.column}" = ANY(%s::uuid[])',
            [*values.values(), _uuid_array(ids)],
        )
    )


def _delete_tags(writes: Writes, ids: list[str]) -> None:
    """Remove the tags of these versions with one DELETE statement, not the deletion
    collector: a tag has no dependants and no signal handler of ours, and the version's
    delete event records the removal (django-auditlog would otherwise write one LogEntry per
    tag, the costliest part). On PostgreSQL appended to `writes`."""
    if connection.vendor != "postgresql":
        # A foreign key to a UUID takes the ids' text form too; the plugin asks for UUIDs.
        tags = ModelVersionTag.objects.filter(version_id__in=ids)  # type: ignore[misc]
        tags._raw_delete(tags.db)
        return
    meta = ModelVersionTag._meta
    writes.append(
        (
            f'DELETE FROM "{meta.db_table}" '
            f'WHERE "{sql_rows.column(ModelVersionTag, "version")}" = ANY(%s::uuid[])',
            [_uuid_array(ids)],
        )
    )


def _act(items: list[PlanItem], run: RetentionRun, worker: str) -> tuple[int, int]:
    """Archive and delete the settled items of one locked batch, with a fixed number of
    statements whatever its size; returns the counts."""
    delay = _test_item_delay()
    now = timezone.now()
    archive = [i for i in items if i.action == ARCHIVE]
    delete = [i for i in items if i.action == DELETE]
    for _ in archive + delete:
        if delay:
            time.sleep(delay)
    writes: Writes = []  # PostgreSQL: run together as one statement
    if archive:
        ids = [str(i.version_id) for i in archive]
        # When it was archived goes on the version row, in the same UPDATE: no second row.
        _update_versions(
            writes,
            ids,
            lifecycle=Lifecycle.ARCHIVED,
            updated_by=SYSTEM,
            updated_at=now,
            archived_at=now,
        )
    if delete:
        # The tombstone alone marks the files for removal: a DELETED version whose retention
        # record does not say REMOVED is what the reconciler removes (after this commits).
        ids = [str(i.version_id) for i in delete]
        _update_versions(
            writes,
            ids,
            lifecycle=Lifecycle.DELETED,
            stage=ModelVersion.Stage.ARCHIVED,
            updated_by=SYSTEM,
            updated_at=now,
        )
        _delete_tags(writes, ids)
    if archive or delete:
        _count(writes, run, archived=len(archive), deleted=len(delete))
    _notify_webhooks(archive + delete)
    specs = (_audit_spec(item, run, worker) for item in archive + delete)
    if writes and connection.vendor == "postgresql":
        # Pipeline mode: the batch's one write statement goes to the server without waiting
        # for it, and the audit events' fields and hash payloads (which do not depend on the
        # chain) are built meanwhile; leaving the block waits for the statement (and raises
        # its error, as Django's, which rolls the batch back).
        with connection.wrap_database_errors, connection.connection.pipeline():
            _write_all(writes)
            prepared = audit_events_prepare(specs)
    else:
        _write_all(writes)
        prepared = audit_events_prepare(specs)
    # Audit events last: each locks the audit chain head until commit, so writing them at
    # the end keeps other workers' batches waiting for the shortest time.
    # One event per version, chained in order, with one lock of the chain head per batch.
    audit_events_append_prepared(prepared)
    return len(archive), len(delete)


def _count(writes: Writes, run: RetentionRun, **added: int) -> None:
    """Add to the run's counters, in the batch's transaction (appended to `writes` on
    PostgreSQL)."""
    if connection.vendor != "postgresql":
        RetentionRun.objects.filter(pk=run.pk).update(
            **{name: F(name) + n for name, n in added.items()}
        )
        return
    meta = RetentionRun._meta
    sets = ", ".join(
        f'"{sql_rows.column(RetentionRun, n)}" = "{sql_rows.column(RetentionRun, n)}" + %s'
        for n in added
    )
    writes.append(
        (
            f'UPDATE "{meta.db_table}" SET {sets} WHERE "{meta.pk.column}" = %s',
            [*added.values(), run.pk],
        )
    )


def _sweep(
    pages: retention.Pages,
    run: RetentionRun,
    *,
    worker: str,
    on_item: Callable[[PlanItem], None] | None,
    removed: list[uuid.UUID],
    skipped: list[tuple[retention.Pair, Cursor | None]] | None,
) -> None:
    """Claim and settle the due versions of the models `pages` walks, a batch of models at a
    time (see the module docstring). Models held by someone else are appended to `skipped`
    (with where their walk stood) for the caller to come back to; `skipped` None: wait for
    them instead. The ids of the versions deleted (committed) are appended to `removed`,
    whose files the caller removes (one reconcile pass per batch-size of deleted versions)."""
    now = run.started_at
    batch = pages.batch
    while page := pages.next():
        with transaction.atomic():
            locked, busy, gone = _share_lock_models(page, wait=skipped is None)
            if busy or gone:
                after = pages.drop(busy | gone)
                if skipped is not None:
                    skipped.extend(
                        (pair, after if after and after[0] == pair[0].pk else None)
                        for pair in page
                        if pair[0].pk in busy
                    )
            if not locked:
                continue
            rows = list(
                retention.due_versions(locked, now, after=pages.cursor(locked)).select_for_update(
                    skip_locked=True, of=("self",)
                )[:batch]
            )
            items = retention.decide(locked, rows, now)
            _act(items, run, worker)
        pages.done(locked, rows)
        if on_item is not None:
            for item in items:
                on_item(item)
        removed.extend(i.version_id for i in items if i.action == DELETE)
        if len(removed) >= batch:
            retention_files_reconcile(version_ids=removed, run=run, batch=batch)
            removed.clear()


Cursor = tuple[uuid.UUID, int]  # resume behind (model pk, version number)


class _SweepArgs(TypedDict):
    """What every `_sweep` of one run shares."""

    worker: str
    on_item: Callable[[PlanItem], None] | None
    removed: list[uuid.UUID]


def retention_apply(
    *,
    now: datetime | None = None,
    task_id: str = "",
    trigger: str = "command",
    worker: str = "",
    on_item: Callable[[PlanItem], None] | None = None,
    batch: int | None = None,
) -> RetentionRun:
    """One retention run over every model a policy governs: reconcile half-done deletes,
    then archive and delete what is due and not protected. Idempotent and safe on several
    workers at once. `task_id` resumes the run a crashed delivery of the same task started;
    `on_item` sees every settled item (acted on or kept) after its batch committed."""
    worker = worker or default_worker()
    size = _batch_size(batch)
    run = _start_run(task_id=task_id, trigger=trigger, worker=worker, now=now)
    retention_files_reconcile(run=run, batch=size)
    index = PolicyIndex.load()
    removed: list[uuid.UUID] = []
    skipped: list[tuple[retention.Pair, Cursor | None]] = []
    sweep: _SweepArgs = {"worker": worker, "on_item": on_item, "removed": removed}
    _sweep(retention.Pages(retention.governed_models(index), size), run, skipped=skipped, **sweep)
    # The models another transaction held when their turn came: one at a time now, waiting
    # for their lock this time.
    for pair, after in skipped:
        _sweep(retention.Pages([pair], size, after), run, skipped=None, **sweep)
    if removed:
        retention_files_reconcile(version_ids=removed, run=run, batch=size)
    with transaction.atomic():
        run = RetentionRun.objects.select_for_update().get(pk=run.pk)
        run.state = RetentionRun.State.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "finished_at"])
        audit_event_write(
            actor=None,
            actor_name=SYSTEM,
            auth_method="task",
            action="retention.run",
            details={
                "run": str(run.pk),
                "trigger": run.trigger,
                "attempt": run.attempts,
                "worker": worker,
                "archived": run.archived,
                "deleted": run.deleted,
                "files_removed": run.files_removed,
            },
        )
    return run


def retention_plan(*, now: datetime | None = None, batch: int | None = None) -> Iterator[PlanItem]:
    """The dry run: what `retention_apply` at `now` would do, item by item (a generator)."""
    now = now or timezone.now()
    return retention.plan(
        retention.governed_models(PolicyIndex.load()), now, batch=_batch_size(batch)
    )


def retention_files_reconcile(
    *,
    version_ids: Iterable[uuid.UUID | str] | None = None,
    run: RetentionRun | None = None,
    batch: int | None = None,
) -> int:
    """Remove the files of DELETED versions whose removal is not confirmed (a retention
    record that does not say REMOVED, or none: a retention delete, or a manual one), then
    mark them REMOVED. Rows another worker
    holds are skipped (it is removing them); a failed removal stays pending for the next
    pass. Idempotent: removing what is already gone is a no-op. Returns the count."""
    size = _batch_size(batch)
    # Not confirmed: no retention record, or one that does not say REMOVED.
    pending = ModelVersion.objects.filter(lifecycle=Lifecycle.DELETED).filter(
        Q(retention__isnull=True) | Q(retention__files__in=(Files.PRESENT, Files.PENDING_DELETE))
    )
    if version_ids is not None:
        pending = pending.filter(pk__in=_id_set(version_ids))
    count = 0
    last = None
    while True:
        with transaction.atomic():
            qs = pending.filter(pk__gt=last) if last is not None else pending
            rows = list(
                qs.order_by("pk")
                .values_list("id", "model_id", "version", "updated_at")
                .select_for_update(skip_locked=True, of=("self",))[:size]
            )
            if not rows:
                break
            last = rows[-1][0]
            done = _remove_files(rows)
            deleted_at = {pk: updated_at for pk, _, _, updated_at in rows}
            writes: Writes = []  # PostgreSQL: one statement
            _mark_removed(writes, [(pk, deleted_at[pk]) for pk in done], timezone.now())
            if run is not None and done:
                _count(writes, run, files_removed=len(done))
            _write_all(writes)
        count += len(done)
        if len(rows) < size:
            break
    return count


def _mark_removed(writes: Writes, rows: list[tuple[uuid.UUID, datetime]], now: datetime) -> None:
    """Record the files of these (version id, deleted at) versions as REMOVED, creating their
    retention record if need be; `deleted_at` is kept if set (when the run deleted it) and
    otherwise taken from the tombstone's last change. On PostgreSQL one statement, appended
    to `writes` (`_write_all`); elsewhere written now."""
    if not rows:
        return
    meta = VersionRetention._meta
    if connection.vendor != "postgresql":
        records = VersionRetention.objects.filter(version_id__in=[pk for pk, _ in rows])
        have = set(records.values_list("version_id", flat=True))
        VersionRetention.objects.bulk_create(
            VersionRetention(version_id=pk, deleted_at=when, files=Files.REMOVED)
            for pk, when in rows
            if pk not in have
        )
        records.update(files=Files.REMOVED, files_removed_at=now)
        for pk, when in rows:
            if pk in have:
                records.filter(version_id=pk, deleted_at__isnull=True).update(deleted_at=when)
        return
    table = meta.db_table
    writes.append(
        (
            f'INSERT INTO "{table}" (version_id, deleted_at, files, files_removed_at) '
            "SELECT v, d, %s, %s "
            "FROM unnest(%s::uuid[], %s::timestamptz[]) AS t(v, d) "
            "ON CONFLICT (version_id) DO UPDATE SET files = EXCLUDED.files, "
            "files_removed_at = EXCLUDED.files_removed_at, "
            f'deleted_at = COALESCE("{table}".deleted_at, EXCLUDED.deleted_at)',
            [
                Files.REMOVED,
                now,
                _uuid_array(pk for pk, _ in rows),
                "{" + ",".join(f'"{when.isoformat()}"' for _, when in rows) + "}",
            ],
        )
    )


def _remove_files(rows: list[tuple[uuid.UUID, uuid.UUID, int, datetime]]) -> list[uuid.UUID]:
    """Remove the files of these (version id, model id, version number, updated at) rows of
    DELETED versions; returns the ids whose removal succeeded (or that had nothing to
    remove). On local storage a version without a directory costs nothing more than one
    `listdir` of its model's versions directory, shared by the model's versions in the
    batch; a directory that cannot be listed leaves its versions to `delete_tree`."""
    local_root = None if settings.STEWARD_ARTIFACT_STORAGE == "s3" else storage.artifact_root()
    listed: dict[str, set[str] | None] = {}
    done: list[uuid.UUID] = []
    for pk, model_id, number, _ in rows:
        prefix = storage.version_prefix(
            SimpleNamespace(model=SimpleNamespace(id=model_id), version=number)
        )
        if local_root is not None:
            parent, name = os.path.split(os.path.join(local_root, prefix))
            if parent not in listed:
                try:
                    listed[parent] = set(os.listdir(parent))
                except (FileNotFoundError, NotADirectoryError):
                    listed[parent] = set()
                except OSError:
                    listed[parent] = None  # unknown: walk each version
            names = listed[parent]
            if names is not None and name not in names:
                done.append(pk)  # nothing stored for it
                continue
        try:
            artifacts.delete_tree(prefix)
        except Exception as exc:  # storage outage: leave it pending, go on
            logger.warning("Removing the files of version %s failed: %s", pk, exc)
            continue
        done.append(pk)
    return done
