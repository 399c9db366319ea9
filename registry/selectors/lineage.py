"""The lineage of a model version: a registry read built on lineage's graph walk (the registry
sits above lineage, so the walk never needs to import the registry)."""

from __future__ import annotations

from audit.governance import governed
from core.actor import Actor
from lineage import naming
from lineage.models import LineageNode
from lineage.selectors import (
    GraphAnswer,
    audit_graph_query,
    clean_depth,
    clean_direction,
    graph_of,
)
from registry.selectors.versions import model_version_get

Kind = LineageNode.Kind


@governed("lineage.query", atomic=False)
def model_version_lineage(
    *,
    actor: Actor,
    full_name: object,
    version: object,
    depth: object = None,
    direction: object = None,
) -> GraphAnswer:
    """The lineage of one model version (default: upstream, what trained it): its source run,
    the datasets that run read (at their versions), and what produced them."""
    hops = clean_depth(depth)
    way = clean_direction(direction, default="upstream")
    obj = model_version_get(actor=actor, full_name=full_name, version=version)
    ident = naming.identity(Kind.MODEL_VERSION, "", str(obj.pk))
    root = LineageNode.objects.filter(identity=ident).first() or LineageNode(
        kind=Kind.MODEL_VERSION, identity=ident, name=str(obj.pk), model_version_id=obj.pk
    )
    answer = graph_of(
        actor,
        root,
        depth=hops,
        direction=way,
        root_id=root.key,
        seen_models=frozenset({obj.model_id}),
    )
    audit_graph_query(actor, "model_version", f"{obj.model.full_name}/{obj.version}", answer)
    return answer
