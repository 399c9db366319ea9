"""The embedded default: SQLite, eager Celery, local disk, console email. No setup needed."""

from .base import *  # noqa: F403
from .base import DATA_DIR, DATABASES, env, env_bool, env_int

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env("DJANGO_SECRET_KEY") or "embedded-only-insecure-key-do-not-use-in-production"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", True)
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DATA_DIR.mkdir(parents=True, exist_ok=True)
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":  # SQLite: 0 always (base)
    # runserver answers each request on a thread of its own, so a connection kept after the
    # request is never used again: a few dozen concurrent requests to `./dev up` on PostgreSQL
    # would hold as many idle connections and exhaust the server's.
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0)
