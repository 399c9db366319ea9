"""The model registry: registered models (third level of the namespace), their versions,
tags, aliases and alias history, alias policies and promotion requests."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from catalog.models import Schema, Securable
from catalog.privileges import SecurableType, guardian_permissions
from catalog.scoped import ScopedToSecurable


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
    # No index of its own: `uniq_model_version` (model, version) serves every lookup by model,
    # and a second index was one more write per inserted or moved row.
    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="versions", db_index=False
    )
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
    # When retention archived it (set by the archiving UPDATE itself); null for a version
    # archived by hand, whose `updated_at` then counts for the "delete N days after archiving"
    # rule. Not indexed: the rule reads it only for rows already selected by model.
    archived_at = models.DateTimeField(null=True, blank=True)

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
    # The promotion request that moved it, when the alias is protected (or a break-glass move).
    promotion = models.ForeignKey(
        "PromotionRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["model", "alias", "id"])]

    def __str__(self) -> str:
        return f"{self.alias}: {self.from_version}->{self.to_version}"


class AliasPolicy(ScopedToSecurable):
    """Protects alias names matching `alias_patterns` (`champion`, `prod*`) on a catalog, a
    schema or a model, the nearest level with a matching policy winning: moving such an alias
    needs `required_approvals` distinct approvals from the named principals, and the version
    must pass the gates. A legacy stage counts as an alias named after it in lower case
    (`production`, `staging`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    alias_patterns = models.JSONField(default=list)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    approver_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    approver_groups = models.ManyToManyField(Group, blank=True, related_name="+")
    request_ttl_seconds = models.PositiveIntegerField(default=7 * 24 * 3600)
    # Gates: {"required_tags": {"validation": "passed"}, "metrics": [{"key": "val_accuracy",
    # "op": ">=", "value": 0.9}], "require_signature": true}; READY is always required.
    gates = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(catalog__isnull=False, schema__isnull=True, model__isnull=True)
                    | models.Q(catalog__isnull=True, schema__isnull=False, model__isnull=True)
                    | models.Q(catalog__isnull=True, schema__isnull=True, model__isnull=False)
                ),
                name="alias_policy_one_securable",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.securable_full_name}: {', '.join(self.alias_patterns)}"


class PromotionRequest(models.Model):
    """A request to move a protected alias (or legacy stage) of a model to a version.

    Bound to the version (its id and artifact digest) and to the alias's target when asked
    (`from_version`): it applies only if neither changed, otherwise it goes STALE.
    """

    class State(models.TextChoices):
        PENDING = "PENDING"
        APPROVED = "APPROVED"
        APPLIED = "APPLIED"
        REJECTED = "REJECTED"
        CANCELLED = "CANCELLED"
        EXPIRED = "EXPIRED"
        STALE = "STALE"

    class Kind(models.TextChoices):
        ALIAS = "ALIAS"
        STAGE = "STAGE"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="promotion_requests"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ALIAS)
    alias = models.CharField(max_length=255)  # alias name, or the stage name for kind STAGE
    archive_existing_versions = models.BooleanField(default=False)  # kind STAGE only
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    version_number = models.PositiveIntegerField()
    artifact_digest = models.CharField(max_length=64, blank=True, default="")
    from_version = models.PositiveIntegerField(null=True, blank=True)
    policy = models.ForeignKey(
        AliasPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    required_approvals = models.PositiveSmallIntegerField(default=1)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requester_name = models.CharField(max_length=150)
    justification = models.TextField(blank=True, default="")
    rollback = models.BooleanField(default=False)
    break_glass = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    state_message = models.TextField(blank=True, default="")
    gate_results = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["state", "expires_at"]),
            models.Index(fields=["model", "alias", "state"]),
        ]
        constraints = [
            # At most one open request per alias: a second one would only race the first.
            models.UniqueConstraint(
                fields=["model", "kind", "alias"],
                condition=models.Q(state__in=["PENDING", "APPROVED"]),
                name="one_open_request_per_alias",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.full_name}@{self.alias} -> {self.version_number} ({self.state})"


class PromotionDecision(models.Model):
    """One approver's approval or rejection of a request, with a comment; one per approver."""

    class Decision(models.TextChoices):
        APPROVE = "APPROVE"
        REJECT = "REJECT"

    request = models.ForeignKey(
        PromotionRequest, on_delete=models.CASCADE, related_name="decisions"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approver_name = models.CharField(max_length=150)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"], name="one_decision_per_approver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver_name}: {self.decision}"


# --- retention (issue 6) -------------------------------------------------------------------------


class RetentionPolicy(ScopedToSecurable):
    """Rules that archive and delete old versions of the models under a catalog, a schema or a
    model; the nearest level holding a policy governs a model (no merging across levels).

    `archive_after_days`: ACTIVE versions created that long ago are archived (null: never).
    `delete_after_days`: ARCHIVED versions archived that long ago are deleted: files removed,
    tombstone kept (null: never). `keep_last`: the newest K READY, undeleted versions are never
    archived or deleted. A policy with neither rule exempts its level from the policies above.
    Versions holding an alias, in stage Staging or Production, targeted by an open promotion
    request or under legal hold are never touched (registry.retention decides)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    archive_after_days = models.PositiveIntegerField(null=True, blank=True)
    delete_after_days = models.PositiveIntegerField(null=True, blank=True)
    keep_last = models.PositiveIntegerField(default=0)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(catalog__isnull=False, schema__isnull=True, model__isnull=True)
                    | models.Q(catalog__isnull=True, schema__isnull=False, model__isnull=True)
                    | models.Q(catalog__isnull=True, schema__isnull=True, model__isnull=False)
                ),
                name="retention_policy_one_securable",
            ),
            # One policy per securable: "nearest wins" needs no tie-break within a level.
            models.UniqueConstraint(
                fields=["catalog"],
                condition=models.Q(catalog__isnull=False),
                name="one_retention_policy_per_catalog",
            ),
            models.UniqueConstraint(
                fields=["schema"],
                condition=models.Q(schema__isnull=False),
                name="one_retention_policy_per_schema",
            ),
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(model__isnull=False),
                name="one_retention_policy_per_model",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.securable_full_name}: archive {self.archive_after_days}, "
            f"delete {self.delete_after_days}, keep {self.keep_last}"
        )

    @property
    def has_rules(self) -> bool:
        return self.archive_after_days is not None or self.delete_after_days is not None


class LegalHold(models.Model):
    """A legal hold on a whole model (`version` null) or on one version: retention never
    archives or deletes what it covers. Set and cleared by metastore admins, audited."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="legal_holds")
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="legal_holds"
    )
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(version__isnull=True),
                name="one_legal_hold_per_model",
            ),
            models.UniqueConstraint(
                fields=["version"],
                condition=models.Q(version__isnull=False),
                name="one_legal_hold_per_version",
            ),
        ]

    def __str__(self) -> str:
        target = f"/{self.version.version}" if self.version is not None else ""
        return f"legal hold on {self.model.full_name}{target}"


class VersionRetention(models.Model):
    """Where the file removal of a deleted version stands.

    A delete commits the tombstone (lifecycle DELETED) first; the reconciler then removes the
    files and records `files` REMOVED (with `deleted_at`). A committed DELETED version whose
    row does not say REMOVED (a crash in between, a manual delete whose after-commit removal
    did not run, or a row still saying PENDING_DELETE from before) is what the reconciler
    finishes. When retention archived a version is `ModelVersion.archived_at` (and which
    policy did it, the archive's audit event), so archiving writes no row here."""

    class Files(models.TextChoices):
        PRESENT = "PRESENT"
        PENDING_DELETE = "PENDING_DELETE"
        REMOVED = "REMOVED"

    version = models.OneToOneField(
        ModelVersion, primary_key=True, on_delete=models.CASCADE, related_name="retention"
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    files = models.CharField(max_length=16, choices=Files.choices, default=Files.PRESENT)
    files_removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["files"])]

    def __str__(self) -> str:
        return f"{self.version_id}: {self.files}"


class RetentionRun(models.Model):
    """One retention run (a task delivery, redeliveries included, or a command). Counters are
    incremented in the same transaction as the batch they count, so they stay exact across a
    crash; a redelivered task resumes the same run (same cut-off time)."""

    class State(models.TextChoices):
        RUNNING = "RUNNING"
        DONE = "DONE"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_id = models.CharField(max_length=255, blank=True, default="")
    trigger = models.CharField(max_length=16, default="command")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, default="")
    archived = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    files_removed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["task_id"], condition=~models.Q(task_id=""), name="one_run_per_task"
            ),
        ]

    def __str__(self) -> str:
        return f"retention run {self.id} ({self.state})"
