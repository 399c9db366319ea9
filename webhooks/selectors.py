"""Reads of webhooks and their deliveries: only what the actor may manage (MANAGE on the
webhook's scope; admins see all). A webhook outside that answers not found."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from django.db.models import Q, QuerySet

from audit.governance import governed
from catalog import authz
from catalog.privileges import SecurableType
from core.actor import Actor
from core.errors import InvalidParameter
from core.pagination import decode_token, encode_token, page_size
from webhooks import events as event_names
from webhooks.models import Webhook, WebhookDelivery
from webhooks.services import scope_of, webhook_lookup

# What `_newest_first` pages: rows with a `created_at` and an id.
_Row = TypeVar("_Row", Webhook, WebhookDelivery)


def _newest_first(
    queryset: QuerySet[_Row], *, max_results: object, page_token: str | None
) -> tuple[list[_Row], str | None]:
    """One page, newest first, by the keyset (created_at, id); returns (items, token)."""
    size = page_size(max_results)
    after = decode_token(page_token)
    qs = queryset.order_by("-created_at", "-id")
    if after is not None:
        try:
            at_text, key = after.split("|", 1)
            at = datetime.fromisoformat(at_text)
        except ValueError:
            raise InvalidParameter("Invalid page_token.") from None
        qs = qs.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=key))
    items = list(qs[: size + 1])
    if len(items) > size:
        last = items[size - 1]
        return items[:size], encode_token(f"{last.created_at.isoformat()}|{last.pk}")
    return items, None


@governed("webhook.list", atomic=False)
def webhook_list(
    *,
    actor: Actor,
    securable_type: object = None,
    full_name: object = None,
    mlflow_only: bool = False,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[list[Webhook], str | None]:
    """Webhooks the actor may manage, newest first; optionally only those scoped exactly to
    one securable, or (the MLflow door) only those with at least one MLflow event."""
    qs = Webhook.objects.all()
    if securable_type not in (None, "") or full_name not in (None, ""):
        scope = scope_of(securable_type, full_name)
        authz.require_visible(actor, scope)
        if scope.securable_type == SecurableType.METASTORE:
            qs = qs.filter(catalog__isnull=True, schema__isnull=True, model__isnull=True)
        else:
            qs = qs.filter(Webhook.attached_q(scope))
    visible = authz.visible(actor, qs)
    if mlflow_only:
        visible = visible.filter(
            pk__in=[
                pk
                for pk, names in visible.values_list("pk", "events")
                if any(e in event_names.MLFLOW_EVENTS for e in names)
            ]
        )
    visible = visible.select_related("catalog", "schema__catalog", "model__schema__catalog")
    return _newest_first(visible, max_results=max_results, page_token=page_token)


@governed("webhook.get", atomic=False)
def webhook_get(*, actor: Actor, webhook_id: object) -> Webhook:
    return webhook_lookup(actor, webhook_id)


@governed("webhook.deliveries", atomic=False)
def delivery_list(
    *,
    actor: Actor,
    webhook_id: object,
    status: object = None,
    max_results: object = None,
    page_token: str | None = None,
) -> tuple[list[WebhookDelivery], str | None]:
    """A webhook's deliveries with their outcomes, newest first (MANAGE on its scope)."""
    hook = webhook_lookup(actor, webhook_id)
    qs = WebhookDelivery.objects.filter(webhook=hook)
    if status not in (None, ""):
        if status not in WebhookDelivery.Status.values:
            raise InvalidParameter(
                f"status must be one of {', '.join(WebhookDelivery.Status.values)}."
            )
        qs = qs.filter(status=status)
    return _newest_first(qs, max_results=max_results, page_token=page_token)
