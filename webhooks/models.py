"""Webhook subscriptions and their deliveries (an outbox: a delivery row is written in the
transaction of the change it reports, and sent after commit by a Celery task)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from catalog.scoped import ScopedToSecurable


class Webhook(ScopedToSecurable):
    """A subscription: POST the events named in `events` that concern its scope (a catalog, a
    schema, a model, or the whole metastore when none is set) to `url`, signed with `secret`
    as MLflow signs them. Deliveries go out only for securables its creator could see when
    the event happened."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        DISABLED = "DISABLED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=63)
    description = models.TextField(blank=True, default="")
    url = models.CharField(max_length=2048)
    # Event names, `entity.action` (webhooks.events.ALL); matched in Python at emit time.
    events = models.JSONField(default=list)
    # Fernet token of the HMAC secret (webhooks.crypto); "" when deliveries go unsigned.
    secret_encrypted = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status"])]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(catalog__isnull=True, schema__isnull=True, model__isnull=True)
                    | models.Q(catalog__isnull=False, schema__isnull=True, model__isnull=True)
                    | models.Q(catalog__isnull=True, schema__isnull=False, model__isnull=True)
                    | models.Q(catalog__isnull=True, schema__isnull=True, model__isnull=False)
                ),
                name="webhook_at_most_one_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} -> {self.url}"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)


class WebhookDelivery(models.Model):
    """One event for one webhook. Its id is the delivery id sent (and signed) with every
    attempt, so a receiver can drop a duplicate; `payload` is the exact body sent each time."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"
        REFUSED = "REFUSED"  # the address is not allowed (SSRF policy): never retried

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    payload = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt may start; while an attempt runs, the end of its lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_response = models.TextField(blank=True, default="")  # the start of the answer's body
    # One entry per attempt: {"at", "status_code", "error", "address", "ms"}.
    attempt_log = models.JSONField(default=list, blank=True)
    is_test = models.BooleanField(default=False)
    request_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["webhook", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.webhook_id} ({self.status})"
