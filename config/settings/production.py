"""Production: PostgreSQL, Redis broker, real secrets. Refuses to start on insecure defaults."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES, SECRET_KEY, env, env_bool, env_int

if not SECRET_KEY or len(SECRET_KEY) < 32 or "insecure" in SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a random value of 32+ characters.")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and not env_bool(
    "STEWARD_ALLOW_SQLITE", False
):
    raise ImproperlyConfigured("Production needs DATABASE_URL pointing at PostgreSQL.")

DEBUG = False
SESSION_COOKIE_SECURE = env_bool("STEWARD_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("STEWARD_SECURE_COOKIES", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "steward@localhost")
# A relay usually wants credentials and STARTTLS (EMAIL_USE_TLS, port 587) or implicit TLS
# (EMAIL_USE_SSL, port 465). The timeout bounds a hung mail server: the email task then fails
# and retries instead of holding a worker forever (Django's default is no timeout).
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)

# Shared cache (authentication-failure throttling across replicas).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("REDIS_URL", "redis://127.0.0.1:6379/1"),
    }
}
