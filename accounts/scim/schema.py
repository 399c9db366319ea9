"""SCIM schema URNs and the discovery documents: ServiceProviderConfig, ResourceTypes, Schemas.

Only what Steward stores is described; other core attributes are accepted and ignored.
"""

from __future__ import annotations

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SPC_URN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_URN = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_URN = "urn:ietf:params:scim:schemas:core:2.0:Schema"

MAX_RESULTS = 1000
DEFAULT_COUNT = 100


def _attr(
    name: str,
    type_: str = "string",
    *,
    description: str = "",
    multi: bool = False,
    required: bool = False,
    case_exact: bool = False,
    mutability: str = "readWrite",
    returned: str = "default",
    uniqueness: str = "none",
    sub: list[dict] | None = None,
    reference_types: list[str] | None = None,
) -> dict:
    attr = {
        "name": name,
        "type": type_,
        "multiValued": multi,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    }
    if sub is not None:
        attr["subAttributes"] = sub
    if reference_types is not None:
        attr["referenceTypes"] = reference_types
    return attr


USER_SCHEMA = {
    "id": USER_URN,
    "name": "User",
    "description": "A Steward user (service principals are not managed through SCIM).",
    "attributes": [
        _attr(
            "userName",
            required=True,
            uniqueness="server",
            description="Unique login name; also the principal name in grants.",
        ),
        _attr(
            "name",
            "complex",
            description="The user's name.",
            sub=[
                _attr("formatted", mutability="readOnly", description="givenName familyName."),
                _attr("familyName", description="Family name."),
                _attr("givenName", description="Given name."),
            ],
        ),
        _attr("displayName", description="Name shown in the console."),
        _attr(
            "emails",
            "complex",
            multi=True,
            description="One address is stored: the primary one, else the first.",
            sub=[
                _attr("value", description="Email address."),
                _attr("type", description="Label, e.g. work."),
                _attr("primary", "boolean", description="The preferred address."),
            ],
        ),
        _attr("active", "boolean", description="false deactivates the user; DELETE does the same."),
        _attr("externalId", case_exact=True, description="The identity provider's id."),
        _attr(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            description="Groups the user is a direct member of.",
            sub=[
                _attr("value", mutability="readOnly", description="Group id."),
                _attr(
                    "$ref",
                    "reference",
                    mutability="readOnly",
                    reference_types=["Group"],
                    description="Group URI.",
                ),
                _attr("display", mutability="readOnly", description="Group name."),
                _attr("type", mutability="readOnly", description="direct."),
            ],
        ),
    ],
}

GROUP_SCHEMA = {
    "id": GROUP_URN,
    "name": "Group",
    "description": "A Steward group; groups nest (a member may be a group).",
    "attributes": [
        _attr(
            "displayName",
            required=True,
            uniqueness="server",
            description="Unique group name; also the principal name in grants.",
        ),
        _attr("externalId", case_exact=True, description="The identity provider's id."),
        _attr(
            "members",
            "complex",
            multi=True,
            description="Users and nested groups.",
            sub=[
                _attr(
                    "value",
                    mutability="immutable",
                    case_exact=True,
                    description="A user id, or a group id (group ids start with 'g').",
                ),
                _attr(
                    "$ref",
                    "reference",
                    mutability="immutable",
                    reference_types=["User", "Group"],
                    description="Member URI.",
                ),
                _attr("display", mutability="readOnly", description="Member name."),
                _attr("type", mutability="immutable", description="User or Group."),
            ],
        ),
    ],
}

SCHEMAS = {USER_URN: USER_SCHEMA, GROUP_URN: GROUP_SCHEMA}

RESOURCE_TYPES = {
    "User": {"endpoint": "/Users", "schema": USER_URN, "description": "Users"},
    "Group": {"endpoint": "/Groups", "schema": GROUP_URN, "description": "Groups"},
}

# Core attributes Steward does not store: accepted in bodies and PATCH paths, then ignored.
IGNORED_USER_ATTRS = {
    "nickname",
    "profileurl",
    "title",
    "usertype",
    "preferredlanguage",
    "locale",
    "timezone",
    "password",
    "phonenumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "roles",
    "x509certificates",
}
IGNORED_NAME_SUBATTRS = {"formatted", "middlename", "honorificprefix", "honorificsuffix"}
IGNORED_EMAIL_SUBATTRS = {"display"}
READ_ONLY_ATTRS = {"id", "meta", "schemas", "groups"}


def list_response(resources: list[dict], *, total: int, start_index: int = 1) -> dict:
    return {
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def service_provider_config(base_url: str) -> dict:
    return {
        "schemas": [SPC_URN],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A Steward API token of a metastore admin: "
                "'Authorization: Bearer <token>'.",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def resource_type(name: str, base_url: str) -> dict:
    info = RESOURCE_TYPES[name]
    return {
        "schemas": [RESOURCE_TYPE_URN],
        "id": name,
        "name": name,
        "endpoint": info["endpoint"],
        "description": info["description"],
        "schema": info["schema"],
        "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/{name}"},
    }


def schema_document(urn: str, base_url: str) -> dict:
    return {
        "schemas": [SCHEMA_URN],
        **SCHEMAS[urn],
        "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{urn}"},
    }
