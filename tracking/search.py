"""MLflow search syntax, the part Steward supports, turned into ORM filters.

Filter: clauses joined by AND, each ``<entity>.<key> <op> <value>``:
- entities ``metrics``/``metric``, ``params``/``param``, ``tags``/``tag``,
  ``attributes``/``attribute``/``attr``/``run``; a bare name is an attribute;
- keys bare (``metrics.val.loss``), in backticks or in double quotes (``tags.`my tag```);
- operators ``= != <> > >= < <=`` for numbers, ``= != LIKE ILIKE IN (..) NOT IN (..)`` for
  strings, ``IS NULL``/``IS NOT NULL`` for tags and params;
- values: 'single' or "double" quoted strings, numbers.
Order by: ``<entity>.<key> [ASC|DESC]``.
Anything else (OR, parentheses, unknown attributes) is refused with INVALID_PARAMETER_VALUE:
a filter is never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q, Subquery

from core.errors import InvalidParameter

MAX_FILTER_LENGTH = 4000
MAX_CLAUSES = 50
MAX_IN_VALUES = 1000

ENTITIES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
NUMERIC_OPS = {"=", "!=", ">", ">=", "<", "<="}
STRING_OPS = {"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"}
NULL_OPS = {"IS NULL", "IS NOT NULL"}


@dataclass(frozen=True)
class Clause:
    entity: str  # metric, param, tag, attribute
    key: str
    op: str
    value: Any  # str, float, tuple[str, ...] or None


@dataclass(frozen=True)
class OrderTerm:
    entity: str
    key: str
    ascending: bool


def bad(message: str) -> InvalidParameter:
    return InvalidParameter(f"Invalid filter or order_by: {message}")


class _Scanner:
    def __init__(self, source: str):
        self.s = source
        self.i = 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def done(self) -> bool:
        self.ws()
        return self.i >= len(self.s)

    def peek_word(self) -> str:
        self.ws()
        m = re.compile(r"[A-Za-z]+").match(self.s, self.i)
        return m.group(0).upper() if m else ""

    def word(self, expected: str) -> bool:
        """Consume the keyword `expected` if it comes next (case-insensitive, whole word)."""
        self.ws()
        m = re.compile(r"[A-Za-z]+\b").match(self.s, self.i)
        if m and m.group(0).upper() == expected:
            self.i = m.end()
            return True
        return False

    def quoted(self, quote: str) -> str:
        """A quoted token starting at the current position; the quote doubled is itself."""
        assert self.s[self.i] == quote
        self.i += 1
        out = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == quote:
                if self.s.startswith(quote * 2, self.i):
                    out.append(quote)
                    self.i += 2
                    continue
                self.i += 1
                return "".join(out)
            if c == "\\" and self.i + 1 < len(self.s) and self.s[self.i + 1] == quote:
                out.append(quote)
                self.i += 2
                continue
            out.append(c)
            self.i += 1
        raise bad(f"unterminated quote {quote}")

    def identifier(self) -> tuple[str, str]:
        """(entity, key); a bare name is an attribute."""
        self.ws()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.s, self.i)
        if not m:
            raise bad(f"expected an identifier at position {self.i}")
        head = m.group(0)
        self.i = m.end()
        if self.i < len(self.s) and self.s[self.i] == ".":
            entity = ENTITIES.get(head.lower())
            if entity is None:
                raise bad(f"unknown entity type {head[:50]!r}")
            self.i += 1
            if self.i < len(self.s) and self.s[self.i] in '`"':
                return entity, self.quoted(self.s[self.i])
            m = re.compile(r"[^\s=!<>(),'\"`]+").match(self.s, self.i)
            if not m:
                raise bad("expected a key after the entity type")
            self.i = m.end()
            return entity, m.group(0)
        return "attribute", head

    def operator(self) -> str:
        self.ws()
        for op in ("!=", "<>", ">=", "<=", "==", "=", ">", "<"):
            if self.s.startswith(op, self.i):
                self.i += len(op)
                return {"<>": "!=", "==": "="}.get(op, op)
        if self.word("LIKE"):
            return "LIKE"
        if self.word("ILIKE"):
            return "ILIKE"
        if self.word("IN"):
            return "IN"
        if self.word("NOT"):
            if self.word("IN"):
                return "NOT IN"
            raise bad("NOT must be followed by IN")
        if self.word("IS"):
            if self.word("NOT"):
                if self.word("NULL"):
                    return "IS NOT NULL"
            elif self.word("NULL"):
                return "IS NULL"
            raise bad("IS must be followed by NULL or NOT NULL")
        raise bad(f"expected a comparison operator at position {self.i}")

    def scalar(self) -> str | float:
        self.ws()
        if self.i >= len(self.s):
            raise bad("expected a value")
        c = self.s[self.i]
        if c in "'\"":
            return self.quoted(c)
        m = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?").match(self.s, self.i)
        if m:
            self.i = m.end()
            return float(m.group(0))
        raise bad(f"expected a quoted string or a number at position {self.i}")

    def value_list(self) -> tuple[str, ...]:
        self.ws()
        if not self.s.startswith("(", self.i):
            raise bad("IN expects a parenthesised list of strings")
        self.i += 1
        values: list[str] = []
        while True:
            item = self.scalar()
            if not isinstance(item, str):
                raise bad("IN lists hold quoted strings")
            values.append(item)
            if len(values) > MAX_IN_VALUES:
                raise bad(f"IN lists hold at most {MAX_IN_VALUES} values")
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
                continue
            if self.s.startswith(")", self.i):
                self.i += 1
                return tuple(values)
            raise bad("expected ',' or ')' in an IN list")


def parse_filter(filter_string: Any) -> list[Clause]:
    """Clauses of an MLflow filter string ('' or None: no clause)."""
    if filter_string is None:
        return []
    if not isinstance(filter_string, str):
        raise InvalidParameter("filter must be a string.")
    if len(filter_string) > MAX_FILTER_LENGTH or "\x00" in filter_string:
        raise bad(f"a filter has at most {MAX_FILTER_LENGTH} characters")
    scanner = _Scanner(filter_string)
    clauses: list[Clause] = []
    if scanner.done():
        return clauses
    while True:
        entity, key = scanner.identifier()
        op = scanner.operator()
        if op in NULL_OPS:
            value: Any = None
        elif op in {"IN", "NOT IN"}:
            value = scanner.value_list()
        else:
            value = scanner.scalar()
        clauses.append(Clause(entity, key, op, value))
        if len(clauses) > MAX_CLAUSES:
            raise bad(f"at most {MAX_CLAUSES} clauses")
        if scanner.done():
            return clauses
        if scanner.peek_word() == "OR":
            raise bad("OR is not supported; combine clauses with AND")
        if not scanner.word("AND"):
            raise bad(f"expected AND at position {scanner.i}")


def parse_order_by(items: Any, *, limit: int = 10) -> list[OrderTerm]:
    """order_by strings ('metrics.acc DESC', 'name', 'attributes.start_time ASC')."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or len(items) > limit:
        raise InvalidParameter(f"order_by must be a list of at most {limit} strings.")
    terms = []
    for item in items:
        if not isinstance(item, str) or len(item) > 500 or "\x00" in item:
            raise InvalidParameter("order_by entries must be strings.")
        scanner = _Scanner(item)
        entity, key = scanner.identifier()
        ascending = True
        if scanner.word("DESC"):
            ascending = False
        elif scanner.word("ASC"):
            ascending = True
        if not scanner.done():
            raise bad(f"cannot parse order_by {item[:100]!r}")
        terms.append(OrderTerm(entity, key, ascending))
    return terms


# --- LIKE, the same on PostgreSQL and SQLite -------------------------------------------------


def _glob(pattern: str) -> str:
    """A LIKE pattern as a case-sensitive SQLite GLOB (SQLite's LIKE ignores ASCII case)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(f"[{nxt}]" if nxt in "*?[" else nxt)
            i += 2
            continue
        if c == "%":
            out.append("*")
        elif c == "_":
            out.append("?")
        elif c in "*?[":
            out.append(f"[{c}]")
        else:
            out.append(c)
        i += 1
    return "".join(out)


class Like(Func):
    """`expr LIKE pattern` (case_sensitive) or ILIKE, with SQL's % and _ wildcards and a
    backslash escape, answering the same on PostgreSQL and SQLite."""

    output_field = BooleanField()

    def __init__(self, expression, pattern: str, *, case_sensitive: bool):
        super().__init__(expression)
        self.pattern = pattern
        self.case_sensitive = case_sensitive

    def as_sql(self, compiler, connection, **extra):
        lhs, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "sqlite":
            if self.case_sensitive:
                return f"({lhs} GLOB %s)", [*params, _glob(self.pattern)]
            return f"({lhs} LIKE %s ESCAPE '\\')", [*params, self.pattern]
        op = "LIKE" if self.case_sensitive else "ILIKE"
        return f"({lhs} {op} %s ESCAPE '\\')", [*params, self.pattern]


def string_condition(field: str, op: str, value: Any) -> Q:
    """A Q on a string field for =, !=, LIKE, ILIKE, IN, NOT IN."""
    if op in {"IN", "NOT IN"}:
        q = Q(**{f"{field}__in": list(value)})
        return ~q if op == "NOT IN" else q
    if not isinstance(value, str):
        raise bad(f"{op} on a string needs a quoted string value")
    if op == "=":
        return Q(**{field: value})
    if op == "!=":
        return ~Q(**{field: value})
    if op in {"LIKE", "ILIKE"}:
        return Q(Like(F(field), value, case_sensitive=op == "LIKE"))
    raise bad(f"operator {op} does not apply to strings")


_NUMERIC_LOOKUP = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def numeric_condition(field: str, op: str, value: Any) -> Q:
    if op not in NUMERIC_OPS:
        raise bad(f"operator {op} does not apply to numbers")
    if not isinstance(value, float):
        raise bad(f"{op} on a number needs a numeric value")
    if op == "!=":
        return ~Q(**{field: value})
    return Q(**{f"{field}__{_NUMERIC_LOOKUP[op]}": value})


@dataclass(frozen=True)
class Schema:
    """What a searchable entity offers: attribute fields and its related key/value tables."""

    attributes: dict[str, tuple[str, str]]  # name -> (ORM field, "str" | "int")
    related: dict[str, tuple[Any, str]]  # entity -> (model, foreign-key field to the parent)
    metric_kind: str = "latest"  # which table holds numbers for `metrics.` clauses


def build_q(clauses: list[Clause], schema: Schema) -> Q:
    """One Q (AND of every clause) for a queryset of the schema's parent model."""
    q = Q()
    for clause in clauses:
        q &= _clause_q(clause, schema)
    return q


def _clause_q(clause: Clause, schema: Schema) -> Q:
    if clause.entity == "attribute":
        spec = schema.attributes.get(clause.key)
        if spec is None:
            raise bad(
                f"unknown attribute {clause.key[:100]!r}; expected one of "
                f"{sorted(schema.attributes)}"
            )
        field, kind = spec
        if kind == "int":
            return numeric_condition(field, clause.op, clause.value)
        if clause.op in NULL_OPS:
            raise bad("IS NULL applies to tags and params only")
        return string_condition(field, clause.op, clause.value)
    if clause.entity not in schema.related:
        raise bad(f"{clause.entity} filters are not supported here")
    model, parent = schema.related[clause.entity]
    rows = model.objects.filter(**{parent: OuterRef("pk"), "key": clause.key})
    if clause.entity == "metric":
        if clause.op in NULL_OPS:
            raise bad("IS NULL applies to tags and params only")
        rows = rows.filter(is_nan=False).filter(numeric_condition("value", clause.op, clause.value))
        return Q(Exists(rows))
    if clause.op == "IS NULL":
        return ~Q(Exists(rows))
    if clause.op == "IS NOT NULL":
        return Q(Exists(rows))
    return Q(Exists(rows.filter(string_condition("value", clause.op, clause.value))))


def order_expressions(terms: list[OrderTerm], schema: Schema, *, orderable: set[str]):
    """(annotations, ordering) for order terms; missing values sort last either way."""
    annotations: dict[str, Any] = {}
    ordering = []
    for index, term in enumerate(terms):
        if term.entity == "attribute":
            if term.key not in orderable:
                raise bad(
                    f"cannot order by attribute {term.key[:100]!r}; expected one of "
                    f"{sorted(orderable)}"
                )
            expr = F(schema.attributes[term.key][0])
        elif term.entity in schema.related:
            model, parent = schema.related[term.entity]
            name = f"_order_{index}"
            rows = model.objects.filter(**{parent: OuterRef("pk"), "key": term.key})
            annotations[name] = Subquery(rows.values("value")[:1])
            expr = F(name)
        else:
            raise bad(f"cannot order by {term.entity}")
        ordering.append(expr.asc(nulls_last=True) if term.ascending else expr.desc(nulls_last=True))
    return annotations, ordering
