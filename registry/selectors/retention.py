"""Reads of retention policies, previews of what a run would do, and legal holds, filtered to
what the actor may see.

A policy is visible with its securable. A preview shows version-level plans, so it needs what
changing the policy needs (MANAGE on the securable) and covers only the models the actor may
see. A legal hold is visible to whoever may see its model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from audit.governance import governed
from catalog import authz, scoped
from catalog.privileges import Privilege
from catalog.securables import Node
from catalog.selectors import model_lookup
from core.actor import Actor
from core.errors import InvalidParameter, NotFound
from core.pagination import decode_token, encode_token, page_size
from registry import retention
from registry.models import LegalHold, RegisteredModel, RetentionPolicy
from registry.retention import Pair, PlanItem, PolicyIndex
from registry.selectors.promotions import _time_page
from registry.services.lookups import version_of
from registry.services.retention import retention_policy_lookup


def _policies() -> QuerySet[RetentionPolicy]:
    return RetentionPolicy.objects.select_related(
        "catalog", "schema__catalog", "model__schema__catalog"
    )


@governed("retention_policy.list", atomic=False)
def retention_policy_list(
    *,
    actor: Actor,
    securable_type: object = None,
    full_name: object = None,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[list[RetentionPolicy], str | None]:
    """Policies on securables the actor may see, oldest first; optionally those of one level
    (`securable_type`) or the one of a securable (`securable_type` and `full_name`)."""
    qs = scoped.listed(
        actor,
        _policies(),
        securable_type=securable_type,
        full_name=full_name,
        what="Retention policies",
    )
    return _time_page(
        qs,
        field="created_at",
        newest_first=False,
        max_results=max_results,
        page_token=page_token,
        limit=1000,
    )


@governed("retention_policy.get", atomic=False)
def retention_policy_get(*, actor: Actor, policy_id: object) -> RetentionPolicy:
    """One policy on a securable the actor may see; otherwise not found."""
    return retention_policy_lookup(actor, policy_id)


# --- previews --------------------------------------------------------------------------------


Cursor = tuple[uuid.UUID, int]  # resume behind (model pk, version number)


def _cursor(page_token: str | None) -> Cursor | None:
    raw = decode_token(page_token)
    if raw is None:
        return None
    try:
        model_pk, number = raw.split("|")
        return uuid.UUID(model_pk), int(number)
    except ValueError:
        raise InvalidParameter("Invalid page_token.") from None


def _page(
    pairs: Callable[[Cursor | None], Iterable[Pair]],
    now: datetime,
    max_results: object,
    page_token: str | None,
) -> tuple[list[PlanItem], str | None]:
    size = page_size(max_results)
    after = _cursor(page_token)
    items: list[PlanItem] = []
    for item in retention.plan(pairs(after), now, after=after, batch=min(size + 1, 500)):
        items.append(item)
        if len(items) > size:
            break
    if len(items) > size:
        last = items[size - 1]
        return items[:size], encode_token(f"{last.model_id}|{last.version}")
    return items, None


def _require_manage_to_read(actor: Actor, securable: Node) -> None:
    """A preview needs MANAGE but changes nothing: a read-only token previews what its user
    may (token scope aside, as for every read); anyone else gets require's 404 or 403."""
    if not authz.holds(actor, Privilege.MANAGE, securable):
        authz.require(actor, Privilege.MANAGE, securable)


@governed("retention_policy.preview", atomic=False)
def retention_policy_preview(
    *,
    actor: Actor,
    policy_id: object,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[RetentionPolicy, list[PlanItem], str | None]:
    """What a run now would do under this policy: every due version of the models it governs
    (and the actor may see), archive, delete or keep with the reasons. Needs MANAGE on the
    policy's securable. Returns (policy, items, next_page_token)."""
    policy = retention_policy_lookup(actor, policy_id)
    _require_manage_to_read(actor, policy.securable)
    index = PolicyIndex.load()
    within = None if authz.is_admin(actor) else authz.visible_models(actor)

    def pairs(after: Cursor | None) -> Iterator[Pair]:
        return retention.governed_models(
            index, only_policy=policy, within=within, start_at=after[0] if after else None
        )

    items, token = _page(pairs, timezone.now(), max_results, page_token)
    return policy, items, token


@governed("registered_model.retention_preview", atomic=False)
def model_retention_preview(
    *,
    actor: Actor,
    full_name: object,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[RetentionPolicy | None, list[PlanItem], str | None]:
    """What a run now would do to one model's versions under the policy that governs it
    (MANAGE on the model). Returns (policy or None, items, next_page_token)."""
    model: RegisteredModel = model_lookup(full_name)
    _require_manage_to_read(actor, model)
    policy = retention.policy_for(model)
    if policy is None or not policy.has_rules:
        decode_token(page_token)  # still refuse a forged token
        return policy, [], None
    ref = retention.model_ref(model)

    def pairs(after: Cursor | None) -> list[Pair]:
        if after is not None and after[0] != ref.pk:
            raise InvalidParameter("Invalid page_token.")
        return [(ref, policy)]

    items, token = _page(pairs, timezone.now(), max_results, page_token)
    return policy, items, token


# --- legal holds -----------------------------------------------------------------------------


@governed("legal_hold.get", atomic=False)
def legal_hold_get(*, actor: Actor, full_name: object, version: object = None) -> LegalHold:
    """The legal hold on a model (version None) or on one of its versions; not found when
    there is none (or the model is hidden from the actor)."""
    model = model_lookup(full_name)
    authz.require_visible(actor, model)
    target = version_of(model, version) if version is not None else None
    hold = (
        LegalHold.objects.select_related("model", "version")
        .filter(model=model, version=target)
        .first()
    )
    if hold is None:
        where = f"version {target.version} of " if target is not None else ""
        raise NotFound(f"There is no legal hold on {where}{model.full_name}.")
    return hold
