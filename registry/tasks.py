"""Celery tasks of the registry. Idempotent: a rerun after a crash finds the work done or
redoes it from the start (files are overwritten, the status moves only from PENDING)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from registry.notifications import DeliveryInterrupted, send_promotion_event
from registry.services.promotions import promotion_requests_expire
from registry.services.retention import default_worker, retention_apply, retention_files_reconcile
from registry.services.versions import model_versions_expire_overdue, version_files_register

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=3)
def register_version_files(version_id: str, source_prefix: str) -> str:
    """Copy a new version's files from its source into its own storage location and seal it
    READY; on any failure the version becomes FAILED_REGISTRATION and nothing half-copied
    stays behind (registry.services.versions.version_files_register)."""
    return version_files_register(version_id, source_prefix)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_pending_versions() -> int:
    """Settle every version still PENDING_REGISTRATION past its deadline as
    FAILED_REGISTRATION (reads show them so meanwhile); idempotent."""
    return model_versions_expire_overdue()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_promotion_requests() -> int:
    """Hourly: PENDING promotion requests past their expiry become EXPIRED (requests an
    approval holds locked are left to it); idempotent."""
    return promotion_requests_expire()


# Backoff of the email task: 10 s, 20 s, 40 s, ... capped at 15 minutes, with full jitter;
# ten retries ride out about an hour of mail-server outage (half that on average).
EMAIL_RETRY_BACKOFF = 10
EMAIL_RETRY_BACKOFF_MAX = 900
EMAIL_MAX_RETRIES = 10


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=EMAIL_MAX_RETRIES)
def send_promotion_email(
    self, request_id: str, event: str, extra: dict | None = None, settled: list | None = None
) -> int:
    """Email the people a promotion event concerns (approvers on a new request or a
    break-glass move, the requester on every decision). Returns the number of messages sent.

    Only reads and sends. On an SMTP or connection error (smtplib.SMTPException is an
    OSError) it retries with exponential backoff, passing the addresses already settled so
    that a retry does not mail them twice; a request deleted since sends nothing. Not
    `autoretry_for`: that would retry with the original arguments and resend to everyone."""
    try:
        return send_promotion_event(request_id, event, extra or {}, skip=settled or ())
    except DeliveryInterrupted as exc:
        logger.warning(
            "Promotion email %s for request %s interrupted (attempt %s): %s",
            event,
            request_id,
            self.request.retries + 1,
            exc,
        )
        raise self.retry(
            args=(request_id, event, extra or {}),
            kwargs={"settled": exc.settled},
            exc=exc,
            countdown=get_exponential_backoff_interval(
                factor=EMAIL_RETRY_BACKOFF,
                retries=self.request.retries,
                maximum=EMAIL_RETRY_BACKOFF_MAX,
                full_jitter=True,
            ),
        ) from exc


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def apply_retention(self) -> dict:
    """Daily: archive and delete the versions retention policies make due (see
    registry.services.retention). acks_late + reject_on_worker_lost: a worker that dies mid-run
    leaves the message unacknowledged, so it is redelivered and the rerun (same task id, same
    run and cut-off) picks up what is left; work already committed is no longer due."""
    run = retention_apply(
        task_id=self.request.id or "",
        trigger="task",
        worker=self.request.hostname or default_worker(),
    )
    return {
        "run": str(run.pk),
        "archived": run.archived,
        "deleted": run.deleted,
        "files_removed": run.files_removed,
    }


@shared_task(acks_late=True, reject_on_worker_lost=True)
def reconcile_retention_files() -> int:
    """Hourly: remove the files of deleted versions whose removal a crash interrupted."""
    return retention_files_reconcile()
