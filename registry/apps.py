from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from registry import models

        # Not AliasHistory: its rows are the field-level history of aliases already (who, when,
        # from, to, why), written once and never changed, so a LogEntry per row repeated each
        # alias move a second time without a diff to show.
        for model in (
            models.RegisteredModel,
            models.ModelUserGrant,
            models.ModelGroupGrant,
            models.RegisteredModelTag,
            models.ModelVersionTag,
            models.ModelAlias,
            models.PromotionRequest,
            models.PromotionDecision,
            models.RetentionPolicy,
            models.LegalHold,
            models.VersionRetention,
            models.RetentionRun,
        ):
            auditlog.register(model)
        # A version's diff is its own columns: reading the reverse one-to-one `retention` for
        # it cost a query per version write.
        auditlog.register(models.ModelVersion, exclude_fields=["retention"])
        # Approver lists live in many-to-many tables: record their changes too.
        auditlog.register(models.AliasPolicy, m2m_fields={"approver_users", "approver_groups"})
