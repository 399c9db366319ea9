"""The console's shell: sign in, sign out, and the home page.

Console views are doors (STYLE.md): they parse, call one selector or service with the acting
user, and render. They never call `.save()`, `assign_perm` or the audit writer themselves; the
service layer authorizes and audits, so the console can never disagree with the APIs. Logins
are audited by accounts.signals (Django's login signals), whichever form they come through.
"""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from accounts.permissions import actor_from_request
from core.actor import Actor


@method_decorator(never_cache, name="dispatch")
class ConsoleView(LoginRequiredMixin):
    """Base of every console page: a signed-in user, or a redirect to the console login with
    `?next=` (so a link in an email lands on its page after signing in). Never cached, so the
    back button after signing out shows no private page. List it first among the bases:
    `class PromotionRequestView(ConsoleView, TemplateView)`."""

    request: HttpRequest

    def actor(self) -> Actor:
        """The signed-in user as the services take it (session authentication)."""
        return actor_from_request(self.request)


class HomeView(ConsoleView, TemplateView):
    """Who is signed in, and links to what exists."""

    template_name = "console/home.html"


class ConsoleLoginView(LoginView):
    """Django's password login (AuthenticationForm through ThrottledModelBackend) with our
    template. A throttled client address is refused like a wrong password."""

    template_name = "console/login.html"
    next_page = "console:home"


class ConsoleLogoutView(LogoutView):
    """POST only (Django refuses GET), so a link or an image cannot sign anyone out."""

    next_page = "console:login"
