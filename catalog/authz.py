"""Effective privileges: the one place that resolves grants, ownership, groups and inheritance.

Rules (README "Privilege rules"):
1. Deny by default; metastore admins (a group) may do everything.
2. A grant on a catalog applies to every schema and model in it; on a schema, to every model in it.
3. To touch anything in a catalog you need USE CATALOG on it, and USE SCHEMA on the schema.
4. The owner (a user or a group) of an object holds ALL PRIVILEGES on it and everything below.
5. Groups nest; a user holds what any of their groups holds.
6. Lists show only what the caller may see; a hidden object answers 404, never 403.

Grants live in django-guardian's direct foreign-key tables, one pair per securable type. Every
question here costs a constant number of queries whatever the size of the tree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.db import connection
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.http import HttpRequest

from accounts.models import User

# Who the actor is (its groups, whether it is an admin) is accounts' to say; authz answers
# every question of what that allows, and re-exports these for its callers.
from accounts.principals import Principals
from accounts.principals import is_admin as is_admin
from accounts.principals import principals as principals
from accounts.principals import principals_for_group as principals_for_group
from accounts.principals import principals_for_user as principals_for_user
from catalog import securables, sql
from catalog.models import Catalog, Metastore, Schema, Securable
from catalog.privileges import APPLICABLE, READ_PRIVILEGES, Privilege, SecurableType
from catalog.securables import Node
from core.actor import Actor
from core.errors import Denial, NotFound, PermissionDenied, StewardError

ALL = Privilege.ALL_PRIVILEGES


def _grant_tables(securable_type: SecurableType) -> tuple[Any, Any]:
    kind = securables.kind(securable_type)
    return kind.user_grants, kind.group_grants


# --- grants --------------------------------------------------------------------------------


def _principal_filter(p: Principals) -> tuple[Q, Q]:
    user_q = Q(user_id=p.user_id) if p.user_id is not None else Q(pk__in=[])
    group_q = Q(group_id__in=p.group_ids) if p.group_ids else Q(pk__in=[])
    return user_q, group_q


def _owned_q(p: Principals, prefix: str = "") -> Q:
    q = Q(pk__in=[])
    if p.user_id is not None:
        q |= Q(**{f"{prefix}owner_user_id": p.user_id})
    if p.group_ids:
        q |= Q(**{f"{prefix}owner_group_id__in": p.group_ids})
    return q


def granted(
    p: Principals, securable_type: SecurableType, object_ids: Iterable[Any] | None = None
) -> dict[Any, set[Privilege]]:
    """Privileges granted to the principals, per object id of one type; one query."""
    user_table, group_table = _grant_tables(securable_type)
    user_q, group_q = _principal_filter(p)
    users = user_table.objects.filter(user_q)
    groups = group_table.objects.filter(group_q)
    if object_ids is not None:
        ids = list(object_ids)
        users = users.filter(content_object_id__in=ids)
        groups = groups.filter(content_object_id__in=ids)
    rows = users.values_list("content_object_id", "permission__codename").union(
        groups.values_list("content_object_id", "permission__codename"), all=True
    )
    result: dict[Any, set[Privilege]] = defaultdict(set)
    for object_id, codename in rows:
        result[object_id].add(Privilege.from_codename(codename))
    return result


def _owns(p: Principals, securable: Node) -> bool:
    owner_user_id = getattr(securable, "owner_user_id", None)  # the metastore has no owner
    if owner_user_id and owner_user_id == p.user_id:
        return True
    return bool(getattr(securable, "owner_group_id", None) in p.group_ids)


def chain_of(securable: Node) -> list[Node]:
    """The securable and its ancestors from the catalog down (a metastore stands alone)."""
    chain = [securable]
    kind = securables.kind(securable.securable_type)
    while kind.parent is not None:
        chain.insert(0, getattr(chain[0], kind.parent_field))
        kind = securables.kind(kind.parent)
    return chain


def _expand(privileges: set[Privilege], securable_type: SecurableType) -> set[Privilege]:
    applicable = APPLICABLE[securable_type]
    if ALL in privileges:
        return set(applicable)
    return {p for p in privileges if p in applicable}


def _grants_on(p: Principals, securables: list[Node]) -> list[set[Privilege]]:
    """Privileges granted to the principals on each securable (of any types); one raw query.

    The hot path of every authorization: a model's catalog, schema and model in one round trip
    and without the ORM's per-query compilation (a third of a read request's CPU before)."""
    if not securables or (p.user_id is None and not p.group_ids):
        return [set() for _ in securables]
    targets = []
    for securable in securables:
        user_table, group_table = _grant_tables(securable.securable_type)
        object_id = user_table._meta.get_field("content_object").target_field.get_db_prep_value(
            securable.pk, connection
        )
        targets.append((user_table, group_table, object_id))
    result: list[set[Privilege]] = [set() for _ in securables]
    for index, codename in sql.chain_grants(p.user_id, sorted(p.group_ids), targets):
        result[index].add(Privilege.from_codename(codename))
    return result


def _held_along(
    p: Principals, chain: list[Node], cache: dict[Hashable, Any] | None = None
) -> list[set[Privilege]]:
    """For each element of the chain, the privileges held there (own grants + inherited)."""
    keys = [("granted", s.securable_type, s.pk) for s in chain]
    missing = [s for s, key in zip(chain, keys, strict=True) if cache is None or key not in cache]
    fetched: dict[Hashable, set[Privilege]] = dict(
        zip(
            [("granted", s.securable_type, s.pk) for s in missing],
            _grants_on(p, missing),
            strict=True,
        )
    )
    if cache is not None:
        cache.update(fetched)
    held: list[set[Privilege]] = []
    accumulated: set[Privilege] = set()
    for securable, key in zip(chain, keys, strict=True):
        own = fetched[key] if key in fetched else cache[key]  # type: ignore[index]
        accumulated = accumulated | own
        if _owns(p, securable):
            accumulated = accumulated | {ALL}
        held.append(_expand(accumulated, securable.securable_type))
    return held


def _gates_ok(chain: list[Node], held: list[set[Privilege]]) -> tuple[bool, str]:
    for securable, privileges in zip(chain, held, strict=True):
        if (
            securable.securable_type == SecurableType.CATALOG
            and Privilege.USE_CATALOG not in privileges
        ):
            return False, f"USE CATALOG on catalog {securable.full_name}"
        if (
            securable.securable_type == SecurableType.SCHEMA
            and Privilege.USE_SCHEMA not in privileges
        ):
            return False, f"USE SCHEMA on schema {securable.full_name}"
    return True, ""


def _held_on(actor: Actor, securable: Node) -> tuple[set[Privilege], bool]:
    """(privileges held on the securable, whether the USE gates above it pass)."""
    p = principals(actor)
    if p.is_admin:
        return set(APPLICABLE[securable.securable_type]), True
    chain = chain_of(securable)
    held = _held_along(p, chain, actor.cache.setdefault("grants", {}))
    ok, _ = _gates_ok(chain, held)
    return held[-1], ok


def check(actor: Actor, privilege: Privilege | str, securable: Any) -> bool:
    """May the actor use `privilege` on `securable`? (all six rules; token scope narrows). An
    object outside the tree (an experiment) is answered by the rules its app registered."""
    rules = _RULES.get(type(securable))
    if rules is not None:
        return _rules_allow(actor, rules, str(privilege), securable, reading=False)
    privilege = Privilege(privilege)
    if actor.read_only and privilege not in READ_PRIVILEGES:
        return False
    held, gates = _held_on(actor, securable)
    return gates and (privilege in held)


def holds(actor: Actor, privilege: Privilege, securable: Node) -> bool:
    """Does the actor's principal hold `privilege` (token scope aside)? For decisions about
    what the actor may *see*, where a read-only token sees what its user sees."""
    held, gates = _held_on(actor, securable)
    return gates and (privilege in held)


def can_see(actor: Actor, securable: Node) -> bool:
    """Visible: the USE gates above it pass and the actor holds some privilege on it."""
    if securable.securable_type == SecurableType.METASTORE:
        return principals(actor).user_id is not None
    p = principals(actor)
    if p.is_admin:
        return True
    chain = chain_of(securable)
    held = _held_along(p, chain, actor.cache.setdefault("grants", {}))
    # The securable's own gate (USE CATALOG on a catalog) is not needed merely to see it.
    ok, _ = _gates_ok(chain[:-1], held[:-1])
    return ok and bool(held[-1])


def require(
    actor: Actor,
    privilege: Privilege | str,
    securable: Any,
    *,
    reading: bool = False,
    subject: tuple[str, str] | None = None,
    not_found: str | None = None,
) -> None:
    """Raise unless `check` passes: 404 if the actor cannot even see it (no existence leak),
    403 otherwise, the refusal a typed Denial. `reading`: the use only reads, so a read-only
    token is not narrowed (what its user holds decides). For an object outside the tree,
    `subject` names what is refused when it is not the object checked (a run, checked on its
    experiment) and `not_found` is the message of the 404."""
    rules = _RULES.get(type(securable))
    if rules is not None:
        _rules_require(actor, rules, str(privilege), securable, reading, subject, not_found)
        return
    privilege = Privilege(privilege)
    if (holds if reading else check)(actor, privilege, securable):
        return
    type_label = str(securable.securable_type).replace("_", " ")
    if not can_see(actor, securable):
        exc: StewardError = NotFound(
            f"{type_label.capitalize()} '{securable.full_name}' does not exist."
        )
    elif actor.read_only and privilege not in READ_PRIVILEGES and not reading:
        exc = PermissionDenied("This token is read-only.")
    else:
        # The metastore's full name is its id (as Unity Catalog's API addresses it); people
        # know it by its name.
        shown = securable.name if type_label == "metastore" else securable.full_name
        exc = PermissionDenied(
            f"User '{actor.username}' does not have {privilege.value} on {type_label} '{shown}'."
        )
    exc.denied = Denial(str(securable.securable_type), securable.full_name, privilege.value)
    raise exc


def require_writer(actor: Actor, denied: Denial, *, what: str) -> None:
    """Writes that no grant governs (recording lineage, creating an experiment) still need an
    active principal and a token that may write; `what` names the write in the refusal."""
    if principals(actor).user_id is None:
        raise PermissionDenied("Authentication required.", denied=denied)
    if actor.read_only:
        raise PermissionDenied(
            f"This token is read-only; {what} needs a write token.", denied=denied
        )


def require_visible(actor: Actor, securable: Node) -> None:
    if not can_see(actor, securable):
        type_label = str(securable.securable_type).replace("_", " ")
        raise NotFound(
            f"{type_label.capitalize()} '{securable.full_name}' does not exist.",
            denied=Denial(str(securable.securable_type), securable.full_name, "BROWSE"),
        )


# --- visibility of lists -------------------------------------------------------------------


def _level_privileges(actor: Actor, securable_type: SecurableType) -> dict[Any, set[Privilege]]:
    """All grants and ownerships of the actor at one level of the tree (catalogs or schemas),
    cached for the request; the first call loads both levels in one raw query.

    Each row also carries the parent catalog (for schemas), kept in `actor.cache` under
    ("parents", type) so that model visibility needs no further lookup.
    """
    key = ("level", securable_type)
    if key not in actor.cache:
        _load_levels(actor)
    level: dict[Any, set[Privilege]] = actor.cache[key]
    return level


def _load_levels(actor: Actor) -> None:
    p = principals(actor)
    levels: dict[SecurableType, tuple[type[Catalog] | type[Schema], str | None]] = {
        SecurableType.CATALOG: (Catalog, None),
        SecurableType.SCHEMA: (Schema, "catalog"),
    }
    rows = sql.level_grants(
        p.user_id,
        sorted(p.group_ids),
        [
            (model, parent, *_grant_tables(model.securable_type))
            for model, parent in levels.values()
        ],
        ALL.codename,
    )
    result: dict[SecurableType, dict[Any, set[Privilege]]] = {st: defaultdict(set) for st in levels}
    parents: dict[SecurableType, dict[Any, Any]] = {st: {} for st in levels}
    types = list(levels)
    to_pk = Catalog._meta.pk.to_python
    for level, pk, parent_id, codename in rows:
        st = types[level]
        pk, parent_id = to_pk(pk), to_pk(parent_id)
        result[st][pk].add(Privilege.from_codename(codename))
        parents[st][pk] = parent_id
    for st in levels:
        actor.cache[("level", st)] = result[st]
        actor.cache[("parents", st)] = parents[st]


def _catalogs_with_use(actor: Actor) -> dict[Any, set[Privilege]]:
    return {
        pk: privs
        for pk, privs in (
            (pk, _expand(privs, SecurableType.CATALOG))
            for pk, privs in _level_privileges(actor, SecurableType.CATALOG).items()
        )
        if Privilege.USE_CATALOG in privs
    }


def _grant_exists(p: Principals, securable_type: SecurableType) -> Q:
    user_table, group_table = _grant_tables(securable_type)
    user_q, group_q = _principal_filter(p)
    return Q(Exists(user_table.objects.filter(user_q, content_object_id=OuterRef("pk")))) | Q(
        Exists(group_table.objects.filter(group_q, content_object_id=OuterRef("pk")))
    )


def visible_catalogs(actor: Actor, queryset: QuerySet[Catalog] | None = None) -> QuerySet[Catalog]:
    qs = Catalog.objects.all() if queryset is None else queryset
    p = principals(actor)
    if p.is_admin:
        return qs
    if p.user_id is None and not p.group_ids:
        return qs.none()
    return qs.filter(_owned_q(p) | _grant_exists(p, SecurableType.CATALOG))


def visible_schemas(actor: Actor, queryset: QuerySet[Schema] | None = None) -> QuerySet[Schema]:
    qs = Schema.objects.all() if queryset is None else queryset
    p = principals(actor)
    if p.is_admin:
        return qs
    use = _catalogs_with_use(actor)
    schema_level = APPLICABLE[SecurableType.SCHEMA]
    full = [pk for pk, privs in use.items() if privs & schema_level]
    return qs.filter(
        Q(catalog_id__in=full)
        | (Q(catalog_id__in=list(use)) & (_owned_q(p) | _grant_exists(p, SecurableType.SCHEMA)))
    )


def visible_models(actor: Actor, queryset: QuerySet[Any] | None = None) -> QuerySet[Any]:
    """Registered models the actor may see, as one query after four small cached ones."""
    qs = (
        securables.model(SecurableType.REGISTERED_MODEL)._default_manager.all()
        if queryset is None
        else queryset
    )
    p = principals(actor)
    if p.is_admin:
        return qs
    model_level = APPLICABLE[SecurableType.REGISTERED_MODEL]
    use = _catalogs_with_use(actor)
    full_catalogs: list[Any] = []
    gated_catalogs: list[Any] = []
    for pk, privs in use.items():
        if Privilege.USE_SCHEMA in privs:
            (full_catalogs if privs & model_level else gated_catalogs).append(pk)
    full_schemas: list[Any] = []
    gated_schemas: list[Any] = []
    schema_rows = _level_privileges(actor, SecurableType.SCHEMA)
    if schema_rows:
        parents = actor.cache[("parents", SecurableType.SCHEMA)]
        for pk, privs in schema_rows.items():
            catalog_id = parents.get(pk)
            if catalog_id not in use:
                continue
            held = _expand(use[catalog_id] | privs, SecurableType.SCHEMA)
            if Privilege.USE_SCHEMA in held:
                (full_schemas if held & model_level else gated_schemas).append(pk)
    if not (full_catalogs or gated_catalogs or full_schemas or gated_schemas):
        return qs.none()
    gated = Q(schema__catalog_id__in=gated_catalogs) | Q(schema_id__in=gated_schemas)
    return qs.filter(
        Q(schema__catalog_id__in=full_catalogs)
        | Q(schema_id__in=full_schemas)
        | (gated & (_owned_q(p) | _grant_exists(p, SecurableType.REGISTERED_MODEL)))
    )


# --- explanations ----------------------------------------------------------------------------


@dataclass
class Source:
    privilege: Privilege
    securable_type: SecurableType
    securable: str
    via: str  # GRANT, OWNERSHIP or ADMIN
    principal: str


def _grants_with_principals(p: Principals, securable: Node) -> list[tuple[Privilege, str]]:
    user_table, group_table = _grant_tables(securable.securable_type)
    user_q, group_q = _principal_filter(p)
    rows = (
        user_table.objects.filter(user_q, content_object_id=securable.pk)
        .values_list("permission__codename", "user__username")
        .union(
            group_table.objects.filter(group_q, content_object_id=securable.pk).values_list(
                "permission__codename", "group__name"
            ),
            all=True,
        )
    )
    return [(Privilege.from_codename(codename), name) for codename, name in rows]


def explain(p: Principals, securable: Node) -> tuple[list[Source], str]:
    """Each privilege `p` holds on `securable` with where it comes from, and the first missing
    USE gate ('' when the gates pass). Answers "why may Alice do this?"."""
    target_type = securable.securable_type
    applicable = APPLICABLE[target_type]
    if p.is_admin:
        return [
            Source(priv, target_type, securable.full_name, "ADMIN", settings.STEWARD_ADMIN_GROUP)
            for priv in sorted(applicable)
        ], ""
    chain = [securable] if target_type == SecurableType.METASTORE else chain_of(securable)
    sources: list[Source] = []
    for node in chain:
        for privilege, principal in _grants_with_principals(p, node):
            for expanded in sorted(_expand({privilege}, target_type)):
                sources.append(
                    Source(expanded, node.securable_type, node.full_name, "GRANT", principal)
                )
        if isinstance(node, Securable) and _owns(p, node):  # the metastore has no owner
            for expanded in sorted(applicable):
                sources.append(
                    Source(
                        expanded, node.securable_type, node.full_name, "OWNERSHIP", node.owner_name
                    )
                )
    missing = ""
    if target_type != SecurableType.METASTORE:
        held = _held_along(p, chain)
        _, missing = _gates_ok(chain, held)
    return sources, missing


# --- Django integration ----------------------------------------------------------------------


class StewardPermissionBackend:
    """`user.has_perm("EXECUTE", model)` answered by `check`, inheritance included."""

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        return None

    def has_perm(self, user_obj: User, perm: str, obj: object = None) -> bool:
        if (
            obj is None
            or not isinstance(obj, (Metastore, Catalog, Schema))
            and not hasattr(obj, "securable_type")
        ):
            return False
        try:
            privilege = (
                Privilege(perm)
                if perm in Privilege._value2member_map_
                else Privilege.from_codename(perm.split(".")[-1])
            )
        except ValueError:
            return False
        # Anything with a `securable_type` is asked about as a node of the tree, as before
        # (`check` refuses a type no app registered).
        return check(Actor.system(user_obj), privilege, cast(Node, obj))


# --- objects outside the tree ------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """How the authorization module answers for a kind of object that is not a securable of
    the tree (an experiment and so its runs), registered by the app that owns it from its
    AppConfig.ready(). `visible(actor, queryset, privilege)` narrows a queryset to what the
    actor may see (privilege None) or holds `privilege` on; `held(actor, obj)` is what the
    actor's principal holds on one object (empty: it cannot see it); a read-only token keeps
    only `reads`; `named(obj)` is (type, name) as refusals and the audit trail name it, and
    `missing(obj)` the message of its 404."""

    visible: Callable[[Actor, QuerySet[Any], Any], QuerySet[Any]]
    held: Callable[[Actor, Any], frozenset[str]] | None = None
    reads: frozenset[str] = frozenset()
    named: Callable[[Any], tuple[str, str]] | None = None
    missing: Callable[[Any], str] | None = None


_RULES: dict[type[Model], Rules] = {}


def register_rules(model: type[Model], rules: Rules) -> None:
    if model in _RULES and _RULES[model] != rules:
        raise RuntimeError(f"Authorization rules for {model.__name__} are registered twice.")
    _RULES[model] = rules


def visible(actor: Actor, queryset: QuerySet[Any], privilege: Any = None) -> QuerySet[Any]:
    """The objects of `queryset` the actor may see (or, for objects outside the tree, on which
    it holds `privilege`), as one query: the one question every list and search asks."""
    rules = _RULES.get(queryset.model)
    if rules is not None:
        return rules.visible(actor, queryset, privilege)
    securable_type = getattr(queryset.model, "securable_type", None)
    if securable_type == SecurableType.METASTORE:
        narrowed = queryset if principals(actor).user_id is not None else queryset.none()
    elif securable_type == SecurableType.CATALOG:
        narrowed = visible_catalogs(actor, queryset)
    elif securable_type == SecurableType.SCHEMA:
        narrowed = visible_schemas(actor, queryset)
    elif securable_type == SecurableType.REGISTERED_MODEL:
        narrowed = visible_models(actor, queryset)
    else:
        raise RuntimeError(f"No authorization rules are registered for {queryset.model.__name__}.")
    if privilege is not None:
        raise ValueError("Securables of the tree are narrowed by visibility only.")
    return narrowed


def _held(actor: Actor, rules: Rules, obj: Any) -> frozenset[str]:
    if rules.held is None:
        raise RuntimeError(f"No rule says what may be done with a {type(obj).__name__}.")
    return rules.held(actor, obj)


def _rules_allow(actor: Actor, rules: Rules, privilege: str, obj: Any, *, reading: bool) -> bool:
    if actor.read_only and not reading and privilege not in rules.reads:
        return False
    return privilege in _held(actor, rules, obj)


def _rules_require(
    actor: Actor,
    rules: Rules,
    privilege: str,
    obj: Any,
    reading: bool,
    subject: tuple[str, str] | None,
    not_found: str | None,
) -> None:
    held = _held(actor, rules, obj)
    if privilege in held and (reading or not actor.read_only or privilege in rules.reads):
        return
    kind, name = rules.named(obj) if rules.named is not None else (type(obj).__name__, "")
    denial = Denial(*(subject or (kind, name)), privilege)
    if not held:
        missing = rules.missing(obj) if rules.missing is not None else f"No {kind} {name} exists"
        raise NotFound(not_found or missing, denied=denial)
    if privilege in held:
        raise PermissionDenied("This token is read-only.", denied=denial)
    raise PermissionDenied(
        f"User '{actor.username}' does not have {privilege} on {kind} {name}.", denied=denial
    )
