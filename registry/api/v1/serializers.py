"""Bodies of the native registry API: what it accepts (strict: no unknown fields, no numbers as
strings, no NUL) and what it answers. The services validate again; these only parse."""

from __future__ import annotations

import math

from rest_framework import serializers

from core.api import StrictCharField, StrictInputSerializer
from registry import policies
from registry.models import PromotionDecision, PromotionRequest
from registry.services.lookups import MAX_TEXT

MAX_NAME = 767  # the longest full name (catalog.schema.model)
MAX_JSON_DEPTH = 6


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: no strings, booleans or fractions."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class GatesField(serializers.JSONField):
    """Gates as a JSON object; the service checks their meaning. Here: no NUL in any string
    (PostgreSQL's jsonb refuses it) and only numbers a float can hold (metric thresholds)."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if data is not None and not isinstance(data, dict):
            raise serializers.ValidationError("gates must be an object.")
        self._check(data, 0)
        return data

    def _check(self, value, depth: int) -> None:
        if depth > MAX_JSON_DEPTH:
            raise serializers.ValidationError("gates are nested too deeply.")
        if isinstance(value, str):
            if "\x00" in value:
                raise serializers.ValidationError("NUL characters are not allowed.")
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int | float):
            try:
                ok = math.isfinite(value)
            except OverflowError:
                ok = False
            if not ok:
                raise serializers.ValidationError("gates hold finite numbers only.")
        elif isinstance(value, dict):
            for key, item in value.items():
                self._check(key, depth + 1)
                self._check(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                self._check(item, depth + 1)


def _text(**kwargs) -> StrictCharField:
    return StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=MAX_TEXT, **kwargs
    )


# --- input -----------------------------------------------------------------------------------


class AliasPolicyUpdateInputSerializer(StrictInputSerializer):
    alias_patterns = serializers.ListField(
        child=StrictCharField(max_length=255),
        min_length=1,
        max_length=policies.MAX_PATTERNS,
        required=False,
    )
    approvers = serializers.ListField(
        child=StrictCharField(max_length=255), min_length=1, max_length=100, required=False
    )
    required_approvals = StrictIntegerField(
        min_value=1, max_value=policies.MAX_APPROVALS, required=False
    )
    request_ttl_seconds = StrictIntegerField(required=False)
    gates = GatesField(required=False, allow_null=True)
    description = _text(trim_whitespace=False)


class AliasPolicyInputSerializer(AliasPolicyUpdateInputSerializer):
    securable_type = StrictCharField(max_length=64)
    full_name = StrictCharField(max_length=MAX_NAME)
    alias_patterns = serializers.ListField(
        child=StrictCharField(max_length=255), min_length=1, max_length=policies.MAX_PATTERNS
    )
    approvers = serializers.ListField(
        child=StrictCharField(max_length=255), min_length=1, max_length=100
    )


class PromotionRequestInputSerializer(StrictInputSerializer):
    full_name = StrictCharField(max_length=MAX_NAME)
    alias = StrictCharField(max_length=255)
    version = StrictIntegerField(min_value=1)
    justification = StrictCharField(max_length=MAX_TEXT)


class DecisionInputSerializer(StrictInputSerializer):
    comment = _text()


class EmptyInputSerializer(StrictInputSerializer):
    pass


class AliasSetInputSerializer(StrictInputSerializer):
    version = StrictIntegerField(min_value=1)
    justification = _text()


class AliasRollbackInputSerializer(StrictInputSerializer):
    justification = _text()


class BreakGlassInputSerializer(StrictInputSerializer):
    version = StrictIntegerField(min_value=1)
    reason = StrictCharField(max_length=MAX_TEXT)


# --- output ----------------------------------------------------------------------------------


class AliasPolicyOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    securable_type = serializers.CharField()
    full_name = serializers.CharField()
    alias_patterns = serializers.ListField(child=serializers.CharField())
    approvers = serializers.ListField(child=serializers.CharField())
    required_approvals = serializers.IntegerField()
    request_ttl_seconds = serializers.IntegerField()
    gates = serializers.JSONField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    updated_at = serializers.DateTimeField()
    updated_by = serializers.CharField()


def policy_out(policy) -> dict:
    approvers = [u.username for u in policy.approver_users.all()] + [
        g.name for g in policy.approver_groups.all()
    ]
    return AliasPolicyOutputSerializer(
        {
            "id": policy.id,
            "securable_type": policy.securable_type,
            "full_name": policy.securable_full_name,
            "alias_patterns": policy.alias_patterns,
            "approvers": sorted(approvers),
            "required_approvals": policy.required_approvals,
            "request_ttl_seconds": policy.request_ttl_seconds,
            "gates": policy.gates,
            "description": policy.description,
            "created_at": policy.created_at,
            "created_by": policy.created_by,
            "updated_at": policy.updated_at,
            "updated_by": policy.updated_by,
        }
    ).data


class DecisionOutputSerializer(serializers.Serializer):
    approver = serializers.CharField()
    decision = serializers.ChoiceField(choices=PromotionDecision.Decision.choices)
    comment = serializers.CharField()
    at = serializers.DateTimeField()


class GateResultOutputSerializer(serializers.Serializer):
    gate = serializers.CharField()
    passed = serializers.BooleanField()
    detail = serializers.CharField()


class LinksOutputSerializer(serializers.Serializer):
    console = serializers.URLField()
    api = serializers.URLField()


class PromotionRequestOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    full_name = serializers.CharField(help_text="The registered model.")
    kind = serializers.ChoiceField(choices=PromotionRequest.Kind.choices)
    alias = serializers.CharField(help_text="The alias, or the legacy stage for kind STAGE.")
    version = serializers.IntegerField()
    from_version = serializers.IntegerField(allow_null=True)
    state = serializers.ChoiceField(choices=PromotionRequest.State.choices)
    state_message = serializers.CharField()
    requester = serializers.CharField()
    justification = serializers.CharField()
    policy_id = serializers.UUIDField(allow_null=True)
    required_approvals = serializers.IntegerField()
    approvals = serializers.ListField(
        child=serializers.CharField(),
        help_text="Approvers whose approval still counts (distinct, still named by the policy).",
    )
    decisions = DecisionOutputSerializer(many=True)
    gate_results = GateResultOutputSerializer(many=True)
    rollback = serializers.BooleanField()
    break_glass = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    applied_at = serializers.DateTimeField(allow_null=True)
    links = LinksOutputSerializer()
    can_decide = serializers.BooleanField(help_text="Whether the caller may approve or reject.")


def request_out(request, facts) -> dict:
    return PromotionRequestOutputSerializer(
        {
            "id": request.id,
            "full_name": request.model.full_name,
            "kind": request.kind,
            "alias": request.alias,
            "version": request.version_number,
            "from_version": request.from_version,
            "state": request.state,
            "state_message": request.state_message,
            "requester": request.requester_name,
            "justification": request.justification,
            "policy_id": request.policy_id,
            "required_approvals": request.required_approvals,
            "approvals": facts.approvals,
            "decisions": [
                {
                    "approver": d.approver_name,
                    "decision": d.decision,
                    "comment": d.comment,
                    "at": d.at,
                }
                for d in facts.decisions
            ],
            "gate_results": request.gate_results,
            "rollback": request.rollback,
            "break_glass": request.break_glass,
            "created_at": request.created_at,
            "expires_at": request.expires_at,
            "decided_at": request.decided_at,
            "applied_at": request.applied_at,
            "links": facts.links,
            "can_decide": facts.can_decide,
        }
    ).data


class AliasOutputSerializer(serializers.Serializer):
    full_name = serializers.CharField()
    alias = serializers.CharField()
    version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()
    updated_by = serializers.CharField()


def alias_out(alias) -> dict:
    return AliasOutputSerializer(
        {
            "full_name": alias.model.full_name,
            "alias": alias.alias,
            "version": alias.version.version,
            "updated_at": alias.updated_at,
            "updated_by": alias.updated_by,
        }
    ).data


class AliasHistoryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    alias = serializers.CharField()
    from_version = serializers.IntegerField(allow_null=True)
    to_version = serializers.IntegerField(allow_null=True, help_text="null: the alias was removed.")
    actor = serializers.CharField()
    at = serializers.DateTimeField()
    reason = serializers.CharField()
    promotion_request = serializers.UUIDField(allow_null=True)
    request_id = serializers.CharField(help_text="The API request that made the move.")


def history_out(entry) -> dict:
    return AliasHistoryOutputSerializer(
        {
            "id": entry.id,
            "alias": entry.alias,
            "from_version": entry.from_version,
            "to_version": entry.to_version,
            "actor": entry.actor,
            "at": entry.at,
            "reason": entry.reason,
            "promotion_request": entry.promotion_id,
            "request_id": entry.request_id,
        }
    ).data
