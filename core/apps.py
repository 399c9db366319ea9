from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Steward core"

    def ready(self) -> None:
        from auditlog.models import LogEntry
        from django.db.models.signals import pre_save

        from core.services import fill_log_entry

        # django-auditlog's LogEntry rows take their actor from core.services.log_actor.
        pre_save.connect(fill_log_entry, sender=LogEntry, dispatch_uid="steward-log-actor")
