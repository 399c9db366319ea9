"""Settings of the real Celery worker processes the e2e tests start (tests/e2e/workers.py).

The test settings, except: tasks really go through the Redis broker (not eager), the database
is the test run's (DATABASE_URL, given by the test), the artifact store is the test process's
(STEWARD_ARTIFACT_ROOT), and two knobs only these tests use: a per-version delay so that a run
can be killed mid-way (STEWARD_TEST_RETENTION_ITEM_DELAY, which no other settings module
defines, so production cannot be slowed by it) and a short broker visibility timeout so that a
message a killed worker never acknowledged is redelivered within seconds instead of an hour.
Tasks a worker enqueues itself go to the test's own queue (STEWARD_TEST_CELERY_QUEUE), the one
it consumes, never to the shared default queue. Every other setting a test needs (the webhook
ones, say) comes from the environment as in production.
"""

import os

from config.settings.test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = os.environ["REDIS_URL"]
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("STEWARD_TEST_CELERY_QUEUE", "celery")
STEWARD_ARTIFACT_ROOT = os.environ["STEWARD_ARTIFACT_ROOT"]
STEWARD_RETENTION_BATCH_SIZE = int(os.environ.get("STEWARD_RETENTION_BATCH_SIZE", "5"))
STEWARD_TEST_RETENTION_ITEM_DELAY = float(os.environ.get("STEWARD_TEST_RETENTION_ITEM_DELAY", "0"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redelivery of unacknowledged messages (acks_late) after this many seconds; Redis's
    # default is an hour.
    "visibility_timeout": float(os.environ.get("STEWARD_TEST_VISIBILITY_TIMEOUT", "3600")),
    # Look for such messages every second (default: every 10 s, scanning every 10th time).
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
