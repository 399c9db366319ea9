"""python manage.py apply_retention [--dry-run]: run retention now, in this process.

The same run the daily Celery beat task `registry.tasks.apply_retention` starts; the dry run
goes through the same code that decides the real run and changes nothing."""

from django.core.management.base import BaseCommand

from registry.retention import KEEP, PlanItem
from registry.services.retention import retention_apply, retention_files_reconcile, retention_plan


class Command(BaseCommand):
    help = (
        "Archive and delete the model versions retention policies make due (never those "
        "holding an alias, in Staging or Production, targeted by an open promotion request or "
        "under legal hold). --dry-run prints what would happen and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would happen; change nothing"
        )
        parser.add_argument(
            "--reconcile-only",
            action="store_true",
            help="only finish file removals a crash left half-done",
        )

    def _line(self, item: PlanItem, *, dry_run: bool) -> str:
        verb = {"archive": "archive", "delete": "delete", KEEP: "keep"}[item.action]
        if dry_run and item.action != KEEP:
            verb = f"would {verb}"
        return f"{verb} {item.full_name}/{item.version}: {'; '.join(item.reasons)}"

    def handle(self, *args, dry_run=False, reconcile_only=False, **options):
        if reconcile_only:
            count = retention_files_reconcile()
            self.stdout.write(f"Removed the files of {count} deleted version(s).")
            return
        if dry_run:
            counts = {"archive": 0, "delete": 0, KEEP: 0}
            for item in retention_plan():
                counts[item.action] += 1
                self.stdout.write(self._line(item, dry_run=True))
            self.stdout.write(
                f"Dry run: would archive {counts['archive']}, delete {counts['delete']}, "
                f"keep {counts[KEEP]} protected version(s)."
            )
            return
        run = retention_apply(
            trigger="command",
            on_item=lambda item: self.stdout.write(self._line(item, dry_run=False)),
        )
        self.stdout.write(
            f"Retention run {run.pk}: archived {run.archived}, deleted {run.deleted}, "
            f"removed the files of {run.files_removed} version(s)."
        )
