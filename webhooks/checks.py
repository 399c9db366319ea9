"""A system check: the webhook address allowlist must parse (fail at startup, not at the
first delivery)."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from webhooks.net import allowed_targets


@checks.register(checks.Tags.security)
def allowed_targets_parse(app_configs, **kwargs):
    try:
        allowed_targets()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="webhooks.E001")]
    return []
