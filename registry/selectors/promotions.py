"""Reads of alias policies, promotion requests, aliases and alias history, filtered to what the
actor may see.

An alias policy is visible with its securable (catalog, schema or model). A promotion request is
visible to its requester, the approvers its policy names, holders of MANAGE on its model and
metastore admins: the rule of `promotions.promotion_request_lookup`, which the list applies as a
queryset so that a listed request can always be opened. Anything else answers not-found.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from audit.governance import governed
from catalog import authz, scoped
from core.actor import Actor
from core.errors import InvalidParameter, NotFound
from core.names import split_full_name
from core.pagination import decode_token, encode_token, page_size
from registry import policies
from registry.models import (
    AliasHistory,
    AliasPolicy,
    ModelAlias,
    PromotionDecision,
    PromotionRequest,
)
from registry.rules import approver_policies
from registry.selectors.versions import _visible_model
from registry.services import promotions
from registry.services.lookups import clean_alias

VIEWS = ("all", "mine", "waiting")
# Each listed request costs a few queries to render (counted approvals, can_decide); keep pages
# of requests smaller than the generic maximum.
MAX_REQUEST_PAGE = 200


# --- keyset pages on (timestamp, id) ---------------------------------------------------------


def _time_token(at: datetime, pk: object) -> str:
    return encode_token(f"{at.isoformat()}|{pk}")


def _time_after(page_token: str | None) -> tuple[datetime, str] | None:
    raw = decode_token(page_token)
    if raw is None:
        return None
    try:
        at_text, pk_text = raw.split("|")
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None:
            raise ValueError
        return at, str(uuid.UUID(pk_text))
    except ValueError:
        raise InvalidParameter("Invalid page_token.") from None


_M = TypeVar("_M", bound=Model)


def _time_page(
    qs: QuerySet[_M],
    *,
    field: str,
    newest_first: bool,
    max_results: object,
    page_token: str | None,
    limit: int,
) -> tuple[list[_M], str | None]:
    """A page ordered by (`field`, id), oldest or newest first; the token is opaque."""
    size = min(page_size(max_results), limit)
    after = _time_after(page_token)
    if newest_first:
        qs = qs.order_by(f"-{field}", "id")
        if after is not None:
            qs = qs.filter(
                Q(**{f"{field}__lt": after[0]}) | Q(**{field: after[0], "id__gt": after[1]})
            )
    else:
        qs = qs.order_by(field, "id")
        if after is not None:
            qs = qs.filter(
                Q(**{f"{field}__gt": after[0]}) | Q(**{field: after[0], "id__gt": after[1]})
            )
    items = list(qs[: size + 1])
    if len(items) > size:
        last = items[size - 1]
        return items[:size], _time_token(getattr(last, field), last.pk)
    return items, None


# --- alias policies --------------------------------------------------------------------------


def _policies() -> QuerySet[AliasPolicy]:
    return AliasPolicy.objects.select_related(
        "catalog", "schema__catalog", "model__schema__catalog"
    ).prefetch_related("approver_users", "approver_groups")


@governed("alias_policy.list", atomic=False)
def alias_policy_list(
    *,
    actor: Actor,
    securable_type: object = None,
    full_name: object = None,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[list[AliasPolicy], str | None]:
    """Policies on securables the actor may see, oldest first; optionally those of one level
    (`securable_type`) or of one securable (`securable_type` and `full_name`)."""
    qs = scoped.listed(
        actor,
        _policies(),
        securable_type=securable_type,
        full_name=full_name,
        what="Alias policies",
    )
    return _time_page(
        qs,
        field="created_at",
        newest_first=False,
        max_results=max_results,
        page_token=page_token,
        limit=1000,
    )


@governed("alias_policy.get", atomic=False)
def alias_policy_get(*, actor: Actor, policy_id: object) -> AliasPolicy:
    """One policy on a securable the actor may see; otherwise not found."""
    policy = promotions.alias_policy_lookup(actor, policy_id)
    return _policies().get(pk=policy.pk)


# --- promotion requests ----------------------------------------------------------------------


def _requests() -> QuerySet[PromotionRequest]:
    return PromotionRequest.objects.select_related(
        "model__schema__catalog", "policy", "version"
    ).prefetch_related("decisions")


def _model_name(value: object) -> str | None:
    if value in (None, ""):
        return None
    return ".".join(split_full_name(value, 3, field="model"))


def _expire_overdue(requests: list[PromotionRequest]) -> list[PromotionRequest]:
    """Show an overdue PENDING request as EXPIRED rather than as pending (in memory: reads
    never write; registry.tasks.expire_promotion_requests settles the row and notifies)."""
    now = timezone.now()
    for request in requests:
        if request.state == PromotionRequest.State.PENDING and request.expires_at <= now:
            request.state = PromotionRequest.State.EXPIRED
            request.state_message = promotions.EXPIRED_MESSAGE
    return requests


def _state_q(state: str) -> Q:
    """Requests in `state` as the reads show them: an overdue PENDING one is EXPIRED already
    (the beat task settles the row later)."""
    now = timezone.now()
    pending, expired = PromotionRequest.State.PENDING, PromotionRequest.State.EXPIRED
    if state == pending:
        return Q(state=pending, expires_at__gt=now)
    if state == expired:
        return Q(state=expired) | Q(state=pending, expires_at__lte=now)
    return Q(state=state)


@governed("promotion_request.list", atomic=False)
def promotion_request_list(
    *,
    actor: Actor,
    view: object = "all",
    state: object = None,
    model: object = None,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[list[PromotionRequest], str | None]:
    """Requests the actor may see, newest first. `mine`: those the actor made; `waiting`: the
    PENDING, unexpired ones the actor may approve and has not decided (never their own);
    `all`: every visible one. Optionally of one state or one model."""
    if view in (None, ""):
        view = "all"
    if view not in VIEWS:
        raise InvalidParameter("view must be one of " + ", ".join(VIEWS) + ".")
    qs = _requests()
    if state not in (None, ""):
        if not isinstance(state, str) or state not in PromotionRequest.State.values:
            raise InvalidParameter(
                "state must be one of " + ", ".join(PromotionRequest.State.values) + "."
            )
        qs = qs.filter(_state_q(state))
    name = _model_name(model)
    if name is not None:
        qs = qs.filter(model__full_name=name)
    if view == "mine":
        qs = qs.filter(requester=actor.user.pk)
    elif view == "waiting":
        qs = (
            qs.filter(
                state=PromotionRequest.State.PENDING,
                expires_at__gt=timezone.now(),
                policy__in=approver_policies(actor),
            )
            .exclude(requester=actor.user.pk)
            .exclude(decisions__approver=actor.user.pk)
        )
    else:
        qs = authz.visible(actor, qs)
    items, token = _time_page(
        qs,
        field="created_at",
        newest_first=True,
        max_results=max_results,
        page_token=page_token,
        limit=MAX_REQUEST_PAGE,
    )
    return _expire_overdue(items), token


@governed("promotion_request.get", atomic=False)
def promotion_request_get(*, actor: Actor, request_id: object) -> PromotionRequest:
    """One request the actor may see; a hidden one is not found, like a missing one."""
    request = promotions.promotion_request_lookup(actor, request_id)
    return _expire_overdue([_requests().get(pk=request.pk)])[0]


def can_decide(actor: Actor, request: PromotionRequest, *, now: datetime | None = None) -> bool:
    """May the actor approve or reject this request now? (PENDING and unexpired, a named
    approver, not the requester, not yet decided, not a read-only token)"""
    return (
        request.state == PromotionRequest.State.PENDING
        and request.expires_at > (now or timezone.now())
        and not actor.read_only
        and request.requester_id != actor.user.pk
        and policies.is_approver(request.policy, actor.user)
        and not any(d.approver_id == actor.user.pk for d in request.decisions.all())
    )


@dataclass
class RequestFacts:
    """What a request looks like to one actor, for rendering."""

    approvals: list[str]
    decisions: list[PromotionDecision]
    can_decide: bool
    links: dict[str, str]


def promotion_request_facts(
    actor: Actor, requests: Iterable[PromotionRequest]
) -> dict[uuid.UUID, RequestFacts]:
    """request id -> RequestFacts, for requests the actor was already allowed to see: the
    approvals that still count, every decision, whether the actor may decide now, and links."""
    now = timezone.now()
    out: dict[uuid.UUID, RequestFacts] = {}
    for request in requests:
        out[request.pk] = RequestFacts(
            approvals=policies.counted_approvals(request),
            decisions=list(request.decisions.all()),
            # A read-only token cannot decide, nor can anyone once the request has expired.
            can_decide=can_decide(actor, request, now=now),
            links=promotions.request_links(request),
        )
    return out


# --- aliases and their history ---------------------------------------------------------------


@governed("alias.get", atomic=False)
def model_alias_get(*, actor: Actor, full_name: object, alias: object) -> ModelAlias:
    """An alias of a model the actor may see, with the version it points at."""
    model = _visible_model(actor, full_name)
    name = clean_alias(alias)
    found = (
        ModelAlias.objects.select_related("model", "version")
        .filter(model=model, alias=name)
        .first()
    )
    if found is None:
        raise NotFound(f"Alias {name!r} does not exist on {model.full_name}.")
    return found


@governed("alias.history", atomic=False)
def alias_history_list(
    *,
    actor: Actor,
    full_name: object,
    alias: object,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[list[AliasHistory], str | None]:
    """Every move of one alias of a visible model, newest first, keyset-paged: who, when, from
    which version to which, why, and the promotion request that moved it."""
    model = _visible_model(actor, full_name)
    name = clean_alias(alias)
    qs = AliasHistory.objects.filter(model=model, alias=name).order_by("-id")
    size = page_size(max_results)
    before = decode_token(page_token)
    if before is not None:
        if not before.isdigit() or len(before) > 18:
            raise InvalidParameter("Invalid page_token.")
        qs = qs.filter(id__lt=int(before))
    items = list(qs.select_related("model")[: size + 1])
    token = encode_token(str(items[size - 1].id)) if len(items) > size else None
    return items[:size], token
