"""SCIM resources: reading User and Group bodies into validated attributes, and rendering
users and groups as SCIM resources.

Ids are strings: a user's id is its primary key ("12"), a group's is "g" + its primary key
("g7"). Users and groups share one id space in `members`, and identity providers send member
values without a type, so the two kinds of id must never look alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import GroupProfile, User
from accounts.scim.errors import InvalidSyntax, InvalidValue
from accounts.scim.schema import (
    GROUP_URN,
    IGNORED_EMAIL_SUBATTRS,
    IGNORED_NAME_SUBATTRS,
    IGNORED_USER_ATTRS,
    READ_ONLY_ATTRS,
    USER_URN,
)

MAX_MEMBERS = 10_000


# --- ids --------------------------------------------------------------------------------------


def user_scim_id(user_pk: int) -> str:
    return str(user_pk)


def group_scim_id(group_pk: int) -> str:
    return f"g{group_pk}"


def parse_user_id(value: Any) -> int | None:
    """The primary key in a user id, or None when it is not one."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def parse_group_id(value: Any) -> int | None:
    """The primary key in a group id ("g7" -> 7), or None when it is not one."""
    if isinstance(value, str) and value[:1] in {"g", "G"}:
        return parse_user_id(value[1:])
    return None


@dataclass(frozen=True)
class MemberRef:
    """A member of a group: a user or a nested group, by primary key."""

    kind: str  # "user" | "group"
    pk: int

    @property
    def value(self) -> str:
        return user_scim_id(self.pk) if self.kind == "user" else group_scim_id(self.pk)


def parse_member(item: Any) -> MemberRef:
    """One entry of `members`: {"value": id[, "type": "User"|"Group"]}."""
    if not isinstance(item, dict):
        raise InvalidValue("Each member must be an object with a 'value'.")
    fields = {k.lower(): v for k, v in item.items() if isinstance(k, str)}
    value = fields.get("value")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise InvalidValue("Each member needs a 'value' holding a user or group id.")
    declared = fields.get("type")
    if declared is not None and (
        not isinstance(declared, str) or declared.lower() not in {"user", "group"}
    ):
        raise InvalidValue("A member's 'type' must be User or Group.")
    user_pk, group_pk = parse_user_id(value), parse_group_id(value)
    if user_pk is not None and (declared is None or declared.lower() == "user"):
        return MemberRef("user", user_pk)
    if group_pk is not None and (declared is None or declared.lower() == "group"):
        return MemberRef("group", group_pk)
    raise InvalidValue(
        f"'{value[:100]}' is not a {declared or 'user or group'} id "
        "(user ids are numbers, group ids are 'g' followed by a number)."
    )


# --- reading bodies ---------------------------------------------------------------------------


def _text(value: Any, name: str, max_length: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidValue(f"'{name}' must be a string.")
    if "\x00" in value:
        raise InvalidValue(f"'{name}' must not contain NUL characters.")
    if len(value) > max_length:
        raise InvalidValue(f"'{name}' must be at most {max_length} characters.")
    if required and not value.strip():
        raise InvalidValue(f"'{name}' is required.")
    return value


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    # Entra ID sends booleans as the strings "True"/"False" in PATCH operations.
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise InvalidValue(f"'{name}' must be true or false.")


def _check_schemas(body: dict, urn: str) -> None:
    schemas = next((v for k, v in body.items() if k.lower() == "schemas"), None)
    if schemas is None:
        return
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise InvalidSyntax("'schemas' must be a list of URIs.")
    if urn.lower() not in {s.lower() for s in schemas}:
        raise InvalidSyntax(f"'schemas' must include {urn}.")


def _object(body: Any) -> dict:
    if not isinstance(body, dict) or not all(isinstance(k, str) for k in body):
        raise InvalidSyntax("The request body must be a JSON object.")
    return body


@dataclass
class UserAttrs:
    """The user attributes Steward stores, validated. active=None means "leave as it is"."""

    user_name: str
    given_name: str = ""
    family_name: str = ""
    display_name: str = ""
    email: str = ""
    external_id: str = ""
    active: bool | None = None


def _emails(value: Any) -> str:
    """The one address Steward stores: the primary one, else the first."""
    if value is None:
        return ""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidValue("'emails' must be a list.")
    chosen = preferred = ""
    for item in value:
        if not isinstance(item, dict):
            raise InvalidValue("Each email must be an object with a 'value'.")
        address, primary = "", False
        for key, sub in item.items():
            low = str(key).lower()
            if low == "value":
                address = _text(sub, "emails.value", 254)
            elif low == "primary":
                primary = sub is not None and _boolean(sub, "emails.primary")
            elif low == "type":
                _text(sub, "emails.type", 64)
            elif low not in IGNORED_EMAIL_SUBATTRS:
                raise InvalidValue(f"Unknown attribute 'emails.{str(key)[:50]}'.")
        if address:
            try:
                validate_email(address)
            except ValidationError:
                raise InvalidValue(f"'{address[:100]}' is not a valid email address.") from None
            if primary and not preferred:
                preferred = address
            chosen = chosen or address
    return preferred or chosen


def _name(value: Any) -> tuple[str, str]:
    if value is None:
        return "", ""
    if not isinstance(value, dict):
        raise InvalidValue("'name' must be an object.")
    given = family = ""
    for key, sub in value.items():
        low = str(key).lower()
        if low == "givenname":
            given = _text(sub, "name.givenName", 150)
        elif low == "familyname":
            family = _text(sub, "name.familyName", 150)
        elif low not in IGNORED_NAME_SUBATTRS:
            raise InvalidValue(f"Unknown attribute 'name.{str(key)[:50]}'.")
    return given, family


_username_validator = UnicodeUsernameValidator()


def user_attrs_from_scim(body: Any) -> UserAttrs:
    """Validate a User body (POST, PUT, or the result of a PATCH). Unknown attributes are
    refused; core attributes Steward does not store and extension blocks are ignored."""
    body = _object(body)
    _check_schemas(body, USER_URN)
    attrs = UserAttrs(user_name="")
    seen_user_name = False
    for key, value in body.items():
        low = key.lower()
        if low == "username":
            attrs.user_name = _text(value, "userName", 150, required=True)
            seen_user_name = True
        elif low == "name":
            attrs.given_name, attrs.family_name = _name(value)
        elif low == "displayname":
            attrs.display_name = _text(value, "displayName", 255)
        elif low == "externalid":
            attrs.external_id = _text(value, "externalId", 255)
        elif low == "emails":
            attrs.email = _emails(value)
        elif low == "active":
            attrs.active = None if value is None else _boolean(value, "active")
        elif low in READ_ONLY_ATTRS or low in IGNORED_USER_ATTRS or low.startswith("urn:"):
            continue
        else:
            raise InvalidValue(f"Unknown attribute '{key[:50]}'.")
    if not seen_user_name:
        raise InvalidValue("'userName' is required.")
    try:
        _username_validator(attrs.user_name)
    except ValidationError:
        raise InvalidValue(
            "'userName' may contain only letters, digits and @ . + - _ characters."
        ) from None
    return attrs


@dataclass
class GroupAttrs:
    """The group attributes Steward stores, validated. members=None means "leave as they are"."""

    display_name: str
    external_id: str = ""
    members: list[MemberRef] | None = None


def parse_members(value: Any) -> list[MemberRef]:
    """A `members` value: a list (or one object) of member references, without duplicates."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidValue("'members' must be a list.")
    if len(value) > MAX_MEMBERS:
        raise InvalidValue(f"At most {MAX_MEMBERS} members per request.")
    return list(dict.fromkeys(parse_member(item) for item in value))


def group_attrs_from_scim(body: Any) -> GroupAttrs:
    """Validate a Group body (POST or PUT). Unknown attributes are refused."""
    body = _object(body)
    _check_schemas(body, GROUP_URN)
    attrs = GroupAttrs(display_name="")
    seen_name = False
    for key, value in body.items():
        low = key.lower()
        if low == "displayname":
            attrs.display_name = _text(value, "displayName", 150, required=True)
            seen_name = True
        elif low == "externalid":
            attrs.external_id = _text(value, "externalId", 255)
        elif low == "members":
            attrs.members = parse_members(value)
        elif low in READ_ONLY_ATTRS or low.startswith("urn:"):
            continue
        else:
            raise InvalidValue(f"Unknown attribute '{key[:50]}'.")
    if not seen_name:
        raise InvalidValue("'displayName' is required.")
    return attrs


def user_state(user: User) -> dict:
    """The stored attributes of a user as a SCIM body: what a PATCH starts from."""
    state: dict[str, Any] = {
        "userName": user.username,
        "name": {"givenName": user.first_name, "familyName": user.last_name},
        "displayName": user.display_name,
        "externalId": user.external_id,
        "active": user.is_active,
        "emails": [],
    }
    if user.email:
        state["emails"] = [{"value": user.email, "type": "work", "primary": True}]
    return state


# --- rendering --------------------------------------------------------------------------------


def _when(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def _meta(resource_type: str, location: str, created, modified) -> dict:
    meta: dict[str, str | None] = {"resourceType": resource_type, "location": location}
    if created is not None:
        meta["created"] = _when(created)
    if modified is not None:
        meta["lastModified"] = _when(modified)
    return meta


def user_resource(user: User, base_url: str) -> dict:
    """A user as a SCIM User resource (its groups must be prefetched)."""
    uid = user_scim_id(user.pk)
    resource: dict[str, Any] = {"schemas": [USER_URN], "id": uid}
    if user.external_id:
        resource["externalId"] = user.external_id
    resource["userName"] = user.username
    name = {}
    if user.first_name:
        name["givenName"] = user.first_name
    if user.last_name:
        name["familyName"] = user.last_name
    if name:
        name["formatted"] = " ".join(p for p in (user.first_name, user.last_name) if p)
        resource["name"] = name
    if user.display_name:
        resource["displayName"] = user.display_name
    if user.email:
        resource["emails"] = [{"value": user.email, "type": "work", "primary": True}]
    resource["active"] = user.is_active
    resource["groups"] = [
        {
            "value": group_scim_id(group.pk),
            "$ref": f"{base_url}/Groups/{group_scim_id(group.pk)}",
            "display": group.name,
            "type": "direct",
        }
        for group in sorted(user.groups.all(), key=lambda g: g.pk)
    ]
    last_event = getattr(user, "scim_last_event", None)
    modified = max(user.date_joined, last_event) if last_event else user.date_joined
    resource["meta"] = _meta("User", f"{base_url}/Users/{uid}", user.date_joined, modified)
    return resource


def group_members(group: Group) -> list[dict]:
    """Members as SCIM sees them: users (not service principals), then nested groups."""
    members = [
        {"value": user_scim_id(u.pk), "display": u.display_name or u.username, "type": "User"}
        for u in sorted(group.user_set.all(), key=lambda u: u.pk)
        if u.kind == User.Kind.USER
    ]
    members += [
        {"value": group_scim_id(link.child_id), "display": link.child.name, "type": "Group"}
        for link in sorted(group.member_groups.all(), key=lambda link: link.child_id)
    ]
    return members


def group_resource(group: Group, base_url: str, *, with_members: bool = True) -> dict:
    """A group as a SCIM Group resource (members prefetched when with_members)."""
    gid = group_scim_id(group.pk)
    resource: dict[str, Any] = {"schemas": [GROUP_URN], "id": gid}
    external_id = group_external_id(group)
    if external_id:
        resource["externalId"] = external_id
    resource["displayName"] = group.name
    if with_members:
        resource["members"] = [
            {**m, "$ref": f"{base_url}/{'Users' if m['type'] == 'User' else 'Groups'}/{m['value']}"}
            for m in group_members(group)
        ]
    resource["meta"] = _meta(
        "Group",
        f"{base_url}/Groups/{gid}",
        getattr(group, "scim_first_event", None),
        getattr(group, "scim_last_event", None),
    )
    return resource


def group_external_id(group: Group) -> str:
    try:
        return group.profile.external_id
    except GroupProfile.DoesNotExist:
        return ""
