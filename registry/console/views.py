"""Console pages for promotion requests: the list ("waiting for me", "mine", all) and one
request, where an approver approves or rejects and the requester cancels.

Doors (STYLE.md): each view parses, calls one selector or service with the signed-in user as
the actor, and renders; refusals come from the services, exactly as through the APIs, and are
shown as a message on the page (post/redirect/get, so a reload never resubmits).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import TemplateView

from console.views import ConsoleView
from core.errors import NotFound, StewardError
from registry import services
from registry.models import ModelVersion, PromotionRequest
from registry.notifications import metric_differences, tag_differences
from registry.selectors import promotions as selectors

ACTIONS = {
    "approve": services.promotion_request_approve,
    "reject": services.promotion_request_reject,
}


class PromotionRequestListView(ConsoleView, TemplateView):
    """Requests waiting for the signed-in user's decision, their own, or all they may see."""

    template_name = "registry/console/promotion_request_list.html"

    def get_context_data(self, **kwargs):
        view = self.request.GET.get("view", "waiting")
        if view not in selectors.VIEWS:
            view = "waiting"
        actor = self.actor()
        try:
            items, token = selectors.promotion_request_list(
                actor=actor,
                view=view,
                state=self.request.GET.get("state") or None,
                page_token=self.request.GET.get("page_token") or None,
                max_results=50,
            )
        except StewardError as exc:
            messages.error(self.request, exc.message)
            items, token = [], None
        return {
            **super().get_context_data(**kwargs),
            "view": view,
            "views": selectors.VIEWS,
            "requests": items,
            "next_page_token": token,
        }


class PromotionRequestDetailView(ConsoleView, TemplateView):
    """One request: what would move, the gates, the metric and tag differences, who decided,
    and (for whoever may) the approve, reject or cancel buttons."""

    template_name = "registry/console/promotion_request.html"

    def get_context_data(self, **kwargs):
        actor = self.actor()
        try:
            request = selectors.promotion_request_get(
                actor=actor, request_id=self.kwargs["request_id"]
            )
        except NotFound as exc:
            raise Http404(exc.message) from None
        facts = selectors.promotion_request_facts(actor, [request])[request.pk]
        old = (
            ModelVersion.objects.filter(model=request.model, version=request.from_version).first()
            if request.from_version is not None
            else None
        )
        return {
            **super().get_context_data(**kwargs),
            "req": request,
            "facts": facts,
            "is_requester": request.requester_id == actor.user.pk,
            "can_cancel": request.requester_id == actor.user.pk
            and request.state == PromotionRequest.State.PENDING,
            "metrics": metric_differences(old, request.version),
            "tags": tag_differences(old, request.version),
        }

    def post(self, request, *args, **kwargs):
        actor = self.actor()
        request_id = self.kwargs["request_id"]
        action = request.POST.get("action")
        comment = request.POST.get("comment", "")
        try:
            if action in ACTIONS:
                done = ACTIONS[action](actor=actor, request_id=request_id, comment=comment)
                messages.success(request, f"You chose to {action}: the request is {done.state}.")
            elif action == "cancel":
                services.promotion_request_cancel(actor=actor, request_id=request_id)
                messages.success(request, "The request is cancelled.")
            else:
                messages.error(request, "Unknown action.")
        except NotFound as exc:
            raise Http404(exc.message) from None
        except StewardError as exc:
            messages.error(request, exc.message)
        return HttpResponseRedirect(
            reverse("console:promotion-request", kwargs={"request_id": request_id})
        )
