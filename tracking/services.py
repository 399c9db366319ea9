"""Writes to experiments, runs and logged models. Each service runs in one transaction (the
`governed` wrapper): authorize (tracking.selectors rules), validate, save, audit.

Services take the values as the client sent them and validate them here, so every door gets
the same checks; a refused request changes nothing (the transaction rolls back).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.selectors import principal_by_name, principal_name
from audit.governance import governed
from audit.services import audit_event_write
from catalog import authz
from core.actor import Actor
from core.errors import AlreadyExists, Denial, InvalidParameter, NotFound
from lineage import services as lineage_services
from tracking import validation as v
from tracking.models import (
    Experiment,
    ExperimentPermission,
    ExperimentTag,
    LatestMetric,
    LifecycleStage,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    Metric,
    Param,
    Run,
    RunOutput,
    RunTag,
    now_ms,
)
from tracking.selectors import (
    EDIT,
    MANAGE,
    READ,
    experiment_access,
    logged_model_access,
    run_access,
)

RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
RUN_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
FINAL_MODEL_STATUSES = {LoggedModel.Status.READY, LoggedModel.Status.UPLOAD_FAILED}
MODEL_STATUS_NUMBERS = {
    1: "LOGGED_MODEL_PENDING",
    2: "LOGGED_MODEL_READY",
    3: "LOGGED_MODEL_UPLOAD_FAILED",
}

_ADJECTIVES = (
    "able amazing bold brave bright calm clever crisp dapper eager elegant fearless gentle "
    "glamorous honest jolly keen lively luminous marvelous merciful nimble polite rare "
    "resilient serene silent skillful spiffy sincere tasteful unique upbeat vibrant wise"
).split()
_NOUNS = (
    "ant auk bass bat bear bee carp cat colt crab crane deer doe dove eel elk finch fox gnu "
    "goat hare hawk hen heron jay kit koi lark loon mink mole moth mule newt owl ox panda "
    "quail ram robin seal shark shrew sloth snail stag swan toad trout vole wasp whale wolf"
).split()


def random_name() -> str:
    """An MLflow-style run or model name such as 'marvelous-loon-576'."""
    rng = secrets.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(1000)}"


def _audit(actor: Actor, action: str, securable_type: str, securable: str, **details: Any) -> None:
    audit_event_write(
        actor=actor,
        action=action,
        securable_type=securable_type,
        securable=securable,
        details=details,
    )


def _require_active_experiment(experiment: Experiment) -> None:
    if not experiment.is_active:
        raise InvalidParameter(
            f"The experiment {experiment.experiment_id} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )


def _require_active_run(run: Run) -> None:
    if not run.is_active:
        raise InvalidParameter(
            f"The run {run.run_id} must be in the 'active' state. "
            f"Current state is {run.lifecycle_stage}."
        )


def _require_active_model(model: LoggedModel) -> None:
    if not model.is_active:
        raise NotFound(f"Logged model with ID '{model.model_id}' not found.")


Pairs = list[tuple[str, str]]  # tags or params: (key, value), as validation.key_values gives


class MetricPoint(TypedDict):
    """One metric point as `_clean_metrics` validated it."""

    key: str
    value: float
    is_nan: bool
    timestamp: int
    step: int
    model_id: str | None
    dataset_name: str
    dataset_digest: str


def _keys(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """Keys for audit details, bounded so that an event stays small."""
    keys = [k for k, *_ in pairs]
    return keys[:100] + (["..."] if len(keys) > 100 else [])


# --- experiments ---------------------------------------------------------------------------


def _save_experiment(obj: Experiment, name: str) -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise AlreadyExists(f"Experiment '{name[:300]}' already exists.") from None


def _experiment_tags(raw: object) -> Pairs:
    return v.key_values(
        raw,
        "tags",
        limit=v.MAX_TAGS_PER_CREATE,
        value_limit=v.MAX_EXPERIMENT_TAG_VAL_LENGTH,
    )


@governed("experiment.create")
def experiment_create(
    *, actor: Actor, name: object, artifact_location: object = None, tags: object = None
) -> Experiment:
    """Create an experiment owned by the actor; any principal with a writing token may."""
    key = v.experiment_name(name)
    authz.require_writer(actor, Denial("experiment", key[:300]), what="creating an experiment")
    if artifact_location not in (None, ""):
        raise InvalidParameter(
            "artifact_location is assigned by the server; custom locations are not supported."
        )
    pairs = _experiment_tags(tags)
    if Experiment.objects.filter(name=key).exists():
        raise AlreadyExists(f"Experiment '{key[:300]}' already exists.")
    now = now_ms()
    obj = Experiment(name=key, owner=actor.user, creation_time=now, last_update_time=now)
    _save_experiment(obj, key)
    obj.artifact_location = f"mlflow-artifacts:/{obj.pk}"
    obj.save(update_fields=["artifact_location"])
    for k, value in dict(pairs).items():
        ExperimentTag.objects.create(experiment=obj, key=k, value=value)
    _audit(actor, "experiment.create", "experiment", obj.experiment_id, name=key)
    return obj


@governed("experiment.update")
def experiment_update(
    *, actor: Actor, experiment_id: object, new_name: object = None
) -> Experiment:
    """Rename an active experiment; needs CAN_EDIT."""
    obj = experiment_access(actor, experiment_id, EDIT, for_update=True)
    if new_name is None:
        return obj
    key = v.experiment_name(new_name, "new_name")
    if not obj.is_active:
        raise InvalidParameter("Cannot rename a non-active experiment.")
    previous = obj.name
    if key != previous:
        if Experiment.objects.filter(name=key).exclude(pk=obj.pk).exists():
            raise AlreadyExists(f"Experiment '{key[:300]}' already exists.")
        obj.name = key
        obj.last_update_time = now_ms()
        _save_experiment(obj, key)
    _audit(
        actor,
        "experiment.update",
        "experiment",
        obj.experiment_id,
        name={"from": previous, "to": key},
    )
    return obj


@governed("experiment.delete")
def experiment_delete(*, actor: Actor, experiment_id: object) -> Experiment:
    """Soft-delete an experiment and its active runs; needs CAN_MANAGE."""
    obj = experiment_access(actor, experiment_id, MANAGE, for_update=True)
    if not obj.is_active:
        raise InvalidParameter(f"Experiment {obj.experiment_id} is already deleted.")
    now = now_ms()
    obj.lifecycle_stage = LifecycleStage.DELETED
    obj.deleted_time = now
    obj.last_update_time = now
    obj.save(update_fields=["lifecycle_stage", "deleted_time", "last_update_time"])
    runs = Run.objects.filter(experiment=obj, lifecycle_stage=LifecycleStage.ACTIVE)
    count = runs.update(lifecycle_stage=LifecycleStage.DELETED, deleted_time=now)
    _audit(actor, "experiment.delete", "experiment", obj.experiment_id, name=obj.name, runs=count)
    return obj


@governed("experiment.restore")
def experiment_restore(*, actor: Actor, experiment_id: object) -> Experiment:
    """Restore a deleted experiment and the runs deleted with it; needs CAN_MANAGE."""
    obj = experiment_access(actor, experiment_id, MANAGE, for_update=True)
    if obj.is_active:
        raise InvalidParameter(f"Experiment {obj.experiment_id} is not deleted.")
    runs = Run.objects.filter(
        experiment=obj, lifecycle_stage=LifecycleStage.DELETED, deleted_time=obj.deleted_time
    )
    count = runs.update(lifecycle_stage=LifecycleStage.ACTIVE, deleted_time=None)
    obj.lifecycle_stage = LifecycleStage.ACTIVE
    obj.deleted_time = None
    obj.last_update_time = now_ms()
    obj.save(update_fields=["lifecycle_stage", "deleted_time", "last_update_time"])
    _audit(actor, "experiment.restore", "experiment", obj.experiment_id, name=obj.name, runs=count)
    return obj


@governed("experiment.set_tag")
def experiment_tag_set(*, actor: Actor, experiment_id: object, key: object, value: object) -> None:
    """Set one tag on an active experiment; needs CAN_EDIT."""
    obj = experiment_access(actor, experiment_id, EDIT, for_update=True)
    k = v.key(key)
    val = v.text(value, "value", limit=v.MAX_EXPERIMENT_TAG_VAL_LENGTH)
    _require_active_experiment(obj)
    ExperimentTag.objects.update_or_create(experiment=obj, key=k, defaults={"value": val})
    _audit(actor, "experiment.set_tag", "experiment", obj.experiment_id, key=k)


@governed("experiment.delete_tag")
def experiment_tag_delete(*, actor: Actor, experiment_id: object, key: object) -> None:
    """Delete one tag of an active experiment; needs CAN_EDIT."""
    obj = experiment_access(actor, experiment_id, EDIT, for_update=True)
    k = v.text(key, "key", limit=v.MAX_ENTITY_KEY_LENGTH, required=True)
    _require_active_experiment(obj)
    deleted, _ = ExperimentTag.objects.filter(experiment=obj, key=k).delete()
    if not deleted:
        raise NotFound(f"No tag with name: {k} in experiment with id {obj.experiment_id}")
    _audit(actor, "experiment.delete_tag", "experiment", obj.experiment_id, key=k)


# --- sharing ---------------------------------------------------------------------------------


def _principal_filter(principal: User | Group) -> dict[str, Any]:  # filter keywords
    return {"user": principal} if isinstance(principal, User) else {"group": principal}


@governed("experiment.permissions_update")
def experiment_permission_set(
    *, actor: Actor, experiment_id: object, principal: object, level: object
) -> None:
    """Share an experiment with a user or group at CAN_READ, CAN_EDIT or CAN_MANAGE (replacing
    their previous level); needs CAN_MANAGE."""
    obj = experiment_access(actor, experiment_id, MANAGE, for_update=True)
    if level in (None, ""):
        raise v.missing("level")
    lvl = v.enum(level, "level", set(ExperimentPermission.Level.values))
    who: User | Group = principal_by_name(principal)
    row, created = ExperimentPermission.objects.update_or_create(
        experiment=obj,
        **_principal_filter(who),
        defaults={"level": lvl, "granted_by": actor.username, "granted_at": now_ms()},
    )
    _audit(
        actor,
        "experiment.permissions_update",
        "experiment",
        obj.experiment_id,
        principal=principal_name(who),
        principal_type=row.principal_type,
        level=lvl,
        created=created,
    )


@governed("experiment.permissions_update")
def experiment_permission_remove(*, actor: Actor, experiment_id: object, principal: object) -> bool:
    """Stop sharing an experiment with a user or group; needs CAN_MANAGE. Returns whether a
    share existed (removing a missing share is not an error)."""
    obj = experiment_access(actor, experiment_id, MANAGE, for_update=True)
    who = principal_by_name(principal)
    deleted, _ = ExperimentPermission.objects.filter(
        experiment=obj, **_principal_filter(who)
    ).delete()
    _audit(
        actor,
        "experiment.permissions_update",
        "experiment",
        obj.experiment_id,
        principal=principal_name(who),
        level=None,
        removed=bool(deleted),
    )
    return bool(deleted)


# --- runs ------------------------------------------------------------------------------------


def _run_tags(raw: object, path: str = "tags", limit: int = v.MAX_TAGS_PER_CREATE) -> Pairs:
    return v.key_values(raw, path, limit=limit, value_limit=v.MAX_TAG_VAL_LENGTH)


def _run_name(value: str, path: str) -> str:
    if len(value) > v.MAX_RUN_NAME_LENGTH:
        raise v.invalid(path, value, f"run names have at most {v.MAX_RUN_NAME_LENGTH} characters.")
    return value


@governed("run.create")
def run_create(
    *,
    actor: Actor,
    experiment_id: object,
    start_time: object = None,
    tags: object = None,
    run_name: object = None,
    user_id: object = None,
) -> Run:
    """Start a run in an active experiment; needs CAN_EDIT. The run's user is the actor,
    whatever `user_id` the client claims; a name is invented when none is given."""
    experiment = experiment_access(actor, experiment_id, EDIT)
    _require_active_experiment(experiment)
    start = v.int64(start_time, "start_time", default=None)
    if start is None:
        start = now_ms()
    v.text(user_id, "user_id", limit=1000)
    pairs = dict(_run_tags(tags))
    name = v.text(run_name, "run_name", limit=v.MAX_RUN_NAME_LENGTH)
    tag_name = pairs.get(RUN_NAME_TAG)
    if name and tag_name and name != tag_name:
        raise InvalidParameter(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
            f"different values (run_name='{name}', mlflow.runName='{tag_name[:300]}')."
        )
    name = _run_name(name or tag_name or random_name(), "run_name")
    pairs[RUN_NAME_TAG] = name
    pairs[USER_TAG] = actor.username
    run_id = uuid.uuid4().hex
    run = Run(
        run_id=run_id,
        experiment=experiment,
        owner=actor.user,
        user_id=actor.username,
        run_name=name,
        status=Run.Status.RUNNING,
        start_time=start,
        artifact_uri=f"mlflow-artifacts:/{experiment.pk}/{run_id}/artifacts",
    )
    run.save(force_insert=True)
    for k, value in pairs.items():
        RunTag.objects.create(run=run, key=k, value=value)
    _audit(
        actor, "run.create", "run", run_id, experiment_id=experiment.experiment_id, run_name=name
    )
    return run


@governed("run.update")
def run_update(
    *,
    actor: Actor,
    run_id: object,
    status: object = None,
    end_time: object = None,
    run_name: object = None,
) -> Run:
    """Change an active run's status, end time or name; needs CAN_EDIT."""
    run = run_access(actor, run_id, EDIT, for_update=True)
    new_status = v.enum(status, "status", set(Run.Status.values), numbers=RUN_STATUS_NUMBERS)
    end = v.int64(end_time, "end_time")
    name = v.text(run_name, "run_name", limit=v.MAX_RUN_NAME_LENGTH)
    _require_active_run(run)
    changes: dict[str, Any] = {}
    if new_status:
        run.status = new_status
        changes["status"] = new_status
    if end is not None:
        run.end_time = end
        changes["end_time"] = end
    if name:
        run.run_name = name
        RunTag.objects.update_or_create(run=run, key=RUN_NAME_TAG, defaults={"value": name})
        changes["run_name"] = name
    if changes:
        run.save(update_fields=[f for f in ("status", "end_time", "run_name") if f in changes])
    _audit(actor, "run.update", "run", run.run_id, **changes)
    return run


@governed("run.delete")
def run_delete(*, actor: Actor, run_id: object) -> None:
    """Soft-delete a run; needs CAN_MANAGE on its experiment."""
    run = run_access(actor, run_id, MANAGE, for_update=True)
    if run.is_active:
        run.lifecycle_stage = LifecycleStage.DELETED
        run.deleted_time = now_ms()
        run.save(update_fields=["lifecycle_stage", "deleted_time"])
    _audit(actor, "run.delete", "run", run.run_id, experiment_id=str(run.experiment_id))


@governed("run.restore")
def run_restore(*, actor: Actor, run_id: object) -> None:
    """Restore a deleted run of an active experiment; needs CAN_MANAGE."""
    run = run_access(actor, run_id, MANAGE, for_update=True)
    _require_active_experiment(run.experiment)
    if not run.is_active:
        run.lifecycle_stage = LifecycleStage.ACTIVE
        run.deleted_time = None
        run.save(update_fields=["lifecycle_stage", "deleted_time"])
    _audit(actor, "run.restore", "run", run.run_id, experiment_id=str(run.experiment_id))


def _clean_metrics(raw: object, path: str = "metrics") -> list[MetricPoint]:
    out: list[MetricPoint] = []
    for index, item in enumerate(v.list_of(raw, path, limit=v.MAX_METRICS_PER_BATCH)):
        item = v.obj(item, f"{path}[{index}]")
        value, is_nan = v.metric_value(item.get("value"), f"{path}[{index}].value")
        model = item.get("model_id")
        out.append(
            {
                "key": v.key(item.get("key"), f"{path}[{index}].key"),
                "value": value,
                "is_nan": is_nan,
                "timestamp": v.int64(
                    item.get("timestamp"), f"{path}[{index}].timestamp", required=True
                ),
                "step": v.int64(item.get("step"), f"{path}[{index}].step", default=0),
                "model_id": None
                if model in (None, "")
                else v.model_id(model, f"{path}[{index}].model_id"),
                "dataset_name": v.text(
                    item.get("dataset_name"),
                    f"{path}[{index}].dataset_name",
                    limit=v.MAX_DATASET_NAME_SIZE,
                ),
                "dataset_digest": v.text(
                    item.get("dataset_digest"),
                    f"{path}[{index}].dataset_digest",
                    limit=v.MAX_DATASET_DIGEST_SIZE,
                ),
            }
        )
    return out


def _clean_params(raw: object, path: str = "params") -> Pairs:
    pairs = v.key_values(
        raw, path, limit=v.MAX_PARAMS_TAGS_PER_BATCH, value_limit=v.MAX_PARAM_VAL_LENGTH
    )
    seen: dict[str, str] = {}
    dupes: list[str] = []
    for k, value in pairs:
        if k in seen and seen[k] != value:
            dupes.append(k)
        seen[k] = value
    if dupes:
        raise InvalidParameter(
            f"Duplicate parameter keys have been submitted: {dupes[:20]}. Please ensure the "
            "request contains only one param value per param key."
        )
    return list(seen.items())


def _write_params(
    model_cls: type[Param] | type[LoggedModelParam],
    owner_field: str,
    owner: Run | LoggedModel,
    pairs: Sequence[tuple[str, str]],
    *,
    owner_label: str,
) -> int:
    """Insert params, refusing to change a value already logged (same value: a no-op)."""
    if not pairs:
        return 0
    existing = dict(
        model_cls.objects.filter(**{owner_field: owner}, key__in=[k for k, _ in pairs]).values_list(
            "key", "value"
        )
    )
    created = 0
    for k, value in pairs:
        if k in existing:
            if existing[k] != value:
                raise InvalidParameter(
                    f"Changing param values is not allowed. Param with key='{k}' was already "
                    f"logged with value='{existing[k][:500]}' for {owner_label}. Attempted "
                    f"logging new value '{value[:500]}'."
                )
            continue
        model_cls.objects.create(**{owner_field: owner}, key=k, value=value)
        created += 1
    return created


def _newer(point: MetricPoint, latest: LatestMetric) -> bool:
    return (point["step"], point["timestamp"], point["value"]) > (
        latest.step,
        latest.timestamp,
        latest.value,
    )


def _write_metrics(actor: Actor, run: Run, metrics: Sequence[MetricPoint]) -> None:
    if not metrics:
        return
    Metric.objects.bulk_create(
        [
            Metric(
                run=run,
                key=m["key"],
                value=m["value"],
                is_nan=m["is_nan"],
                timestamp=m["timestamp"],
                step=m["step"],
            )
            for m in metrics
        ],
        ignore_conflicts=True,
    )
    best: dict[str, MetricPoint] = {}
    for m in metrics:
        if m["key"] not in best or (m["step"], m["timestamp"], m["value"]) > (
            best[m["key"]]["step"],
            best[m["key"]]["timestamp"],
            best[m["key"]]["value"],
        ):
            best[m["key"]] = m
    latest = {lm.key: lm for lm in LatestMetric.objects.filter(run=run, key__in=list(best))}
    for k, m in best.items():
        fields = {
            "value": m["value"],
            "is_nan": m["is_nan"],
            "timestamp": m["timestamp"],
            "step": m["step"],
        }
        current = latest.get(k)
        if current is None:
            LatestMetric.objects.create(run=run, key=k, **fields)
        elif _newer(m, current):
            for name, value in fields.items():
                setattr(current, name, value)
            current.save(update_fields=list(fields))
    # Metrics that name a logged model are that model's metrics too (MLflow 3).
    models: dict[str, LoggedModel] = {}
    linked: list[LoggedModelMetric] = []
    for m in metrics:
        model_id = m["model_id"]
        if not model_id:
            continue
        if model_id not in models:
            model = logged_model_access(actor, model_id, EDIT)
            _require_active_model(model)
            models[model_id] = model
        linked.append(
            LoggedModelMetric(
                model=models[model_id],
                run=run,
                key=m["key"],
                value=m["value"],
                is_nan=m["is_nan"],
                timestamp=m["timestamp"],
                step=m["step"],
                dataset_name=m["dataset_name"],
                dataset_digest=m["dataset_digest"],
            )
        )
    if linked:
        LoggedModelMetric.objects.bulk_create(linked, ignore_conflicts=True)


def _write_run_tags(run: Run, pairs: Sequence[tuple[str, str]]) -> None:
    for k, value in dict(pairs).items():
        if k == RUN_NAME_TAG:
            run.run_name = _run_name(value, "tags.mlflow.runName")
            run.save(update_fields=["run_name"])
        RunTag.objects.update_or_create(run=run, key=k, defaults={"value": value})


def _log(
    actor: Actor,
    action: str,
    run_id: object,
    *,
    metrics: Sequence[MetricPoint] = (),
    params: Sequence[tuple[str, str]] = (),
    tags: Sequence[tuple[str, str]] = (),
) -> Run:
    run = run_access(actor, run_id, EDIT, for_update=True)
    _require_active_run(run)
    _write_params(Param, "run", run, params, owner_label=f"run ID='{run.run_id}'")
    _write_metrics(actor, run, metrics)
    _write_run_tags(run, tags)
    _audit(
        actor,
        action,
        "run",
        run.run_id,
        experiment_id=str(run.experiment_id),
        metrics=len(metrics),
        metric_keys=sorted({m["key"] for m in metrics})[:100],
        params=_keys(params),
        tags=_keys(tags),
    )
    return run


@governed("run.log_batch")
def run_log_batch(
    *,
    actor: Actor,
    run_id: object,
    metrics: object = None,
    params: object = None,
    tags: object = None,
) -> None:
    """Log up to 1000 metrics, 100 params and 100 tags (1000 entities in all) at once,
    all or nothing; needs CAN_EDIT on the run's experiment."""
    clean_metrics = _clean_metrics(metrics)
    clean_params = _clean_params(params)
    clean_tags = _run_tags(tags, limit=v.MAX_PARAMS_TAGS_PER_BATCH)
    total = len(clean_metrics) + len(clean_params) + len(clean_tags)
    if total > v.MAX_ENTITIES_PER_BATCH:
        raise InvalidParameter(
            f"A batch logging request can contain at most {v.MAX_ENTITIES_PER_BATCH} total "
            f"metrics, params and tags. Got {total}."
        )
    _log(
        actor, "run.log_batch", run_id, metrics=clean_metrics, params=clean_params, tags=clean_tags
    )


@governed("run.log_metric")
def run_log_metric(
    *,
    actor: Actor,
    run_id: object,
    key: object,
    value: object,
    timestamp: object,
    step: object = None,
    model_id: object = None,
    dataset_name: object = None,
    dataset_digest: object = None,
) -> None:
    """Log one metric point; needs CAN_EDIT on the run's experiment."""
    (metric,) = _clean_metrics(
        [
            {
                "key": key,
                "value": value,
                "timestamp": timestamp,
                "step": step,
                "model_id": model_id,
                "dataset_name": dataset_name,
                "dataset_digest": dataset_digest,
            }
        ],
        "metric",
    )
    _log(actor, "run.log_metric", run_id, metrics=[metric])


@governed("run.log_param")
def run_log_param(*, actor: Actor, run_id: object, key: object, value: object) -> None:
    """Log one param (immutable once logged); needs CAN_EDIT on the run's experiment."""
    k = v.key(key)
    val = v.text(value, "value", limit=v.MAX_PARAM_VAL_LENGTH)
    _log(actor, "run.log_param", run_id, params=[(k, val)])


@governed("run.set_tag")
def run_tag_set(*, actor: Actor, run_id: object, key: object, value: object) -> None:
    """Set one tag on a run (``mlflow.runName`` renames it); needs CAN_EDIT."""
    k = v.key(key)
    val = v.text(value, "value", limit=v.MAX_TAG_VAL_LENGTH)
    _log(actor, "run.set_tag", run_id, tags=[(k, val)])


@governed("run.delete_tag")
def run_tag_delete(*, actor: Actor, run_id: object, key: object) -> None:
    """Delete one tag of an active run; needs CAN_EDIT."""
    run = run_access(actor, run_id, EDIT, for_update=True)
    k = v.text(key, "key", limit=v.MAX_ENTITY_KEY_LENGTH, required=True)
    _require_active_run(run)
    deleted, _ = RunTag.objects.filter(run=run, key=k).delete()
    if not deleted:
        raise NotFound(f"No tag with name: {k} in run with id {run.run_id}")
    _audit(actor, "run.delete_tag", "run", run.run_id, key=k)


def _clean_dataset_input(raw: object, path: str) -> dict[str, Any]:
    """One dataset input as MLflow's wire shape has it: {"tags": [...], "dataset": {...}}."""
    item = v.obj(raw, path)
    dataset = v.obj(item.get("dataset"), f"{path}.dataset")
    clean = {
        "name": v.text(
            dataset.get("name"),
            f"{path}.dataset.name",
            limit=v.MAX_DATASET_NAME_SIZE,
            required=True,
        ),
        "digest": v.text(
            dataset.get("digest"),
            f"{path}.dataset.digest",
            limit=v.MAX_DATASET_DIGEST_SIZE,
            required=True,
        ),
        "source_type": v.text(dataset.get("source_type"), f"{path}.dataset.source_type", limit=500),
        "source": v.text(
            dataset.get("source"), f"{path}.dataset.source", limit=v.MAX_DATASET_SOURCE_SIZE
        ),
    }
    for field, limit in (
        ("schema", v.MAX_DATASET_SCHEMA_SIZE),
        ("profile", v.MAX_DATASET_PROFILE_SIZE),
    ):
        value = v.text(dataset.get(field), f"{path}.dataset.{field}", limit=limit)
        if value:
            clean[field] = value
    tags: list[dict[str, str]] = []
    for index, tag in enumerate(v.list_of(item.get("tags"), f"{path}.tags", limit=100)):
        tag = v.obj(tag, f"{path}.tags[{index}]")
        tags.append(
            {
                "key": v.text(
                    tag.get("key"),
                    f"{path}.tags[{index}].key",
                    limit=v.MAX_INPUT_TAG_KEY_SIZE,
                    required=True,
                ),
                "value": v.text(
                    tag.get("value"),
                    f"{path}.tags[{index}].value",
                    limit=v.MAX_INPUT_TAG_VALUE_SIZE,
                ),
            }
        )
    return {"tags": tags, "dataset": clean}


@governed("run.log_inputs")
def run_log_inputs(
    *, actor: Actor, run_id: object, datasets: object = None, models: object = None
) -> None:
    """Record the datasets (name, digest, source, schema, input tags) and logged models a run
    used; needs CAN_EDIT. A dataset already recorded (same name and digest) keeps one entry
    and gains the new input tags. Kept on the run for lineage."""
    run = run_access(actor, run_id, EDIT, for_update=True)
    items = [
        _clean_dataset_input(item, f"datasets[{i}]")
        for i, item in enumerate(v.list_of(datasets, "datasets", limit=v.MAX_DATASETS_PER_BATCH))
    ]
    model_ids: list[str] = []
    for i, item in enumerate(v.list_of(models, "models", limit=v.MAX_DATASETS_PER_BATCH)):
        item = v.obj(item, f"models[{i}]")
        model = logged_model_access(actor, item.get("model_id"), READ)
        _require_active_model(model)
        model_ids.append(model.model_id)
    _require_active_run(run)
    inputs = dict(run.inputs or {})
    dataset_inputs = list(inputs.get("dataset_inputs", []))
    index = {(d["dataset"]["name"], d["dataset"]["digest"]): d for d in dataset_inputs}
    for item in items:
        identity = (item["dataset"]["name"], item["dataset"]["digest"])
        if identity in index:
            known = {t["key"]: t for t in index[identity]["tags"]}
            known.update({t["key"]: t for t in item["tags"]})
            index[identity]["tags"] = list(known.values())
        else:
            index[identity] = item
            dataset_inputs.append(item)
    model_inputs = list(inputs.get("model_inputs", []))
    known_models = {m["model_id"] for m in model_inputs}
    model_inputs.extend({"model_id": m} for m in dict.fromkeys(model_ids) if m not in known_models)
    run.inputs = {"dataset_inputs": dataset_inputs, "model_inputs": model_inputs}
    run.save(update_fields=["inputs"])
    lineage_services.mlflow_run_inputs_record(actor=actor, run=run, datasets=items)
    _audit(
        actor,
        "run.log_inputs",
        "run",
        run.run_id,
        datasets=[f"{i['dataset']['name']}@{i['dataset']['digest']}" for i in items][:100],
        models=model_ids[:100],
    )


@governed("run.log_outputs")
def run_log_outputs(*, actor: Actor, run_id: object, models: object = None) -> None:
    """Link logged models to the run that produced them (at a step); needs CAN_EDIT on the
    run's experiment and CAN_READ on each model."""
    run = run_access(actor, run_id, EDIT, for_update=True)
    outputs: list[tuple[LoggedModel, int]] = []
    for i, item in enumerate(v.list_of(models, "models", limit=v.MAX_DATASETS_PER_BATCH)):
        item = v.obj(item, f"models[{i}]")
        model = logged_model_access(actor, item.get("model_id"), READ)
        _require_active_model(model)
        outputs.append((model, v.int64(item.get("step"), f"models[{i}].step", default=0)))
    _require_active_run(run)
    for model, step in outputs:
        RunOutput.objects.get_or_create(run=run, model=model, step=step)
    _audit(
        actor,
        "run.log_outputs",
        "run",
        run.run_id,
        models=[m.model_id for m, _ in outputs][:100],
    )


# --- logged models -------------------------------------------------------------------------


def _model_tags(raw: object, limit: int = v.MAX_TAGS_PER_CREATE) -> Pairs:
    return v.key_values(raw, "tags", limit=limit, value_limit=v.MAX_TAG_VAL_LENGTH)


def _model_params(raw: object) -> Pairs:
    return _clean_params(raw)


@governed("logged_model.create")
def logged_model_create(
    *,
    actor: Actor,
    experiment_id: object,
    name: object = None,
    model_type: object = None,
    source_run_id: object = None,
    params: object = None,
    tags: object = None,
) -> LoggedModel:
    """Create a PENDING logged model in an active experiment; needs CAN_EDIT. Its source run,
    if any, must belong to the same experiment."""
    experiment = experiment_access(actor, experiment_id, EDIT)
    _require_active_experiment(experiment)
    model_name = v.logged_model_name(name) or random_name()
    kind = v.text(model_type, "model_type", limit=500)
    pairs = _model_params(params)
    tag_pairs = _model_tags(tags)
    run: Run | None = None
    if source_run_id not in (None, ""):
        run = run_access(actor, source_run_id, READ)
        if run.experiment_id != experiment.pk:
            raise InvalidParameter(
                f"Run {run.run_id} belongs to experiment {run.experiment_id}, not to "
                f"experiment {experiment.experiment_id}."
            )
    model_id = f"m-{uuid.uuid4().hex}"
    now = now_ms()
    model = LoggedModel(
        model_id=model_id,
        experiment=experiment,
        source_run=run,
        owner=actor.user,
        name=model_name,
        model_type=kind,
        status=LoggedModel.Status.PENDING,
        artifact_location=f"mlflow-artifacts:/{experiment.pk}/models/{model_id}/artifacts",
        creation_timestamp_ms=now,
        last_updated_timestamp_ms=now,
    )
    model.save(force_insert=True)
    _write_params(LoggedModelParam, "model", model, pairs, owner_label=f"model '{model_id}'")
    for k, value in dict(tag_pairs).items():
        LoggedModelTag.objects.create(model=model, key=k, value=value)
    _audit(
        actor,
        "logged_model.create",
        "logged_model",
        model_id,
        experiment_id=experiment.experiment_id,
        name=model_name,
        source_run_id=run.run_id if run else None,
    )
    return model


@governed("logged_model.finalize")
def logged_model_finalize(*, actor: Actor, model_id: object, status: object) -> LoggedModel:
    """Set a logged model's final status (READY or UPLOAD_FAILED); needs CAN_EDIT."""
    model = logged_model_access(actor, model_id, EDIT, for_update=True)
    if status in (None, ""):
        raise v.missing("status")
    new = v.enum(status, "status", set(LoggedModel.Status.values), numbers=MODEL_STATUS_NUMBERS)
    if new not in FINAL_MODEL_STATUSES:
        raise v.invalid(
            "status", status, f"expected one of {sorted(str(s) for s in FINAL_MODEL_STATUSES)}."
        )
    _require_active_model(model)
    previous = model.status
    model.status = new
    model.last_updated_timestamp_ms = now_ms()
    model.save(update_fields=["status", "last_updated_timestamp_ms"])
    _audit(
        actor,
        "logged_model.finalize",
        "logged_model",
        model.model_id,
        status={"from": previous, "to": new},
    )
    return model


@governed("logged_model.set_tags")
def logged_model_tags_set(*, actor: Actor, model_id: object, tags: object) -> None:
    """Set tags on a logged model; needs CAN_EDIT."""
    model = logged_model_access(actor, model_id, EDIT, for_update=True)
    pairs = _model_tags(tags)
    _require_active_model(model)
    for k, value in dict(pairs).items():
        LoggedModelTag.objects.update_or_create(model=model, key=k, defaults={"value": value})
    model.last_updated_timestamp_ms = now_ms()
    model.save(update_fields=["last_updated_timestamp_ms"])
    _audit(actor, "logged_model.set_tags", "logged_model", model.model_id, tags=_keys(pairs))


@governed("logged_model.delete_tag")
def logged_model_tag_delete(*, actor: Actor, model_id: object, key: object) -> None:
    """Delete one tag of a logged model; needs CAN_EDIT."""
    model = logged_model_access(actor, model_id, EDIT, for_update=True)
    k = v.text(key, "tag_key", limit=v.MAX_ENTITY_KEY_LENGTH, required=True)
    _require_active_model(model)
    deleted, _ = LoggedModelTag.objects.filter(model=model, key=k).delete()
    if not deleted:
        raise NotFound(f"No tag with key '{k}' found for logged model '{model.model_id}'.")
    _audit(actor, "logged_model.delete_tag", "logged_model", model.model_id, key=k)


@governed("logged_model.log_params")
def logged_model_params_log(*, actor: Actor, model_id: object, params: object) -> None:
    """Add params to a logged model (at most 100 a call; values never change); needs CAN_EDIT."""
    model = logged_model_access(actor, model_id, EDIT, for_update=True)
    pairs = _model_params(params)
    _require_active_model(model)
    _write_params(LoggedModelParam, "model", model, pairs, owner_label=f"model '{model.model_id}'")
    _audit(actor, "logged_model.log_params", "logged_model", model.model_id, params=_keys(pairs))


@governed("logged_model.delete")
def logged_model_delete(*, actor: Actor, model_id: object) -> None:
    """Soft-delete a logged model; needs CAN_MANAGE on its experiment."""
    model = logged_model_access(actor, model_id, MANAGE, for_update=True)
    _require_active_model(model)
    model.lifecycle_stage = LifecycleStage.DELETED
    model.last_updated_timestamp_ms = now_ms()
    model.save(update_fields=["lifecycle_stage", "last_updated_timestamp_ms"])
    _audit(actor, "logged_model.delete", "logged_model", model.model_id)
