"""Bodies of the native webhook API: strict parsing (no unknown fields, no numbers as
strings, no NUL); the services validate meaning. The secret is accepted, never answered."""

from __future__ import annotations

import json

from rest_framework import serializers

from core.api import StrictCharField, StrictInputSerializer, epoch_ms
from webhooks import events
from webhooks.models import Webhook, WebhookDelivery


def _text(max_length: int, **kwargs) -> StrictCharField:
    return StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=max_length, **kwargs
    )


_EVENTS_HELP = "event names: " + ", ".join(events.ALL)


class WebhookInputSerializer(StrictInputSerializer):
    name = StrictCharField(max_length=63)
    url = StrictCharField(max_length=2048, trim_whitespace=False)
    events = serializers.ListField(child=StrictCharField(max_length=64), help_text=_EVENTS_HELP)
    secret = _text(512, trim_whitespace=False, write_only=True)
    description = _text(1000)
    status = serializers.ChoiceField(choices=Webhook.Status.values, required=False)
    securable_type = StrictCharField(
        required=False, help_text="catalog, schema or registered_model; none: metastore-wide"
    )
    full_name = StrictCharField(required=False, max_length=767)


class WebhookUpdateInputSerializer(StrictInputSerializer):
    name = StrictCharField(max_length=63, required=False)
    url = StrictCharField(max_length=2048, required=False, trim_whitespace=False)
    events = serializers.ListField(
        child=StrictCharField(max_length=64), required=False, help_text=_EVENTS_HELP
    )
    secret = _text(512, trim_whitespace=False, write_only=True, help_text='"" removes it')
    description = _text(1000)
    status = serializers.ChoiceField(choices=Webhook.Status.values, required=False)


class WebhookTestInputSerializer(StrictInputSerializer):
    event = StrictCharField(required=False, max_length=64, help_text="default: its first event")


class WebhookOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    description = serializers.CharField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=Webhook.Status.values)
    securable_type = serializers.CharField()
    full_name = serializers.CharField(allow_null=True)
    signed = serializers.BooleanField(help_text="whether deliveries carry X-MLflow-Signature")
    created_by = serializers.CharField()
    created_at = serializers.IntegerField(help_text="epoch milliseconds")
    updated_at = serializers.IntegerField()
    updated_by = serializers.CharField()


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="the X-MLflow-Delivery-Id of every attempt")
    webhook_id = serializers.UUIDField()
    event = serializers.CharField()
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.values)
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    last_response = serializers.CharField(help_text="the start of the receiver's answer")
    attempt_log = serializers.ListField(child=serializers.DictField())
    next_attempt_at = serializers.IntegerField(allow_null=True)
    created_at = serializers.IntegerField()
    last_attempt_at = serializers.IntegerField(allow_null=True)
    completed_at = serializers.IntegerField(allow_null=True)
    is_test = serializers.BooleanField()
    request_id = serializers.CharField()
    payload = serializers.DictField(help_text="the JSON body sent")


def webhook_out(hook: Webhook) -> dict:
    scope = hook.securable
    return {
        "id": str(hook.id),
        "name": hook.name,
        "description": hook.description,
        "url": hook.url,
        "events": list(hook.events),
        "status": hook.status,
        "securable_type": str(scope.securable_type) if scope is not None else "metastore",
        "full_name": scope.full_name if scope is not None else None,
        "signed": hook.has_secret,
        "created_by": hook.created_by,
        "created_at": epoch_ms(hook.created_at),
        "updated_at": epoch_ms(hook.updated_at),
        "updated_by": hook.updated_by,
    }


def delivery_out(delivery: WebhookDelivery) -> dict:
    return {
        "id": str(delivery.id),
        "webhook_id": str(delivery.webhook_id),
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "last_response": delivery.last_response,
        "attempt_log": delivery.attempt_log,
        "next_attempt_at": epoch_ms(delivery.next_attempt_at)
        if delivery.status == WebhookDelivery.Status.PENDING
        else None,
        "created_at": epoch_ms(delivery.created_at),
        "last_attempt_at": epoch_ms(delivery.last_attempt_at),
        "completed_at": epoch_ms(delivery.completed_at),
        "is_test": delivery.is_test,
        "request_id": delivery.request_id,
        "payload": json.loads(delivery.payload),
    }
