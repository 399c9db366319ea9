"""django-auditlog's actor for changes made through the Django admin and the console."""

from audit.governance import log_actor


class AuditlogActorMiddleware:
    """django-auditlog's actor for field diffs made outside the API: the Django admin and the
    console (session users). API requests skip it, because every service call sets the actor
    itself (audit.governance.governed) once the token is known; and the address recorded is the
    one derived above from trusted proxies only, not the client's own X-Forwarded-For, which
    auditlog's middleware would take at face value."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/api/"):
            return self.get_response(request)
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
        with log_actor(actor, getattr(request, "client_address", "")):
            return self.get_response(request)
