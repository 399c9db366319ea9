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
        # it cost a query per version write. Not its signature and input example either: read
        # from the files when the version is sealed and never edited, they would only copy
        # those JSON documents into every diff (the audit trail records the files' digest).
        auditlog.register(
            models.ModelVersion, exclude_fields=["retention", "signature", "input_example"]
        )
        # Approver lists live in many-to-many tables: record their changes too.
        auditlog.register(models.AliasPolicy, m2m_fields={"approver_users", "approver_groups"})
