"""The embedded default: SQLite, eager Celery, local disk, console email. No setup needed."""

from .base import *  # noqa: F403
from .base import DATA_DIR, env, env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env("DJANGO_SECRET_KEY") or "embedded-only-insecure-key-do-not-use-in-production"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DATA_DIR.mkdir(parents=True, exist_ok=True)
