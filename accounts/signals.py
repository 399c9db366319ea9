"""Login audit: Django's login signals become audit events."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts.authentication import count_failure
from audit.services import audit_event_write
from core.actor import Actor


def _request_meta(request) -> tuple[str, str]:
    if request is None:
        return "", ""
    return getattr(request, "client_address", request.META.get("REMOTE_ADDR", "")), getattr(
        request, "request_id", ""
    )


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    address, request_id = _request_meta(request)
    audit_event_write(
        actor=Actor(
            user=user,
            auth_method="password",
            source_address=address,
            request_id=request_id or "login",
        ),
        action="auth.login",
    )


@receiver(user_login_failed)
def audit_login_failure(sender, credentials, request=None, **kwargs):
    address, request_id = _request_meta(request)
    if request is not None:
        count_failure(request)
    audit_event_write(
        actor=None,
        action="auth.login",
        outcome="DENIED",
        actor_name=str(credentials.get("username", ""))[:150],
        auth_method="password",
        source_address=address,
        request_id=request_id,
        details={"reason": "bad credentials"},
    )
