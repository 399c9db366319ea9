from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        # Imported here: models and auditlog's registry need the app registry to be ready.
        from auditlog.registry import auditlog

        from catalog import authz
        from catalog.privileges import Privilege, SecurableType
        from catalog.securables import SecurableKind, register
        from registry import models, rules

        # Registered models are securables of the catalog's tree (catalog never imports us).
        register(
            SecurableKind(
                SecurableType.REGISTERED_MODEL,
                models.RegisteredModel,
                models.ModelUserGrant,
                models.ModelGroupGrant,
                label="Registered model",
                parent=SecurableType.SCHEMA,
                parent_field="schema",
                create_privilege=Privilege.CREATE_MODEL,
            )
        )

        # Not AliasHistory: its rows are the field-level history of aliases already (who, when,
        # from, to, why), written once and never changed, so a LogEntry per row repeated each
        # alias move a second time without a diff to show.
        # Who may see a promotion request is asked through catalog.authz.
        authz.register_rules(models.PromotionRequest, rules.RULES)
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
