"""Reads of the model registry, filtered to what the actor may see."""

from registry.selectors.models import registered_model_get, registered_model_list

__all__ = ["registered_model_get", "registered_model_list"]
