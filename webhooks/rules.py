"""Who may see and manage a webhook: metastore admins, and holders of MANAGE on its scope (the
metastore for one that is not scoped). Registered with catalog.authz at start-up
(WebhooksConfig.ready); services and selectors ask authz.require/visible, never this module."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from catalog import authz
from catalog.privileges import Privilege
from catalog.selectors import metastore
from core.actor import Actor
from webhooks.models import Webhook

_MANAGE = frozenset({str(Privilege.MANAGE)})


def scope_target(hook: Webhook) -> Any:
    """The securable whose MANAGE decides: its scope, or the metastore."""
    return hook.securable or metastore()


def held(actor: Actor, hook: Webhook) -> frozenset[str]:
    # Seeing is a read: a read-only token of a MANAGE holder sees what its user sees (authz
    # keeps a read-only token from changing it: MANAGE is not among RULES.reads).
    return _MANAGE if authz.holds(actor, Privilege.MANAGE, scope_target(hook)) else frozenset()


def visible(actor: Actor, queryset: QuerySet[Any], privilege: Any = None) -> QuerySet[Any]:
    """Webhooks whose scope the actor holds MANAGE on (the table is small; each scope is
    checked once, through the actor's authz cache)."""
    if privilege not in (None, str(Privilege.MANAGE)):
        raise ValueError("Webhooks are seen and managed with MANAGE only.")
    if authz.is_admin(actor):
        return queryset
    hooks = queryset.select_related("catalog", "schema__catalog", "model__schema__catalog")
    return queryset.filter(pk__in=[hook.pk for hook in hooks if held(actor, hook)])


RULES = authz.Rules(
    visible=visible,
    held=held,
    named=lambda hook: ("webhook", str(hook.pk)),
    missing=lambda hook: f"Webhook {hook.pk} does not exist.",
)
