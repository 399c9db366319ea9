from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Imported here: models and auditlog's registry need the app registry to be ready.
        from auditlog.registry import auditlog

        from catalog import authz
        from webhooks import checks, rules  # noqa: F401  (checks registers the settings check)
        from webhooks.models import Webhook

        # Who may see or manage a webhook is asked through catalog.authz.
        authz.register_rules(Webhook, rules.RULES)

        # Field diffs of subscriptions, never of the (encrypted) secret.
        auditlog.register(Webhook, exclude_fields=["secret_encrypted"])
