"""MLflow-style registry reads: model names with a default namespace, filtered searches of
registered models and versions, and the latest version per stage.

Search uses the filter grammar of tracking.search (clauses joined by AND); what a clause may
name is decided here. Results are only what the actor may see (authz.visible_models).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import Exists, F, Model, OuterRef, Q, QuerySet
from django.db.models.expressions import OrderBy

from audit.governance import governed
from catalog import authz
from catalog.selectors import model_lookup
from core import rows
from core.actor import Actor
from core.errors import InvalidParameter, NotFound
from core.names import split_full_name
from core.pagination import decode_token, encode_token, page_size
from registry.models import (
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
)
from registry.selectors.versions import _visible_model
from registry.services.lookups import show_overdue
from registry.services.versions import prefetched_tags
from tracking.search import Clause, bad, parse_filter, parse_order_by, string_condition

STAGE_ORDER = [s.value for s in ModelVersion.Stage]
_STAGES = {s.lower(): s for s in STAGE_ORDER}
# Deep offsets make the database walk everything before them; page further with a filter.
MAX_OFFSET = 100_000


def qualify_name(value: object, *, field: str = "name") -> str:
    """An MLflow registry name as a Steward full name: `c.s.m` as is, a bare `m` in the
    default namespace (STEWARD_DEFAULT_NAMESPACE); any other shape is refused."""
    if not isinstance(value, str) or not value:
        raise InvalidParameter(f"{field} must be a non-empty string.")
    if "." not in value:
        value = f"{settings.STEWARD_DEFAULT_NAMESPACE}.{value}"
    return ".".join(split_full_name(value, 3, field=field))


def parse_stages(stages: object) -> list[str]:
    """Stage names as MLflow spells them (any case in); none means every stage."""
    if stages in (None, []):
        return list(STAGE_ORDER)
    if isinstance(stages, str) or not isinstance(stages, list):
        raise InvalidParameter("stages must be a list of strings.")
    out: list[str] = []
    for stage in stages:
        if not isinstance(stage, str) or stage.lower() not in _STAGES:
            raise InvalidParameter(
                f"Invalid stage {str(stage)[:40]!r}; expected one of {', '.join(STAGE_ORDER)}."
            )
        if _STAGES[stage.lower()] not in out:
            out.append(_STAGES[stage.lower()])
    return out


# --- filters -------------------------------------------------------------------------------


def _name_q(op: str, value: Any, *, full: str = "full_name", short: str = "name") -> Q:
    """`name` compares with the full name; a bare name means the default namespace, and a
    pattern matches either the full name or, in the default namespace, the short one."""
    if op in {"=", "!="}:
        if not isinstance(value, str):
            raise bad("name needs a quoted string value")
        target = value if "." in value else f"{settings.STEWARD_DEFAULT_NAMESPACE}.{value}"
        q = Q(**{full: target.lower()})
        return ~q if op == "!=" else q
    if op in {"IN", "NOT IN"}:
        targets = [
            (v if "." in v else f"{settings.STEWARD_DEFAULT_NAMESPACE}.{v}").lower() for v in value
        ]
        q = Q(**{f"{full}__in": targets})
        return ~q if op == "NOT IN" else q
    if op in {"LIKE", "ILIKE"}:
        if not isinstance(value, str):
            raise bad(f"{op} needs a quoted string pattern")
        in_default = Q(**{f"{full}__startswith": f"{settings.STEWARD_DEFAULT_NAMESPACE}."})
        return string_condition(full, op, value) | (in_default & string_condition(short, op, value))
    raise bad(f"operator {op} does not apply to name")


def _tag_q(
    clause: Clause, table: type[RegisteredModelTag] | type[ModelVersionTag], parent: str
) -> Q:
    """MLflow's tag semantics: `!=` and NOT IN also match objects without the tag (the
    client's `tag.mlflow.prompt.is_prompt != 'true'` must keep untagged models)."""
    rows = table.objects.filter(**{parent: OuterRef("pk"), "key": clause.key})
    if clause.op == "IS NULL":
        return ~Q(Exists(rows))
    if clause.op == "IS NOT NULL":
        return Q(Exists(rows))
    if clause.op == "!=":
        return ~Q(Exists(rows.filter(string_condition("value", "=", clause.value))))
    if clause.op == "NOT IN":
        return ~Q(Exists(rows.filter(string_condition("value", "IN", clause.value))))
    return Q(Exists(rows.filter(string_condition("value", clause.op, clause.value))))


def _version_number_q(op: str, value: Any) -> Q:
    if isinstance(value, str) and value.isdigit() and len(value) <= 10:
        value = float(value)
    if not isinstance(value, float) or value != int(value):
        raise bad("version_number needs an integer value")
    lookups = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
    if op == "!=":
        return ~Q(version=int(value))
    if op not in lookups:
        raise bad(f"operator {op} does not apply to version_number")
    return Q(**{f"version__{lookups[op]}": int(value)})


def _model_clause_q(clause: Clause) -> Q:
    if clause.entity == "tag":
        return _tag_q(clause, RegisteredModelTag, "model")
    if clause.entity == "attribute" and clause.key == "name":
        return _name_q(clause.op, clause.value)
    raise bad(
        f"unsupported filter on registered models: {clause.entity}.{clause.key[:100]}; "
        "use name or tag.<key>"
    )


def _version_clause_q(clause: Clause) -> Q:
    if clause.entity == "tag":
        return _tag_q(clause, ModelVersionTag, "version")
    if clause.entity != "attribute":
        raise bad(f"{clause.entity} filters are not supported on model versions")
    if clause.key == "name":
        return _name_q(clause.op, clause.value, full="model__full_name", short="model__name")
    if clause.key == "version_number":
        return _version_number_q(clause.op, clause.value)
    if clause.key in {"run_id", "source_path", "source"}:
        field = "run_id" if clause.key == "run_id" else "source"
        if clause.op in {"IS NULL", "IS NOT NULL"}:
            raise bad("IS NULL applies to tags only")
        return string_condition(field, clause.op, clause.value)
    raise bad(
        f"unsupported filter on model versions: {clause.key[:100]!r}; use name, "
        "version_number, run_id, source_path or tag.<key>"
    )


# --- ordering and pages ------------------------------------------------------------------------

_MODEL_ORDER = {
    "name": "full_name",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "updated_at",
    "timestamp": "updated_at",
}
_VERSION_ORDER = {
    "name": "model__full_name",
    "version_number": "version",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "updated_at",
    "timestamp": "updated_at",
    "run_id": "run_id",
}


def _ordering(order_by: object, fields: dict[str, str], default: list[OrderBy]) -> list[OrderBy]:
    terms = parse_order_by(order_by)
    ordering: list[OrderBy] = []
    for term in terms:
        if term.entity != "attribute" or term.key not in fields:
            raise bad(f"cannot order by {term.key[:100]!r}; expected one of {sorted(fields)}")
        expr = F(fields[term.key])
        ordering.append(expr.asc() if term.ascending else expr.desc())
    return ordering + default


_M = TypeVar("_M", bound=Model)


def _offset_page(
    qs: QuerySet[_M], *, max_results: object, page_token: str | None
) -> tuple[list[_M], str | None]:
    """A page by offset (ordered searches cannot use a single keyset); the token is opaque."""
    size = page_size(max_results)
    raw = decode_token(page_token)
    offset = 0
    if raw is not None:
        if not raw.isdigit() or int(raw) > MAX_OFFSET:
            raise InvalidParameter("Invalid page_token.")
        offset = int(raw)
    items = list(qs[offset : offset + size + 1])
    more = len(items) > size
    return items[:size], (encode_token(str(offset + size)) if more else None)


# --- selectors -------------------------------------------------------------------------------


@governed("registered_model.search", atomic=False)
def registered_model_search(
    *,
    actor: Actor,
    filter: object = None,
    max_results: object = None,
    order_by: object = None,
    page_token: str | None = None,
) -> tuple[list[RegisteredModel], str | None]:
    """Visible models matching an MLflow filter (name, tags), ordered and paged."""
    q = Q()
    for clause in parse_filter(filter):
        q &= _model_clause_q(clause)
    ordering = _ordering(order_by, _MODEL_ORDER, [F("full_name").asc()])
    qs = (
        authz.visible_models(actor, RegisteredModel.objects.filter(q))
        .select_related("schema__catalog")
        .order_by(*ordering)
    )
    return _offset_page(qs, max_results=max_results, page_token=page_token)


@governed("model_version.search", atomic=False)
def model_version_search(
    *,
    actor: Actor,
    filter: object = None,
    max_results: object = None,
    order_by: object = None,
    page_token: str | None = None,
) -> tuple[list[ModelVersion], str | None]:
    """Live versions of visible models matching an MLflow filter, ordered and paged."""
    q = Q()
    clauses = parse_filter(filter)
    for clause in clauses:
        q &= _version_clause_q(clause)
    ordering = _ordering(
        order_by, _VERSION_ORDER, [F("model__full_name").asc(), F("version").desc()]
    )
    named = _named_model(clauses)
    pinned: RegisteredModel | None = None
    if named is not None:
        # `name = '<model>'` (what the mlflow client sends for one model's versions): that
        # model alone, if the actor may see it, instead of every visible model.
        pinned = _model_if_visible(actor, named)
        if pinned is None:
            return [], None
        scope: dict[str, Any] = {"model_id": pinned.pk}
    else:
        scope = {"model__in": authz.visible_models(actor).values("pk")}
    qs = (
        ModelVersion.objects.filter(q, **scope)
        .exclude(lifecycle=ModelVersion.Lifecycle.DELETED)
        .order_by(*ordering)
    )
    if named is None:
        qs = qs.select_related("model")  # rendering needs the model's name, not its parents
    items, token = _offset_page(qs, max_results=max_results, page_token=page_token)
    for item in items:
        if pinned is not None:
            item.model = pinned
        show_overdue(item)
    return items, token


def _named_model(clauses: list[Clause]) -> str | None:
    """The full name an equality clause on `name` pins the search to, if there is one."""
    for clause in clauses:
        if (
            clause.entity == "attribute"
            and clause.key == "name"
            and clause.op == "="
            and isinstance(clause.value, str)
        ):
            value = clause.value
            return (
                value if "." in value else f"{settings.STEWARD_DEFAULT_NAMESPACE}.{value}"
            ).lower()
    return None


def _model_if_visible(actor: Actor, full_name: str) -> RegisteredModel | None:
    """The model of that full name if it exists and the actor may see it; None otherwise
    (a search then finds nothing, as the general filter would, without saying which)."""
    try:
        model: RegisteredModel = model_lookup(full_name)
    except (NotFound, InvalidParameter):
        return None
    return model if authz.can_see(actor, model) else None


@dataclass
class ModelExtras:
    """What rendering registered models needs besides their rows, by model id: tags
    [(key, value)] sorted by key, aliases [(alias, version number)] sorted by alias, the
    latest active version per stage (instances in stage order, tags loaded), and by version
    id the aliases of those versions."""

    tags: dict[UUID, list[tuple[str, str]]] = field(default_factory=dict)
    aliases: dict[UUID, list[tuple[str, int]]] = field(default_factory=dict)
    latest: dict[UUID, list[ModelVersion]] = field(default_factory=dict)
    version_aliases: dict[UUID, list[str]] = field(default_factory=dict)


_VERSION = rows.Part(ModelVersion, "v")


@functools.cache
def _extras_sql(vendor: str, n_models: int, n_stages: int) -> str:
    """One statement: the latest versions (a window function, which PostgreSQL and SQLite
    share), then the latest versions' tags, the model tags and the aliases as further rows of
    the same shape: (kind, model id, text, text, number, version id, version columns...).
    On PostgreSQL the id and stage lists are array parameters, so there is one text (and
    one prepared statement) for any number of models."""
    vt, vtag, mtag, alias = (
        m._meta.db_table for m in (ModelVersion, ModelVersionTag, RegisteredModelTag, ModelAlias)
    )
    models_in, stages_in = rows.any_of(vendor, n_models), rows.any_of(vendor, n_stages)
    nulls = ", ".join(["NULL"] * len(_VERSION.concrete))
    return (
        "WITH latest AS (SELECT * FROM (SELECT x.*, ROW_NUMBER() OVER ("
        "PARTITION BY x.model_id, x.stage ORDER BY x.version DESC) AS rn "
        f'FROM "{vt}" x WHERE x.model_id {models_in} AND x.lifecycle = %s '
        f"AND x.stage {stages_in}) y WHERE y.rn = 1) "
        # (PostgreSQL types a UNION's columns pairwise from the left: the number column is
        # typed here, before NULLs of later parts could make it text.)
        "SELECT 'V', v.model_id, NULL, NULL, CAST(NULL AS integer), NULL, "
        f"{_VERSION.columns} FROM latest v "
        f"UNION ALL SELECT 'G', v.model_id, t.key, t.value, NULL, t.version_id, {nulls} "
        f'FROM latest v JOIN "{vtag}" t ON t.version_id = v.id '
        f"UNION ALL SELECT 'T', t.model_id, t.key, t.value, NULL, NULL, {nulls} "
        f'FROM "{mtag}" t WHERE t.model_id {models_in} '
        f"UNION ALL SELECT 'A', a.model_id, a.alias, NULL, av.version, a.version_id, {nulls} "
        f'FROM "{alias}" a JOIN "{vt}" av ON av.id = a.version_id WHERE a.model_id {models_in}'
    )


def model_extras(models: Iterable[RegisteredModel], stages: list[str] | None = None) -> ModelExtras:
    """Tags, aliases and latest versions per stage of these models (see ModelExtras), in one
    raw statement whose text is built once: rendering a page of models costs one round trip
    and no ORM query compilation."""
    stages = list(stages or STAGE_ORDER)
    by_pk = {m.pk: m for m in models}
    out = ModelExtras()
    if not by_pk:
        return out
    model_of = {rows.db_value(RegisteredModel, "id", pk): pk for pk in by_pk}
    ids = list(model_of)
    active = ModelVersion.Lifecycle.ACTIVE
    vendor = connection.vendor
    params: list[Any]
    if vendor == "postgresql":
        params = [ids, active, stages, ids, ids]
    else:
        params = [*ids, active, *stages, *ids, *ids]
    with connection.cursor() as cursor:
        cursor.execute(_extras_sql(vendor, len(ids), len(stages)), params)
        found = cursor.fetchall()
    version_tags: dict[Any, list[tuple[str, str]]] = {}  # raw version id -> [(key, value)]
    alias_rows: list[tuple[Any, str]] = []  # (raw version id, alias)
    for row in found:
        kind, model_id = row[0], model_of[row[1]]
        if kind == "V":
            (version,) = rows.build([_VERSION], row[6:])
            version.model = by_pk[model_id]  # the caller's instance, parents loaded
            show_overdue(version)
            out.latest.setdefault(model_id, []).append(version)
        elif kind == "G":
            version_tags.setdefault(row[5], []).append((row[2], row[3]))
        elif kind == "T":
            out.tags.setdefault(model_id, []).append((row[2], row[3]))
        else:
            out.aliases.setdefault(model_id, []).append((row[2], row[4]))
            alias_rows.append((row[5], row[2]))
    for tag_pairs in out.tags.values():
        tag_pairs.sort()
    for alias_pairs in out.aliases.values():
        alias_pairs.sort()
    order = {stage: i for i, stage in enumerate(stages)}
    latest_by_raw: dict[Any, ModelVersion] = {}
    for versions in out.latest.values():
        versions.sort(key=lambda v: order[v.stage])
        for version in versions:
            raw = rows.db_value(ModelVersion, "id", version.pk)
            latest_by_raw[raw] = version
            prefetched_tags(
                version,
                [
                    ModelVersionTag(version_id=version.pk, key=key, value=value)
                    for key, value in sorted(version_tags.get(raw, ()))
                ],
            )
    for raw, name in alias_rows:
        version = latest_by_raw.get(raw)
        if version is not None:
            out.version_aliases.setdefault(version.pk, []).append(name)
    for names in out.version_aliases.values():
        names.sort()
    return out


@governed("model_version.latest", atomic=False)
def model_version_latest(
    *, actor: Actor, full_name: object, stages: object = None
) -> list[ModelVersion]:
    """The latest active version in each asked-for stage (every stage when none is named)."""
    model = _visible_model(actor, full_name)
    return model_extras([model], parse_stages(stages)).latest.get(model.pk, [])
