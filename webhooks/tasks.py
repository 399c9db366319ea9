"""Celery tasks of webhook delivery: one attempt per task run, idempotent (see
webhooks.services.delivery_attempt), and a periodic sweep that (re)sends what is due."""

from __future__ import annotations

from celery import shared_task

from webhooks import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver_webhook(delivery_id: str) -> str:
    """Attempt one delivery if it is still PENDING and due; a rerun after a crash finds it
    claimed (and waits for the sweep once the claim's lease ends) or already done."""
    return services.delivery_attempt(delivery_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def retry_due_deliveries(limit: int = 500) -> int:
    """Every minute (Celery beat): enqueue the deliveries whose next attempt is due: retries
    after backoff, and deliveries whose task was lost (broker outage, killed worker)."""
    due = services.deliveries_due(limit)
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return len(due)
