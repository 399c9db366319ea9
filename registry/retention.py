"""Retention, read side: which policy governs a model, which of its versions are due, and what a
run does with each one (archive, delete, or keep because it is protected). Nothing here writes.

The dry run (`apply_retention --dry-run`), the previews of the native API and the real run
(registry.services.retention) all walk the models in the same batches (`Pages`), select due
versions with `due_versions` and settle each one with `decide`; the real run merely does so
under row locks. So a dry run answers exactly what a run would do, as long as nothing changes
in between.

Rules (one policy per catalog, schema or model; the nearest level with a policy wins):
- archive: an ACTIVE version created `archive_after_days` or more before the run;
- delete: an ARCHIVED version archived `delete_after_days` or more before the run (a version
  archived by this very run is therefore deleted by a later run, never by the same one);
- the newest `keep_last` READY, undeleted versions are never due; PENDING_REGISTRATION ones
  never are either;
- never touched, whatever the policy: a version holding an alias, in stage Staging or
  Production, the target of a PENDING or APPROVED promotion request, or under legal hold (on
  itself or on its model). Such a version is listed as `keep` with the reasons.
"""

from __future__ import annotations

import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Window
from django.db.models.functions import Coalesce, RowNumber

from catalog.scoped import nearest
from core.errors import InvalidParameter
from registry.models import (
    LegalHold,
    ModelAlias,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
    RetentionPolicy,
)

ARCHIVE = "archive"
DELETE = "delete"
KEEP = "keep"
ACTIONS = (ARCHIVE, DELETE, KEEP)

MAX_DAYS = 36500  # a hundred years
MAX_KEEP = 10000
PROTECTED_STAGES = (ModelVersion.Stage.STAGING, ModelVersion.Stage.PRODUCTION)
OPEN_REQUEST_STATES = (PromotionRequest.State.PENDING, PromotionRequest.State.APPROVED)
Lifecycle = ModelVersion.Lifecycle
Status = ModelVersion.Status


@dataclass(frozen=True)
class ModelRef:
    """The few facts about a model a plan needs."""

    pk: uuid.UUID
    full_name: str
    schema_id: uuid.UUID
    catalog_id: uuid.UUID


@dataclass(frozen=True)
class PlanItem:
    """What a run does (or did) with one due version."""

    version_id: uuid.UUID
    model_id: uuid.UUID
    full_name: str  # the model's
    version: int
    lifecycle: str  # before the action
    action: str  # archive, delete or keep
    reasons: tuple[str, ...]
    policy_id: uuid.UUID

    @property
    def key(self) -> tuple[str, str]:
        """(version id, action): what a dry run and a real run are compared on."""
        return str(self.version_id), self.action

    def as_dict(self) -> dict:
        return {
            "full_name": self.full_name,
            "version": self.version,
            "lifecycle": self.lifecycle,
            "action": self.action,
            "reasons": list(self.reasons),
            "policy_id": str(self.policy_id),
        }


# --- which policy governs a model ------------------------------------------------------------


@dataclass
class PolicyIndex:
    """Every retention policy by level, loaded once per run (policies are few; versions are
    many)."""

    by_catalog: dict = field(default_factory=dict)
    by_schema: dict = field(default_factory=dict)
    by_model: dict = field(default_factory=dict)

    @classmethod
    def load(cls) -> PolicyIndex:
        index = cls()
        levels = (index.by_model, index.by_schema, index.by_catalog)  # as scoped.LEVELS
        for policy in RetentionPolicy.objects.all():
            levels[policy.level][policy.securable_id] = policy
        return index

    def for_model(self, model: ModelRef) -> RetentionPolicy | None:
        """The nearest level's policy: model, then schema, then catalog."""
        return (
            self.by_model.get(model.pk)
            or self.by_schema.get(model.schema_id)
            or self.by_catalog.get(model.catalog_id)
        )


def model_ref(model: RegisteredModel) -> ModelRef:
    return ModelRef(model.pk, model.full_name, model.schema_id, model.schema.catalog_id)


def policy_for(model: RegisteredModel) -> RetentionPolicy | None:
    """The retention policy governing `model` (1 query), or None: the nearest level's (one
    policy per securable, so at most one there)."""
    hits = nearest(RetentionPolicy.objects.filter(RetentionPolicy.around_q(model)))
    return hits[0] if hits else None


def governed_models(
    index: PolicyIndex,
    *,
    only_policy: RetentionPolicy | None = None,
    within: QuerySet | None = None,
    start_after=None,
    start_at=None,
    page: int = 500,
) -> Iterator[tuple[ModelRef, RetentionPolicy]]:
    """Models whose governing policy has a rule, with that policy, in primary-key order, read
    in keyset pages (constant memory however many models there are). `only_policy`: only the
    models that policy governs; `within`: a queryset of models to stay inside (visibility)."""
    if not (index.by_catalog or index.by_schema or index.by_model):
        return
    qs = RegisteredModel.objects.filter(
        Q(pk__in=list(index.by_model))
        | Q(schema_id__in=list(index.by_schema))
        | Q(schema__catalog_id__in=list(index.by_catalog))
    )
    if within is not None:
        qs = qs.filter(pk__in=within.values("pk"))
    if start_at is not None:
        qs = qs.filter(pk__gte=start_at)
    last = start_after
    while True:
        chunk = qs.filter(pk__gt=last) if last is not None else qs
        rows = list(
            chunk.order_by("pk").values_list("pk", "full_name", "schema_id", "schema__catalog_id")[
                :page
            ]
        )
        for row in rows:
            ref = ModelRef(*row)
            policy = index.for_model(ref)
            if policy is None or not policy.has_rules:
                continue
            if only_policy is not None and policy.pk != only_policy.pk:
                continue
            yield ref, policy
        if len(rows) < page:
            return
        last = rows[-1][0]


# --- which versions are due ------------------------------------------------------------------

Pair = tuple[ModelRef, RetentionPolicy]

# At most this many models are claimed by one batch (one transaction), however few due versions
# they hold: it bounds the model rows a batch keeps locked FOR SHARE.
MAX_PAGE_MODELS = 100


# What `decide` reads of a due version: a named tuple of these, not a model instance (no
# signature, input example or description; no timestamps either: the due-ness is settled in SQL).
ROW_FIELDS = (
    "id",
    "model_id",
    "version",
    "status",
    "lifecycle",
    "stage",
    "has_alias",
    "open_request",
    "version_hold",
    "model_hold",
)


def cutoffs(policy: RetentionPolicy, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(archive versions created before, delete versions archived before); None: no rule."""
    archive = delete = None
    if policy.archive_after_days is not None:
        archive = now - timedelta(days=policy.archive_after_days)
    if policy.delete_after_days is not None:
        delete = now - timedelta(days=policy.delete_after_days)
    return archive, delete


def keep_thresholds(pairs: Iterable[Pair]) -> dict:
    """For each of these models whose policy keeps the newest K: the lowest version number
    among its newest K READY, undeleted versions, or 0 when it has fewer (all are kept).
    One query (a window function) per distinct K, usually one for a whole batch."""
    by_keep: dict = defaultdict(list)
    for model, policy in pairs:
        if policy.keep_last:
            by_keep[policy.keep_last].append(model.pk)
    out: dict = {}
    for keep_last, ids in by_keep.items():
        out.update(dict.fromkeys(ids, 0))
        out.update(
            ModelVersion.objects.filter(model_id__in=ids, status=Status.READY)
            .exclude(lifecycle=Lifecycle.DELETED)
            .annotate(
                rank=Window(RowNumber(), partition_by=[F("model_id")], order_by=F("version").desc())
            )
            .filter(rank=keep_last)
            .values_list("model_id", "version")
        )
    return out


def due_versions(pairs: list[Pair], now: datetime, *, after: tuple | None = None) -> QuerySet:
    """The versions of these models that their policies make due at `now` by age (ACTIVE and
    created long enough ago, or ARCHIVED long enough ago; never PENDING_REGISTRATION), in
    (model, version) order, protected ones included: each row says whether it holds an alias,
    is the target of an open promotion request, or is under legal hold (on itself or its
    model), for `decide` to name the reasons. `after` (model pk, version number): only that
    model's versions behind it. Rows are named tuples of ROW_FIELDS.

    `keep_last` is left to `decide` (with `keep_thresholds`): PostgreSQL allows no window
    function in a statement that locks rows FOR UPDATE, and this one does in the real run.
    Locked (the real run), the statement's conditions are re-checked by PostgreSQL on the row
    version it locks, so a returned row is due now: an ACTIVE one for archiving, an ARCHIVED
    one for deletion (only those two lifecycles pass the filter)."""
    groups: dict = defaultdict(list)
    policies: dict = {}
    for model, policy in pairs:
        groups[policy.pk].append(model.pk)
        policies[policy.pk] = policy
    rules = Q()
    for policy_pk, ids in groups.items():
        archive_before, delete_before = cutoffs(policies[policy_pk], now)
        due = Q()
        if archive_before is not None:
            due |= Q(lifecycle=Lifecycle.ACTIVE, created_at__lte=archive_before)
        if delete_before is not None:
            due |= Q(lifecycle=Lifecycle.ARCHIVED, archived_when__lte=delete_before)
        if due:
            rules |= Q(model_id__in=ids) & due
    if not rules:
        return ModelVersion.objects.none()
    qs = (
        ModelVersion.objects.exclude(status=Status.PENDING_REGISTRATION)
        # Archived by retention: when it did (set by the archiving UPDATE). Archived
        # otherwise: the row's last change. Both on the row itself.
        .annotate(archived_when=Coalesce("archived_at", "updated_at"))
        .filter(rules)
    )
    if after is not None:
        qs = qs.exclude(model_id=after[0], version__lte=after[1])
    return (
        qs.annotate(
            has_alias=Exists(ModelAlias.objects.filter(version_id=OuterRef("pk"))),
            open_request=Exists(
                PromotionRequest.objects.filter(
                    version_id=OuterRef("pk"), state__in=OPEN_REQUEST_STATES
                )
            ),
            version_hold=Exists(LegalHold.objects.filter(version_id=OuterRef("pk"))),
            model_hold=Exists(
                LegalHold.objects.filter(model_id=OuterRef("model_id"), version__isnull=True)
            ),
        )
        .order_by("model_id", "version")
        .values_list(*ROW_FIELDS, named=True)
    )


def _due_action(version) -> str | None:
    """What a row of `due_versions` is due for: the statement selected it by age under its
    model's policy, ACTIVE ones for archiving, ARCHIVED ones for deletion."""
    if version.status == Status.PENDING_REGISTRATION:
        return None
    if version.lifecycle == Lifecycle.ACTIVE:
        return ARCHIVE
    if version.lifecycle == Lifecycle.ARCHIVED:
        return DELETE
    return None


def _why(action: str, policy: RetentionPolicy) -> str:
    keep = f"; not among the newest {policy.keep_last}" if policy.keep_last else ""
    if action == ARCHIVE:
        return f"created more than {policy.archive_after_days} day(s) ago{keep}"
    return f"archived more than {policy.delete_after_days} day(s) ago{keep}"


def protections(versions: Iterable) -> dict:
    """Why each of these versions (rows of `due_versions`, which flag the protected ones) must
    not be touched. Queries only for the names of aliases and promotion requests, and only
    when a row holds one: none for a batch without such versions."""
    versions = list(versions)
    reasons: dict = defaultdict(list)
    for version in versions:
        if version.stage in PROTECTED_STAGES:
            reasons[version.id].append(f"in stage {version.stage}")
    aliased = [v.id for v in versions if v.has_alias]
    if aliased:
        for version_id, alias in (
            ModelAlias.objects.filter(version_id__in=aliased)
            .order_by("alias")
            .values_list("version_id", "alias")
        ):
            reasons[version_id].append(f"holds alias {alias}")
    requested = [v.id for v in versions if v.open_request]
    if requested:
        for version_id, request_id, state in (
            PromotionRequest.objects.filter(version_id__in=requested, state__in=OPEN_REQUEST_STATES)
            .order_by("created_at")
            .values_list("version_id", "id", "state")
        ):
            reasons[version_id].append(f"target of {state} promotion request {request_id}")
    for version in versions:
        if version.version_hold:
            reasons[version.id].append("under legal hold")
        if version.model_hold:
            reasons[version.id].append("model under legal hold")
    return reasons


def decide(pairs: Iterable[Pair], versions: list, now: datetime) -> list[PlanItem]:
    """Settle a batch of rows of `due_versions` (of the models in `pairs`): archive, delete, or
    keep (protected, with reasons). Versions among their model's newest `keep_last` are left
    out. `now` is the run's cut-off time the rows were selected at."""
    by_pk = {model.pk: (model, policy) for model, policy in pairs}
    thresholds = keep_thresholds(by_pk[pk] for pk in {v.model_id for v in versions})
    due = []
    for version in versions:
        model, policy = by_pk[version.model_id]
        threshold = thresholds.get(model.pk)
        if (
            version.status == Status.READY
            and threshold is not None
            and version.version >= threshold
        ):
            continue
        action = _due_action(version)
        if action is not None:
            due.append((version, model, policy, action))
    protected = protections(v for v, *_ in due)
    items = []
    for version, model, policy, action in due:
        reasons = protected.get(version.id)
        items.append(
            PlanItem(
                version_id=version.id,
                model_id=model.pk,
                full_name=model.full_name,
                version=version.version,
                lifecycle=version.lifecycle,
                action=KEEP if reasons else action,
                reasons=tuple(reasons) if reasons else (_why(action, policy),),
                policy_id=policy.pk,
            )
        )
    return items


class Pages:
    """The models of a run or a dry run, in primary-key order, a batch at a time.

    A batch covers as many models as hold about `batch` due versions together (estimated from
    the models settled so far; at most MAX_PAGE_MODELS) and at most `batch` of their due
    versions; a model with more is continued by the next batch, behind its last version
    (`after`). So one statement selects the due versions of several small models, and memory
    stays flat however many models and versions there are."""

    def __init__(self, pairs: Iterable[Pair], batch: int, after: tuple | None = None):
        self._pairs = iter(pairs)
        self._pending: deque = deque()
        self._exhausted = False
        self.batch = batch
        self.after = after  # (model pk, version number) the first pending model resumes behind
        self._models_done = 0
        self._rows_seen = 0

    def _size(self) -> int:
        if not self._models_done and not self._rows_seen:
            return 1  # nothing known yet: one model
        per_model = self._rows_seen / max(self._models_done, 1)
        return max(1, min(MAX_PAGE_MODELS, self.batch, -(-self.batch // max(1, int(per_model)))))

    def next(self) -> list[Pair]:
        """The models of the next batch (empty: the walk is over)."""
        size = self._size()
        while len(self._pending) < size and not self._exhausted:
            pair = next(self._pairs, None)
            if pair is None:
                self._exhausted = True
            else:
                self._pending.append(pair)
        return list(islice(self._pending, size))

    def cursor(self, page: list[Pair]) -> tuple | None:
        """Where the batch of `page` starts: behind `after` in its first model, if set."""
        if self.after is not None and page and page[0][0].pk == self.after[0]:
            return self.after
        return None

    def drop(self, model_pks) -> tuple | None:
        """Take these models out of the walk (gone, or held by someone else: the caller comes
        back to them); returns the cursor of the one that was part-way done, if any."""
        model_pks = set(model_pks)
        self._pending = deque(p for p in self._pending if p[0].pk not in model_pks)
        if self.after is not None and self.after[0] in model_pks:
            after, self.after = self.after, None
            return after
        return None

    def done(self, page: list[Pair], rows: list) -> None:
        """Record what the batch of `page` covered: all of its models when it returned fewer
        than `batch` rows, otherwise those before the model of its last row, which the next
        batch continues behind that row."""
        self._rows_seen += len(rows)
        if len(rows) < self.batch:
            finished = {model.pk for model, _ in page}
            self.after = None
        else:
            last = rows[-1]
            finished = set()
            for model, _ in page:
                if model.pk == last.model_id:
                    break
                finished.add(model.pk)
            self.after = (last.model_id, last.version)
        self._models_done += len(finished)
        self._pending = deque(p for p in self._pending if p[0].pk not in finished)


def plan(
    pairs: Iterable[Pair],
    now: datetime,
    *,
    after: tuple | None = None,
    batch: int = 500,
) -> Iterator[PlanItem]:
    """What a run at `now` does, model by model, version by version (the dry run), in the
    batches the run uses. Streams: memory stays flat however many versions there are.
    `after`: resume behind (model pk, version number)."""
    pages = Pages(pairs, batch, after)
    while page := pages.next():
        rows = list(due_versions(page, now, after=pages.cursor(page))[:batch])
        yield from decide(page, rows, now)
        pages.done(page, rows)


# --- validation of policy input ---------------------------------------------------------------


def clean_days(value, field_name: str) -> int | None:
    """A number of days from 0 to MAX_DAYS, or null (the rule is off)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
        raise InvalidParameter(
            f"{field_name} must be null or a whole number of days from 0 to {MAX_DAYS}."
        )
    return value


def clean_keep_last(value) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_KEEP:
        raise InvalidParameter(f"keep_last must be a whole number from 0 to {MAX_KEEP}.")
    return value
