"""The MLflow webhook API (/api/2.0/mlflow/webhooks...), as mlflow 3.x's client calls it
(mlflow/store/model_registry/rest_store.py; routes from mlflow/protos/webhooks.proto):

    POST   webhooks                   CreateWebhook  -> {"webhook": {...}}
    GET    webhooks                   ListWebhooks   -> {"webhooks": [...], "next_page_token"}
    GET    webhooks/{id}              GetWebhook     -> {"webhook": {...}}
    PATCH  webhooks/{id}              UpdateWebhook  -> {"webhook": {...}}
    DELETE webhooks/{id}              DeleteWebhook  -> {}
    POST   webhooks/{id}/test         TestWebhook    -> {"result": {...}}

Events travel as proto enum names, `{"entity": "MODEL_VERSION", "action": "CREATED"}`. Only
MLflow's events can be spelt that way: this door shows a webhook's MLflow events, leaves its
Steward events alone on update, and does not show a webhook that has none. Webhooks created
here are metastore-wide (MLflow has no scopes). The secret is never answered.
"""

from __future__ import annotations

from rest_framework.response import Response

from accounts.permissions import IsAuthenticatedPrincipal
from core.api import epoch_ms
from core.errors import InvalidParameter, NotFound
from tracking.api.mlflow.views import MlflowView
from webhooks import events, selectors, services

_STATUS_NUMBERS = {1: "ACTIVE", 2: "DISABLED"}


class WebhookDoor(MlflowView):
    """Authenticated principals only; the services decide who may manage what."""

    permission_classes = [IsAuthenticatedPrincipal]


def webhook_out(hook) -> dict:
    names = [e for e in hook.events if e in events.MLFLOW_EVENTS]
    if not names:
        raise NotFound(f"Webhook with ID {hook.id} not found.")
    out = {
        "webhook_id": str(hook.id),
        "name": hook.name,
        "url": hook.url,
        "events": [events.to_wire(e) for e in names],
        "status": hook.status,
        "creation_timestamp": epoch_ms(hook.created_at),
        "last_updated_timestamp": epoch_ms(hook.updated_at),
    }
    if hook.description:
        out["description"] = hook.description
    return out


def events_in(value) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidParameter("events must be a list of {entity, action} objects.")
    try:
        return [events.from_wire(item) for item in value]
    except events.EventError as exc:
        raise InvalidParameter(str(exc)) from None


def status_in(value):
    """ACTIVE / DISABLED, or their proto numbers; the service refuses anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _STATUS_NUMBERS.get(value, value)
    return value


def mlflow_webhook(actor, webhook_id):
    """The webhook, if this door can show it (it has an MLflow event): checked before any
    write, so a write is never applied and then answered 404."""
    hook = selectors.webhook_get(actor=actor, webhook_id=webhook_id)
    webhook_out(hook)
    return hook


def same_id(body: dict, webhook_id: str) -> None:
    given = body.get("webhook_id")
    if given not in (None, "") and given != webhook_id:
        raise InvalidParameter("webhook_id in the body does not match the one in the path.")


class WebhooksView(WebhookDoor):
    def post(self, request):
        data = self.body()
        if data.get("events") in (None, []):
            raise InvalidParameter("Missing value for required parameter 'events'.")
        hook = services.webhook_create(
            actor=self.actor(),
            name=data.get("name"),
            url=data.get("url"),
            events=events_in(data.get("events")),
            description=data.get("description"),
            secret=data.get("secret") or None,
            status=status_in(data.get("status")),
        )
        return Response({"webhook": webhook_out(hook)})

    def get(self, request):
        items, token = selectors.webhook_list(
            actor=self.actor(),
            mlflow_only=True,
            max_results=self.q("max_results"),
            page_token=self.q("page_token"),
        )
        out: dict = {"webhooks": [webhook_out(h) for h in items]}
        if token:
            out["next_page_token"] = token
        return Response(out)


class WebhookView(WebhookDoor):
    def get(self, request, webhook_id):
        hook = selectors.webhook_get(actor=self.actor(), webhook_id=webhook_id)
        return Response({"webhook": webhook_out(hook)})

    def patch(self, request, webhook_id):
        data = self.body()
        same_id(data, webhook_id)
        mlflow_webhook(self.actor(), webhook_id)
        hook = services.webhook_update(
            actor=self.actor(),
            webhook_id=webhook_id,
            name=data.get("name") or None,
            url=data.get("url") or None,
            mlflow_events=events_in(data.get("events")) or None,
            description=data.get("description"),
            secret=data.get("secret"),
            status=status_in(data.get("status")),
        )
        return Response({"webhook": webhook_out(hook)})

    def delete(self, request, webhook_id):
        same_id(self.body(), webhook_id)
        mlflow_webhook(self.actor(), webhook_id)
        services.webhook_delete(actor=self.actor(), webhook_id=webhook_id)
        return Response({})


class WebhookTestView(WebhookDoor):
    def post(self, request, webhook_id):
        data = self.body()
        same_id(data, webhook_id)
        event = None
        if data.get("event") is not None:
            event = events_in([data["event"]])[0]
        mlflow_webhook(self.actor(), webhook_id)
        delivery = services.webhook_test(actor=self.actor(), webhook_id=webhook_id, event=event)
        result: dict = {"success": delivery.status == delivery.Status.SUCCEEDED}
        if delivery.last_status_code is not None:
            result["response_status"] = delivery.last_status_code
        if delivery.last_response:
            result["response_body"] = delivery.last_response
        if delivery.status != delivery.Status.SUCCEEDED and delivery.last_error:
            result["error_message"] = delivery.last_error
        return Response({"result": result})
