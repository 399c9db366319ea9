"""SCIM PATCH (RFC 7644 §3.5.2): parse the operations, then apply them to a resource's state.

Handles the dialects identity providers actually send:
- Okta:  {"op": "replace", "value": {"active": false}},
         {"op": "remove", "path": "members[value eq \\"12\\"]"},
         {"op": "replace", "value": {"id": "g3", "displayName": "new"}};
- Entra: {"op": "Replace", "path": "active", "value": "False"} (capitalised op, string boolean),
         {"op": "Add", "path": "members", "value": [{"value": "12"}]},
         {"op": "Remove", "path": "members", "value": [{"value": "12"}]},
         {"op": "Add", "path": "emails[type eq \\"work\\"].value", "value": "a@b.c"}.
Removing a member that is not there is a no-op (idempotent), not noTarget: IdPs retry.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from accounts.scim.errors import InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget
from accounts.scim.filters import Path, equality_defaults, parse_path, value_predicate
from accounts.scim.resources import MemberRef, parse_members
from accounts.scim.schema import (
    GROUP_URN,
    IGNORED_NAME_SUBATTRS,
    IGNORED_USER_ATTRS,
    PATCH_URN,
    READ_ONLY_ATTRS,
    USER_URN,
)

MAX_OPERATIONS = 1000
OPS = {"add", "replace", "remove"}


@dataclass(frozen=True)
class PatchOp:
    """One PATCH operation, syntactically valid."""

    op: str
    path: Path | None
    value: Any = None


def parse_patch(body: Any) -> list[PatchOp]:
    """Validate a PatchOp body; its meaning is checked when it is applied."""
    if not isinstance(body, dict) or not all(isinstance(k, str) for k in body):
        raise InvalidSyntax("The request body must be a JSON object.")
    fields = {k.lower(): v for k, v in body.items()}
    schemas = fields.get("schemas")
    if schemas is not None and (
        not isinstance(schemas, list) or PATCH_URN.lower() not in {str(s).lower() for s in schemas}
    ):
        raise InvalidSyntax(f"'schemas' must be [\"{PATCH_URN}\"].")
    operations = fields.get("operations")
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntax("'Operations' must be a non-empty list.")
    if len(operations) > MAX_OPERATIONS:
        raise InvalidValue(f"At most {MAX_OPERATIONS} operations per request.", scim_type="tooMany")
    parsed = []
    for raw in operations:
        if not isinstance(raw, dict):
            raise InvalidSyntax("Each operation must be an object.")
        op_fields = {str(k).lower(): v for k, v in raw.items()}
        op = op_fields.get("op")
        if not isinstance(op, str) or op.lower() not in OPS:
            raise InvalidSyntax("Each operation needs 'op': add, replace or remove.")
        op = op.lower()
        path = parse_path(op_fields["path"]) if op_fields.get("path") is not None else None
        if op == "remove" and path is None:
            raise NoTarget("A remove operation needs a 'path'.")
        if op != "remove" and "value" not in op_fields:
            raise InvalidValue(f"An {op} operation needs a 'value'.")
        parsed.append(PatchOp(op=op, path=path, value=op_fields.get("value")))
    return parsed


def _targets_resource(path: Path | None, urn: str) -> bool:
    """No path, or a path naming the resource's own schema: the value is a partial body."""
    return path is None or path.raw.lower() == urn.lower()


def _foreign_uri(path: Path, urn: str) -> bool:
    """A path into an extension schema Steward does not store (ignored)."""
    return path.uri is not None and path.uri.lower() != urn.lower()


def _body_items(value: Any, urn: str) -> list[tuple[Path, Any]]:
    """The (path, value) pairs of a path-less operation's value."""
    if not isinstance(value, dict):
        raise InvalidValue("Without a 'path', the value must be an object of attributes.")
    items = []
    for key, sub in value.items():
        key = str(key)
        low = key.lower()
        if low in READ_ONLY_ATTRS:
            continue  # Okta repeats the id; read-only attributes in a body are ignored
        if low.startswith("urn:"):
            if low.startswith(urn.lower() + ":"):
                items.append((parse_path(key), sub))
            continue  # an extension block
        items.append((parse_path(key), sub))
    return items


def _as_list(value: Any, name: str) -> list:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise InvalidValue(f"'{name}' takes a list of values.")
    return value


# --- users ------------------------------------------------------------------------------------

_USER_SIMPLE = {
    "username": "userName",
    "displayname": "displayName",
    "externalid": "externalId",
    "active": "active",
}
_NAME_SUBS = {"givenname": "givenName", "familyname": "familyName"}
_EMAIL_SUBS = {"value": "value", "type": "type", "primary": "primary", "display": "display"}


def _canon_item(item: Any, subs: dict[str, str]) -> Any:
    if not isinstance(item, dict):
        return item  # refused later by validation
    return {subs.get(str(k).lower(), k): v for k, v in item.items()}


def _patch_emails(items: list[dict], op: str, path: Path, value: Any) -> list[dict]:
    predicate = (
        value_predicate(path.value_filter, set(_EMAIL_SUBS.values()))
        if path.value_filter is not None
        else None
    )
    sub = None
    if path.sub is not None:
        sub = _EMAIL_SUBS.get(path.sub.lower())
        if sub is None:
            raise InvalidPath(f"Unknown attribute 'emails.{path.sub}'.")
    if sub is None:
        given = [_canon_item(v, _EMAIL_SUBS) for v in _as_list(value, "emails")]
        if op == "remove":
            if predicate is not None:
                return [i for i in items if not predicate(i)]
            if given:
                drop = {str(g.get("value", "")).casefold() for g in given if isinstance(g, dict)}
                return [i for i in items if str(i.get("value", "")).casefold() not in drop]
            return []
        kept = [i for i in items if not predicate(i)] if predicate is not None else items
        if op == "replace" and predicate is None:
            kept = []
        if any(isinstance(g, dict) and str(g.get("primary")).lower() == "true" for g in given):
            # a new primary value demotes the others (RFC 7643 §2.4)
            kept = [{**i, "primary": False} for i in kept]
        return kept + given
    targets = [i for i in items if predicate is None or predicate(i)]
    if op == "remove":
        if sub == "value":
            return [i for i in items if not any(i is t for t in targets)]
        for target in targets:
            target.pop(sub, None)
        return items
    if not targets:
        created: dict[str, Any] = {}
        if path.value_filter is not None:
            created = _canon_item(equality_defaults(path.value_filter), _EMAIL_SUBS)
        created[sub] = value
        return items + [created]
    for target in targets:
        target[sub] = value
    return items


def _patch_user_path(state: dict, op: str, path: Path, value: Any) -> None:
    if _foreign_uri(path, USER_URN):
        return
    attr = path.attr.lower()
    if attr in READ_ONLY_ATTRS:
        raise Mutability(f"'{path.attr}' is read-only.")
    if attr in IGNORED_USER_ATTRS:
        return
    if attr in _USER_SIMPLE:
        if path.value_filter is not None or path.sub is not None:
            raise InvalidPath(f"'{path.attr}' has no sub-attributes.")
        key = _USER_SIMPLE[attr]
        if op == "remove":
            if key == "userName":
                raise Mutability("'userName' is required and cannot be removed.")
            if key == "active":
                raise InvalidValue("'active' cannot be removed; replace it with false.")
            state[key] = None
        else:
            state[key] = value
        return
    if attr == "name":
        if path.value_filter is not None:
            raise InvalidPath("'name' is not multi-valued.")
        name = dict(state.get("name") or {})
        if path.sub is None:
            if op == "remove":
                name = {}
            elif value is not None:
                if not isinstance(value, dict):
                    raise InvalidValue("'name' must be an object.")
                name.update(_canon_item(value, _NAME_SUBS))
        else:
            sub = _NAME_SUBS.get(path.sub.lower())
            if sub is None:
                if path.sub.lower() in IGNORED_NAME_SUBATTRS:
                    return
                raise InvalidPath(f"Unknown attribute 'name.{path.sub}'.")
            name[sub] = None if op == "remove" else value
        state["name"] = name
        return
    if attr == "emails":
        items = [dict(i) for i in state.get("emails") or [] if isinstance(i, dict)]
        state["emails"] = _patch_emails(items, op, path, value)
        return
    raise InvalidPath(f"Unknown attribute '{path.raw[:100]}'.")


def apply_user_patch(state: dict, operations: list[PatchOp]) -> dict:
    """Apply PATCH operations to a user's state (see resources.user_state); returns a new
    body that is then validated exactly like a PUT."""
    state = copy.deepcopy(state)
    for operation in operations:
        if _targets_resource(operation.path, USER_URN):
            if operation.op == "remove":
                raise NoTarget("A remove operation needs an attribute path.")
            for path, value in _body_items(operation.value, USER_URN):
                _patch_user_path(state, operation.op, path, value)
        else:
            assert operation.path is not None  # no path targets the resource itself
            _patch_user_path(state, operation.op, operation.path, operation.value)
    return state


# --- groups -----------------------------------------------------------------------------------

_MEMBER_SUBS = {"value", "type", "display"}


def _member_item(ref: MemberRef) -> dict:
    return {"value": ref.value, "type": "User" if ref.kind == "user" else "Group", "ref": ref}


def _patch_members(members: dict[str, dict], op: str, path: Path | None, value: Any) -> None:
    if path is not None and path.sub is not None:
        raise InvalidPath("Use 'members' or 'members[value eq \"id\"]' as the path.")
    if path is not None and path.value_filter is not None:
        predicate = value_predicate(path.value_filter, _MEMBER_SUBS)
        if op == "add":
            raise InvalidPath("Add members with the path 'members' and a list of values.")
        for key in [k for k, item in members.items() if predicate(item)]:
            del members[key]
        if op == "replace":
            for ref in parse_members(value):
                members.setdefault(ref.value, _member_item(ref))
        return
    refs = parse_members(value)
    if op == "remove":
        if value is None:
            members.clear()
        for ref in refs:
            members.pop(ref.value, None)
        return
    if op == "replace":
        members.clear()
    for ref in refs:
        members.setdefault(ref.value, _member_item(ref))


def _patch_group_path(
    state: dict, members: dict[str, dict], op: str, path: Path, value: Any
) -> None:
    if _foreign_uri(path, GROUP_URN):
        return
    attr = path.attr.lower()
    if attr == "members":
        _patch_members(members, op, path, value)
        return
    if attr in {"displayname", "externalid"}:
        if path.value_filter is not None or path.sub is not None:
            raise InvalidPath(f"'{path.attr}' has no sub-attributes.")
        key = "displayName" if attr == "displayname" else "externalId"
        if op == "remove" and key == "displayName":
            raise Mutability("'displayName' is required and cannot be removed.")
        state[key] = None if op == "remove" else value
        return
    if attr in READ_ONLY_ATTRS:
        raise Mutability(f"'{path.attr}' is read-only.")
    raise InvalidPath(f"Unknown attribute '{path.raw[:100]}'.")


def apply_group_patch(
    state: dict, members: dict[str, dict], operations: list[PatchOp]
) -> tuple[dict, dict[str, dict]]:
    """Apply PATCH operations to a group's attributes and its member map (value -> item);
    returns the new attributes and the new member map."""
    state = dict(state)
    members = dict(members)
    for operation in operations:
        if _targets_resource(operation.path, GROUP_URN):
            if operation.op == "remove":
                raise NoTarget("A remove operation needs an attribute path.")
            for path, value in _body_items(operation.value, GROUP_URN):
                _patch_group_path(state, members, operation.op, path, value)
        else:
            assert operation.path is not None  # no path targets the resource itself
            _patch_group_path(state, members, operation.op, operation.path, operation.value)
    return state, members
