from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "MLflow tracking"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from tracking import models

        # Metric points are inserted in bulk (no per-row signal); the audit event of the
        # log-metric/log-batch call records them.
        for model in (
            models.Experiment,
            models.ExperimentTag,
            models.ExperimentPermission,
            models.Run,
            models.Param,
            models.Metric,
            models.LatestMetric,
            models.RunTag,
            models.LoggedModel,
            models.LoggedModelTag,
            models.LoggedModelParam,
            models.LoggedModelMetric,
            models.RunOutput,
        ):
            auditlog.register(model)
