"""Model versions, tags, aliases and legacy stages: every door (MLflow, UC, native) calls these.

Version numbers are handed out under a row lock on the registered model, so two clients
creating versions at once get distinct numbers, and numbers are never reused.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from audit.governance import governed
from audit.services import audit_event_write, audit_events_write
from catalog import authz
from catalog.privileges import Privilege
from catalog.selectors import model_lookup
from catalog.services import audit_write, clean_comment
from core import rows
from core.actor import Actor
from core.errors import FailedPrecondition, InvalidParameter, NotFound
from core.queue import enqueue_on_commit
from lineage import services as lineage_services
from registry import artifacts, storage
from registry.artifacts import VersionFacts
from registry.models import (
    LegalHold,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
)
from registry.services.lookups import (
    OVERDUE_MESSAGE,
    clean_tag,
    locked_model,
    version_audit,
    version_of,
)
from registry.services.moves import protection, record_move
from registry.sources import resolve_source
from webhooks import payloads as webhook_payloads
from webhooks.services import emit as webhook_emit


@functools.cache
def _bump_sql() -> str:
    meta = RegisteredModel._meta
    sets = ", ".join(
        f'"{rows.column(RegisteredModel, name)}" = %s'
        for name in ("next_version", "updated_by", "updated_at")
    )
    return f'UPDATE "{meta.db_table}" SET {sets} WHERE "{meta.pk.column}" = %s'


def _version_event(
    actor: Actor,
    action: str,
    version: ModelVersion,
    details: dict[str, Any],
    outcome: str = "SUCCESS",
) -> dict[str, Any]:
    """The keyword arguments of one audit event about a version, for `audit_events_write`."""
    return {
        "actor": actor,
        "action": action,
        "outcome": outcome,
        "securable_type": str(version.model.securable_type),
        "securable": version.model.full_name,
        "details": {"version": version.version, **details},
    }


# --- versions ------------------------------------------------------------------------------


@governed("model_version.create")
def model_version_create(
    *,
    actor: Actor,
    full_name: object,
    source: object,
    run_id: str = "",
    logged_model_id: str = "",
    description: object = None,
    tags: object = None,
    copy_files: bool = False,
) -> ModelVersion:
    """Register a new version (PENDING_REGISTRATION) of a model; needs MODIFY on it.

    The source must pass the URI policy and name something the actor may read. The version
    becomes READY when its files are in place: copied from the source by a task after commit
    (`copy_files`, the MLflow door), or uploaded by the client and then finalized (the UC
    door); FAILED_REGISTRATION when the copy fails or the deadline passes first.
    """
    model = locked_model(full_name)
    authz.require(actor, Privilege.MODIFY, model)
    parsed = storage.parse_source(source)

    resolved = resolve_source(actor, parsed, run_id=run_id, logged_model_id=logged_model_id)
    number = model.next_version
    # Bookkeeping on the locked row, not a change of the model that deserves a field diff: a
    # plain UPDATE (no django-auditlog read-back and diff per registration).
    model.next_version = number + 1
    model.updated_by = actor.username
    model.updated_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _bump_sql(),
            [
                model.next_version,
                model.updated_by,
                rows.db_value(RegisteredModel, "updated_at", model.updated_at),
                rows.db_value(RegisteredModel, "id", model.pk),
            ],
        )
    version = ModelVersion(
        model=model,
        version=number,
        source=parsed.raw,
        run_id=resolved.run_id,
        logged_model_id=resolved.logged_model_id,
        description=clean_comment(description),
        created_by=actor.username,
        updated_by=actor.username,
        pending_deadline=timezone.now()
        + timedelta(seconds=settings.STEWARD_PENDING_VERSION_TIMEOUT),
    )
    version.storage_location = storage.storage_uri(storage.version_prefix(version))
    tag_list = tag_pairs(tags)  # refused before anything is copied
    copy_now = copy_files and resolved.artifact_prefix and _small(resolved.artifact_prefix)
    outcome = _copy_and_seal(version, resolved.artifact_prefix) if copy_now else None
    try:
        version.save(force_insert=True)
        created_tags = [
            ModelVersionTag.objects.create(version=version, key=key, value=value)
            for key, value in tag_list
        ]
    except Exception:
        if copy_now:  # the transaction rolls back: leave no copied files behind either
            artifacts.delete_tree(storage.version_prefix(version))
        raise
    prefetched_tags(version, created_tags)
    # resolve_source has loaded (and authorized) the run it names, if any.
    lineage_services.model_version_source_record(version=version, run_exists=bool(resolved.run_id))
    events = [_version_event(actor, "model_version.create", version, {"source": parsed.raw})]
    if outcome is not None:
        copied, error = outcome
        if error:
            events.append(
                _version_event(
                    actor, "model_version.failed", version, {"reason": error[:500]}, "FAILURE"
                )
            )
        else:
            events.append(
                _version_event(
                    actor,
                    "model_version.ready",
                    version,
                    {"files": copied, "digest": version.artifact_digest},
                )
            )
    audit_events_write(events)  # one lock of the chain head for both
    webhook_emit(
        "model_version.created",
        lambda: webhook_payloads.model_version_created(version),
        securable=model,
    )
    if copy_files and resolved.artifact_prefix and not copy_now:
        _schedule_copy(str(version.pk), resolved.artifact_prefix)
    return version


def prefetched_tags(version: ModelVersion, tags: list[ModelVersionTag]) -> None:
    """Fill a version's `tags` prefetch cache (as prefetch_related would) with tags known
    otherwise: a new version's are the ones just created; the render selectors read them in
    the same statement as other things. Rendering then does not read them back."""
    qs = version.tags.all()
    qs._result_cache = tags
    # Django's private prefetch state, which its stubs do not declare.
    qs._prefetch_done = True  # type: ignore[attr-defined]
    version._prefetched_objects_cache = {"tags": qs}  # type: ignore[attr-defined]


def _small(prefix: str) -> bool:
    limit = settings.STEWARD_INLINE_COPY_MAX_BYTES
    return limit > 0 and artifacts.tree_within(prefix, limit)


def _copy_files(version: ModelVersion, source_prefix: str) -> tuple[int, VersionFacts | None, str]:
    """Copy a source's files into the version's location, digested and inspected as they are
    copied; on any failure nothing copied stays. (files copied, facts or None, error)"""
    target = storage.version_prefix(version)
    try:
        # A rolled-back or crashed attempt at this version may have left files here.
        artifacts.delete_tree(target)
        copied, facts = artifacts.copy_and_inspect(source_prefix, target)
    except Exception as exc:  # any failure: nothing half-registered
        artifacts.delete_tree(target)
        return 0, None, str(exc)
    return copied, facts, ""


def _settle(version: ModelVersion, facts: VersionFacts | None, error: str = "") -> None:
    """READY with the files' digest, signature and input example, or FAILED_REGISTRATION
    naming the error (not saved)."""
    version.pending_deadline = None
    if facts is None:
        version.status = ModelVersion.Status.FAILED_REGISTRATION
        version.status_message = f"Copying the source's files failed: {error}"[:2000]
        return
    version.status = ModelVersion.Status.READY
    version.artifact_digest = facts.digest
    version.signature = facts.signature
    version.input_example = facts.input_example


def _copy_and_seal(version: ModelVersion, source_prefix: str) -> tuple[int, str]:
    """Copy a small source into the (not yet saved) version's location and seal it, in the
    creating transaction: the version is born READY, with its digest and signature, and the
    mlflow client does not wait for a worker; or born FAILED_REGISTRATION with nothing
    copied. (copied files, error message)"""
    copied, facts, error = _copy_files(version, source_prefix)
    _settle(version, facts, error)
    return copied, error


def version_files_register(version_id: str, source_prefix: str) -> str:
    """The queued copy of a large source (registry.tasks.register_version_files): copy and
    inspect the files outside any transaction, then seal the version READY or FAILED under its
    row lock, with its audit event. Idempotent: a version no longer pending is left alone."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None or version.status != ModelVersion.Status.PENDING_REGISTRATION:
        return "skipped"
    copied, facts, error = _copy_files(version, source_prefix)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().filter(pk=version_id).first()
        if locked is None or locked.status != ModelVersion.Status.PENDING_REGISTRATION:
            return "skipped"
        _settle(locked, facts, error)
        locked.updated_by = locked.created_by
        locked.save()
        model = RegisteredModel.objects.get(pk=locked.model_id)
        details: dict[str, Any] = {"version": locked.version}
        if facts is not None:
            details.update(files=copied, digest=locked.artifact_digest)
        else:
            details["reason"] = error[:500]
        audit_event_write(
            actor=None,
            actor_name="system",
            auth_method="task",
            action="model_version.ready" if facts is not None else "model_version.failed",
            outcome="SUCCESS" if facts is not None else "FAILURE",
            securable_type=str(model.securable_type),
            securable=model.full_name,
            details=details,
        )
    return "ready" if facts is not None else "failed"


def model_versions_expire_overdue() -> int:
    """Settle every version still PENDING_REGISTRATION past its deadline as
    FAILED_REGISTRATION, each with its audit event (reads only show them so); idempotent, safe
    to run from several workers at once."""
    overdue = ModelVersion.objects.filter(
        status=ModelVersion.Status.PENDING_REGISTRATION, pending_deadline__lte=timezone.now()
    )
    count = 0
    for version_id, full_name, number in overdue.values_list(
        "pk", "model__full_name", "version"
    ).iterator():
        with transaction.atomic():
            if not ModelVersion.objects.filter(
                pk=version_id, status=ModelVersion.Status.PENDING_REGISTRATION
            ).update(
                status=ModelVersion.Status.FAILED_REGISTRATION, status_message=OVERDUE_MESSAGE
            ):
                continue
            count += 1
            audit_event_write(
                actor=None,
                actor_name="system",
                auth_method="task",
                action="model_version.expired",
                outcome="FAILURE",
                securable_type="registered_model",
                securable=full_name,
                details={"version": number},
            )
    return count


def _schedule_copy(version_id: str, prefix: str) -> None:
    """Copy a large source's files after commit, through the Celery queue (the same idempotent
    task a crash would rerun); a failure marks the version FAILED_REGISTRATION."""
    enqueue_on_commit("registry.tasks.register_version_files", version_id, prefix)


def tag_pairs(tags: object) -> list[tuple[str, str]]:
    if tags in (None, []):
        return []
    if isinstance(tags, dict):
        items = list(tags.items())
    elif isinstance(tags, list) and all(isinstance(t, dict) for t in tags):
        items = [(t.get("key"), t.get("value")) for t in tags]
    else:
        raise InvalidParameter("tags must be a list of {key, value} objects.")
    if len(items) > 100:
        raise InvalidParameter("At most 100 tags at once.")
    pairs = [clean_tag(k, v) for k, v in items]
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise InvalidParameter(f"tag key {duplicate[:100]!r} is given more than once.")
    return pairs


@governed("model_version.finalize")
def model_version_finalize(*, actor: Actor, full_name: object, version: object) -> ModelVersion:
    """Mark a pending version READY once its files are in its storage location (UC's finalize);
    records the artifact digest and the signature and input example of its MLmodel file."""
    model = locked_model(full_name)
    authz.require(actor, Privilege.MODIFY, model)
    obj = version_of(model, version, lock=True)
    if obj.status == ModelVersion.Status.READY:
        return obj
    if obj.status != ModelVersion.Status.PENDING_REGISTRATION:
        raise FailedPrecondition(
            f"Version {obj.version} is {obj.status}; only a pending version can be finalized."
        )
    seal(obj, actor.username)
    version_audit(actor, "model_version.finalize", obj, {"digest": obj.artifact_digest})
    return obj


def seal(version: ModelVersion, username: str) -> None:
    """Digest the files already in the version's location (uploaded there by the client),
    read its MLmodel metadata and mark it READY."""
    _settle(version, artifacts.inspect_version_files(storage.version_prefix(version)))
    version.updated_by = username
    version.save()


@governed("model_version.update")
def model_version_update(
    *, actor: Actor, full_name: object, version: object, description: object = None
) -> ModelVersion:
    """Change a version's description (MODIFY)."""
    model: RegisteredModel = model_lookup(full_name)
    authz.require(actor, Privilege.MODIFY, model)
    obj = version_of(model, version, lock=True)
    if description is None:
        return obj
    obj.description = clean_comment(description)
    obj.updated_by = actor.username
    obj.save(update_fields=["description", "updated_by", "updated_at"])
    version_audit(actor, "model_version.update", obj, {"description": obj.description})
    return obj


@governed("model_version.delete")
def model_version_delete(*, actor: Actor, full_name: object, version: object) -> None:
    """Delete a version (MANAGE): its aliases go, its files are removed after commit, and a
    tombstone keeps the number from ever being reused."""
    model = locked_model(full_name)
    authz.require(actor, Privilege.MANAGE, model)
    obj = version_of(model, version, lock=True)
    held = [a.alias for a in ModelAlias.objects.filter(version=obj)]
    protected = [a for a in held if protection(model, a) is not None]
    if obj.stage != ModelVersion.Stage.NONE and protection(model, obj.stage.lower()):
        protected.append(obj.stage.lower())
    if protected:
        raise FailedPrecondition(
            f"Version {obj.version} holds protected alias or stage {', '.join(protected)}; "
            "promote another version first."
        )
    if (
        LegalHold.objects.filter(model=model)
        .filter(models.Q(version__isnull=True) | models.Q(version=obj))
        .exists()
    ):
        raise FailedPrecondition(
            f"Version {obj.version} of {model.full_name} is under legal hold; an admin must "
            "clear the hold before it can be deleted."
        )
    for alias in ModelAlias.objects.filter(version=obj):
        record_move(actor, model, alias.alias, obj.version, None, "version deleted")
        alias.delete()
        webhook_emit(
            "model_version_alias.deleted",
            webhook_payloads.alias_deleted(model, alias.alias),
            securable=model,
        )
    obj.lifecycle = ModelVersion.Lifecycle.DELETED
    obj.stage = ModelVersion.Stage.ARCHIVED
    obj.updated_by = actor.username
    obj.save()
    ModelVersionTag.objects.filter(version=obj).delete()
    version_audit(actor, "model_version.delete", obj)
    webhook_emit(
        "model_version.deleted", webhook_payloads.model_version_lifecycle(obj), securable=model
    )
    prefix = storage.version_prefix(obj)
    transaction.on_commit(lambda: _remove_files(prefix))


def _remove_files(prefix: str) -> None:
    artifacts.delete_tree(prefix)


# --- tags ----------------------------------------------------------------------------------


@governed("registered_model.set_tag")
def registered_model_tag_set(
    *, actor: Actor, full_name: object, key: object, value: object
) -> None:
    model: RegisteredModel = model_lookup(full_name)
    authz.require(actor, Privilege.MODIFY, model)
    key, value = clean_tag(key, value)
    RegisteredModelTag.objects.update_or_create(model=model, key=key, defaults={"value": value})
    audit_write(actor, "registered_model.set_tag", model, {"key": key, "value": value})


@governed("registered_model.delete_tag")
def registered_model_tag_delete(*, actor: Actor, full_name: object, key: object) -> None:
    model: RegisteredModel = model_lookup(full_name)
    authz.require(actor, Privilege.MODIFY, model)
    deleted, _ = RegisteredModelTag.objects.filter(model=model, key=key).delete()
    if not deleted:
        raise NotFound(f"Tag {str(key)[:100]!r} does not exist on {model.full_name}.")
    audit_write(actor, "registered_model.delete_tag", model, {"key": key})


@governed("model_version.set_tag")
def model_version_tag_set(
    *, actor: Actor, full_name: object, version: object, key: object, value: object
) -> None:
    model: RegisteredModel = model_lookup(full_name)
    authz.require(actor, Privilege.MODIFY, model)
    obj = version_of(model, version)
    key, value = clean_tag(key, value)
    ModelVersionTag.objects.update_or_create(version=obj, key=key, defaults={"value": value})
    version_audit(actor, "model_version.set_tag", obj, {"key": key, "value": value})
    webhook_emit(
        "model_version_tag.set",
        webhook_payloads.model_version_tag(obj, key, value),
        securable=model,
    )


@governed("model_version.delete_tag")
def model_version_tag_delete(
    *, actor: Actor, full_name: object, version: object, key: object
) -> None:
    model: RegisteredModel = model_lookup(full_name)
    authz.require(actor, Privilege.MODIFY, model)
    obj = version_of(model, version)
    deleted, _ = ModelVersionTag.objects.filter(version=obj, key=key).delete()
    if not deleted:
        raise NotFound(f"Tag {str(key)[:100]!r} does not exist on version {obj.version}.")
    version_audit(actor, "model_version.delete_tag", obj, {"key": key})
    webhook_emit(
        "model_version_tag.deleted", webhook_payloads.model_version_tag(obj, key), securable=model
    )


# --- aliases -------------------------------------------------------------------------------


# --- legacy stages (MLflow 2) --------------------------------------------------------------
