"""Audit events: one row per write, denial, login, token change; a SHA-256 hash chain."""

from django.db import models


class AuditEvent(models.Model):
    """An append-only record. `hash` covers this row's fields and the previous row's hash."""

    class Outcome(models.TextChoices):
        SUCCESS = "SUCCESS"
        DENIED = "DENIED"
        FAILURE = "FAILURE"

    occurred_at = models.DateTimeField(db_index=True)
    # No foreign key: deleting a user must never rewrite the trail.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True, db_index=True)
    auth_method = models.CharField(max_length=32, blank=True)
    source_address = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    securable_type = models.CharField(max_length=32, blank=True)
    securable = models.CharField(max_length=1024, blank=True, db_index=True)
    # Indexed only where it is not SUCCESS (see Meta): the rare outcomes are what one searches
    # for; SUCCESS, nearly every row, is no use to an index and was a write per row.
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    # Not indexed: only the admin's case-insensitive search reads it, which no btree serves.
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["outcome"],
                condition=~models.Q(outcome="SUCCESS"),
                name="audit_outcome_not_success",
            )
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%dT%H:%M:%S} {self.actor} {self.action} {self.outcome}"


class AuditChainHead(models.Model):
    """One row, locked while appending, so the chain stays linear under concurrent writers."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return self.last_hash
