"""SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2), parsed with scim2-filter-parser.

We use the package's lexer and parser and compile its AST ourselves, into a Django Q (list
queries) or a Python predicate (PATCH value filters such as `members[value eq "12"]`), rather
than its own Django transpiler, because that one:
- silently drops attributes missing from its map (`nosuch eq "x"` would match every row), where
  an unsupported filter must answer 400 invalidFilter;
- maps `pr` to IS NOT NULL, which every non-null text column satisfies;
- inherits the parser's equal precedence of `and` and `or` (`a or b and c` parses as
  `(a or b) and c`). We regroup each unparenthesised chain so that `and` binds tighter.
No SQL text is ever built from the filter: values only reach the ORM as lookup arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from scim2_filter_parser import ast as sast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser

from accounts.scim.errors import InvalidFilter, InvalidPath

MAX_FILTER_LENGTH = 2000
MAX_DEPTH = 40

STRING_OPS = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"}


def parse_filter(text: str, *, error=InvalidFilter) -> sast.Filter:
    """The AST of a filter; any lexing or parsing failure is a 400 of the given kind."""
    if not isinstance(text, str) or not text.strip():
        raise error("The filter is empty.")
    if len(text) > MAX_FILTER_LENGTH or "\x00" in text:
        raise error(f"The filter must be at most {MAX_FILTER_LENGTH} characters.")
    try:
        tree = SCIMParser().parse(SCIMLexer().tokenize(text))
    except Exception as exc:  # the package raises ValueError, SCIMParserError and others
        raise error(f"Invalid filter: {str(exc)[:200]}") from None
    if not isinstance(tree, sast.Filter):
        raise error("Invalid filter.")
    return tree


def _fold(node, leaf: Callable[[sast.AttrExpr, Any], Any], ns=None, depth: int = 0):
    """Combine the leaves of a filter AST with &, | and ~ (Q objects and Predicates alike)."""
    if depth > MAX_DEPTH:
        raise InvalidFilter("The filter is nested too deeply.")
    if isinstance(node, sast.Filter):
        inner_ns = ns
        if node.namespace is not None:
            if ns is not None or getattr(node.namespace, "sub_attr", None) is not None:
                raise InvalidFilter("Nested value filters are not supported.")
            inner_ns = node.namespace
        if isinstance(node.expr, sast.LogExpr):
            result = _chain(node.expr, leaf, inner_ns, depth + 1)
        else:
            result = _fold(node.expr, leaf, inner_ns, depth + 1)
        return ~result if node.negated else result
    if isinstance(node, sast.AttrExpr):
        return leaf(node, ns)
    if isinstance(node, sast.LogExpr):
        return _chain(node, leaf, ns, depth + 1)
    raise InvalidFilter("Unsupported filter expression.")


def _chain(log: sast.LogExpr, leaf, ns, depth: int):
    """An unparenthesised run `x1 op x2 op x3 ...`, regrouped as an OR of ANDs.

    An in-order walk of the parser's tree gives back the operands in text order whatever the
    grouping it chose; a parenthesised group is wrapped in an extra Filter node and stays whole.
    """
    operands: list = []
    ops: list[str] = []

    def operand(f, d: int) -> None:
        if d > MAX_DEPTH:
            raise InvalidFilter("The filter is nested too deeply.")
        if (
            isinstance(f, sast.Filter)
            and not f.negated
            and f.namespace is None
            and isinstance(f.expr, sast.LogExpr)
        ):
            walk(f.expr, d + 1)
        else:
            operands.append(_fold(f, leaf, ns, d + 1))

    def walk(node: sast.LogExpr, d: int) -> None:
        operand(node.expr1, d)
        ops.append(str(node.op).lower())
        operand(node.expr2, d)

    walk(log, depth)
    groups = [[operands[0]]]
    for op, item in zip(ops, operands[1:], strict=True):
        if op == "and":
            groups[-1].append(item)
        elif op == "or":
            groups.append([item])
        else:
            raise InvalidFilter(f"Unknown logical operator '{op}'.")
    result = None
    for group in groups:
        conj = group[0]
        for item in group[1:]:
            conj = conj & item
        result = conj if result is None else result | conj
    return result


def _leaf_parts(node: sast.AttrExpr, ns) -> tuple[str | None, str, str | None, str, str | None]:
    """(uri, attribute, sub-attribute, operator, value) of one comparison."""
    path = node.attr_path
    sub: str | None
    if not isinstance(path.attr_name, str):
        raise InvalidFilter("Filters of the form attr[...].sub are not supported.")
    if ns is not None:
        if path.sub_attr is not None or path.uri is not None:
            raise InvalidFilter("Unsupported attribute inside a value filter.")
        uri, attr, sub = ns.uri, ns.attr_name, path.attr_name
    else:
        uri, attr = path.uri, path.attr_name
        sub = path.sub_attr.value if path.sub_attr is not None else None
    op = str(node.value).lower()
    value = node.comp_value.value if node.comp_value is not None else None
    return uri, attr, sub, op, value


# --- filters on querysets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attr:
    """How one SCIM attribute is queried: the ORM field and the kind of comparison."""

    field: str
    kind: str  # "str" (case-insensitive), "str_exact", "bool", "id", "member"


ID_PATTERN = re.compile(r"^[0-9]{1,18}$")


def _string_q(field: str, op: str, value: str | None, exact: bool) -> Q:
    if op == "pr":
        return Q(**{f"{field}__isnull": False}) & ~Q(**{field: ""})
    if value is None:
        raise InvalidFilter(f"Operator '{op}' needs a value.")
    if op in {"eq", "ne"}:
        if value == "":
            q = Q(**{field: ""}) | Q(**{f"{field}__isnull": True})
        else:
            q = Q(**{f"{field}__{'exact' if exact else 'iexact'}": value})
        return ~q if op == "ne" else q
    lookup = {
        "co": "contains",
        "sw": "startswith",
        "ew": "endswith",
        "gt": "gt",
        "ge": "gte",
        "lt": "lt",
        "le": "lte",
    }[op]
    if not exact and op in {"co", "sw", "ew"}:
        lookup = "i" + lookup
    return Q(**{f"{field}__{lookup}": value})


class QueryFilter:
    """Compile filters over one resource type into a Q, refusing anything it cannot answer."""

    def __init__(
        self,
        attrs: dict[tuple[str, str | None], Attr],
        schema_urn: str,
        id_q: Callable[[str], Q],
        member_q: Callable[[str], Q] | None = None,
    ):
        self.attrs = {(a.lower(), s.lower() if s else None): v for (a, s), v in attrs.items()}
        self.schema_urn = schema_urn.lower()
        self.id_q = id_q
        self.member_q = member_q

    def q(self, text: str) -> Q:
        return _fold(parse_filter(text), self._leaf)

    def _leaf(self, node: sast.AttrExpr, ns) -> Q:
        uri, attr, sub, op, value = _leaf_parts(node, ns)
        name = f"{attr}.{sub}" if sub else attr
        if uri is not None and uri.lower() != self.schema_urn:
            raise InvalidFilter(f"Filtering on '{uri}:{name}' is not supported.")
        spec = self.attrs.get((attr.lower(), sub.lower() if sub else None))
        if spec is None:
            raise InvalidFilter(f"Filtering on '{name}' is not supported.")
        if op not in STRING_OPS:
            raise InvalidFilter(f"Unknown operator '{op}'.")
        if spec.kind in {"str", "str_exact"}:
            return _string_q(spec.field, op, value, spec.kind == "str_exact")
        if spec.kind == "bool":
            if op == "pr":
                return Q()
            if op not in {"eq", "ne"} or value not in {"true", "false"}:
                raise InvalidFilter(f"'{name}' is compared with eq or ne to true or false.")
            q = Q(**{spec.field: value == "true"})
            return ~q if op == "ne" else q
        if op not in {"eq", "ne"} or value is None:
            raise InvalidFilter(f"'{name}' supports only eq and ne.")
        q = self.id_q(value) if spec.kind == "id" else self.member_q(value)  # type: ignore[misc]
        return ~q if op == "ne" else q


# --- filters on PATCH values ------------------------------------------------------------------


class Predicate:
    """A boolean test on one value of a multi-valued attribute (a dict such as a member)."""

    def __init__(self, fn: Callable[[dict], bool]):
        self.fn = fn

    def __call__(self, item: dict) -> bool:
        return self.fn(item)

    def __and__(self, other: Predicate) -> Predicate:
        return Predicate(lambda item: self(item) and other(item))

    def __or__(self, other: Predicate) -> Predicate:
        return Predicate(lambda item: self(item) or other(item))

    def __invert__(self) -> Predicate:
        return Predicate(lambda item: not self(item))


def _compare(actual: Any, op: str, expected: str | None) -> bool:
    if op == "pr":
        return actual not in (None, "", [], {})
    if actual is None or expected is None:
        return op == "ne"
    if isinstance(actual, bool):
        if op not in {"eq", "ne"}:
            return False
        return (str(actual).lower() == expected.lower()) == (op == "eq")
    left, right = str(actual).casefold(), expected.casefold()
    return {
        "eq": left == right,
        "ne": left != right,
        "co": right in left,
        "sw": left.startswith(right),
        "ew": left.endswith(right),
        "gt": left > right,
        "ge": left >= right,
        "lt": left < right,
        "le": left <= right,
    }.get(op, False)


def value_predicate(tree: sast.Filter, sub_attrs: set[str]) -> Predicate:
    """A Predicate for the filter inside `attr[...]`, over the given sub-attributes only."""
    allowed = {s.lower(): s for s in sub_attrs}

    def leaf(node: sast.AttrExpr, ns) -> Predicate:
        uri, attr, sub, op, value = _leaf_parts(node, ns)
        if uri is not None or sub is not None or attr.lower() not in allowed:
            raise InvalidPath(f"Unsupported attribute '{attr}' in a value filter.")
        if op not in STRING_OPS:
            raise InvalidPath(f"Unknown operator '{op}'.")
        key = allowed[attr.lower()]

        def test(item: dict) -> bool:
            return _compare(item.get(key), op, value)

        return Predicate(test)

    try:
        return _fold(tree, leaf)
    except InvalidFilter as exc:
        raise InvalidPath(exc.message) from None


def equality_defaults(tree: sast.Filter) -> dict[str, str]:
    """`type eq "work"` -> {"type": "work"}: what a value created to satisfy a filter carries."""
    expr = tree.expr
    while isinstance(expr, sast.Filter) and not expr.negated and expr.namespace is None:
        expr = expr.expr
    if isinstance(expr, sast.AttrExpr) and str(expr.value).lower() == "eq":
        path = expr.attr_path
        if isinstance(path.attr_name, str) and path.sub_attr is None and expr.comp_value:
            return {path.attr_name: expr.comp_value.value}
    return {}


# --- PATCH paths ------------------------------------------------------------------------------

_PATH = re.compile(
    r"^(?:(?P<uri>urn:[^\[\]\s]+):)?"
    r"(?P<attr>[A-Za-z][A-Za-z0-9_$-]*)"
    r"(?:\[(?P<filter>.+)\])?"
    r"(?:\.(?P<sub>[A-Za-z][A-Za-z0-9_$-]*))?$",
    re.DOTALL,
)


@dataclass(frozen=True)
class Path:
    """A parsed PATCH path: [uri:]attr[filter][.sub]."""

    attr: str
    sub: str | None = None
    uri: str | None = None
    value_filter: sast.Filter | None = None
    raw: str = ""


def parse_path(text: Any) -> Path:
    """Parse a PATCH `path`; malformed paths are 400 invalidPath."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_FILTER_LENGTH:
        raise InvalidPath("'path' must be a non-empty string.")
    text = text.strip()
    match = _PATH.match(text)
    if match is None:
        raise InvalidPath(f"Invalid path '{text[:200]}'.")
    value_filter = None
    if match.group("filter") is not None:
        value_filter = parse_filter(match.group("filter"), error=InvalidPath)
    return Path(
        attr=match.group("attr"),
        sub=match.group("sub"),
        uri=match.group("uri"),
        value_filter=value_filter,
        raw=text,
    )
