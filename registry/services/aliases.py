"""Aliases and legacy stages as every door sets them: a protected alias or stage opens a
promotion request (registry.services.promotions) instead of moving; rollback goes back through
the same policy."""

from __future__ import annotations

from typing import TypeVar

from audit.governance import governed
from catalog import authz
from catalog.privileges import Privilege
from catalog.selectors import model_lookup
from catalog.services import audit_write
from core.actor import Actor
from core.errors import FailedPrecondition, InvalidParameter, NotFound
from registry.models import (
    ModelAlias,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
)
from registry.services.lookups import clean_alias, clean_text, locked_model, version_of
from registry.services.moves import STAGES, move_alias, move_stage, protection, record_move
from registry.services.promotions import ApprovalRequired, previous_target, protected_move_request
from webhooks import payloads as webhook_payloads
from webhooks.services import emit as webhook_emit


def alias_set(
    *,
    actor: Actor,
    full_name: object,
    alias: object,
    version: object,
    reason: str = "",
    rollback: bool = False,
) -> ModelAlias:
    """Point an alias at a READY, active version (MANAGE); the move is kept in alias history.

    A protected alias (registry.policies) is never moved here: a promotion request stands in
    for the move (committed), and ApprovalRequired names it. Every door comes through here.
    """
    return _moved_or_approval_required(
        _alias_set(
            actor=actor,
            full_name=full_name,
            alias=alias,
            version=version,
            reason=reason,
            rollback=rollback,
        )
    )


_Moved = TypeVar("_Moved", ModelAlias, ModelVersion)
# What a protected move opens instead: the promotion request, and whether it was already open.
_Opened = tuple[PromotionRequest, bool]


def _moved_or_approval_required(result: _Moved | _Opened) -> _Moved:
    """The governed move returned either what it moved or (request, reused): the request is
    committed by now, so raising here loses nothing."""
    if isinstance(result, tuple):
        raise ApprovalRequired(result[0], reused=result[1])
    return result


@governed("alias.set")
def _alias_set(
    *, actor: Actor, full_name: object, alias: object, version: object, reason: str, rollback: bool
) -> ModelAlias | _Opened:
    model = locked_model(full_name)
    name = clean_alias(alias)
    target = version_of(model, version)
    outcome = protected_move_request(
        actor=actor,
        model=model,
        kind="ALIAS",
        name=name,
        target=target,
        justification=reason,
        rollback=rollback,
    )
    if outcome is not None:
        return outcome
    authz.require(actor, Privilege.MANAGE, model)
    return move_alias(actor, model, name, target, reason=reason)


@governed("alias.delete")
def alias_delete(*, actor: Actor, full_name: object, alias: object) -> None:
    """Remove an alias (MANAGE). A protected one is refused: it moves only by promotion."""
    model = locked_model(full_name)
    authz.require(actor, Privilege.MANAGE, model)
    name = clean_alias(alias)
    current = ModelAlias.objects.select_related("version").filter(model=model, alias=name).first()
    if current is None:
        raise NotFound(f"Alias {name!r} does not exist on {model.full_name}.")
    if protection(model, name) is not None:
        raise FailedPrecondition(
            f"Alias {name!r} of {model.full_name} is protected by an alias policy; it moves "
            "only through a promotion request and cannot be deleted while protected."
        )
    old = current.version.version
    current.delete()
    record_move(actor, model, name, old, None)
    audit_write(actor, "alias.delete", model, {"alias": name, "from": old})
    webhook_emit(
        "model_version_alias.deleted", webhook_payloads.alias_deleted(model, name), securable=model
    )


def model_version_transition_stage(
    *,
    actor: Actor,
    full_name: object,
    version: object,
    stage: object,
    archive_existing_versions: bool = False,
) -> ModelVersion:
    """Move a version to None/Staging/Production/Archived (MANAGE); optionally archive the
    versions currently in that stage. A stage protected by an alias policy (as the alias
    `production`, `staging`) opens a promotion request instead, like alias_set."""
    return _moved_or_approval_required(
        _transition_stage(
            actor=actor,
            full_name=full_name,
            version=version,
            stage=stage,
            archive_existing_versions=archive_existing_versions,
        )
    )


@governed("model_version.transition_stage")
def _transition_stage(
    *,
    actor: Actor,
    full_name: object,
    version: object,
    stage: object,
    archive_existing_versions: object,
) -> ModelVersion | _Opened:
    model = locked_model(full_name)
    if not isinstance(stage, str) or stage.lower() not in STAGES:
        raise InvalidParameter("stage must be one of None, Staging, Production, Archived.")
    if not isinstance(archive_existing_versions, bool):
        raise InvalidParameter("archive_existing_versions must be true or false.")
    target_stage = STAGES[stage.lower()]
    obj = version_of(model, version, lock=True)
    if obj.stage != target_stage and protection(model, obj.stage.lower()) is not None:
        authz.require(actor, Privilege.MODIFY, model)
        raise FailedPrecondition(
            f"Version {obj.version} is in protected stage {obj.stage}; it leaves it only when "
            "an approved promotion archives it (archive_existing_versions)."
        )
    outcome = protected_move_request(
        actor=actor,
        model=model,
        kind="STAGE",
        name=target_stage.lower(),
        target=obj,
        archive_existing_versions=archive_existing_versions,
    )
    if outcome is not None:
        return outcome
    authz.require(actor, Privilege.MANAGE, model)
    return move_stage(actor, model, obj, target_stage, archive_existing_versions)


# Not atomic: the promotion request it may open commits in alias_set before ApprovalRequired
# is raised; the wrapper still audits a refusal.
@governed("alias.rollback", atomic=False)
def alias_rollback(
    *, actor: Actor, full_name: object, alias: object, justification: object = ""
) -> ModelAlias:
    """Move an alias back to the version it pointed at before, through the same policy: a
    protected alias answers ApprovalRequired with a rollback request."""
    name = clean_alias(alias)
    model: RegisteredModel = model_lookup(full_name)
    authz.require_visible(actor, model)
    version = previous_target(model, name)
    reason = clean_text(justification, "justification") or f"rollback of '{name}' to {version}"
    return alias_set(
        actor=actor, full_name=full_name, alias=name, version=version, reason=reason, rollback=True
    )
