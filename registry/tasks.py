"""Celery tasks of the registry. Idempotent: a rerun after a crash finds the work done or
redoes it from the start (files are overwritten, the status moves only from PENDING)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.db import transaction
from django.utils import timezone

from audit.services import audit_event_write
from registry import storage
from registry.artifacts import copy_tree, delete_tree
from registry.models import ModelVersion
from registry.notifications import DeliveryInterrupted, send_promotion_event
from registry.services.promotions import promotion_requests_expire
from registry.services.retention import default_worker, retention_apply, retention_files_reconcile
from registry.services.versions import mark_failed, seal

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=3)
def register_version_files(version_id: str, source_prefix: str) -> str:
    """Copy a new version's files from its source into its own storage location and seal it
    READY; on any failure the version becomes FAILED_REGISTRATION and nothing half-copied
    stays behind."""
    version = ModelVersion.objects.select_related("model").filter(pk=version_id).first()
    if version is None or version.status != ModelVersion.Status.PENDING_REGISTRATION:
        return "skipped"
    target = storage.version_prefix(version)
    try:
        copied = copy_tree(source_prefix, target)
        if copied == 0:
            raise FileNotFoundError(f"no files under the source ({source_prefix})")
        with transaction.atomic():
            locked = ModelVersion.objects.select_for_update().get(pk=version_id)
            if locked.status != ModelVersion.Status.PENDING_REGISTRATION:
                return "skipped"
            seal(locked, locked.created_by)
            audit_event_write(
                actor=None,
                actor_name="system",
                auth_method="task",
                action="model_version.ready",
                securable_type="registered_model",
                securable=locked.model.full_name,
                details={
                    "version": locked.version,
                    "files": copied,
                    "digest": locked.artifact_digest,
                },
            )
        return "ready"
    except Exception as exc:  # any failure: the version must not stay half-registered
        logger.warning("Registering files of version %s failed: %s", version_id, exc)
        delete_tree(target)
        mark_failed(version_id, f"Copying the source's files failed: {exc}")
        audit_event_write(
            actor=None,
            actor_name="system",
            auth_method="task",
            action="model_version.failed",
            outcome="FAILURE",
            securable_type="registered_model",
            securable=version.model.full_name,
            details={"version": version.version, "reason": str(exc)[:500]},
        )
        return "failed"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_pending_versions() -> int:
    """Fail every version still PENDING_REGISTRATION past its deadline (reads also do this
    lazily, one version at a time); idempotent, safe to run from several workers."""
    overdue = ModelVersion.objects.filter(
        status=ModelVersion.Status.PENDING_REGISTRATION, pending_deadline__lte=timezone.now()
    )
    count = 0
    for version_id, full_name, number in overdue.values_list(
        "pk", "model__full_name", "version"
    ).iterator():
        if ModelVersion.objects.filter(
            pk=version_id, status=ModelVersion.Status.PENDING_REGISTRATION
        ).update(
            status=ModelVersion.Status.FAILED_REGISTRATION,
            status_message="Upload did not finish before the registration deadline.",
        ):
            count += 1
            audit_event_write(
                actor=None,
                actor_name="system",
                auth_method="task",
                action="model_version.expired",
                outcome="FAILURE",
                securable_type="registered_model",
                securable=full_name,
                details={"version": number},
            )
    return count


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
