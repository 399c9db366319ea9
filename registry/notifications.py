"""Promotion emails: who is told of each promotion event, and what they read.

The services schedule `registry.tasks.send_promotion_email` on commit; the task calls
`send_promotion_event`, which reads the request as it is now and sends one message per
recipient (text and HTML parts, from the templates in registry/templates/registry/email/)
through Django's mail framework. Nothing here writes to the database.

One message per recipient, not one with everyone in To: approvers do not learn each other's
addresses, each message greets its reader and says what they can do (review, or follow), a
refused address does not stop the others, and a retry can skip those already reached.
"""

from __future__ import annotations

import logging
import math
import re
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from accounts.models import User
from accounts.sql import group_members_closure as group_descendants  # the one closure
from registry.models import AliasPolicy, ModelVersion, PromotionDecision, PromotionRequest

logger = logging.getLogger(__name__)

# SMTPException subclasses OSError (since Python 3.4); named for the reader. A socket error,
# a refused connection, a timeout, a dropped session or a 4xx answer is worth a retry.
RETRYABLE = (smtplib.SMTPException, OSError)
MAX_ROWS = 50  # metric and tag rows per table; the console shows the rest
MAX_VALUE = 200  # characters of a tag value shown
MISSING = "—"

APPROVERS = "approvers"
REQUESTER = "requester"


@dataclass(frozen=True)
class EventKind:
    """How one promotion event is announced: its subject label and who is told."""

    label: str
    audience: tuple[str, ...]


EVENTS: dict[str, EventKind] = {
    "created": EventKind("Approval needed", (APPROVERS,)),
    "approval": EventKind("Approved", (REQUESTER,)),
    "rejected": EventKind("Rejected", (REQUESTER,)),
    "applied": EventKind("Applied", (REQUESTER,)),
    "stale": EventKind("Stale", (REQUESTER,)),
    "expired": EventKind("Expired", (REQUESTER,)),
    # Approvers who had not decided yet need not look at it any more.
    "cancelled": EventKind("Cancelled", (REQUESTER, APPROVERS)),
    "break_glass": EventKind("BREAK GLASS", (APPROVERS,)),
}


class DeliveryInterrupted(OSError):
    """Sending stopped on a transient error; `settled` holds the addresses already dealt with
    (reached, or refused for good; by this attempt or an earlier one) so that a retry sends
    only to the rest."""

    def __init__(self, settled: Iterable[str], cause: BaseException | str):
        self.settled = sorted(set(settled))
        self.cause = cause
        self.reason = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"Sending stopped with {len(self.settled)} address(es) settled: {self.reason}"
        )

    def __reduce__(self):
        # Picklable (Celery keeps a retry's exception); the cause travels as its text.
        return (type(self), (self.settled, self.reason))


# --- recipients ------------------------------------------------------------------------------


def users_in_groups(group_ids: Iterable[int]):
    """Every user who belongs to any of the groups, directly or through nested groups."""
    return User.objects.filter(groups__id__in=group_descendants(group_ids)).distinct()


def _reachable(users):
    return users.filter(is_active=True).exclude(email="")


def approvers(
    policy: AliasPolicy | None, *, exclude_user_ids: Iterable[int | None] = ()
) -> list[User]:
    """Active users with an email named by the policy, directly or through its groups (nested
    groups count), less `exclude_user_ids` (the requester, approvers who already decided)."""
    if policy is None:
        return []
    ids = set(policy.approver_users.values_list("pk", flat=True))
    group_ids = list(policy.approver_groups.values_list("pk", flat=True))
    if group_ids:
        ids |= set(users_in_groups(group_ids).values_list("pk", flat=True))
    ids -= {pk for pk in exclude_user_ids if pk is not None}
    return list(_reachable(User.objects.filter(pk__in=ids)).order_by("username"))


def requester(request: PromotionRequest) -> User | None:
    """The requester, if still active and reachable by email."""
    if request.requester_id is None:
        return None
    return _reachable(User.objects.filter(pk=request.requester_id)).first()


def recipients(request: PromotionRequest, event: str) -> list[tuple[User, str]]:
    """(user, role) for each person told of the event, one per email address; the requester
    never receives what goes to the approvers (they cannot approve their own request)."""
    kind = EVENTS[event]
    out: list[tuple[User, str]] = []
    if REQUESTER in kind.audience:
        user = requester(request)
        if user is not None:
            out.append((user, REQUESTER))
    if APPROVERS in kind.audience:
        exclude = {request.requester_id}
        if event == "cancelled":
            exclude |= set(request.decisions.values_list("approver_id", flat=True))
        out.extend(
            (user, APPROVERS) for user in approvers(request.policy, exclude_user_ids=exclude)
        )
    seen: set[str] = set()
    unique = []
    for user, role in out:
        address = user.email.strip().lower()
        if address not in seen:
            seen.add(address)
            unique.append((user, role))
    return unique


# --- content ---------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return MISSING
    if math.isnan(value):
        return "NaN"
    return f"{value:.6g}"


def _delta(old: float | None, new: float | None) -> str:
    if old is None or new is None or not (math.isfinite(old) and math.isfinite(new)):
        return MISSING
    return f"{new - old:+.6g}"


def _short(value: str) -> str:
    return value if len(value) <= MAX_VALUE else value[: MAX_VALUE - 1] + "…"


def metric_differences(old: ModelVersion | None, new: ModelVersion) -> dict:
    """The latest value of every metric of either version's source run, side by side."""
    from registry.policies import run_metrics

    before = run_metrics(old.run_id) if old is not None else {}
    after = run_metrics(new.run_id)
    keys = sorted(set(before) | set(after))
    rows = [
        {
            "key": key,
            "old": _number(before.get(key)),
            "new": _number(after.get(key)),
            "delta": _delta(before.get(key), after.get(key)),
        }
        for key in keys
    ]
    return {"rows": rows[:MAX_ROWS], "more": max(0, len(rows) - MAX_ROWS)}


def tag_differences(old: ModelVersion | None, new: ModelVersion) -> dict:
    """Version tags added, removed and changed from the old version to the new one."""
    before = {t.key: t.value for t in old.tags.all()} if old is not None else {}
    after = {t.key: t.value for t in new.tags.all()}
    rows = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            rows.append({"change": "added", "key": key, "old": MISSING, "new": after[key]})
        elif key not in after:
            rows.append({"change": "removed", "key": key, "old": before[key], "new": MISSING})
        elif before[key] != after[key]:
            rows.append({"change": "changed", "key": key, "old": before[key], "new": after[key]})
    for row in rows:
        row["old"], row["new"] = _short(row["old"]), _short(row["new"])
    unchanged = sum(1 for k in set(before) & set(after) if before[k] == after[k])
    return {"rows": rows[:MAX_ROWS], "more": max(0, len(rows) - MAX_ROWS), "unchanged": unchanged}


def _gates(request: PromotionRequest, new: ModelVersion) -> tuple[list[dict], str]:
    """The gate results and when they were taken. A break-glass move skips the gates, so its
    email evaluates them now: the approvers learn what was bypassed."""
    if request.break_glass:
        if request.policy is None:
            return [], "no alias policy governs this alias"
        from registry.policies import evaluate_gates

        results = [g.as_dict() for g in evaluate_gates(request.policy, new)]
        return results, "evaluated when this email was sent; break-glass skipped them"
    return list(request.gate_results or []), "checked when the request was made"


def _target(request: PromotionRequest) -> tuple[str, str, str]:
    """(what kind of pointer, its name, how the subject names it)."""
    model = request.model.full_name
    if request.kind == PromotionRequest.Kind.STAGE:
        stage = request.alias.capitalize()
        return "Stage", stage, f"{model} stage {stage}"
    return "Alias", request.alias, f"{model}@{request.alias}"


def _version_label(number: int | None) -> str:
    return "no version" if number is None else f"version {number}"


def _decision(request: PromotionRequest, approver: str | None) -> PromotionDecision | None:
    if not approver:
        return None
    return request.decisions.filter(approver_name=approver).order_by("-at").first()


def _headline(event: str, request: PromotionRequest, ctx: dict, approver: str | None) -> str:
    move = (
        f"{ctx['target_kind'].lower()} {ctx['target_name']} of {ctx['model']} from "
        f"{ctx['from_label']} to {ctx['to_label']}"
    )
    who = request.requester_name
    if event == "created":
        return (
            f"{who} asks to move {move}. It needs {request.required_approvals} approval(s) from "
            "the alias policy's approvers; you are one of them."
        )
    if event == "approval":
        return (
            f"{approver} approved your request to move {move} "
            f"({ctx['approvals']} of {request.required_approvals} approval(s) counted)."
        )
    if event == "rejected":
        return f"{approver} rejected your request to move {move}."
    if event == "applied":
        return (
            f"Your request was approved and applied: {ctx['target_kind'].lower()} "
            f"{ctx['target_name']} of {ctx['model']} now points at {ctx['to_label']}."
        )
    if event == "stale":
        return f"Your request to move {move} went stale and will not apply."
    if event == "expired":
        return f"Your request to move {move} expired before enough approvers decided."
    if event == "cancelled":
        return f"The request by {who} to move {move} was cancelled."
    return (
        f"{who} moved {move} with break-glass: at once, without approvals, bypassing the "
        "alias policy you approve for."
    )


def event_context(request: PromotionRequest, event: str, extra: dict) -> dict:
    """What every recipient of one event reads (the per-recipient parts are added later)."""
    from registry.policies import counted_approvals
    from registry.services.promotions import request_links

    new = request.version
    old = (
        ModelVersion.objects.filter(model=request.model, version=request.from_version).first()
        if request.from_version is not None
        else None
    )
    target_kind, target_name, subject_target = _target(request)
    approver = extra.get("approver")
    decision = _decision(request, approver) if event in ("approval", "rejected") else None
    gates, gates_when = _gates(request, new)
    ctx = {
        "event": event,
        "model": request.model.full_name,
        "target_kind": target_kind,
        "target_name": target_name,
        "from_label": _version_label(request.from_version),
        "to_label": _version_label(request.version_number),
        "promotion": request,
        "request_id": str(request.id),
        "requester_name": request.requester_name,
        "justification": request.justification,
        "state": request.state,
        "state_message": request.state_message,
        # Why it ended, where the headline does not say it already.
        "show_reason": event in ("stale", "expired", "cancelled") and bool(request.state_message),
        "break_glass": request.break_glass,
        "rollback": request.rollback,
        "required": request.required_approvals,
        "approvals": len(counted_approvals(request)) if not request.break_glass else 0,
        "gates": gates,
        "gates_when": gates_when,
        "metrics": metric_differences(old, new),
        "tags": tag_differences(old, new),
        "decisions": [
            {
                "approver_name": d.approver_name,
                "decision": d.decision,
                "at": d.at,
                "comment": d.comment,
                # Continuation lines of a comment stay under its entry in the text part.
                "comment_text": d.comment.replace("\n", "\n      "),
            }
            for d in request.decisions.all()
        ],
        "decision": decision,
        "approver": approver or "",
        "links": request_links(request),
    }
    ctx["headline"] = _headline(event, request, ctx, approver)
    label = EVENTS[event].label
    if event in ("approval", "rejected") and approver:
        label = f"{label} by {approver}"
        if event == "approval":
            label += f" ({ctx['approvals']} of {request.required_approvals})"
    elif event == "break_glass":
        label = f"{label} by {request.requester_name}"
    ctx["subject"] = f"[Steward] {label}: {subject_target} → version {request.version_number}"
    return ctx


def _greeting_name(user: User) -> str:
    return user.display_name or user.get_full_name() or user.username


def render_message(ctx: dict, user: User, role: str) -> EmailMultiAlternatives:
    """One recipient's message: the text part, the HTML part (autoescaped), and headers that
    keep auto-responders quiet and let mail rules file it."""
    context = {**ctx, "recipient_name": _greeting_name(user), "role": role}
    rendered = render_to_string("registry/email/promotion.txt", context)
    text = re.sub(r"\n{3,}", "\n\n", rendered).strip() + "\n"
    html = render_to_string("registry/email/promotion.html", context)
    message = EmailMultiAlternatives(
        subject=ctx["subject"],
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={
            "Auto-Submitted": "auto-generated",
            "X-Steward-Event": ctx["event"],
            "X-Steward-Promotion-Request": ctx["request_id"],
        },
    )
    message.attach_alternative(html, "text/html")
    return message


# --- sending ---------------------------------------------------------------------------------


def _permanent(exc: BaseException) -> bool:
    """The server refused this recipient for good (a 5xx answer): retrying will not help."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())
    return False


def send_promotion_event(
    request_id: str, event: str, extra: dict, *, skip: Iterable[str] = ()
) -> int:
    """Email everyone the event concerns; returns the number of messages sent now.

    `skip` lists addresses an earlier attempt already settled. A recipient the server refuses
    for good (5xx) is logged and passed over; any other SMTP or connection error raises
    DeliveryInterrupted naming every address settled so far, for the task to retry the rest.
    A request that no longer exists (its model was deleted) sends nothing."""
    if event not in EVENTS:
        raise ValueError(f"Unknown promotion event {event!r}.")
    request = (
        PromotionRequest.objects.select_related("model", "version", "policy")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        return 0
    handled = {address.strip().lower() for address in skip}
    todo = [
        (user, role)
        for user, role in recipients(request, event)
        if user.email.strip().lower() not in handled
    ]
    if not todo:
        return 0
    ctx = event_context(request, event, extra or {})
    messages = [(user.email, render_message(ctx, user, role)) for user, role in todo]
    sent = 0
    settled = set(handled)
    try:
        with get_connection() as mail:
            for address, message in messages:
                try:
                    sent += mail.send_messages([message]) or 0
                    settled.add(address.strip().lower())
                except (smtplib.SMTPRecipientsRefused, ValueError) as exc:
                    # ValueError: an address Django cannot encode (sanitize_address).
                    if isinstance(exc, smtplib.SMTPRecipientsRefused) and not _permanent(exc):
                        raise
                    logger.warning(
                        "Promotion email (%s, request %s) to %s refused: %s",
                        event,
                        request_id,
                        address,
                        exc,
                    )
                    # Not delivered, but settled: a retry for the others must not ask again.
                    settled.add(address.strip().lower())
    except RETRYABLE as exc:
        raise DeliveryInterrupted(settled, exc) from exc
    return sent
