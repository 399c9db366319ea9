from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # Imported here: auditlog's models need the app registry to be ready.
        from auditlog.models import LogEntry
        from django.db.models.signals import pre_save

        from audit.governance import fill_log_entry

        # django-auditlog's LogEntry rows take their actor from audit.governance.log_actor.
        pre_save.connect(fill_log_entry, sender=LogEntry, dispatch_uid="steward-log-actor")
