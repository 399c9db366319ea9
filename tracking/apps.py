from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "MLflow tracking"

    def ready(self) -> None:
        # Imported here: models and auditlog's registry need the app registry to be ready.
        from auditlog.registry import auditlog

        from catalog import authz
        from tracking import models, selectors

        # Who may see or change an experiment (and so its runs) is asked through catalog.authz.
        authz.register_rules(models.Experiment, selectors.EXPERIMENT_RULES)

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
