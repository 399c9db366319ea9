"""Model versions, tags, aliases and legacy stages: every door (MLflow, UC, native) calls these.

Version numbers are handed out under a row lock on the registered model, so two clients
creating versions at once get distinct numbers, and numbers are never reused.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from audit.services import audit_events_write
from catalog import authz
from catalog.privileges import Privilege
from catalog.selectors import model_lookup
from catalog.services import audit_write, clean_comment
from core import rows
from core.actor import Actor
from core.errors import FailedPrecondition, InvalidParameter, NotFound
from core.services import governed
from lineage import services as lineage_services
from registry import storage
from registry.models import (
    AliasHistory,
    LegalHold,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
)
from webhooks import payloads as webhook_payloads
from webhooks.services import emit as webhook_emit

MAX_TAG_KEY = 250
MAX_TAG_VALUE = 5000
_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,255}")
_VERSION_LIKE = re.compile(r"^(v?\d+|latest)$", re.IGNORECASE)


def locked_model(full_name) -> RegisteredModel:
    """The model row, locked for the rest of the transaction (version numbers, aliases)."""
    return model_lookup(full_name, lock=True)


_VERSION_PART = rows.Part(ModelVersion, "v")


@functools.cache
def _bump_sql() -> str:
    meta = RegisteredModel._meta
    sets = ", ".join(
        f'"{meta.get_field(name).column}" = %s'
        for name in ("next_version", "updated_by", "updated_at")
    )
    return f'UPDATE "{meta.db_table}" SET {sets} WHERE "{meta.pk.column}" = %s'


@functools.cache
def _version_sql(by_alias: bool) -> str:
    """A live version of a model by number, or by alias: one raw SELECT whose text is built
    once (every version read and alias resolve goes through here)."""
    meta = ModelVersion._meta
    head = f'SELECT {_VERSION_PART.columns} FROM "{meta.db_table}" v '
    live = f'v."{meta.get_field("lifecycle").column}" <> %s'
    if by_alias:
        alias = ModelAlias._meta
        return (
            head + f'JOIN "{alias.db_table}" a ON a."{alias.get_field("version").column}" = v.id '
            f'WHERE a."{alias.get_field("model").column}" = %s AND a.alias = %s'
        )
    return head + f'WHERE v."{meta.get_field("model").column}" = %s AND v.version = %s AND {live}'


def _version_row(sql: str, params: list, model: RegisteredModel) -> ModelVersion | None:
    row = rows.fetch_one(sql, params)
    if row is None:
        return None
    (obj,) = rows.build([_VERSION_PART], row)
    obj.model = model  # already loaded with its schema and catalog
    expire_if_overdue(obj)
    return obj


def version_of(model: RegisteredModel, version, *, lock: bool = False) -> ModelVersion:
    """A live (not deleted) version by number; tombstones answer RESOURCE_DOES_NOT_EXIST.
    `lock` locks the version's row for the rest of the transaction."""
    number = parse_version(version)
    sql = _version_sql(False)
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    model_id = rows.db_value(RegisteredModel, "id", model.pk)
    obj = _version_row(sql, [model_id, number, ModelVersion.Lifecycle.DELETED], model)
    if obj is None:
        raise NotFound(f"Model version {model.full_name}/{number} does not exist.")
    return obj


def version_by_alias(model: RegisteredModel, name: str) -> ModelVersion | None:
    """The version an alias of this model points at (None: no such alias)."""
    model_id = rows.db_value(RegisteredModel, "id", model.pk)
    return _version_row(_version_sql(True), [model_id, name], model)


def parse_version(value) -> int:
    if isinstance(value, bool):
        raise InvalidParameter("version must be a positive integer.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isdigit() and len(value) <= 10:
        number = int(value)
    else:
        raise InvalidParameter(f"version must be a positive integer, not {str(value)[:20]!r}.")
    if number < 1 or number > 2**31 - 1:
        raise InvalidParameter("version must be a positive integer.")
    return number


def clean_alias(value) -> str:
    """Alias names: letters, digits, '_' and '-'; never version-like (`v3`, `7`, `latest`)."""
    if not isinstance(value, str) or not _ALIAS.fullmatch(value):
        raise InvalidParameter("alias must be 1-255 letters, digits, '_' or '-'.")
    if _VERSION_LIKE.match(value):
        raise InvalidParameter(
            f"alias {value!r} looks like a version reference; choose another name."
        )
    return value.lower()


def clean_tag(key, value) -> tuple[str, str]:
    if not isinstance(key, str) or not key or len(key) > MAX_TAG_KEY or "\x00" in key:
        raise InvalidParameter(f"tag key must be a string of 1 to {MAX_TAG_KEY} characters.")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > MAX_TAG_VALUE or "\x00" in value:
        raise InvalidParameter(f"tag value must be a string of at most {MAX_TAG_VALUE} characters.")
    return key, value


def expire_if_overdue(version: ModelVersion) -> bool:
    """A version still pending past its deadline becomes FAILED_REGISTRATION (checked lazily
    on every read, and swept by a periodic task)."""
    if (
        version.status == ModelVersion.Status.PENDING_REGISTRATION
        and version.pending_deadline is not None
        and version.pending_deadline <= timezone.now()
    ):
        updated = ModelVersion.objects.filter(
            pk=version.pk, status=ModelVersion.Status.PENDING_REGISTRATION
        ).update(
            status=ModelVersion.Status.FAILED_REGISTRATION,
            status_message="Upload did not finish before the registration deadline.",
        )
        version.status = ModelVersion.Status.FAILED_REGISTRATION
        version.status_message = "Upload did not finish before the registration deadline."
        return bool(updated)
    return False


def _version_event(actor, action, version, details, outcome="SUCCESS") -> dict:
    """The keyword arguments of one audit event about a version, for `audit_events_write`."""
    return {
        "actor": actor,
        "action": action,
        "outcome": outcome,
        "securable_type": str(version.model.securable_type),
        "securable": version.model.full_name,
        "details": {"version": version.version, **details},
    }


def version_audit(actor: Actor, action: str, version: ModelVersion, details=None) -> None:
    audit_write(actor, action, version.model, {"version": version.version, **(details or {})})


# --- versions ------------------------------------------------------------------------------


@governed("model_version.create")
def model_version_create(
    *,
    actor: Actor,
    full_name,
    source,
    run_id: str = "",
    logged_model_id: str = "",
    description=None,
    tags=None,
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
    from registry.sources import resolve_source

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
            from registry.artifacts import delete_tree

            delete_tree(storage.version_prefix(version))
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
    qs._prefetch_done = True
    version._prefetched_objects_cache = {"tags": qs}


def _small(prefix: str) -> bool:
    from registry.artifacts import tree_within

    limit = settings.STEWARD_INLINE_COPY_MAX_BYTES
    return limit > 0 and tree_within(prefix, limit)


def _copy_and_seal(version: ModelVersion, source_prefix: str) -> tuple[int, str]:
    """Copy a small source into the (not yet saved) version's location and seal it READY, in
    the creating transaction: the version is born READY, with its digest and signature, and
    the mlflow client does not wait for a worker. On failure the version is born
    FAILED_REGISTRATION and nothing copied stays. (copied files, error message)"""
    from registry.artifacts import copy_and_inspect, delete_tree

    target = storage.version_prefix(version)
    try:
        # A rolled-back attempt at this number (numbers are handed out under the model's row
        # lock, so only an uncommitted one) may have left files here.
        delete_tree(target)
        copied, facts = copy_and_inspect(source_prefix, target)
    except Exception as exc:  # any failure: nothing half-registered
        delete_tree(target)
        version.status = ModelVersion.Status.FAILED_REGISTRATION
        version.status_message = f"Copying the source's files failed: {exc}"[:2000]
        version.pending_deadline = None
        return 0, str(exc)
    version.status = ModelVersion.Status.READY
    version.artifact_digest = facts.digest
    version.signature = facts.signature
    version.input_example = facts.input_example
    version.pending_deadline = None
    return copied, ""


def _schedule_copy(version_id: str, prefix: str) -> None:
    """Copy a large source's files after commit, through the Celery queue (the same idempotent
    task a crash would rerun); a failure marks the version FAILED_REGISTRATION."""
    from registry.tasks import register_version_files

    transaction.on_commit(lambda: register_version_files.delay(version_id, prefix), robust=True)


def tag_pairs(tags) -> list[tuple[str, str]]:
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
def model_version_finalize(*, actor: Actor, full_name, version) -> ModelVersion:
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
    """Digest the version's files, read its MLmodel metadata and mark it READY."""
    from registry.artifacts import inspect_version_files

    facts = inspect_version_files(storage.version_prefix(version))
    version.status = ModelVersion.Status.READY
    version.artifact_digest = facts.digest
    version.signature = facts.signature
    version.input_example = facts.input_example
    version.pending_deadline = None
    version.updated_by = username
    version.save()


def mark_failed(version_id, message: str) -> None:
    """Used by the copy task when a registration cannot complete: nothing half-visible."""
    ModelVersion.objects.filter(
        pk=version_id, status=ModelVersion.Status.PENDING_REGISTRATION
    ).update(status=ModelVersion.Status.FAILED_REGISTRATION, status_message=message[:2000])


@governed("model_version.update")
def model_version_update(*, actor: Actor, full_name, version, description=None) -> ModelVersion:
    """Change a version's description (MODIFY)."""
    model = model_lookup(full_name)
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
def model_version_delete(*, actor: Actor, full_name, version) -> None:
    """Delete a version (MANAGE): its aliases go, its files are removed after commit, and a
    tombstone keeps the number from ever being reused."""
    model = locked_model(full_name)
    authz.require(actor, Privilege.MANAGE, model)
    obj = version_of(model, version, lock=True)
    held = [a.alias for a in ModelAlias.objects.filter(version=obj)]
    protected = [a for a in held if _protection(model, a) is not None]
    if obj.stage != ModelVersion.Stage.NONE and _protection(model, obj.stage.lower()):
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
        _record_move(actor, model, alias.alias, obj.version, None, "version deleted")
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
    from registry.artifacts import delete_tree

    delete_tree(prefix)


# --- tags ----------------------------------------------------------------------------------


@governed("registered_model.set_tag")
def registered_model_tag_set(*, actor: Actor, full_name, key, value) -> None:
    model = model_lookup(full_name)
    authz.require(actor, Privilege.MODIFY, model)
    key, value = clean_tag(key, value)
    RegisteredModelTag.objects.update_or_create(model=model, key=key, defaults={"value": value})
    audit_write(actor, "registered_model.set_tag", model, {"key": key, "value": value})


@governed("registered_model.delete_tag")
def registered_model_tag_delete(*, actor: Actor, full_name, key) -> None:
    model = model_lookup(full_name)
    authz.require(actor, Privilege.MODIFY, model)
    deleted, _ = RegisteredModelTag.objects.filter(model=model, key=key).delete()
    if not deleted:
        raise NotFound(f"Tag {str(key)[:100]!r} does not exist on {model.full_name}.")
    audit_write(actor, "registered_model.delete_tag", model, {"key": key})


@governed("model_version.set_tag")
def model_version_tag_set(*, actor: Actor, full_name, version, key, value) -> None:
    model = model_lookup(full_name)
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
def model_version_tag_delete(*, actor: Actor, full_name, version, key) -> None:
    model = model_lookup(full_name)
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


def _record_move(
    actor: Actor, model, alias: str, old, new, reason: str = "", promotion=None
) -> None:
    AliasHistory.objects.create(
        model=model,
        alias=alias,
        from_version=old,
        to_version=new,
        actor=actor.username,
        reason=reason,
        request_id=actor.request_id,
        promotion=promotion,
    )


def _protection(model, name: str):
    from registry import policies

    return policies.policy_for(model, name)


def alias_set(
    *, actor: Actor, full_name, alias, version, reason: str = "", rollback: bool = False
) -> ModelAlias:
    """Point an alias at a READY, active version (MANAGE); the move is kept in alias history.

    A protected alias (registry.policies) is never moved here: a promotion request stands in
    for the move (committed), and ApprovalRequired names it. Every door comes through here.
    """
    return _moved_or_approval_required(
        _alias_set(
            actor=actor,
            full_name=full_name,
            alias=alias,
            version=version,
            reason=reason,
            rollback=rollback,
        )
    )


def _moved_or_approval_required(result):
    """The governed move returned either what it moved or (request, reused): the request is
    committed by now, so raising here loses nothing."""
    if isinstance(result, tuple):
        from registry.services.promotions import ApprovalRequired

        raise ApprovalRequired(result[0], reused=result[1])
    return result


@governed("alias.set")
def _alias_set(*, actor: Actor, full_name, alias, version, reason: str, rollback: bool):
    from registry.services.promotions import protected_move_request

    model = locked_model(full_name)
    name = clean_alias(alias)
    target = version_of(model, version)
    outcome = protected_move_request(
        actor=actor,
        model=model,
        kind="ALIAS",
        name=name,
        target=target,
        justification=reason,
        rollback=rollback,
    )
    if outcome is not None:
        return outcome
    authz.require(actor, Privilege.MANAGE, model)
    return move_alias(actor, model, name, target, reason=reason)


def move_alias(
    actor: Actor,
    model,
    name: str,
    target: ModelVersion,
    *,
    reason: str = "",
    promotion=None,
    **details,
) -> ModelAlias:
    """Move an alias (already authorized: by MANAGE, approvals or break-glass); the caller
    holds the model row lock."""
    if target.status != ModelVersion.Status.READY:
        raise FailedPrecondition(f"Version {target.version} is {target.status}, not READY.")
    if target.lifecycle != ModelVersion.Lifecycle.ACTIVE:
        raise FailedPrecondition(f"Version {target.version} is {target.lifecycle}.")
    current = ModelAlias.objects.select_related("version").filter(model=model, alias=name).first()
    old = current.version.version if current else None
    if current is not None and current.version_id == target.pk:
        return current
    if current is None:
        current = ModelAlias(model=model, alias=name)
    current.version = target
    current.updated_by = actor.username
    current.save()
    _record_move(actor, model, name, old, target.version, reason, promotion)
    if promotion is not None:
        details["promotion_request"] = str(promotion.id)
    audit_write(
        actor, "alias.set", model, {"alias": name, "from": old, "to": target.version, **details}
    )
    webhook_emit(
        "model_version_alias.created",
        webhook_payloads.alias_created(model, name, target),
        securable=model,
    )
    return current


@governed("alias.delete")
def alias_delete(*, actor: Actor, full_name, alias) -> None:
    """Remove an alias (MANAGE). A protected one is refused: it moves only by promotion."""
    model = locked_model(full_name)
    authz.require(actor, Privilege.MANAGE, model)
    name = clean_alias(alias)
    current = ModelAlias.objects.select_related("version").filter(model=model, alias=name).first()
    if current is None:
        raise NotFound(f"Alias {name!r} does not exist on {model.full_name}.")
    if _protection(model, name) is not None:
        raise FailedPrecondition(
            f"Alias {name!r} of {model.full_name} is protected by an alias policy; it moves "
            "only through a promotion request and cannot be deleted while protected."
        )
    old = current.version.version
    current.delete()
    _record_move(actor, model, name, old, None)
    audit_write(actor, "alias.delete", model, {"alias": name, "from": old})
    webhook_emit(
        "model_version_alias.deleted", webhook_payloads.alias_deleted(model, name), securable=model
    )


# --- legacy stages (MLflow 2) --------------------------------------------------------------

_STAGES = {s.value.lower(): s for s in ModelVersion.Stage}


def model_version_transition_stage(
    *, actor: Actor, full_name, version, stage, archive_existing_versions: bool = False
) -> ModelVersion:
    """Move a version to None/Staging/Production/Archived (MANAGE); optionally archive the
    versions currently in that stage. A stage protected by an alias policy (as the alias
    `production`, `staging`) opens a promotion request instead, like alias_set."""
    return _moved_or_approval_required(
        _transition_stage(
            actor=actor,
            full_name=full_name,
            version=version,
            stage=stage,
            archive_existing_versions=archive_existing_versions,
        )
    )


@governed("model_version.transition_stage")
def _transition_stage(*, actor: Actor, full_name, version, stage, archive_existing_versions):
    from registry.services.promotions import protected_move_request

    model = locked_model(full_name)
    if not isinstance(stage, str) or stage.lower() not in _STAGES:
        raise InvalidParameter("stage must be one of None, Staging, Production, Archived.")
    if not isinstance(archive_existing_versions, bool):
        raise InvalidParameter("archive_existing_versions must be true or false.")
    target_stage = _STAGES[stage.lower()]
    obj = version_of(model, version, lock=True)
    if obj.stage != target_stage and _protection(model, obj.stage.lower()) is not None:
        authz.require(actor, Privilege.MODIFY, model)
        raise FailedPrecondition(
            f"Version {obj.version} is in protected stage {obj.stage}; it leaves it only when "
            "an approved promotion archives it (archive_existing_versions)."
        )
    outcome = protected_move_request(
        actor=actor,
        model=model,
        kind="STAGE",
        name=target_stage.lower(),
        target=obj,
        archive_existing_versions=archive_existing_versions,
    )
    if outcome is not None:
        return outcome
    authz.require(actor, Privilege.MANAGE, model)
    return move_stage(actor, model, obj, target_stage, archive_existing_versions)


def move_stage(
    actor: Actor,
    model,
    obj: ModelVersion,
    stage,
    archive_existing_versions: bool,
    promotion=None,
    **details,
) -> ModelVersion:
    """Move a version's legacy stage (already authorized); the caller holds the model lock."""
    target_stage = _STAGES[str(stage).lower()]
    archived = []
    if archive_existing_versions and target_stage in (
        ModelVersion.Stage.STAGING,
        ModelVersion.Stage.PRODUCTION,
    ):
        others = (
            ModelVersion.objects.select_for_update()
            .filter(model=model, stage=target_stage, lifecycle=ModelVersion.Lifecycle.ACTIVE)
            .exclude(pk=obj.pk)
        )
        archived = [v.version for v in others]
        others.update(stage=ModelVersion.Stage.ARCHIVED, updated_by=actor.username)
    previous = obj.stage
    obj.stage = target_stage
    obj.updated_by = actor.username
    obj.save(update_fields=["stage", "updated_by", "updated_at"])
    if promotion is not None:
        details["promotion_request"] = str(promotion.id)
    version_audit(
        actor,
        "model_version.transition_stage",
        obj,
        {"from": previous, "to": target_stage, "archived": archived, **details},
    )
    return obj
