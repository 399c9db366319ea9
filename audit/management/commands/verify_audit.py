"""python manage.py verify_audit: recompute the hash chain; exit 1 on the first break."""

from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain (edits, removals, reordering, a cut-off tail)."

    def handle(self, *args, **options):
        report = verify_chain()
        if not report.ok:
            raise CommandError(
                f"Audit chain broken after {report.checked} events: {report.problem}"
            )
        self.stdout.write(f"Audit chain intact: {report.checked} events.")
