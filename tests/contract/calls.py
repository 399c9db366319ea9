"""The request table of the access contract suite: for every route and every HTTP method its view
answers, one request (or a few) that a principal allowed to do it could make, against the objects
of tests/contract/world.py.

Placeholders `{name}` are filled from `World.values` (or `World.ghosts`, objects that do not
exist). Each `Call` says who may make it (`by`: "olive" owns everything in the world, "root" is a
metastore admin, "ann" is the approver of olive's promotion request), whether it writes, and what
a principal without any grant gets (`stranger`):

- 404 for an object it cannot see (the same answer as for a missing one: never 403, which would
  say that it exists);
- 403 where the rules say so without revealing anything: creating in the metastore without
  CREATE CATALOG, admin-only doors (SCIM, audit, legal holds, break glass);
- 200 (or 201) for lists, which come back empty or filtered, and for what any principal may do
  for itself (its own tokens, its own experiments, lineage of its own jobs).

A route missing from this table, or a method of a view missing from its entry, fails the suite
(tests/contract/test_access.py): a new route is covered by being a route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

READ_METHODS = {"get"}
EVENT = {
    "eventType": "COMPLETE",
    "eventTime": "2024-05-01T12:00:00Z",
    "run": {"runId": "0a2c3e4f-0000-4000-8000-000000000001"},
    "job": {"namespace": "contract", "name": "job"},
    "inputs": [{"namespace": "s3://contract", "name": "in.csv"}],
    "outputs": [{"namespace": "s3://contract", "name": "out.csv"}],
    "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
}
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass(frozen=True)
class Call:
    stranger: int  # what a principal without grants gets
    query: dict[str, Any] | None = None
    body: Any = None  # JSON (default {} for a method with a body)
    raw: bytes | None = None  # a non-JSON body (artifact uploads)
    path: dict[str, str] | None = None  # path parameters for this call only
    by: str = "olive"  # the user who may make it (full token: 2xx; read token: reads only)
    write: bool | None = None  # default: every method but GET writes
    owner: int | None = None  # what `by` gets with a full token when not 2xx, and why (note)
    reader: int = 403  # what `by` gets for this write with a read-only token
    stores: bool = True  # whether the write, when allowed, changes stored state
    note: str = ""

    def writes(self, method: str) -> bool:
        return method not in READ_METHODS if self.write is None else self.write


def read(**kw) -> Call:
    """A read sent as POST (MLflow searches, UC credentials for reading)."""
    return Call(write=False, **kw)


# How each path parameter is filled, by name; (route, name) entries win. A parameter found in
# neither fails the suite ("teach PATH_PARAMS").
PATH_PARAMS = {
    "full_name": "{model}",  # below /models/ a full name is a registered model's
    "version": "{version}",
    "alias": "{alias}",
    "webhook_id": "{webhook_id}",
    "request_id": "{request_id}",
    "experiment_id": "{experiment_id}",
    "model_id": "{logged_model_id}",  # the MLflow logged-model routes
    "tag_key": "t",
    "token_id": "{token_id}",
    "user_id": "{user_id}",
    "group_id": "{group_id}",
    "artifact_path": "{version_artifact}",
}
ROUTE_PARAMS = {
    ("api/2.1/unity-catalog/catalogs/<str:name>", "name"): "{catalog}",
    ("api/2.1/unity-catalog/schemas/<str:full_name>", "full_name"): "{schema}",
    ("api/2.1/unity-catalog/permissions/<str:securable_type>/<str:full_name>", "securable_type"): (
        "catalog"
    ),
    ("api/2.1/unity-catalog/permissions/<str:securable_type>/<str:full_name>", "full_name"): (
        "{catalog}"
    ),
    (
        "api/2.1/unity-catalog/effective-permissions/<str:securable_type>/<str:full_name>",
        "securable_type",
    ): "catalog",
    (
        "api/2.1/unity-catalog/effective-permissions/<str:securable_type>/<str:full_name>",
        "full_name",
    ): "{catalog}",
    ("api/v1/alias-policies/<str:policy_id>", "policy_id"): "{alias_policy_id}",
    ("api/v1/retention-policies/<str:policy_id>", "policy_id"): "{retention_policy_id}",
    ("api/v1/retention-policies/<str:policy_id>/preview", "policy_id"): "{retention_policy_id}",
    ("api/v1/models/<str:full_name>/legal-hold", "full_name"): "{held_model}",
    ("api/v1/models/<str:full_name>/versions/<str:version>/legal-hold", "full_name"): (
        "{held_model}"
    ),
    ("api/scim/v2/^ResourceTypes/(?P<name>[^/]+)/?$", "name"): "User",
    ("api/scim/v2/^Schemas/(?P<urn>[^/]+)/?$", "urn"): SCIM_USER,
}
# Routes that are another route under a second prefix (MLflow's 3.0 tracking API is the 2.0
# one): they use its calls; the suite checks that both name the same view.
SAME_AS = {"api/3.0/mlflow/": "api/2.0/mlflow/"}

UC = "api/2.1/unity-catalog/"
ML = "api/2.0/mlflow/"
V1 = "api/v1/"
SCIM = "api/scim/v2/"
ART = "api/2.0/mlflow-artifacts/"
NAME = {"name": "{model}"}
VERSION = {"name": "{model}", "version": "{version}"}
EXP = {"experiment_id": "{experiment_id}"}
RUN = {"run_id": "{run_id}"}
HOOK = {"name": "h2", "url": "https://hooks.example.com/2", "events": ["model_version.created"]}
ML_EVENTS = [{"entity": "MODEL_VERSION", "action": "CREATED"}]
ADMIN = "metastore admins only"

CALLS: dict[str, dict[str, Call | tuple[Call, ...]]] = {
    # --- Unity Catalog: catalogs, schemas, models, grants --------------------------------------
    UC + "catalogs": {
        "get": Call(200),
        "post": Call(403, body={"name": "newcat"}, note="no CREATE CATALOG on the metastore"),
    },
    UC + "catalogs/<str:name>": {
        "get": Call(404),
        "patch": Call(404, body={"comment": "changed"}),
        "delete": Call(404, query={"force": "true"}),
    },
    UC + "schemas": {
        "get": Call(404, query={"catalog_name": "{catalog}"}),
        "post": Call(404, body={"catalog_name": "{catalog}", "name": "s2"}),
    },
    UC + "schemas/<str:full_name>": {
        "get": Call(404),
        "patch": Call(404, body={"comment": "changed"}),
        "delete": Call(404, query={"force": "true"}),
    },
    UC + "models": {
        "get": Call(200),
        "post": Call(
            404, body={"catalog_name": "{catalog}", "schema_name": "{schema_name}", "name": "m2"}
        ),
    },
    UC + "models/<str:full_name>": {
        "get": Call(404),
        "patch": Call(404, body={"comment": "changed"}),
        "delete": Call(404, query={"force": "true"}),
    },
    UC + "permissions/<str:securable_type>/<str:full_name>": {
        "get": Call(404),
        "patch": Call(404, body={"changes": [{"principal": "sam", "add": ["BROWSE"]}]}),
    },
    UC + "effective-permissions/<str:securable_type>/<str:full_name>": {"get": Call(404)},
    # --- Unity Catalog: versions, aliases, credentials -----------------------------------------
    UC + "models/versions": {
        "post": Call(
            404,
            body={
                "catalog_name": "{catalog}",
                "schema_name": "{schema_name}",
                "model_name": "m",
                "source": "{source}",
            },
        )
    },
    UC + "models/<str:full_name>/versions": {"get": Call(404)},
    UC + "models/<str:full_name>/versions/<str:version>": {
        "get": Call(404),
        "patch": Call(404, body={"comment": "changed"}),
        "delete": Call(404),
    },
    UC + "models/<str:full_name>/versions/<str:version>/finalize": {
        "patch": Call(404, path={"version": "{pending_version}"}),
    },
    UC + "models/<str:full_name>/aliases/<str:alias>": {
        "get": Call(404),
        "put": Call(404, body={"version_num": 3}),
        "delete": Call(404),
    },
    UC + "temporary-model-version-credentials": {
        "post": (
            read(
                stranger=404,
                body={
                    "catalog_name": "{catalog}",
                    "schema_name": "{schema_name}",
                    "model_name": "m",
                    "version": 1,
                    "operation": "READ_MODEL_VERSION",
                },
            ),
            Call(
                404,
                body={
                    "catalog_name": "{catalog}",
                    "schema_name": "{schema_name}",
                    "model_name": "m",
                    "version": 2,
                    "operation": "READ_WRITE_MODEL_VERSION",
                },
                stores=False,
                note="credentials to write a pending version's files (nothing stored)",
            ),
        )
    },
    # --- MLflow registry -------------------------------------------------------------------
    ML + "registered-models/create": {"post": Call(404, body={"name": "{catalog}.s.m2"})},
    ML + "registered-models/get": {"get": Call(404, query=NAME)},
    ML + "registered-models/search": {"get": Call(200), "post": read(stranger=200, body={})},
    ML + "registered-models/rename": {
        "post": Call(404, body={"name": "{model}", "new_name": "{catalog}.s.m3"})
    },
    ML + "registered-models/update": {"patch": Call(404, body={**NAME, "description": "changed"})},
    ML + "registered-models/delete": {"delete": Call(404, body=NAME)},
    ML + "registered-models/set-tag": {"post": Call(404, body={**NAME, "key": "k", "value": "v"})},
    ML + "registered-models/delete-tag": {"delete": Call(404, body={**NAME, "key": "team"})},
    ML + "registered-models/alias": {
        "get": Call(404, query={**NAME, "alias": "{alias}"}),
        "post": Call(404, body={**NAME, "alias": "{alias}", "version": "3"}),
        "delete": Call(404, body={**NAME, "alias": "{alias}"}),
    },
    ML + "registered-models/get-latest-versions": {
        "get": Call(404, query=NAME),
        "post": read(stranger=404, body=NAME),
    },
    ML + "model-versions/create": {"post": Call(404, body={**NAME, "source": "{source}"})},
    ML + "model-versions/get": {"get": Call(404, query=VERSION)},
    ML + "model-versions/search": {"get": Call(200), "post": read(stranger=200, body={})},
    ML + "model-versions/update": {"patch": Call(404, body={**VERSION, "description": "changed"})},
    ML + "model-versions/delete": {"delete": Call(404, body=VERSION)},
    ML + "model-versions/transition-stage": {
        "post": Call(404, body={**VERSION, "stage": "Staging"})
    },
    ML + "model-versions/set-tag": {"post": Call(404, body={**VERSION, "key": "k", "value": "v"})},
    ML + "model-versions/delete-tag": {"delete": Call(404, body={**VERSION, "key": "vt"})},
    ML + "model-versions/get-download-uri": {"get": Call(404, query=VERSION)},
    # --- MLflow webhooks (metastore-wide) ------------------------------------------------------
    ML + "webhooks": {
        "get": Call(200),
        "post": Call(
            403,
            body={"name": "h3", "url": "https://hooks.example.com/3", "events": ML_EVENTS},
            by="root",
            note="a metastore-wide webhook needs MANAGE on the metastore",
        ),
    },
    ML + "webhooks/<str:webhook_id>": {
        "get": Call(404),
        "patch": Call(404, body={"description": "changed"}),
        "delete": Call(404),
    },
    ML + "webhooks/<str:webhook_id>/test": {"post": Call(404, body={})},
    # --- MLflow tracking -------------------------------------------------------------------
    ML + "server-info": {"get": Call(200)},
    ML + "experiments/create": {
        "post": Call(200, body={"name": "own-exp"}, note="anyone may start an experiment")
    },
    ML + "experiments/get": {"get": Call(404, query=EXP)},
    ML + "experiments/get-by-name": {"get": Call(404, query={"experiment_name": "olive-exp"})},
    ML + "experiments/search": {
        "get": Call(200),
        "post": read(stranger=200, body={"max_results": 100}),
    },
    ML + "experiments/update": {"post": Call(404, body={**EXP, "new_name": "renamed"})},
    ML + "experiments/delete": {"post": Call(404, body=EXP)},
    ML + "experiments/restore": {
        "post": Call(404, body={"experiment_id": "{deleted_experiment_id}"})
    },
    ML + "experiments/set-experiment-tag": {
        "post": Call(404, body={**EXP, "key": "k2", "value": "v"})
    },
    ML + "experiments/delete-experiment-tag": {"post": Call(404, body={**EXP, "key": "k"})},
    ML + "runs/create": {"post": Call(404, body=EXP)},
    ML + "runs/get": {"get": Call(404, query=RUN)},
    ML + "runs/update": {"post": Call(404, body={**RUN, "status": "FINISHED"})},
    ML + "runs/delete": {"post": Call(404, body=RUN)},
    ML + "runs/restore": {"post": Call(404, body={"run_id": "{deleted_run_id}"})},
    ML + "runs/search": {
        "post": read(
            stranger=200,
            body={"experiment_ids": ["{experiment_id}"]},
            note="a hidden experiment in the filter matches nothing",
        )
    },
    ML + "runs/log-metric": {
        "post": Call(404, body={**RUN, "key": "acc", "value": 1.0, "timestamp": 2, "step": 1})
    },
    ML + "runs/log-parameter": {"post": Call(404, body={**RUN, "key": "p2", "value": "1"})},
    ML + "runs/log-batch": {
        "post": Call(404, body={**RUN, "params": [{"key": "p3", "value": "1"}]})
    },
    ML + "runs/set-tag": {"post": Call(404, body={**RUN, "key": "k2", "value": "v"})},
    ML + "runs/delete-tag": {"post": Call(404, body={**RUN, "key": "k"})},
    ML + "runs/log-inputs": {
        "post": Call(
            404,
            body={
                **RUN,
                "datasets": [
                    {
                        "dataset": {
                            "name": "d",
                            "digest": "abc",
                            "source_type": "local",
                            "source": "file:///data/d.csv",
                        }
                    }
                ],
            },
        )
    },
    ML + "runs/outputs": {
        "post": Call(404, body={**RUN, "models": [{"model_id": "{logged_model_id}", "step": 0}]})
    },
    ML + "metrics/get-history": {"get": Call(404, query={**RUN, "metric_key": "acc"})},
    ML + "logged-models": {"post": Call(404, body={**EXP, "name": "lm2"})},
    ML + "logged-models/search": {
        "post": read(stranger=200, body={"experiment_ids": ["{experiment_id}"]})
    },
    ML + "logged-models/<str:model_id>": {
        "get": Call(404),
        "patch": Call(404, body={"status": "LOGGED_MODEL_READY"}),
        "delete": Call(404, body={}),
    },
    ML + "logged-models/<str:model_id>/tags": {
        "patch": Call(404, body={"tags": [{"key": "a", "value": "b"}]})
    },
    ML + "logged-models/<str:model_id>/tags/<path:tag_key>": {"delete": Call(404, body={})},
    ML + "logged-models/<str:model_id>/params": {
        "post": Call(404, body={"params": [{"key": "p", "value": "1"}]})
    },
    V1 + "experiments/<str:experiment_id>/permissions": {
        "get": Call(404),
        "post": Call(404, body={"principal": "sam", "level": "CAN_MANAGE"}),
        "delete": Call(404, body={"principal": "ann"}),
    },
    # --- native API: audit, tokens -------------------------------------------------------------
    V1 + "audit-events": {"get": Call(403, by="root", note=ADMIN)},
    V1 + "tokens": {
        "get": Call(200, note="the caller's own tokens only"),
        "post": Call(201, body={"name": "mine"}, note="a token of one's own"),
    },
    V1 + "tokens/<int:token_id>": {"delete": Call(404, note="olive's token")},
    # --- native API: lineage -------------------------------------------------------------------
    V1 + "lineage": {
        "get": Call(404, query={"nodeId": "{lineage_node}"}),
        "post": Call(201, body=EVENT, note="lineage of one's own jobs and datasets"),
    },
    V1 + "lineage/batch": {"post": Call(200, body=[EVENT], note="as above, in a batch")},
    V1 + "models/<str:full_name>/versions/<str:version>/lineage": {"get": Call(404)},
    # --- native API: alias policies, promotions, aliases ---------------------------------------
    V1 + "alias-policies": {
        "get": Call(200),
        "post": Call(
            404,
            body={
                "securable_type": "catalog",
                "full_name": "{catalog}",
                "alias_patterns": ["silver"],
                "approvers": ["ann"],
            },
        ),
    },
    V1 + "alias-policies/<str:policy_id>": {
        "get": Call(404),
        "patch": Call(404, body={"required_approvals": 1, "approvers": ["ann", "root"]}),
        "delete": Call(404),
    },
    V1 + "promotion-requests": {
        "get": Call(200),
        "post": Call(
            404,
            body={"full_name": "{model}", "alias": "gold", "version": 1, "justification": "why"},
        ),
    },
    V1 + "promotion-requests/<str:request_id>": {"get": Call(404)},
    V1 + "promotion-requests/<str:request_id>/approve": {
        "post": Call(404, body={"comment": "ok"}, by="ann")
    },
    V1 + "promotion-requests/<str:request_id>/reject": {
        "post": Call(404, body={"comment": "no"}, by="ann")
    },
    V1 + "promotion-requests/<str:request_id>/cancel": {"post": Call(404, body={})},
    V1 + "models/<str:full_name>/aliases/<str:alias>": {
        "get": Call(404),
        "put": Call(404, body={"version": 3}),
        "delete": Call(404),
    },
    V1 + "models/<str:full_name>/aliases/<str:alias>/rollback": {"post": Call(404, body={})},
    V1 + "models/<str:full_name>/aliases/<str:alias>/break-glass": {
        "post": Call(
            404,
            body={"version": 1, "reason": "outage of the serving cluster"},
            path={"alias": "{protected_alias}"},
            by="root",
            note="metastore admins; a stranger does not learn the model exists",
        )
    },
    V1 + "models/<str:full_name>/aliases/<str:alias>/history": {"get": Call(404)},
    # --- native API: retention and legal holds -------------------------------------------------
    V1 + "retention-policies": {
        "get": Call(200),
        "post": Call(
            404,
            body={"securable_type": "schema", "full_name": "{schema}", "archive_after_days": 90},
        ),
    },
    V1 + "retention-policies/<str:policy_id>": {
        "get": Call(404),
        "patch": Call(404, body={"keep_last": 2}),
        "delete": Call(404),
    },
    V1 + "retention-policies/<str:policy_id>/preview": {"get": Call(404)},
    V1 + "models/<str:full_name>/retention-preview": {"get": Call(404)},
    V1 + "models/<str:full_name>/legal-hold": {
        "get": Call(404),
        "put": Call(404, body={"reason": "new"}, by="root", note=ADMIN),
        "delete": Call(404, by="root", note=ADMIN),
    },
    V1 + "models/<str:full_name>/versions/<str:version>/legal-hold": {
        "get": Call(404),
        "put": Call(404, body={"reason": "new"}, by="root", note=ADMIN),
        "delete": Call(404, by="root", note=ADMIN),
    },
    # --- native API: webhooks ------------------------------------------------------------------
    V1 + "webhooks": {
        "get": Call(200),
        "post": Call(404, body={**HOOK, "securable_type": "catalog", "full_name": "{catalog}"}),
    },
    V1 + "webhooks/<str:webhook_id>": {
        "get": Call(404),
        "patch": Call(404, body={"name": "renamed"}),
        "delete": Call(404),
    },
    V1 + "webhooks/<str:webhook_id>/test": {"post": Call(404, body={})},
    V1 + "webhooks/<str:webhook_id>/deliveries": {"get": Call(404)},
    # --- MLflow artifact proxy -----------------------------------------------------------------
    ART + "artifacts": {
        "get": (
            Call(404, query={"path": "{version_artifact_dir}"}),
            Call(404, query={"path": "{run_artifact_dir}"}),
        )
    },
    ART + "artifacts/<path:artifact_path>": {
        "get": (
            Call(404),
            Call(404, path={"artifact_path": "{run_artifact}"}),
            Call(404, path={"artifact_path": "{logged_artifact}"}),
        ),
        "put": (
            Call(404, raw=b"new", path={"artifact_path": "{pending_artifact}"}),
            Call(404, raw=b"new", path={"artifact_path": "{run_artifact}"}),
            Call(404, raw=b"new", path={"artifact_path": "{logged_artifact}"}),
        ),
        "delete": (
            Call(404, path={"artifact_path": "{pending_artifact}"}),
            Call(404, path={"artifact_path": "{run_artifact}"}),
            Call(404, path={"artifact_path": "{logged_artifact}"}),
        ),
    },
    # --- SCIM (metastore admins) ---------------------------------------------------------------
    SCIM + "^Users/?$": {
        "get": Call(403, by="root", note=ADMIN),
        "post": Call(
            403, body={"schemas": [SCIM_USER], "userName": "newbie"}, by="root", note=ADMIN
        ),
    },
    SCIM + "^Users/(?P<user_id>[^/]+)/?$": {
        "get": Call(403, by="root", note=ADMIN),
        "put": Call(
            403,
            body={"schemas": [SCIM_USER], "userName": "olive", "active": True},
            by="root",
            note=ADMIN,
        ),
        "patch": Call(
            403,
            body={
                "schemas": [SCIM_PATCH],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
            by="root",
            note=ADMIN,
        ),
        "delete": Call(403, by="root", note=ADMIN),
    },
    SCIM + "^Groups/?$": {
        "get": Call(403, by="root", note=ADMIN),
        "post": Call(
            403, body={"schemas": [SCIM_GROUP], "displayName": "newgroup"}, by="root", note=ADMIN
        ),
    },
    SCIM + "^Groups/(?P<group_id>[^/]+)/?$": {
        "get": Call(403, by="root", note=ADMIN),
        "put": Call(
            403, body={"schemas": [SCIM_GROUP], "displayName": "olive-squad"}, by="root", note=ADMIN
        ),
        "patch": Call(
            403,
            body={
                "schemas": [SCIM_PATCH],
                "Operations": [{"op": "replace", "path": "displayName", "value": "renamed"}],
            },
            by="root",
            note=ADMIN,
        ),
        "delete": Call(403, by="root", note=ADMIN),
    },
    SCIM + "^ServiceProviderConfig/?$": {"get": Call(403, by="root", note=ADMIN)},
    SCIM + "^ResourceTypes/?$": {"get": Call(403, by="root", note=ADMIN)},
    SCIM + "^ResourceTypes/(?P<name>[^/]+)/?$": {"get": Call(403, by="root", note=ADMIN)},
    SCIM + "^Schemas/?$": {"get": Call(403, by="root", note=ADMIN)},
    SCIM + "^Schemas/(?P<urn>[^/]+)/?$": {"get": Call(403, by="root", note=ADMIN)},
    SCIM + "^.*$": {
        method: Call(
            403,
            by="root",
            owner=404,
            reader=404,
            note="an unknown SCIM path: 404 for an admin, whatever the token, nothing to write",
        )
        for method in ("get", "post", "put", "patch", "delete")
    },
    # --- console (session sign-in; no token scopes) --------------------------------------------
    "console/": {"get": Call(200)},
    "console/promotion-requests": {"get": Call(200)},
    "console/promotion-requests/<uuid:request_id>": {
        "get": Call(404),
        "post": Call(404, body={"action": "approve", "comment": "ok"}, by="ann"),
    },
}
