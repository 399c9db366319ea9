from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from registry.models import ModelGroupGrant, ModelUserGrant, RegisteredModel

        for model in (RegisteredModel, ModelUserGrant, ModelGroupGrant):
            auditlog.register(model)
