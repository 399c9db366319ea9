"""Who may see a promotion request: its requester, the approvers its policy names (nested groups
included), holders of MANAGE on its model, and metastore admins. Registered with catalog.authz
at start-up (RegistryConfig.ready); services and selectors ask authz.require/visible. Deciding
a request (approve, reject) is the approval rules' (registry.policies), checked after this."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from catalog import authz
from catalog.privileges import Privilege
from core.actor import Actor
from registry import policies
from registry.models import AliasPolicy, PromotionRequest, RegisteredModel

VIEW = "VIEW"
_VIEW = frozenset({VIEW})


def held(actor: Actor, request: PromotionRequest) -> frozenset[str]:
    if actor.user.pk is not None and request.requester_id == actor.user.pk:
        return _VIEW
    if authz.is_admin(actor) or policies.is_approver(request.policy, actor.user):
        return _VIEW
    # Seeing is a read: a read-only token of a MANAGE holder sees what its user sees.
    return _VIEW if authz.holds(actor, Privilege.MANAGE, request.model) else frozenset()


def approver_policies(actor: Actor) -> QuerySet[Any]:
    """Policies naming the actor as an approver, directly or through (nested) groups."""
    p = authz.principals(actor)
    q = Q(approver_users=actor.user.pk)
    if p.group_ids:
        q |= Q(approver_groups__in=list(p.group_ids))
    return AliasPolicy.objects.filter(q).values("pk")


def visible(actor: Actor, queryset: QuerySet[Any], privilege: Any = None) -> QuerySet[Any]:
    """Requests the actor may see, as `held` says, in one query after the models with requests
    the actor may see are checked for MANAGE (the catalog and schema grants are cached on the
    actor, so one query per such model)."""
    if privilege not in (None, VIEW):
        raise ValueError("Promotion requests are only seen (VIEW); deciding is the policy's.")
    if authz.is_admin(actor):
        return queryset
    candidates = authz.visible_models(
        actor,
        RegisteredModel.objects.filter(pk__in=PromotionRequest.objects.values("model_id")),
    ).select_related("schema__catalog")
    managed = [m.pk for m in candidates if authz.holds(actor, Privilege.MANAGE, m)]
    return queryset.filter(
        Q(requester=actor.user.pk) | Q(policy__in=approver_policies(actor)) | Q(model__in=managed)
    )


RULES = authz.Rules(
    visible=visible,
    held=held,
    reads=_VIEW,
    named=lambda request: ("promotion_request", str(request.pk)),
    missing=lambda request: f"Promotion request {request.pk} does not exist.",
)
