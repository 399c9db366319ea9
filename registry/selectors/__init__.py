"""Reads of the model registry, filtered to what the actor may see."""

from registry.selectors.models import registered_model_get, registered_model_list
from registry.selectors.search import (
    model_extras,
    model_version_latest,
    model_version_search,
    parse_stages,
    qualify_name,
    registered_model_search,
)
from registry.selectors.versions import (
    alias_history,
    aliases_of,
    model_version_by_alias,
    model_version_get,
    model_version_list,
    version_extras,
)

__all__ = [
    "alias_history",
    "aliases_of",
    "model_extras",
    "model_version_by_alias",
    "model_version_get",
    "model_version_latest",
    "model_version_list",
    "model_version_search",
    "parse_stages",
    "qualify_name",
    "registered_model_get",
    "registered_model_list",
    "registered_model_search",
    "version_extras",
]
