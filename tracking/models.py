"""MLflow tracking: experiments, runs (params, metric history, tags, inputs, outputs), MLflow 3
logged models, and who an experiment is shared with.

Ids follow MLflow: an experiment id is an integer exposed as a string, a run id is 32 hex
digits, a logged model id is ``m-`` and 32 hex digits. Timestamps are epoch milliseconds, as
the MLflow wire protocol carries them.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

MAX_KEY = 250


def now_ms() -> int:
    """The current time in epoch milliseconds (MLflow's unit for every timestamp)."""
    return int(time.time() * 1000)


class LifecycleStage(models.TextChoices):
    ACTIVE = "active"
    DELETED = "deleted"


class Experiment(models.Model):
    """A named container of runs and logged models; owned by its creator, shared explicitly.

    Names are unique across active and deleted experiments, as in MLflow (a deleted name stays
    taken until the experiment is restored or purged).
    """

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=500, unique=True)
    artifact_location = models.CharField(max_length=1024, blank=True, default="")
    lifecycle_stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE, db_index=True
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="mlflow_experiments",
    )
    creation_time = models.BigIntegerField(default=now_ms)
    last_update_time = models.BigIntegerField(default=now_ms)
    # When it was deleted: the runs deleted along with it carry the same stamp, so a restore
    # brings back exactly those (and not runs deleted on their own before).
    deleted_time = models.BigIntegerField(null=True, blank=True)

    securable_type = "experiment"

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.pk}:{self.name}"

    @property
    def experiment_id(self) -> str:
        return str(self.pk)

    @property
    def is_active(self) -> bool:
        return self.lifecycle_stage == LifecycleStage.ACTIVE


class ExperimentTag(models.Model):
    """A key/value tag on an experiment (``mlflow.note.content`` and friends)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=MAX_KEY)
    value = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="uniq_experiment_tag"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.key}"


class ExperimentPermission(models.Model):
    """A share of an experiment with one user or one group at a level.

    CAN_READ sees the experiment, its runs and logged models; CAN_EDIT also writes to them;
    CAN_MANAGE also deletes, restores and shares. The owner and metastore admins hold
    CAN_MANAGE without a row here.
    """

    class Level(models.TextChoices):
        CAN_READ = "CAN_READ"
        CAN_EDIT = "CAN_EDIT"
        CAN_MANAGE = "CAN_MANAGE"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="permissions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="mlflow_experiment_permissions",
    )
    group = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="mlflow_experiment_permissions",
    )
    level = models.CharField(max_length=16, choices=Level.choices)
    granted_by = models.CharField(max_length=150, blank=True, default="")
    granted_at = models.BigIntegerField(default=now_ms)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, group__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=False)
                ),
                name="experiment_permission_one_principal",
            ),
            models.UniqueConstraint(
                fields=["experiment", "user"],
                condition=models.Q(user__isnull=False),
                name="uniq_experiment_permission_user",
            ),
            models.UniqueConstraint(
                fields=["experiment", "group"],
                condition=models.Q(group__isnull=False),
                name="uniq_experiment_permission_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.principal_name}:{self.level}"

    @property
    def principal_name(self) -> str:
        if self.user is not None:  # no query when user_id is None
            return self.user.username
        assert self.group is not None  # the check constraint: a user or a group
        return self.group.name

    @property
    def principal_type(self) -> str:
        return "USER" if self.user_id else "GROUP"


class Run(models.Model):
    """One execution that logs params, metrics and tags into an experiment.

    Access follows the experiment: whoever may read (edit) the experiment may read (edit) its
    runs. `owner` records the creator; `user_id` is their username as MLflow shows it.
    """

    class Status(models.TextChoices):
        RUNNING = "RUNNING"
        SCHEDULED = "SCHEDULED"
        FINISHED = "FINISHED"
        FAILED = "FAILED"
        KILLED = "KILLED"

    run_id = models.CharField(max_length=32, primary_key=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="mlflow_runs",
    )
    user_id = models.CharField(max_length=150, blank=True, default="")
    run_name = models.CharField(max_length=MAX_KEY, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    start_time = models.BigIntegerField(default=now_ms, db_index=True)
    end_time = models.BigIntegerField(null=True, blank=True)
    lifecycle_stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE, db_index=True
    )
    deleted_time = models.BigIntegerField(null=True, blank=True)
    artifact_uri = models.CharField(max_length=1024, blank=True, default="")
    # MLflow run inputs, kept minimally for lineage:
    # {"dataset_inputs": [{"dataset": {...}, "tags": [...]}], "model_inputs": [{"model_id"}]}
    inputs = models.JSONField(default=dict, blank=True)

    securable_type = "run"

    class Meta:
        ordering = ["-start_time", "run_id"]

    def __str__(self) -> str:
        return self.run_id

    @property
    def is_active(self) -> bool:
        return self.lifecycle_stage == LifecycleStage.ACTIVE


class Param(models.Model):
    """A run parameter. Immutable: logging the same key again with another value is refused."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=MAX_KEY)
    value = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="uniq_run_param")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.key}"


class Metric(models.Model):
    """One point of a run metric's history. NaN is stored as is_nan with value 0 (SQLite
    stores NaN as NULL); infinities are clamped to the largest float, as MLflow does.
    Re-logging the very same point is a no-op (MLflow re-logs run metrics when it links them
    to a logged model)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_history")
    key = models.CharField(max_length=MAX_KEY)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["step", "timestamp", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "key", "step", "timestamp", "value", "is_nan"],
                name="uniq_metric_point",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.key}@{self.step}"


class LatestMetric(models.Model):
    """The latest point of each run metric (highest step, then timestamp, then value): what
    ``runs/get`` shows and what search filters and orders on."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics")
    key = models.CharField(max_length=MAX_KEY)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="uniq_latest_metric"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.key}"


class RunTag(models.Model):
    """A key/value tag on a run; ``mlflow.runName`` mirrors the run's name."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=MAX_KEY)
    value = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="uniq_run_tag")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.key}"


class LoggedModel(models.Model):
    """An MLflow 3 logged model: a model produced in an experiment (usually by a run), whose
    artifacts live under the experiment's ``models/<model_id>/artifacts``. Registered model
    versions point at it with the source ``models:/<model_id>``."""

    class Status(models.TextChoices):
        PENDING = "LOGGED_MODEL_PENDING"
        READY = "LOGGED_MODEL_READY"
        UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"

    model_id = models.CharField(max_length=34, primary_key=True)
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="logged_models"
    )
    source_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_models"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="mlflow_logged_models",
    )
    name = models.CharField(max_length=500)
    model_type = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING)
    status_message = models.TextField(blank=True, default="")
    artifact_location = models.CharField(max_length=1024, blank=True, default="")
    lifecycle_stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE, db_index=True
    )
    creation_timestamp_ms = models.BigIntegerField(default=now_ms, db_index=True)
    last_updated_timestamp_ms = models.BigIntegerField(default=now_ms)

    securable_type = "logged_model"

    class Meta:
        ordering = ["-creation_timestamp_ms", "model_id"]

    def __str__(self) -> str:
        return self.model_id

    @property
    def is_active(self) -> bool:
        return self.lifecycle_stage == LifecycleStage.ACTIVE


class LoggedModelTag(models.Model):
    """A key/value tag on a logged model (``mlflow.modelVersions`` lists its registrations)."""

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=MAX_KEY)
    value = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="uniq_logged_model_tag"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id}:{self.key}"


class LoggedModelParam(models.Model):
    """A parameter of a logged model (copied from its run by the client); immutable."""

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=MAX_KEY)
    value = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="uniq_logged_model_param"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id}:{self.key}"


class LoggedModelMetric(models.Model):
    """A metric point linked to a logged model (logged with ``model_id`` on a run metric)."""

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="metrics")
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_metrics"
    )
    key = models.CharField(max_length=MAX_KEY)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)
    dataset_name = models.CharField(max_length=500, blank=True, default="")
    dataset_digest = models.CharField(max_length=36, blank=True, default="")

    class Meta:
        ordering = ["key", "step", "timestamp", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "model",
                    "key",
                    "step",
                    "timestamp",
                    "value",
                    "is_nan",
                    "dataset_name",
                    "dataset_digest",
                ],
                name="uniq_logged_model_metric_point",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id}:{self.key}@{self.step}"


class RunOutput(models.Model):
    """A logged model that a run produced, at a step (``runs/outputs``): run → model lineage."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_outputs")
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="run_outputs")
    step = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "model", "step"], name="uniq_run_output"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}->{self.model_id}"
