"""Writes to the model registry."""

from registry.services.models import (
    registered_model_create,
    registered_model_delete,
    registered_model_update,
)

__all__ = ["registered_model_create", "registered_model_delete", "registered_model_update"]
