from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from registry import models

        for model in (
            models.RegisteredModel,
            models.ModelUserGrant,
            models.ModelGroupGrant,
            models.ModelVersion,
            models.RegisteredModelTag,
            models.ModelVersionTag,
            models.ModelAlias,
            models.AliasHistory,
        ):
            auditlog.register(model)
