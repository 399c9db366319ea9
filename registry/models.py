"""The model registry: registered models (third level of the namespace), their versions,
tags, aliases and alias history."""

from __future__ import annotations

import uuid

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from catalog.models import Schema, Securable
from catalog.privileges import SecurableType, guardian_permissions


class RegisteredModel(Securable):
    """catalog.schema.model; `full_name` is kept in step on renames of any level."""

    schema = models.ForeignKey(Schema, on_delete=models.CASCADE, related_name="models")
    full_name = models.CharField(max_length=767, unique=True)
    storage_location = models.CharField(max_length=1024, blank=True, default="")
    # Next version number to hand out; only ever grows, so numbers are never reused.
    next_version = models.PositiveIntegerField(default=1)

    securable_type = SecurableType.REGISTERED_MODEL

    class Meta:
        default_permissions = ()
        permissions = guardian_permissions(SecurableType.REGISTERED_MODEL)
        constraints = [
            models.UniqueConstraint(fields=["schema", "name"], name="uniq_model_name"),
            models.CheckConstraint(
                condition=~(
                    models.Q(owner_user__isnull=False) & models.Q(owner_group__isnull=False)
                ),
                name="model_single_owner",
            ),
        ]

    @property
    def catalog(self):
        return self.schema.catalog


class ModelUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="user_grants"
    )


class ModelGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="group_grants"
    )


class ModelVersion(models.Model):
    """One version of a registered model. Numbers grow per model and are never reused; a
    deleted version stays as a tombstone (lifecycle DELETED) without artifacts."""

    class Status(models.TextChoices):
        PENDING_REGISTRATION = "PENDING_REGISTRATION"
        READY = "READY"
        FAILED_REGISTRATION = "FAILED_REGISTRATION"

    class Lifecycle(models.TextChoices):
        ACTIVE = "ACTIVE"
        ARCHIVED = "ARCHIVED"
        DELETED = "DELETED"

    class Stage(models.TextChoices):
        NONE = "None"
        STAGING = "Staging"
        PRODUCTION = "Production"
        ARCHIVED = "Archived"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.PENDING_REGISTRATION
    )
    status_message = models.TextField(blank=True, default="")
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE)
    source = models.CharField(max_length=2048, blank=True, default="")
    run_id = models.CharField(max_length=64, blank=True, default="")
    logged_model_id = models.CharField(max_length=64, blank=True, default="")
    storage_location = models.CharField(max_length=1024, blank=True, default="")
    description = models.TextField(blank=True, default="")
    signature = models.JSONField(null=True, blank=True)
    input_example = models.JSONField(null=True, blank=True)
    artifact_digest = models.CharField(max_length=64, blank=True, default="")
    pending_deadline = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="uniq_model_version"),
        ]
        indexes = [models.Index(fields=["status", "pending_deadline"])]

    def __str__(self) -> str:
        return f"{self.model.full_name}/{self.version}"

    @property
    def full_name(self) -> str:
        return f"{self.model.full_name}/{self.version}"


class RegisteredModelTag(models.Model):
    """A key/value tag on a registered model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="uniq_model_tag")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


class ModelVersionTag(models.Model):
    """A key/value tag on a model version (e.g. validation=passed)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="uniq_version_tag")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:40]}"


class ModelAlias(models.Model):
    """A named pointer (e.g. `champion`) from a model to one of its versions."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=255)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "alias"], name="uniq_model_alias")]

    def __str__(self) -> str:
        return f"{self.alias}->{self.version_id}"


class AliasHistory(models.Model):
    """Every move of an alias: who, when, from which version to which, and why."""

    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="alias_history"
    )
    alias = models.CharField(max_length=255)
    from_version = models.PositiveIntegerField(null=True, blank=True)
    to_version = models.PositiveIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["model", "alias", "id"])]

    def __str__(self) -> str:
        return f"{self.alias}: {self.from_version}->{self.to_version}"
