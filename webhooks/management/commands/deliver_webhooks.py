"""Send the webhook deliveries that are due, in this process (the embedded default has no
Celery beat: run it from cron, or by hand, to retry failed deliveries)."""

from django.core.management.base import BaseCommand

from webhooks import services


class Command(BaseCommand):
    help = "Attempt every webhook delivery that is due (retries after backoff, lost tasks)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500)

    def handle(self, *args, limit: int, **options):
        outcomes: dict[str, int] = {}
        for delivery_id in services.deliveries_due(limit):
            outcome = services.delivery_attempt(delivery_id)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        summary = ", ".join(f"{k.lower()}: {v}" for k, v in sorted(outcomes.items()))
        self.stdout.write(f"Attempted {sum(outcomes.values())} deliveries. {summary}".strip())
