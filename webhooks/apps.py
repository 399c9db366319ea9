from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Imported here: models and auditlog's registry need the app registry to be ready.
        from auditlog.registry import auditlog

        from webhooks import checks  # noqa: F401  (registers the settings check)
        from webhooks.models import Webhook

        # Field diffs of subscriptions, never of the (encrypted) secret.
        auditlog.register(Webhook, exclude_fields=["secret_encrypted"])
