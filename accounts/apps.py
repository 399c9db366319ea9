from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Principals"

    def ready(self) -> None:
        # Imported here: models and auditlog's registry need the app registry to be ready.
        from auditlog.registry import auditlog
        from django.contrib.auth.models import Group

        from accounts import schema, signals  # noqa: F401  (OpenAPI schemes, login audit)
        from accounts.models import ApiToken, GroupNesting, GroupProfile, User

        auditlog.register(User, exclude_fields=["password", "last_login"])
        auditlog.register(Group)
        auditlog.register(GroupNesting)
        auditlog.register(GroupProfile)
        auditlog.register(ApiToken, exclude_fields=["token_hash", "last_used_at"])
