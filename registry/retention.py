"""Retention, read side: which policy governs a model, which of its versions are due, and what a
run does with each one (archive, delete, or keep because it is protected). Nothing here writes.

The dry run (`apply_retention --dry-run`), the previews of the native API and the real run
(registry.services.retention) all select due versions with `due_versions` and settle each one
with `decide`; the real run merely does so again under row locks. So a dry run answers exactly
what a run would do, as long as nothing changes in between.

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
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce

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
        for policy in RetentionPolicy.objects.all():
            if policy.model_id:
                index.by_model[policy.model_id] = policy
            elif policy.schema_id:
                index.by_schema[policy.schema_id] = policy
            else:
                index.by_catalog[policy.catalog_id] = policy
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
    """The retention policy governing `model` (1 query), or None."""
    candidates = RetentionPolicy.objects.filter(
        Q(model_id=model.pk) | Q(schema_id=model.schema_id) | Q(catalog_id=model.schema.catalog_id)
    )
    index = PolicyIndex()
    for policy in candidates:
        if policy.model_id:
            index.by_model[policy.model_id] = policy
        elif policy.schema_id:
            index.by_schema[policy.schema_id] = policy
        else:
            index.by_catalog[policy.catalog_id] = policy
    return index.for_model(model_ref(model))


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


def cutoffs(policy: RetentionPolicy, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(archive versions created before, delete versions archived before); None: no rule."""
    archive = delete = None
    if policy.archive_after_days is not None:
        archive = now - timedelta(days=policy.archive_after_days)
    if policy.delete_after_days is not None:
        delete = now - timedelta(days=policy.delete_after_days)
    return archive, delete


def keep_threshold(model_id, keep_last: int) -> int | None:
    """The lowest version number among the newest `keep_last` READY, undeleted versions;
    0 when there are fewer (all of them are kept); None when nothing is kept."""
    if not keep_last:
        return None
    numbers = list(
        ModelVersion.objects.filter(model_id=model_id, status=Status.READY)
        .exclude(lifecycle=Lifecycle.DELETED)
        .order_by("-version")
        .values_list("version", flat=True)[keep_last - 1 : keep_last]
    )
    return numbers[0] if numbers else 0


def due_versions(model_id, policy: RetentionPolicy, now: datetime) -> QuerySet:
    """The versions of one model that the policy makes due at `now`, protected ones included
    (`decide` sorts those out, naming the reasons). Annotated with `archived_when`."""
    archive_before, delete_before = cutoffs(policy, now)
    rules = Q()
    if archive_before is not None:
        rules |= Q(lifecycle=Lifecycle.ACTIVE, created_at__lte=archive_before)
    if delete_before is not None:
        rules |= Q(lifecycle=Lifecycle.ARCHIVED, archived_when__lte=delete_before)
    if not rules:
        return ModelVersion.objects.none()
    qs = (
        ModelVersion.objects.filter(model_id=model_id)
        .exclude(status=Status.PENDING_REGISTRATION)
        # Archived by retention: when it did. Archived otherwise: the row's last change.
        .annotate(archived_when=Coalesce("retention__archived_at", "updated_at"))
        .filter(rules)
    )
    threshold = keep_threshold(model_id, policy.keep_last)
    if threshold == 0:
        qs = qs.exclude(status=Status.READY)
    elif threshold is not None:
        qs = qs.exclude(status=Status.READY, version__gte=threshold)
    return qs


def _due_action(version: ModelVersion, policy: RetentionPolicy, now: datetime) -> str | None:
    """The SQL rules of `due_versions` again, on one row (re-checked on locked rows)."""
    archive_before, delete_before = cutoffs(policy, now)
    if version.status == Status.PENDING_REGISTRATION:
        return None
    if version.lifecycle == Lifecycle.ACTIVE:
        if archive_before is not None and version.created_at <= archive_before:
            return ARCHIVE
    elif version.lifecycle == Lifecycle.ARCHIVED:
        when = getattr(version, "archived_when", None) or version.updated_at
        if delete_before is not None and when <= delete_before:
            return DELETE
    return None


def _why(action: str, version: ModelVersion, policy: RetentionPolicy) -> str:
    keep = f"; not among the newest {policy.keep_last}" if policy.keep_last else ""
    if action == ARCHIVE:
        return f"created more than {policy.archive_after_days} day(s) ago{keep}"
    return f"archived more than {policy.delete_after_days} day(s) ago{keep}"


def protections(model_id, versions: Iterable[ModelVersion]) -> dict:
    """Why each of these versions must not be touched (3 queries for the whole batch)."""
    versions = list(versions)
    ids = [v.pk for v in versions]
    reasons: dict = defaultdict(list)
    for version in versions:
        if version.stage in PROTECTED_STAGES:
            reasons[version.pk].append(f"in stage {version.stage}")
    for version_id, alias in (
        ModelAlias.objects.filter(version_id__in=ids)
        .order_by("alias")
        .values_list("version_id", "alias")
    ):
        reasons[version_id].append(f"holds alias {alias}")
    for version_id, request_id, state in (
        PromotionRequest.objects.filter(version_id__in=ids, state__in=OPEN_REQUEST_STATES)
        .order_by("created_at")
        .values_list("version_id", "id", "state")
    ):
        reasons[version_id].append(f"target of {state} promotion request {request_id}")
    model_hold = False
    for version_id in LegalHold.objects.filter(
        Q(version_id__in=ids) | Q(model_id=model_id, version__isnull=True)
    ).values_list("version_id", flat=True):
        if version_id is None:
            model_hold = True
        else:
            reasons[version_id].append("under legal hold")
    if model_hold:
        for version_id in ids:
            reasons[version_id].append("model under legal hold")
    return reasons


def decide(
    model: ModelRef, policy: RetentionPolicy, versions: list[ModelVersion], now: datetime
) -> list[PlanItem]:
    """Settle a batch of due versions: archive, delete, or keep (protected, with reasons).
    Versions no longer due (changed since they were selected) are left out."""
    protected = protections(model.pk, versions)
    items = []
    for version in versions:
        action = _due_action(version, policy, now)
        if action is None:
            continue
        reasons = protected.get(version.pk)
        items.append(
            PlanItem(
                version_id=version.pk,
                model_id=model.pk,
                full_name=model.full_name,
                version=version.version,
                lifecycle=version.lifecycle,
                action=KEEP if reasons else action,
                reasons=tuple(reasons) if reasons else (_why(action, version, policy),),
                policy_id=policy.pk,
            )
        )
    return items


def plan(
    pairs: Iterable[tuple[ModelRef, RetentionPolicy]],
    now: datetime,
    *,
    after: tuple | None = None,
    batch: int = 500,
) -> Iterator[PlanItem]:
    """What a run at `now` does, model by model, version by version (the dry run). Streams:
    memory stays flat however many versions there are. `after`: resume behind (model pk,
    version number)."""
    for model, policy in pairs:
        last = after[1] if after is not None and model.pk == after[0] else 0
        while True:
            rows = list(
                due_versions(model.pk, policy, now)
                .filter(version__gt=last)
                .order_by("version")[:batch]
            )
            if not rows:
                break
            yield from decide(model, policy, rows, now)
            last = rows[-1].version
            if len(rows) < batch:
                break


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
