"""Tests: SQLite unless DATABASE_URL says PostgreSQL; Celery eager; fast password hashing."""

import tempfile

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = "test-only-secret-key-not-for-production-use-0123456789"
DEBUG = False
CELERY_TASK_ALWAYS_EAGER = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": env("STEWARD_LOG_LEVEL", "WARNING")},
}

# Each test process gets its own artifact store.
STEWARD_ARTIFACT_ROOT = tempfile.mkdtemp(prefix="steward-test-artifacts-")
