"""Settings shared by every environment. Configuration comes from environment variables only."""

import os
from pathlib import Path
from typing import overload

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


@overload
def env(name: str, default: str) -> str: ...
@overload
def env(name: str, default: None = None) -> str | None: ...
def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in (os.environ.get(name) or default).split(",") if part.strip()]


DATA_DIR = Path(env("STEWARD_DATA_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env("DJANGO_SECRET_KEY", "")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "auditlog",
]
LOCAL_APPS = [
    "core",
    "accounts",
    "audit",
    "catalog",
    "registry",
    "lineage",
    "tracking",
    "webhooks",
    "console",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (htmx, admin CSS) in every environment; see console/middleware.py.
    "console.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Field diffs of changes made through the Django admin and console carry the session user.
    "audit.middleware.AuditlogActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Password login, refused while the client address is throttled for failed attempts.
    "accounts.authentication.ThrottledModelBackend",
    # Answers user.has_perm("EXECUTE", model) with inheritance down the securable tree.
    "catalog.authz.StewardPermissionBackend",
]
# Where LoginRequiredMixin sends anonymous visitors; the admin keeps its own /admin/login/.
LOGIN_URL = "console:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'steward.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side parameter binding: psycopg then prepares a statement a connection runs
    # repeatedly (its 5th time) and PostgreSQL stops parsing and planning it per request.
    if env_bool("DATABASE_SERVER_SIDE_BINDING", True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True, prepare_threshold=env_int("DATABASE_PREPARE_THRESHOLD", 5)
        )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Serve straight from each app's static/ folder: no collectstatic step in `./dev up` or the
# image (a handful of files; they go without compressed copies and hashed names).
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "accounts.authentication.CsrfSessionAuthentication",
    ],
    # Fail closed: a view that names no policy refuses everyone.
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.DenyAll"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.StrictJSONParser"],
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.openapi.StewardAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Steward API",
    "DESCRIPTION": (
        "Every door: the Unity Catalog REST API (/api/2.1/unity-catalog), MLflow's tracking, "
        "registry, webhook and artifact APIs (/api/2.0/mlflow, /api/3.0/mlflow, "
        "/api/2.0/mlflow-artifacts), the native Steward API (/api/v1), OpenLineage ingestion "
        'and SCIM 2.0. Errors are {"error_code", "message"} (SCIM: its own format). '
        "`max_results` is an integer from 1 to 2^63-1 at every door (Unity Catalog: 0 lets "
        "the server choose); larger sizes are clamped to the list's maximum (MLflow's run, "
        "experiment and logged-model searches refuse more, as MLflow does). Native bodies "
        "refuse unknown fields; the MLflow, Unity Catalog, SCIM and OpenLineage doors ignore "
        "them, as their clients expect. OpenLineage bodies may be 8 MiB (plain or gzipped)."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# Grants are stored by django-guardian; no anonymous user is ever granted anything.
GUARDIAN_ANONYMOUS_USER_NAME = None
ANONYMOUS_USER_NAME = None

AUDITLOG_INCLUDE_ALL_MODELS = False
AUDITLOG_CID_GETTER = "audit.governance.current_request_id"

# Steward
STEWARD_ADMIN_GROUP = env("STEWARD_ADMIN_GROUP", "metastore_admins")
STEWARD_METASTORE_NAME = env("STEWARD_METASTORE_NAME", "steward")
STEWARD_DEFAULT_NAMESPACE = env("STEWARD_DEFAULT_NAMESPACE", "main.default")
STEWARD_TOKEN_DEFAULT_DAYS = env_int("STEWARD_TOKEN_DEFAULT_DAYS", 90)
STEWARD_TOKEN_MAX_DAYS = env_int("STEWARD_TOKEN_MAX_DAYS", 365)
# How many reverse proxies sit in front of Steward; their X-Forwarded-For entries are trusted.
STEWARD_NUM_PROXIES = env_int("STEWARD_NUM_PROXIES", 0)
# Artifacts: "local" (files under STEWARD_ARTIFACT_ROOT) or "s3" (django-storages).
STEWARD_ARTIFACT_STORAGE = env("STEWARD_ARTIFACT_STORAGE", "local")
STEWARD_ARTIFACT_ROOT = env("STEWARD_ARTIFACT_ROOT", str(DATA_DIR / "artifacts"))
STEWARD_S3_BUCKET = env("STEWARD_S3_BUCKET", "")
STEWARD_S3_ENDPOINT_URL = env("STEWARD_S3_ENDPOINT_URL", "")
STEWARD_S3_PREFIX = env("STEWARD_S3_PREFIX", "steward")
STEWARD_MAX_ARTIFACT_BYTES = env_int("STEWARD_MAX_ARTIFACT_BYTES", 2 * 1024**3)  # per file
# A version whose upload never finishes becomes FAILED_REGISTRATION after this many seconds.
STEWARD_PENDING_VERSION_TIMEOUT = env_int("STEWARD_PENDING_VERSION_TIMEOUT", 3600)
# Version files up to this many bytes (in all) are copied in the registering request, after
# commit, instead of through the Celery queue; 0 sends every copy to the queue.
STEWARD_INLINE_COPY_MAX_BYTES = env_int("STEWARD_INLINE_COPY_MAX_BYTES", 32 * 1024**2)
# The address `./dev up` serves on, as runserver takes it: [host:]port.
STEWARD_BIND = env("STEWARD_BIND") or "127.0.0.1:8000"


def base_url_for_bind(bind: str) -> str:
    """Where a browser on this machine reaches a server bound to `bind`: a wildcard address
    (0.0.0.0, ::, 0, none) is reached at 127.0.0.1; a name or an address is kept."""
    host, _, port = bind.strip().rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(
            f"STEWARD_BIND must be [host:]port (127.0.0.1:8000, 0.0.0.0:9000, [::1]:8000), "
            f"not {bind[:100]!r}."
        )
    if host.strip("[]") in {"", "0", "0.0.0.0", "::"}:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    return f"http://{host}:{int(port)}"


# The address people reach Steward at: links in approval emails and error messages. Unset, it
# follows STEWARD_BIND; set it when people reach Steward by another name (a proxy, a DNS name).
STEWARD_BASE_URL = (env("STEWARD_BASE_URL") or base_url_for_bind(STEWARD_BIND)).rstrip("/")
# Webhooks (webhooks/net.py): deliveries go only to public addresses, checked on the address
# connected to, unless ALLOW_PRIVATE (development) or an ALLOWED_TARGETS entry (an address or
# network, optionally with a port: `10.0.0.0/8`, `127.0.0.1:9000`, `[::1]:9000`) lets them.
STEWARD_WEBHOOK_ALLOW_PRIVATE = env_bool("STEWARD_WEBHOOK_ALLOW_PRIVATE", False)
STEWARD_WEBHOOK_ALLOWED_TARGETS = env_list("STEWARD_WEBHOOK_ALLOWED_TARGETS")
STEWARD_WEBHOOK_ALLOWED_SCHEMES = env_list("STEWARD_WEBHOOK_ALLOWED_SCHEMES", "https")
STEWARD_WEBHOOK_TIMEOUT = env_int("STEWARD_WEBHOOK_TIMEOUT", 10)  # seconds per attempt
STEWARD_WEBHOOK_MAX_ATTEMPTS = env_int("STEWARD_WEBHOOK_MAX_ATTEMPTS", 6)
STEWARD_WEBHOOK_RETRY_BACKOFF = env_int("STEWARD_WEBHOOK_RETRY_BACKOFF", 30)  # first retry, s
# A receiver's Retry-After (on 429 or 503) delays the next attempt by at most this many seconds.
STEWARD_WEBHOOK_RETRY_AFTER_MAX = env_int("STEWARD_WEBHOOK_RETRY_AFTER_MAX", 3600)
# Versions a retention run claims (row-locks) and settles per transaction.
STEWARD_RETENTION_BATCH_SIZE = env_int("STEWARD_RETENTION_BATCH_SIZE", 2000)

# Celery
CELERY_BROKER_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "expire-pending-versions": {
        "task": "registry.tasks.expire_pending_versions",
        "schedule": 300.0,  # seconds
    },
    "expire-promotion-requests": {
        "task": "registry.tasks.expire_promotion_requests",
        "schedule": 3600.0,
    },
    "retry-webhook-deliveries": {
        "task": "webhooks.tasks.retry_due_deliveries",
        "schedule": 60.0,
    },
    "apply-retention": {
        "task": "registry.tasks.apply_retention",
        "schedule": crontab(hour=3, minute=30),  # daily, 03:30 UTC
    },
    "reconcile-retention-files": {
        "task": "registry.tasks.reconcile_retention_files",
        "schedule": 3600.0,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("STEWARD_LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}
SILENCED_SYSTEM_CHECKS = ["guardian.W001"]  # our backend resolves inheritance instead
