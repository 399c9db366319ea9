"""Alias policies, read side: which policy protects an alias, who may approve, and the gates.

The nearest level (model, then schema, then catalog) holding a policy whose patterns match the
alias wins; among several matching policies on that level the strictest (most approvals)
governs. Used by the promotion services; nothing here writes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from accounts.principals import group_closure
from catalog.scoped import nearest
from core.errors import InvalidParameter
from registry.models import AliasPolicy, ModelVersion, PromotionRequest, RegisteredModel
from tracking.models import LatestMetric

_PATTERN = re.compile(r"^[a-z0-9_\-*?]{1,255}$")
MAX_PATTERNS = 20
MAX_APPROVALS = 10
OPS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def stage_alias(stage: str) -> str:
    """A legacy stage is protected like an alias named after it in lower case."""
    return str(stage).lower()


def matches(policy: AliasPolicy, alias: str) -> bool:
    return any(fnmatchcase(alias, pattern) for pattern in policy.alias_patterns)


def policy_for(model: RegisteredModel, alias: str) -> AliasPolicy | None:
    """The policy governing `alias` on `model`, or None if the alias is unprotected (1 query)."""
    hits = nearest(
        p for p in AliasPolicy.objects.filter(AliasPolicy.around_q(model)) if matches(p, alias)
    )
    if not hits:
        return None
    # Two matching policies on one level: the stricter, then the older, governs.
    return max(hits, key=lambda p: (p.required_approvals, -p.created_at.timestamp()))


def is_approver(policy: AliasPolicy | None, user) -> bool:
    """Named in the policy, directly or through a group (nested groups count); active."""
    if policy is None or user is None or not user.is_authenticated or not user.is_active:
        return False
    if policy.approver_users.filter(pk=user.pk).exists():
        return True
    groups = group_closure(user_id=user.pk)
    return bool(groups) and policy.approver_groups.filter(pk__in=list(groups)).exists()


def counted_approvals(request: PromotionRequest) -> list[str]:
    """Names of the approvers whose approval still counts: distinct, not the requester, and
    still named by the policy now (an approver who lost the right no longer counts)."""
    names = []
    for decision in request.decisions.select_related("approver").filter(decision="APPROVE"):
        if decision.approver_id is None or decision.approver_id == request.requester_id:
            continue
        if is_approver(request.policy, decision.approver):
            names.append(decision.approver_name)
    return names


# --- gates -----------------------------------------------------------------------------------


@dataclass
class Gate:
    gate: str
    passed: bool
    detail: str

    def as_dict(self) -> dict:
        return {"gate": self.gate, "passed": self.passed, "detail": self.detail}


def evaluate_gates(policy: AliasPolicy | None, version: ModelVersion) -> list[Gate]:
    """Every gate of the policy against the version; READY and ACTIVE are always required."""
    results = [
        Gate(
            "status READY",
            version.status == ModelVersion.Status.READY
            and version.lifecycle == ModelVersion.Lifecycle.ACTIVE,
            f"version {version.version} is {version.status}, {version.lifecycle}",
        )
    ]
    gates = (policy.gates if policy else None) or {}
    tags = {t.key: t.value for t in version.tags.all()} if gates.get("required_tags") else {}
    for key, wanted in (gates.get("required_tags") or {}).items():
        have = tags.get(key)
        results.append(
            Gate(
                f"tag {key}={wanted}",
                have == wanted,
                f"version {version.version} has {key}={have}"
                if have is not None
                else f"version {version.version} has no tag {key}",
            )
        )
    metrics = gates.get("metrics") or []
    if metrics:
        values = _run_metrics(version.run_id)
        for rule in metrics:
            key, op, bound = rule["key"], rule["op"], float(rule["value"])
            value = values.get(key)
            name = f"metric {key} {op} {bound:g}"
            if not version.run_id:
                results.append(Gate(name, False, "the version has no source run"))
            elif value is None or math.isnan(value):
                results.append(Gate(name, False, f"the source run has no metric {key}"))
            else:
                results.append(
                    Gate(name, OPS[op](value, bound), f"{key} = {value:g} on the source run")
                )
    if gates.get("require_signature"):
        results.append(
            Gate(
                "signature present",
                bool(version.signature),
                "the MLmodel file declares a signature"
                if version.signature
                else "the MLmodel file declares no signature",
            )
        )
    return results


def _run_metrics(run_id: str) -> dict[str, float]:
    if not run_id:
        return {}

    return {
        m.key: (math.nan if m.is_nan else m.value)
        for m in LatestMetric.objects.filter(run__run_id=run_id)
    }


def run_metrics(run_id: str) -> dict[str, float]:
    """The latest value of each metric of a run (for the metric differences in emails)."""
    return _run_metrics(run_id)


def failed(results: list[Gate]) -> list[Gate]:
    return [g for g in results if not g.passed]


# --- validation of policy input ---------------------------------------------------------------


def clean_patterns(value) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > MAX_PATTERNS:
        raise InvalidParameter(f"alias_patterns must be a list of 1 to {MAX_PATTERNS} patterns.")
    out = []
    for pattern in value:
        if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern.lower()):
            raise InvalidParameter(
                "Each alias pattern is 1-255 letters, digits, '_', '-', or the wildcards '*' "
                "and '?'."
            )
        out.append(pattern.lower())
    return sorted(set(out))


def clean_gates(value) -> dict:
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter("gates must be an object.")
    unknown = set(value) - {"required_tags", "metrics", "require_signature"}
    if unknown:
        raise InvalidParameter(f"Unknown gate {sorted(unknown)[0]!r}.")
    out: dict = {}
    tags = value.get("required_tags")
    if tags not in (None, {}):
        if not isinstance(tags, dict) or len(tags) > 50:
            raise InvalidParameter("gates.required_tags must be an object of at most 50 tags.")
        for key, wanted in tags.items():
            if (
                not key
                or len(key) > 250
                or not isinstance(wanted, str)
                or len(wanted) > 5000
                or "\x00" in key + wanted
            ):
                raise InvalidParameter("gates.required_tags maps tag keys to string values.")
        out["required_tags"] = dict(tags)
    metrics = value.get("metrics")
    if metrics not in (None, []):
        if not isinstance(metrics, list) or len(metrics) > 50:
            raise InvalidParameter("gates.metrics must be a list of at most 50 rules.")
        rules = []
        for rule in metrics:
            if (
                not isinstance(rule, dict)
                or set(rule) != {"key", "op", "value"}
                or not isinstance(rule["key"], str)
                or not 0 < len(rule["key"]) <= 250
                or "\x00" in rule["key"]
                or not isinstance(rule["op"], str)
                or rule["op"] not in OPS
                or not _finite_number(rule["value"])
            ):
                raise InvalidParameter(
                    "Each metric gate is {key, op, value} with op one of "
                    + ", ".join(OPS)
                    + " and a finite number."
                )
            rules.append({"key": rule["key"], "op": rule["op"], "value": rule["value"]})
        out["metrics"] = rules
    signature = value.get("require_signature")
    if signature is not None:
        if not isinstance(signature, bool):
            raise InvalidParameter("gates.require_signature must be true or false.")
        if signature:
            out["require_signature"] = True
    return out


def _finite_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        return False


def clean_required_approvals(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_APPROVALS:
        raise InvalidParameter(
            f"required_approvals must be a whole number from 1 to {MAX_APPROVALS}."
        )
    return value


def clean_ttl(value) -> int:
    """Request expiry in seconds: one hour to 90 days."""
    if isinstance(value, bool) or not isinstance(value, int) or not 3600 <= value <= 90 * 86400:
        raise InvalidParameter(
            "request_ttl_seconds must be from 3600 (1 hour) to 7776000 (90 days)."
        )
    return value
