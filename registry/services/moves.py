"""Moving an alias or a legacy stage once the move is authorized (by MANAGE, by approvals or
by break-glass): the history row, the audit event and the webhook. Used by the alias services
and by applying an approved promotion request."""

from __future__ import annotations

from typing import Any

from catalog.services import audit_write
from core.actor import Actor
from core.errors import FailedPrecondition
from registry import policies
from registry.models import (
    AliasHistory,
    AliasPolicy,
    ModelAlias,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
)
from registry.services.lookups import version_audit
from webhooks import payloads as webhook_payloads
from webhooks.services import emit as webhook_emit


def record_move(
    actor: Actor,
    model: RegisteredModel,
    alias: str,
    old: int | None,
    new: int | None,
    reason: str = "",
    promotion: PromotionRequest | None = None,
) -> None:
    AliasHistory.objects.create(
        model=model,
        alias=alias,
        from_version=old,
        to_version=new,
        actor=actor.username,
        reason=reason,
        request_id=actor.request_id,
        promotion=promotion,
    )


def protection(model: RegisteredModel, name: str) -> AliasPolicy | None:
    return policies.policy_for(model, name)


def move_alias(
    actor: Actor,
    model: RegisteredModel,
    name: str,
    target: ModelVersion,
    *,
    reason: str = "",
    promotion: PromotionRequest | None = None,
    **details: Any,
) -> ModelAlias:
    """Move an alias (already authorized: by MANAGE, approvals or break-glass); the caller
    holds the model row lock."""
    if target.status != ModelVersion.Status.READY:
        raise FailedPrecondition(f"Version {target.version} is {target.status}, not READY.")
    if target.lifecycle != ModelVersion.Lifecycle.ACTIVE:
        raise FailedPrecondition(f"Version {target.version} is {target.lifecycle}.")
    current = ModelAlias.objects.select_related("version").filter(model=model, alias=name).first()
    old = current.version.version if current else None
    if current is not None and current.version_id == target.pk:
        return current
    if current is None:
        current = ModelAlias(model=model, alias=name)
    current.version = target
    current.updated_by = actor.username
    current.save()
    record_move(actor, model, name, old, target.version, reason, promotion)
    if promotion is not None:
        details["promotion_request"] = str(promotion.id)
    audit_write(
        actor, "alias.set", model, {"alias": name, "from": old, "to": target.version, **details}
    )
    webhook_emit(
        "model_version_alias.created",
        webhook_payloads.alias_created(model, name, target),
        securable=model,
    )
    return current


STAGES = {s.value.lower(): s for s in ModelVersion.Stage}


def move_stage(
    actor: Actor,
    model: RegisteredModel,
    obj: ModelVersion,
    stage: object,
    archive_existing_versions: bool,
    promotion: PromotionRequest | None = None,
    **details: Any,
) -> ModelVersion:
    """Move a version's legacy stage (already authorized); the caller holds the model lock."""
    target_stage = STAGES[str(stage).lower()]
    archived: list[int] = []
    if archive_existing_versions and target_stage in (
        ModelVersion.Stage.STAGING,
        ModelVersion.Stage.PRODUCTION,
    ):
        others = (
            ModelVersion.objects.select_for_update()
            .filter(model=model, stage=target_stage, lifecycle=ModelVersion.Lifecycle.ACTIVE)
            .exclude(pk=obj.pk)
        )
        archived = [v.version for v in others]
        others.update(stage=ModelVersion.Stage.ARCHIVED, updated_by=actor.username)
    previous = obj.stage
    obj.stage = target_stage
    obj.updated_by = actor.username
    obj.save(update_fields=["stage", "updated_by", "updated_at"])
    if promotion is not None:
        details["promotion_request"] = str(promotion.id)
    version_audit(
        actor,
        "model_version.transition_stage",
        obj,
        {"from": previous, "to": target_stage, "archived": archived, **details},
    )
    return obj
