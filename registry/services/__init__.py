"""Writes to the model registry."""

from registry.services.aliases import (
    alias_delete,
    alias_rollback,
    alias_set,
    model_version_transition_stage,
)
from registry.services.models import (
    registered_model_create,
    registered_model_delete,
    registered_model_update,
)
from registry.services.promotions import (
    alias_break_glass,
    alias_policy_create,
    alias_policy_delete,
    alias_policy_update,
    promotion_request_approve,
    promotion_request_cancel,
    promotion_request_create,
    promotion_request_reject,
)
from registry.services.versions import (
    model_version_create,
    model_version_delete,
    model_version_finalize,
    model_version_tag_delete,
    model_version_tag_set,
    model_version_update,
    registered_model_tag_delete,
    registered_model_tag_set,
)

__all__ = [
    "alias_break_glass",
    "alias_policy_create",
    "alias_policy_delete",
    "alias_policy_update",
    "alias_rollback",
    "promotion_request_approve",
    "promotion_request_cancel",
    "promotion_request_create",
    "promotion_request_reject",
    "alias_delete",
    "alias_set",
    "model_version_create",
    "model_version_delete",
    "model_version_finalize",
    "model_version_tag_delete",
    "model_version_tag_set",
    "model_version_transition_stage",
    "model_version_update",
    "registered_model_create",
    "registered_model_delete",
    "registered_model_tag_delete",
    "registered_model_tag_set",
    "registered_model_update",
]
