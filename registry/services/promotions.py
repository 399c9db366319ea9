"""Alias policies and promotion requests: nobody moves a protected alias alone.

Setting a protected alias through any door (MLflow, UC, native, a legacy stage transition)
reaches `alias_set` / `model_version_transition_stage`, which call `protected_move_request`
here: it opens a promotion request (or names the open one) and the door answers
`ApprovalRequired`. The request applies when enough distinct approvers named by the policy
have approved, in the approving transaction, under row locks on the model and the request;
if the alias or the version changed since the request, it goes STALE instead.

Lock order everywhere: the model row, then the request row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from accounts.selectors import principal_by_name
from audit.governance import governed
from audit.services import audit_event_write
from catalog import authz, scoped
from catalog.privileges import Privilege
from catalog.services import audit_write
from core.actor import Actor
from core.errors import (
    AlreadyExists,
    Denial,
    ErrorCode,
    FailedPrecondition,
    InvalidParameter,
    NotFound,
    PermissionDenied,
    StewardError,
)
from core.queue import enqueue_on_commit
from registry import policies, rules
from registry.models import (
    AliasHistory,
    AliasPolicy,
    ModelAlias,
    ModelVersion,
    PromotionDecision,
    PromotionRequest,
    RegisteredModel,
)
from registry.services.lookups import (
    clean_alias,
    clean_text,
    clean_uuid,
    locked_model,
    version_of,
)
from registry.services.moves import move_alias, move_stage
from webhooks import payloads
from webhooks.services import emit

EXPIRED_MESSAGE = "No decision before the request's expiry."
OPEN = (PromotionRequest.State.PENDING, PromotionRequest.State.APPROVED)


class ApprovalRequired(StewardError):
    """The alias is protected: a promotion request stands in for the move. 403, because the
    caller may not move it alone; the message names the request and where to approve it."""

    code = ErrorCode.PERMISSION_DENIED

    def __init__(self, request: PromotionRequest, *, reused: bool = False):
        links = request_links(request)
        what = "is already open" if reused else "was created"
        target = (
            f"stage {request.alias.capitalize()}"
            if request.kind == PromotionRequest.Kind.STAGE
            else f"alias '{request.alias}'"
        )
        super().__init__(
            f"{target[0].upper()}{target[1:]} of {request.model.full_name} is protected by an "
            f"alias policy: promotion request {request.id} {what} to move it to version "
            f"{request.version_number}; it needs {request.required_approvals} approval(s) from "
            f"the policy's approvers. Approve it at {links['console']} or with "
            f"POST {links['api']}/approve."
        )
        self.request = request


def request_links(request: PromotionRequest) -> dict[str, str]:
    base = settings.STEWARD_BASE_URL.rstrip("/")
    return {
        "console": f"{base}/console/promotion-requests/{request.id}",
        "api": f"{base}/api/v1/promotion-requests/{request.id}",
    }


def _denied(exc: StewardError, request: PromotionRequest, need: str) -> StewardError:
    exc.denied = Denial(
        "registered_model", request.model.full_name, need, {"promotion_request": str(request.id)}
    )
    return exc


def _notify(request: PromotionRequest, event: str, **extra: Any) -> None:
    """Emails after commit (a rolled-back change sends nothing); see registry.tasks."""
    # A mail outage after commit is the task's to retry (registry.tasks).
    enqueue_on_commit("registry.tasks.send_promotion_email", str(request.id), event, extra)


def _webhook(request: PromotionRequest, action: str) -> None:
    """promotion_request.<action> to subscribed webhooks (written now, sent after commit)."""

    data = payloads.promotion_request(request)
    emit(f"promotion_request.{action}", data, securable=request.model)


def _audit(actor: Actor, action: str, request: PromotionRequest, **details: Any) -> None:
    audit_write(
        actor,
        action,
        request.model,
        {
            "promotion_request": str(request.id),
            "alias": request.alias,
            "kind": request.kind,
            "version": request.version_number,
            "from_version": request.from_version,
            "state": request.state,
            **details,
        },
    )


# --- policies ------------------------------------------------------------------------------


def _approvers(names: object) -> tuple[list[User], list[Group]]:
    if not isinstance(names, list) or not names or len(names) > 100:
        raise InvalidParameter("approvers must be a list of 1 to 100 user or group names.")
    users: list[User] = []
    groups: list[Group] = []
    for name in names:
        principal = principal_by_name(name)
        if isinstance(principal, User):
            users.append(principal)
        else:
            groups.append(principal)
    return users, groups


def _apply_policy_fields(policy: AliasPolicy, fields: Mapping[str, object]) -> dict[str, Any]:
    """Validate and set the given fields; returns what changed (for the audit event)."""
    changes: dict[str, Any] = {}
    if "alias_patterns" in fields:
        policy.alias_patterns = policies.clean_patterns(fields["alias_patterns"])
        changes["alias_patterns"] = policy.alias_patterns
    if "required_approvals" in fields:
        policy.required_approvals = policies.clean_required_approvals(fields["required_approvals"])
        changes["required_approvals"] = policy.required_approvals
    if "request_ttl_seconds" in fields:
        policy.request_ttl_seconds = policies.clean_ttl(fields["request_ttl_seconds"])
        changes["request_ttl_seconds"] = policy.request_ttl_seconds
    if "gates" in fields:
        policy.gates = policies.clean_gates(fields["gates"])
        changes["gates"] = policy.gates
    if "description" in fields:
        policy.description = clean_text(fields["description"], "description")
        changes["description"] = policy.description
    return changes


def _set_approvers(policy: AliasPolicy, names: object) -> list[str]:
    users, groups = _approvers(names)
    policy.approver_users.set(users)
    policy.approver_groups.set(groups)
    return sorted([u.username for u in users] + [g.name for g in groups])


@governed("alias_policy.create")
def alias_policy_create(
    *,
    actor: Actor,
    securable_type: object,
    full_name: object,
    alias_patterns: object,
    approvers: object,
    required_approvals: object = 1,
    request_ttl_seconds: object = 7 * 24 * 3600,
    gates: object = None,
    description: object = "",
) -> AliasPolicy:
    """Protect alias patterns on a catalog, schema or model; needs MANAGE on it (owners hold
    it). The requester of a promotion never counts among its approvers."""
    securable = scoped.target(securable_type, full_name, what="Alias policies")
    authz.require(actor, Privilege.MANAGE, securable)
    policy = AliasPolicy(created_by=actor.username, updated_by=actor.username)
    policy.attach(securable)
    details = _apply_policy_fields(
        policy,
        {
            "alias_patterns": alias_patterns,
            "required_approvals": required_approvals,
            "request_ttl_seconds": request_ttl_seconds,
            "gates": gates,
            "description": description,
        },
    )
    policy.save()
    details["approvers"] = _set_approvers(policy, approvers)
    audit_write(actor, "alias_policy.create", securable, {"policy": str(policy.id), **details})
    return policy


def _policy_for_update(actor: Actor, policy_id: object) -> AliasPolicy:
    policy = alias_policy_lookup(actor, policy_id, lock=True)
    authz.require(actor, Privilege.MANAGE, policy.securable)
    return policy


@governed("alias_policy.update")
def alias_policy_update(*, actor: Actor, policy_id: object, **fields: object) -> AliasPolicy:
    """Change a policy (MANAGE on its securable). Open requests keep their approval count;
    approvers dropped from the policy stop counting at once."""
    unknown = set(fields) - {
        "alias_patterns",
        "approvers",
        "required_approvals",
        "request_ttl_seconds",
        "gates",
        "description",
    }
    if unknown:
        raise InvalidParameter(f"Unknown field {sorted(unknown)[0]!r}.")
    policy = _policy_for_update(actor, policy_id)
    changes = _apply_policy_fields(policy, fields)
    policy.updated_by = actor.username
    policy.save()
    if "approvers" in fields:
        changes["approvers"] = _set_approvers(policy, fields["approvers"])
    audit_write(
        actor, "alias_policy.update", policy.securable, {"policy": str(policy.id), **changes}
    )
    return policy


@governed("alias_policy.delete")
def alias_policy_delete(*, actor: Actor, policy_id: object) -> None:
    """Remove a policy (MANAGE). Its open requests can no longer gather approvals; they are
    cancelled, since the alias may now be set directly."""
    policy = _policy_for_update(actor, policy_id)
    securable = policy.securable
    for request in PromotionRequest.objects.select_for_update().filter(
        policy=policy, state__in=OPEN
    ):
        request.state = PromotionRequest.State.CANCELLED
        request.state_message = "The alias policy was deleted."
        request.decided_at = timezone.now()
        request.save()
        _audit(actor, "promotion_request.cancel", request, reason="policy deleted")
        _notify(request, "cancelled")
    audit_write(actor, "alias_policy.delete", securable, {"policy": str(policy.id)})
    policy.delete()


def alias_policy_lookup(actor: Actor, policy_id: object, *, lock: bool = False) -> AliasPolicy:
    """A policy on a securable the actor can see; otherwise not found."""
    qs = AliasPolicy.objects.select_related("catalog", "schema__catalog", "model__schema__catalog")
    if lock:
        qs = qs.select_for_update(of=("self",))
    policy = qs.filter(pk=clean_uuid(policy_id, "policy id")).first()
    if policy is None or not authz.can_see(actor, policy.securable):
        raise NotFound(f"Alias policy {str(policy_id)[:64]} does not exist.")
    return policy


# --- requests --------------------------------------------------------------------------------


def _current_target(model: RegisteredModel, kind: str, name: str) -> int | None:
    """What the alias points at now (for a stage: the newest version in it)."""
    if kind == PromotionRequest.Kind.STAGE:
        return (
            ModelVersion.objects.filter(
                model=model,
                stage__iexact=name,
                lifecycle=ModelVersion.Lifecycle.ACTIVE,
            )
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
        )
    return (
        ModelAlias.objects.filter(model=model, alias=name)
        .values_list("version__version", flat=True)
        .first()
    )


def protected_move_request(
    *,
    actor: Actor,
    model: RegisteredModel,
    kind: str,
    name: str,
    target: ModelVersion,
    justification: str = "",
    archive_existing_versions: bool = False,
    rollback: bool = False,
) -> tuple[PromotionRequest, bool] | None:
    """Called with the model row locked by the setting service: None if the alias is not
    protected or already points at the target; else the request standing in for the move
    (created, or the caller's identical open one) and whether it already existed. Requesting
    needs MODIFY on the model; gates are checked now and again when it applies."""
    policy = policies.policy_for(model, name)
    if policy is None:
        return None
    authz.require(actor, Privilege.MODIFY, model)
    current = _current_target(model, kind, name)
    if current == target.version:
        return None
    open_request = (
        PromotionRequest.objects.select_related("model")
        .filter(model=model, kind=kind, alias=name, state__in=OPEN)
        .first()
    )
    if open_request is not None:
        if open_request.version_id == target.pk and open_request.requester_id == actor.user.pk:
            return open_request, True
        raise AlreadyExists(
            f"Promotion request {open_request.id} to move '{name}' of {model.full_name} to "
            f"version {open_request.version_number} is already open; it must be decided or "
            "cancelled first."
        )
    results = policies.evaluate_gates(policy, target)
    bad = policies.failed(results)
    if bad:
        raise FailedPrecondition(
            f"Version {target.version} of {model.full_name} does not pass the alias policy's "
            "gates: " + "; ".join(f"{g.gate} failed ({g.detail})" for g in bad) + "."
        )
    request = PromotionRequest.objects.create(
        model=model,
        kind=kind,
        alias=name,
        archive_existing_versions=archive_existing_versions,
        version=target,
        version_number=target.version,
        artifact_digest=target.artifact_digest,
        from_version=current,
        policy=policy,
        required_approvals=policy.required_approvals,
        requester=actor.user,
        requester_name=actor.username,
        justification=clean_text(justification, "justification"),
        rollback=rollback,
        gate_results=[g.as_dict() for g in results],
        expires_at=timezone.now() + timedelta(seconds=policy.request_ttl_seconds),
    )
    _audit(actor, "promotion_request.create", request, justification=request.justification)
    _notify(request, "created")
    _webhook(request, "created")
    return request, False


@governed("promotion_request.create")
def promotion_request_create(
    *,
    actor: Actor,
    full_name: object,
    alias: object,
    version: object,
    justification: object,
    rollback: bool = False,
) -> PromotionRequest:
    """Ask for a protected alias to move to a version (the native API's explicit path; the
    other doors reach the same function through alias_set)."""
    justification = clean_text(justification, "justification", required=True)
    model = locked_model(full_name)
    authz.require_visible(actor, model)
    name = clean_alias(alias)
    target = version_of(model, version)
    outcome = protected_move_request(
        actor=actor,
        model=model,
        kind=PromotionRequest.Kind.ALIAS,
        name=name,
        target=target,
        justification=justification,
        rollback=rollback,
    )
    if outcome is None:
        if policies.policy_for(model, name) is None:
            raise FailedPrecondition(
                f"Alias '{name}' of {model.full_name} is not protected; set it directly."
            )
        raise FailedPrecondition(f"Alias '{name}' already points at version {target.version}.")
    return outcome[0]


def promotion_request_lookup(
    actor: Actor, request_id: object, *, lock: bool = False
) -> PromotionRequest:
    """A request the actor may see (requester, approvers, MANAGE on the model, admins). With
    lock, the model row is locked first, then the request (the one lock order)."""
    key = clean_uuid(request_id, "promotion request")
    request = (
        PromotionRequest.objects.select_related("model__schema__catalog", "policy", "version")
        .filter(pk=key)
        .first()
    )
    if request is None:
        raise NotFound(
            f"Promotion request {str(request_id)[:64]} does not exist.",
            denied=Denial("promotion_request", str(key), rules.VIEW),
        )
    authz.require(actor, rules.VIEW, request)
    if lock:
        locked_model(request.model.full_name)
        request = (
            PromotionRequest.objects.select_for_update(of=("self",))
            .select_related("model__schema__catalog", "policy", "version")
            .get(pk=key)
        )
    return request


def _require_pending(request: PromotionRequest) -> None:
    if request.state != PromotionRequest.State.PENDING:
        raise FailedPrecondition(
            f"Promotion request {request.id} is {request.state}"
            + (f" ({request.state_message})" if request.state_message else "")
            + "; only a PENDING request can be decided."
        )
    if request.expires_at <= timezone.now():
        raise FailedPrecondition(
            f"Promotion request {request.id} expired at {request.expires_at.isoformat()}."
        )


def _require_approver(actor: Actor, request: PromotionRequest, verb: str) -> None:
    if request.requester_id is not None and request.requester_id == actor.user.pk:
        raise _denied(
            PermissionDenied(
                f"User '{actor.username}' requested promotion {request.id} and cannot {verb} "
                "it; another approver must (four eyes, admins included)."
            ),
            request,
            "APPROVE",
        )
    if not policies.is_approver(request.policy, actor.user):
        raise _denied(
            PermissionDenied(
                f"User '{actor.username}' is not an approver of the alias policy that governs "
                f"promotion request {request.id}."
            ),
            request,
            "APPROVE",
        )
    if actor.read_only:
        raise _denied(PermissionDenied("This token is read-only."), request, "APPROVE")
    if request.decisions.filter(approver=actor.user).exists():
        raise AlreadyExists(
            f"User '{actor.username}' has already decided promotion request {request.id}."
        )


def expire_if_due(request_id: str) -> bool:
    """Mark one overdue PENDING request EXPIRED in its own transaction (so a refused
    approval still leaves the request in its true state); True if it did."""
    with transaction.atomic():
        request = (
            PromotionRequest.objects.select_for_update(skip_locked=True)
            .select_related("model")
            .filter(
                pk=request_id,
                state=PromotionRequest.State.PENDING,
                expires_at__lte=timezone.now(),
            )
            .first()
        )
        if request is None:
            return False
        _expire(request)
        return True


def _expire(request: PromotionRequest) -> None:
    request.state = PromotionRequest.State.EXPIRED
    request.state_message = EXPIRED_MESSAGE
    request.decided_at = timezone.now()
    request.save()
    audit_event_write(
        actor=None,
        actor_name="system",
        auth_method="task",
        action="promotion_request.expire",
        securable_type="registered_model",
        securable=request.model.full_name,
        details={"promotion_request": str(request.id), "alias": request.alias},
    )
    _notify(request, "expired")


def promotion_requests_expire(batch: int = 500) -> int:
    """Expire every overdue PENDING request; rows another transaction holds (an approval
    in flight) are skipped and decided there. Idempotent; safe from several workers."""
    count = 0
    while True:
        with transaction.atomic():
            due = list(
                PromotionRequest.objects.select_for_update(skip_locked=True)
                .select_related("model")
                .filter(state=PromotionRequest.State.PENDING, expires_at__lte=timezone.now())
                .order_by("expires_at")[:batch]
            )
            for request in due:
                _expire(request)
        count += len(due)
        if len(due) < batch:
            return count


def _lock_versions(request: PromotionRequest) -> None:
    """Lock the version rows an apply may write (the target; for a stage, the versions now in
    it, which archive_existing_versions archives) before this transaction's first audit write.

    Race: every audit write locks the one audit chain head row until commit, and
    model_version_update locks a version row (without the model lock), then writes its audit
    event. An approval that wrote its audit event first and locked the version afterwards
    (_stale_reasons, move_stage) deadlocked with it (a 500). Lock order: model, request,
    versions, audit chain head."""
    rows = Q(pk=request.version_id)
    if request.kind == PromotionRequest.Kind.STAGE:
        rows |= Q(model_id=request.model_id, stage__iexact=request.alias)
    list(ModelVersion.objects.select_for_update().filter(rows).order_by("pk").values("pk"))


def _decide(actor: Actor, request_id: object, decision: str, comment: object) -> PromotionRequest:
    comment = clean_text(comment, "comment")
    request = promotion_request_lookup(actor, request_id, lock=True)
    verb = "approve" if decision == PromotionDecision.Decision.APPROVE else "reject"
    _require_pending(request)
    _require_approver(actor, request, verb)
    if decision == PromotionDecision.Decision.APPROVE:
        _lock_versions(request)
    PromotionDecision.objects.create(
        request=request,
        approver=actor.user,
        approver_name=actor.username,
        decision=decision,
        comment=comment,
    )
    if decision == PromotionDecision.Decision.REJECT:
        request.state = PromotionRequest.State.REJECTED
        request.state_message = f"Rejected by {actor.username}."
        request.decided_at = timezone.now()
        request.save()
        _audit(actor, "promotion_request.reject", request, comment=comment)
        _notify(request, "rejected", approver=actor.username)
        _webhook(request, "rejected")
        return request
    _audit(actor, "promotion_request.approve", request, comment=comment)
    _notify(request, "approval", approver=actor.username)
    _apply_if_approved(actor, request)
    return request


@governed("promotion_request.approve")
def _approve(*, actor: Actor, request_id: object, comment: object = "") -> PromotionRequest:
    return _decide(actor, request_id, PromotionDecision.Decision.APPROVE, comment)


@governed("promotion_request.reject")
def _reject(*, actor: Actor, request_id: object, comment: object = "") -> PromotionRequest:
    return _decide(actor, request_id, PromotionDecision.Decision.REJECT, comment)


class _Decision(Protocol):
    """`_approve` or `_reject`."""

    def __call__(
        self, *, actor: Actor, request_id: object, comment: object
    ) -> PromotionRequest: ...


def _deciding(
    decide: _Decision, *, actor: Actor, request_id: object, comment: object
) -> PromotionRequest:
    key = clean_uuid(request_id, "promotion request")
    expire_if_due(key)
    try:
        return decide(actor=actor, request_id=request_id, comment=comment)
    except FailedPrecondition:
        # Race: the request can come due after the expire_if_due above and before _decide
        # locks it; _decide then refuses it as expired, but its transaction rolls back, which
        # would leave it PENDING (no expiry event) while the approver was told it expired.
        # Expire it now, in its own transaction (a no-op unless it is PENDING and overdue).
        expire_if_due(key)
        raise


def promotion_request_approve(
    *, actor: Actor, request_id: object, comment: object = ""
) -> PromotionRequest:
    """Approve (an approver named by the policy, never the requester, once). With enough
    counted approvals the request applies in this transaction, or goes STALE."""
    return _deciding(_approve, actor=actor, request_id=request_id, comment=comment)


def promotion_request_reject(
    *, actor: Actor, request_id: object, comment: object = ""
) -> PromotionRequest:
    """Reject (one eligible approver's rejection is final)."""
    return _deciding(_reject, actor=actor, request_id=request_id, comment=comment)


@governed("promotion_request.cancel")
def promotion_request_cancel(*, actor: Actor, request_id: object) -> PromotionRequest:
    """The requester withdraws a pending request."""
    request = promotion_request_lookup(actor, request_id, lock=True)
    if request.requester_id != actor.user.pk:
        raise _denied(
            PermissionDenied(f"Only the requester can cancel promotion request {request.id}."),
            request,
            "CANCEL",
        )
    if actor.read_only:
        raise _denied(PermissionDenied("This token is read-only."), request, "CANCEL")
    if request.state != PromotionRequest.State.PENDING:
        raise FailedPrecondition(
            f"Promotion request {request.id} is {request.state}; only a PENDING one can be "
            "cancelled."
        )
    request.state = PromotionRequest.State.CANCELLED
    request.state_message = f"Cancelled by {actor.username}."
    request.decided_at = timezone.now()
    request.save()
    _audit(actor, "promotion_request.cancel", request)
    _notify(request, "cancelled")
    return request


def _stale_reasons(request: PromotionRequest, model: RegisteredModel) -> list[str]:
    version = ModelVersion.objects.select_for_update().get(pk=request.version_id)
    reasons = []
    if version.lifecycle != ModelVersion.Lifecycle.ACTIVE:
        reasons.append(f"version {version.version} is {version.lifecycle}")
    if version.artifact_digest != request.artifact_digest:
        reasons.append(f"the files of version {version.version} changed since the request")
    current = _current_target(model, request.kind, request.alias)
    if current != request.from_version:
        reasons.append(
            f"'{request.alias}' moved from version {request.from_version} to {current} since "
            "the request"
        )
    if not reasons:
        for gate in policies.failed(policies.evaluate_gates(request.policy, version)):
            reasons.append(f"{gate.gate} failed ({gate.detail})")
    return reasons


def _apply_if_approved(actor: Actor, request: PromotionRequest) -> None:
    counted = policies.counted_approvals(request)
    if len(counted) < request.required_approvals:
        return
    model = request.model
    request.state = PromotionRequest.State.APPROVED
    request.decided_at = timezone.now()
    request.save()
    _audit(actor, "promotion_request.approved", request, approvers=counted)
    _webhook(request, "approved")
    reasons = _stale_reasons(request, model)
    if reasons:
        request.state = PromotionRequest.State.STALE
        request.state_message = "; ".join(reasons) + "."
        request.save()
        _audit(actor, "promotion_request.stale", request, reasons=reasons)
        _notify(request, "stale")
        return
    _move(actor, request, reason=request.justification, approvers=counted)
    request.state = PromotionRequest.State.APPLIED
    request.applied_at = timezone.now()
    request.save()
    _audit(actor, "promotion_request.apply", request, approvers=counted)
    _notify(request, "applied")
    _webhook(request, "applied")


def _move(actor: Actor, request: PromotionRequest, *, reason: str, **details: Any) -> None:
    """Perform the approved (or break-glass) move; the caller holds the model lock."""
    if request.kind == PromotionRequest.Kind.STAGE:
        move_stage(
            actor,
            request.model,
            request.version,
            request.alias,
            request.archive_existing_versions,
            promotion=request,
            **details,
        )
    else:
        move_alias(
            actor,
            request.model,
            request.alias,
            request.version,
            reason=reason,
            promotion=request,
            **details,
        )


# --- rollback and break-glass ---------------------------------------------------------------


def previous_target(model: RegisteredModel, alias: str) -> int:
    """The version the alias pointed at before its current target (from the alias history)."""
    current = _current_target(model, PromotionRequest.Kind.ALIAS, alias)
    if current is None:
        raise NotFound(f"Alias '{alias}' does not exist on {model.full_name}.")
    last = (
        AliasHistory.objects.filter(model=model, alias=alias, to_version=current)
        .order_by("-id")
        .first()
    )
    if last is None or last.from_version is None:
        raise FailedPrecondition(
            f"Alias '{alias}' of {model.full_name} has no earlier version to roll back to."
        )
    return last.from_version


@governed("alias.break_glass")
def alias_break_glass(
    *, actor: Actor, full_name: object, alias: object, version: object, reason: object
) -> PromotionRequest:
    """Admins only, for emergencies: move a (protected) alias at once. Demands a reason, is
    flagged in the audit trail, is recorded as an APPLIED break-glass request, and emails the
    policy's approvers."""
    reason = clean_text(reason, "reason", required=True)
    if len(reason) < 10:
        raise InvalidParameter("A break-glass move needs a reason of at least 10 characters.")
    model = locked_model(full_name)
    authz.require_visible(actor, model)
    if not authz.is_admin(actor) or actor.read_only:
        raise PermissionDenied(
            "Only metastore admins may use break-glass.",
            denied=Denial("registered_model", model.full_name, "BREAK GLASS"),
        )
    name = clean_alias(alias)
    target = version_of(model, version)
    if (
        target.status != ModelVersion.Status.READY
        or target.lifecycle != ModelVersion.Lifecycle.ACTIVE
    ):
        raise FailedPrecondition(
            f"Version {target.version} is {target.status}, {target.lifecycle}; not movable."
        )
    policy = policies.policy_for(model, name)
    now = timezone.now()
    # Any open request for the alias is overtaken: it would only go stale.
    for open_request in PromotionRequest.objects.select_for_update().filter(
        model=model, kind=PromotionRequest.Kind.ALIAS, alias=name, state__in=OPEN
    ):
        open_request.state = PromotionRequest.State.STALE
        open_request.state_message = f"Overtaken by {actor.username}'s break-glass move."
        open_request.save()
        _audit(actor, "promotion_request.stale", open_request, reasons=["break-glass"])
        _notify(open_request, "stale")
    request = PromotionRequest.objects.create(
        model=model,
        alias=name,
        version=target,
        version_number=target.version,
        artifact_digest=target.artifact_digest,
        from_version=_current_target(model, PromotionRequest.Kind.ALIAS, name),
        policy=policy,
        required_approvals=0,
        requester=actor.user,
        requester_name=actor.username,
        justification=reason,
        break_glass=True,
        state=PromotionRequest.State.APPLIED,
        expires_at=now,
        decided_at=now,
        applied_at=now,
    )
    _move(actor, request, reason=f"BREAK GLASS: {reason}", break_glass=True)
    _audit(actor, "promotion_request.break_glass", request, break_glass=True, reason=reason)
    _notify(request, "break_glass")
    _webhook(request, "applied")
    return request
