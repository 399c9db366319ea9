"""Reads of experiments, runs and logged models, and the one place that decides who may do
what with them.

Rules (docs: README "Tracking"):
1. The creator owns an experiment and holds CAN_MANAGE on it; metastore admins hold CAN_MANAGE
   on every experiment.
2. The owner (or a CAN_MANAGE holder) shares an experiment with users and groups at CAN_READ,
   CAN_EDIT or CAN_MANAGE (each includes the one before); a user holds what any of their
   groups holds (groups nest, resolved by catalog.authz.principals).
3. Runs and logged models follow their experiment: reading needs CAN_READ, writing CAN_EDIT,
   deleting, restoring and sharing CAN_MANAGE.
4. What the actor may not read answers RESOURCE_DOES_NOT_EXIST (404), exactly as a missing
   object does; what they may read but not change answers PERMISSION_DENIED (403).
5. A read-only token narrows its user to CAN_READ.
6. Lists and searches return only what the actor may read.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Exists, Model, OuterRef, Prefetch, Q, QuerySet

from audit.governance import governed
from catalog import authz
from core import rows
from core.actor import Actor
from core.errors import Denial, InvalidParameter, NotFound
from core.pagination import INT64_MAX, decode_token, encode_token, page_size
from tracking import search, validation
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
    RunTag,
)

NONE, READ, EDIT, MANAGE = 0, 1, 2, 3
LEVEL_RANK: dict[str, int] = {
    ExperimentPermission.Level.CAN_READ: READ,
    ExperimentPermission.Level.CAN_EDIT: EDIT,
    ExperimentPermission.Level.CAN_MANAGE: MANAGE,
}
LEVEL_NAME = {READ: "CAN_READ", EDIT: "CAN_EDIT", MANAGE: "CAN_MANAGE"}
NEEDS = {"read": READ, "edit": EDIT, "manage": MANAGE}

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000
METRIC_HISTORY_MAX_RESULTS = 25000

VIEW_TYPES = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"}
VIEW_TYPE_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


# --- authorization -----------------------------------------------------------------------------


def _share_q(actor: Actor) -> Q:
    p = authz.principals(actor)
    q = Q(pk__in=[])
    if p.user_id is not None:
        q |= Q(user_id=p.user_id)
    if p.group_ids:
        q |= Q(group_id__in=p.group_ids)
    return q


def experiment_level(actor: Actor, experiment: Experiment) -> int:
    """The actor's level on an experiment (0 = none), before token narrowing."""
    p = authz.principals(actor)
    if p.user_id is None:
        return NONE
    if p.is_admin or experiment.owner_id == p.user_id:
        return MANAGE
    levels = ExperimentPermission.objects.filter(_share_q(actor), experiment=experiment)
    return max((LEVEL_RANK[level] for level in levels.values_list("level", flat=True)), default=0)


def experiment_held(actor: Actor, experiment: Experiment) -> frozenset[str]:
    """CAN_READ, CAN_EDIT, CAN_MANAGE up to the actor's level on the experiment (none: it
    cannot even see it); the rule catalog.authz asks for every experiment, run and logged
    model decision (EXPERIMENT_RULES)."""
    level = experiment_level(actor, experiment)
    return frozenset(LEVEL_NAME[rank] for rank in range(READ, level + 1))


def visible_experiments(
    actor: Actor, queryset: QuerySet[Experiment] | None = None, privilege: str | None = None
) -> QuerySet[Experiment]:
    """Experiments the actor may read (or, with `privilege` "edit" or "manage", holds that
    level on): owned, shared with them or their groups at that level or above, or all for
    admins; one query. Registered with catalog.authz as the experiments' `visible` rule."""
    qs = Experiment.objects.all() if queryset is None else queryset
    need = READ if privilege is None else _rank(privilege)
    p = authz.principals(actor)
    if p.user_id is None or (need > READ and actor.read_only):
        return qs.none()
    if p.is_admin:
        return qs
    shared = ExperimentPermission.objects.filter(_share_q(actor), experiment=OuterRef("pk"))
    if need > READ:
        shared = shared.filter(level__in=[lv for lv, rank in LEVEL_RANK.items() if rank >= need])
    return qs.filter(Q(owner_id=p.user_id) | Q(Exists(shared)))


EXPERIMENT_RULES = authz.Rules(
    visible=visible_experiments,
    held=experiment_held,
    reads=frozenset({LEVEL_NAME[READ]}),  # rule 5: a read-only token narrows to CAN_READ
    named=lambda experiment: ("experiment", str(experiment.experiment_id)),
    missing=lambda experiment: f"No Experiment with id={experiment.experiment_id} exists",
)


def _rank(privilege: str) -> int:
    """A level from its name (CAN_EDIT, as authz asks) or its short form (edit)."""
    for rank, name in LEVEL_NAME.items():
        if privilege == name:
            return rank
    return _need(privilege)


def _need(value: str) -> int:
    if value not in NEEDS:
        raise ValueError(f"need must be one of {sorted(NEEDS)}")
    return NEEDS[value]


def experiment_lookup(experiment_id: Any, *, for_update: bool = False) -> Experiment:
    """An experiment by id without authorization (internal: callers check)."""
    pk = validation.experiment_id(experiment_id)
    qs = Experiment.objects.all()
    if for_update:
        qs = qs.select_for_update()
    obj = qs.filter(pk=pk).first()
    if obj is None:
        raise NotFound(
            f"No Experiment with id={pk} exists", denied=Denial("experiment", str(pk), "CAN_READ")
        )
    return obj


_RUN_PARTS = [
    rows.Part(Run, "r"),
    rows.Part(Experiment, "e", attach=("r", "experiment")),
]


@functools.cache
def _run_sql() -> str:
    run, exp = Run._meta, Experiment._meta
    fk = run.get_field("experiment").column
    return (
        f'SELECT {rows.select_list(_RUN_PARTS)} FROM "{run.db_table}" r '
        f'JOIN "{exp.db_table}" e ON e."{exp.pk.column}" = r."{fk}" '
        f'WHERE r."{run.pk.column}" = %s'
    )


def run_lookup(run_id: Any, *, for_update: bool = False) -> Run:
    """A run by id without authorization (internal: callers check), with its experiment:
    every caller checks access on it next. One raw SELECT whose text is built once (the
    registry resolves a run on every version it registers); `for_update` locks the run's row
    only."""
    key = validation.run_id(run_id)
    sql = _run_sql()
    if for_update and connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF r"
    elif for_update and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    row = rows.fetch_one(sql, [key])
    if row is None:
        raise NotFound(f"Run with id={key} not found", denied=Denial("run", key, "CAN_READ"))
    run: Run = rows.build(_RUN_PARTS, row)[0]
    return run


def logged_model_lookup(model_id: Any, *, for_update: bool = False) -> LoggedModel:
    """A logged model by id without authorization (internal: callers check)."""
    key = validation.model_id(model_id)
    qs = LoggedModel.objects.all()
    if for_update:
        qs = qs.select_for_update()
    obj = qs.filter(pk=key).first()
    if obj is None:
        raise NotFound(
            f"Logged model with ID '{key}' not found.",
            denied=Denial("logged_model", key, "CAN_READ"),
        )
    return obj


def experiment_access(
    actor: Actor, experiment_id: Any, need: int, *, for_update: bool = False
) -> Experiment:
    """The experiment if the actor holds level `need` on it (internal helper of services)."""
    obj = experiment_lookup(experiment_id, for_update=for_update)
    authz.require(actor, LEVEL_NAME[need], obj)
    return obj


def run_access(actor: Actor, run_id: Any, need: int, *, for_update: bool = False) -> Run:
    """The run if the actor holds level `need` on its experiment (internal helper)."""
    run = run_lookup(run_id, for_update=for_update)
    authz.require(
        actor,
        LEVEL_NAME[need],
        run.experiment,
        subject=("run", run.run_id),
        not_found=f"Run with id={run.run_id} not found",
    )
    return run


def logged_model_access(
    actor: Actor, model_id: Any, need: int, *, for_update: bool = False
) -> LoggedModel:
    """The logged model if the actor holds level `need` on its experiment (internal helper)."""
    model = logged_model_lookup(model_id, for_update=for_update)
    authz.require(
        actor,
        LEVEL_NAME[need],
        model.experiment,
        subject=("logged_model", model.model_id),
        not_found=f"Logged model with ID '{model.model_id}' not found.",
    )
    return model


# --- selectors other apps call -----------------------------------------------------------------


@governed("experiment.get", atomic=False)
def experiment_for_actor(*, actor: Actor, experiment_id: object, need: str = "read") -> Experiment:
    """The experiment if the actor holds `need` ("read", "edit" or "manage") on it; raises
    NotFound (missing or invisible) or PermissionDenied (visible, not enough)."""
    return experiment_access(actor, experiment_id, _need(need))


@governed("run.get", atomic=False)
def run_for_actor(*, actor: Actor, run_id: object, need: str = "read") -> Run:
    """The run if the actor holds `need` ("read", "edit" or "manage") on its experiment.

    For other apps (the registry resolving a model version's source run, lineage): raises
    core.errors.NotFound when the run is missing or invisible to the actor, and
    core.errors.PermissionDenied when it is visible but `need` is not held. Deleted runs are
    returned too; check `run.is_active` if that matters.
    """
    return run_access(actor, run_id, _need(need))


@governed("logged_model.get", atomic=False)
def logged_model_for_actor(*, actor: Actor, model_id: object, need: str = "read") -> LoggedModel:
    """The logged model ("m-<32 hex>") if the actor holds `need` on its experiment.

    For the registry (``models:/m-...`` sources, ``model_id`` on model-versions/create):
    raises core.errors.NotFound when missing or invisible, core.errors.PermissionDenied when
    visible but `need` is not held. Deleted logged models raise NotFound. Use
    `model.artifact_location` for the download URI and `model.source_run_id` for the run.
    """
    model = logged_model_access(actor, model_id, _need(need))
    if not model.is_active:
        raise NotFound(f"Logged model with ID '{model.model_id}' not found.")
    return model


# --- experiments ---------------------------------------------------------------------------


def _with_tags(qs: QuerySet[Experiment]) -> QuerySet[Experiment]:
    """Experiments with their tags prefetched."""
    return qs.prefetch_related("tags")


@governed("experiment.get", atomic=False)
def experiment_get(*, actor: Actor, experiment_id: object) -> Experiment:
    """One experiment the actor may read (active or deleted), with its tags."""
    obj = experiment_access(actor, experiment_id, READ)
    return _with_tags(Experiment.objects.filter(pk=obj.pk)).get()


@governed("experiment.get", atomic=False)
def experiment_get_by_name(*, actor: Actor, name: object) -> Experiment:
    """One experiment by exact name; one the actor may not read is 'not found'."""
    key = validation.experiment_name(name, "experiment_name")
    obj = _with_tags(visible_experiments(actor).filter(name=key)).first()
    if obj is None:
        raise NotFound(
            f"Could not find experiment with name '{key[:300]}'",
            denied=Denial("experiment", key[:300], "CAN_READ"),
        )
    return obj


def _max_results(value: object, *, default: int, limit: int) -> int:
    """The shared page-size check; above `limit` MLflow refuses rather than clamps."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # proto JSON: 5.0 is an int64
    size = page_size(value, default=default, maximum=INT64_MAX)
    if size > limit:
        raise validation.invalid("max_results", size, f"it must be at most {limit}.")
    return size


def _offset(page_token: object) -> int:
    if page_token in (None, ""):
        return 0
    if not isinstance(page_token, str):
        raise InvalidParameter("Invalid page_token.")
    raw = decode_token(page_token)
    if raw is None or not raw.isdigit() or len(raw) > 12:
        raise InvalidParameter("Invalid page_token.")
    return int(raw)


_M = TypeVar("_M", bound=Model)


def _page(qs: QuerySet[_M], *, size: int, page_token: object) -> tuple[list[_M], str | None]:
    start = _offset(page_token)
    items = list(qs[start : start + size + 1])
    if len(items) > size:
        return items[:size], encode_token(str(start + size))
    return items, None


def _view_q(view_type: object) -> Q:
    view = validation.enum(
        view_type, "view_type", VIEW_TYPES, default="ACTIVE_ONLY", numbers=VIEW_TYPE_NUMBERS
    )
    if view == "ACTIVE_ONLY":
        return Q(lifecycle_stage=LifecycleStage.ACTIVE)
    if view == "DELETED_ONLY":
        return Q(lifecycle_stage=LifecycleStage.DELETED)
    return Q()


EXPERIMENT_SCHEMA = search.Schema(
    attributes={
        "name": ("name", "str"),
        "experiment_id": ("id", "int"),
        "creation_time": ("creation_time", "int"),
        "last_update_time": ("last_update_time", "int"),
    },
    related={"tag": (ExperimentTag, "experiment")},
)


@governed("experiment.search", atomic=False)
def experiment_search(
    *,
    actor: Actor,
    view_type: object = None,
    filter: object = None,
    max_results: object = None,
    order_by: object = None,
    page_token: object = None,
) -> tuple[list[Experiment], str | None]:
    """Experiments the actor may read that match an MLflow filter, one page at a time."""
    clauses = search.parse_filter(filter)
    terms = search.parse_order_by(order_by)
    size = _max_results(
        max_results, default=SEARCH_MAX_RESULTS_DEFAULT, limit=SEARCH_MAX_RESULTS_THRESHOLD
    )
    qs = visible_experiments(actor).filter(_view_q(view_type))
    qs = qs.filter(search.build_q(clauses, EXPERIMENT_SCHEMA))
    annotations, ordering = search.order_expressions(
        terms, EXPERIMENT_SCHEMA, orderable=set(EXPERIMENT_SCHEMA.attributes)
    )
    if annotations:
        qs = qs.annotate(**annotations)
    if not terms:
        ordering = ["-creation_time"]
    qs = _with_tags(qs.order_by(*ordering, "id"))
    return _page(qs, size=size, page_token=page_token)


# --- runs ------------------------------------------------------------------------------------


def with_run_data(qs: QuerySet[Run]) -> QuerySet[Run]:
    """Runs with everything runs/get renders, in a constant number of queries."""
    return qs.select_related("experiment").prefetch_related(
        Prefetch("params", queryset=Param.objects.order_by("key")),
        Prefetch("tags", queryset=RunTag.objects.order_by("key")),
        Prefetch("latest_metrics", queryset=LatestMetric.objects.order_by("key")),
        "model_outputs",
    )


@governed("run.get", atomic=False)
def run_get(*, actor: Actor, run_id: object) -> Run:
    """One run the actor may read (active or deleted), with params, tags, latest metrics,
    inputs and outputs."""
    run = run_access(actor, run_id, READ)
    return with_run_data(Run.objects.filter(pk=run.pk)).get()


RUN_SCHEMA = search.Schema(
    attributes={
        "run_id": ("run_id", "str"),
        "run_name": ("run_name", "str"),
        "status": ("status", "str"),
        "user_id": ("user_id", "str"),
        "artifact_uri": ("artifact_uri", "str"),
        "lifecycle_stage": ("lifecycle_stage", "str"),
        "start_time": ("start_time", "int"),
        "end_time": ("end_time", "int"),
        "created": ("start_time", "int"),
        "Created": ("start_time", "int"),
    },
    related={"metric": (LatestMetric, "run"), "param": (Param, "run"), "tag": (RunTag, "run")},
)
RUN_ORDERABLE = {"run_id", "run_name", "status", "user_id", "start_time", "end_time", "created"}


def _experiment_ids(value: object, path: str = "experiment_ids") -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 1000:
        raise validation.invalid(path, value, "expected a list of at most 1000 ids.")
    ids: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise validation.invalid(path, item, "experiment ids are strings.")
        text_id = str(item)
        # An id that cannot be one of ours matches nothing, like an unknown one.
        if text_id.isdigit() and len(text_id) <= 18:
            ids.append(int(text_id))
    return ids


@governed("run.search", atomic=False)
def run_search(
    *,
    actor: Actor,
    experiment_ids: object = None,
    filter: object = None,
    run_view_type: object = None,
    max_results: object = None,
    order_by: object = None,
    page_token: object = None,
) -> tuple[list[Run], str | None]:
    """Runs of the given experiments that the actor may read and that match the filter;
    experiments the actor cannot read contribute nothing (as unknown ones do)."""
    ids = _experiment_ids(experiment_ids)
    clauses = search.parse_filter(filter)
    terms = search.parse_order_by(order_by)
    size = _max_results(
        max_results, default=SEARCH_MAX_RESULTS_DEFAULT, limit=SEARCH_MAX_RESULTS_THRESHOLD
    )
    view_q = _view_q(run_view_type)
    qs = Run.objects.filter(experiment__in=visible_experiments(actor).filter(pk__in=ids))
    qs = qs.filter(view_q).filter(search.build_q(clauses, RUN_SCHEMA))
    annotations, ordering = search.order_expressions(terms, RUN_SCHEMA, orderable=RUN_ORDERABLE)
    if annotations:
        qs = qs.annotate(**annotations)
    qs = with_run_data(qs.order_by(*ordering, "-start_time", "run_id"))
    return _page(qs, size=size, page_token=page_token)


@governed("run.metric_history", atomic=False)
def metric_history(
    *,
    actor: Actor,
    run_id: object,
    metric_key: object,
    max_results: object = None,
    page_token: object = None,
) -> tuple[list[Metric], str | None]:
    """Every logged point of one metric of a run, by step then timestamp, one page at a time."""
    run = run_access(actor, run_id, READ)
    key = validation.key(metric_key, "metric_key")
    size = _max_results(
        max_results, default=METRIC_HISTORY_MAX_RESULTS, limit=METRIC_HISTORY_MAX_RESULTS
    )
    qs = Metric.objects.filter(run=run, key=key).order_by("step", "timestamp", "id")
    return _page(qs, size=size, page_token=page_token)


# --- logged models -------------------------------------------------------------------------


def with_model_data(qs: QuerySet[LoggedModel]) -> QuerySet[LoggedModel]:
    """Logged models with everything the door renders, in a constant number of queries."""
    return qs.prefetch_related(
        Prefetch("tags", queryset=LoggedModelTag.objects.order_by("key")),
        Prefetch("params", queryset=LoggedModelParam.objects.order_by("key")),
        Prefetch("metrics", queryset=LoggedModelMetric.objects.order_by("key", "step", "id")),
    )


@governed("logged_model.get", atomic=False)
def logged_model_get(*, actor: Actor, model_id: object, allow_deleted: bool = False) -> LoggedModel:
    """One logged model the actor may read, with tags, params and metrics."""
    model = logged_model_access(actor, model_id, READ)
    if not model.is_active and not allow_deleted:
        raise NotFound(f"Logged model with ID '{model.model_id}' not found.")
    return with_model_data(LoggedModel.objects.filter(pk=model.pk)).get()


LOGGED_MODEL_SCHEMA = search.Schema(
    attributes={
        "model_id": ("model_id", "str"),
        "name": ("name", "str"),
        "model_type": ("model_type", "str"),
        "status": ("status", "str"),
        "source_run_id": ("source_run_id", "str"),
        "creation_timestamp": ("creation_timestamp_ms", "int"),
        "creation_time": ("creation_timestamp_ms", "int"),
        "last_updated_timestamp": ("last_updated_timestamp_ms", "int"),
    },
    related={
        "metric": (LoggedModelMetric, "model"),
        "param": (LoggedModelParam, "model"),
        "tag": (LoggedModelTag, "model"),
    },
)
LOGGED_MODEL_ORDERABLE = {
    "model_id",
    "name",
    "model_type",
    "status",
    "creation_timestamp",
    "creation_time",
    "last_updated_timestamp",
}


def _model_order(order_by: object) -> list[search.OrderTerm]:
    """SearchLoggedModels' order_by: [{"field_name", "ascending"}] (strings also accepted)."""
    if order_by is None:
        return []
    if not isinstance(order_by, list) or len(order_by) > 10:
        raise InvalidParameter("order_by must be a list of at most 10 entries.")
    terms: list[search.OrderTerm] = []
    for item in order_by:
        if isinstance(item, str):
            terms.extend(search.parse_order_by([item]))
            continue
        item = validation.obj(item, "order_by")
        field = validation.text(item.get("field_name"), "order_by.field_name", limit=500)
        if item.get("dataset_name") or item.get("dataset_digest"):
            raise InvalidParameter("Ordering by dataset-specific metrics is not supported.")
        (term,) = search.parse_order_by([field]) if field else [None]
        if term is None:
            raise validation.missing("order_by.field_name")
        if term.entity == "metric":
            raise InvalidParameter("Ordering logged models by metrics is not supported.")
        ascending = validation.boolean(item.get("ascending"), "order_by.ascending", default=True)
        terms.append(search.OrderTerm(term.entity, term.key, ascending))
    return terms


@governed("logged_model.search", atomic=False)
def logged_model_search(
    *,
    actor: Actor,
    experiment_ids: object = None,
    filter: object = None,
    datasets: object = None,
    max_results: object = None,
    order_by: object = None,
    page_token: object = None,
) -> tuple[list[LoggedModel], str | None]:
    """Active logged models of the given experiments that the actor may read and that match
    the filter."""
    ids = _experiment_ids(experiment_ids)
    if datasets not in (None, []):  # {} or "" is not an empty list either
        raise InvalidParameter("Filtering logged models by datasets is not supported.")
    clauses = search.parse_filter(filter)
    terms = _model_order(order_by)
    size = _max_results(
        max_results, default=SEARCH_MAX_RESULTS_DEFAULT, limit=SEARCH_MAX_RESULTS_THRESHOLD
    )
    qs = LoggedModel.objects.filter(
        experiment__in=visible_experiments(actor).filter(pk__in=ids),
        lifecycle_stage=LifecycleStage.ACTIVE,
    ).filter(search.build_q(clauses, LOGGED_MODEL_SCHEMA))
    annotations, ordering = search.order_expressions(
        terms, LOGGED_MODEL_SCHEMA, orderable=LOGGED_MODEL_ORDERABLE
    )
    if annotations:
        qs = qs.annotate(**annotations)
    qs = with_model_data(qs.order_by(*ordering, "-creation_timestamp_ms", "model_id"))
    return _page(qs, size=size, page_token=page_token)


# --- sharing ---------------------------------------------------------------------------------


@governed("experiment.permissions_get", atomic=False)
def experiment_permissions(
    *, actor: Actor, experiment_id: object
) -> tuple[Experiment, list[ExperimentPermission]]:
    """Who the experiment is shared with; for its owner, CAN_MANAGE holders and admins."""
    experiment = experiment_lookup(experiment_id)
    authz.require(actor, LEVEL_NAME[MANAGE], experiment, reading=True)
    rows = list(
        ExperimentPermission.objects.filter(experiment=experiment)
        .select_related("user", "group")
        .order_by("id")
    )
    return experiment, rows
