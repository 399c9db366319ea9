"""The MLflow model-registry door in the OpenAPI document: each operation's inputs and answer
as MLflow's client sends and reads them. Applied to the views when the door's routes load;
nothing here parses a request. A `name` is `catalog.schema.model` or a bare model name in
STEWARD_DEFAULT_NAMESPACE."""

from core.openapi import Op, mlflow_schema
from registry.api.mlflow import views as v

MODEL = {"registered_model": "obj"}
VERSION = {"model_version": "obj"}
NAMED_VERSION = {"name!": "str", "version!": "id"}
SEARCH = {"filter": "str", "max_results": "size", "order_by": "strs", "page_token": "str"}

OPERATIONS = {
    v.RegisteredModelCreateView: {
        "post": Op(
            "Create a registered model",
            {"name!": "str", "description": "str", "tags": "tags"},
            MODEL,
        )
    },
    v.RegisteredModelGetView: {"get": Op("Get a registered model", {"name!": "str"}, MODEL)},
    v.RegisteredModelSearchView: {
        "get": Op(
            "Search registered models",
            SEARCH,
            {"registered_models": "objs", "next_page_token": "str"},
        ),
        "post": Op(
            "Search registered models",
            SEARCH,
            {"registered_models": "objs", "next_page_token": "str"},
        ),
    },
    v.RegisteredModelRenameView: {
        "post": Op(
            "Rename a registered model (within its schema)",
            {"name!": "str", "new_name!": "str"},
            MODEL,
        )
    },
    v.RegisteredModelUpdateView: {
        "patch": Op("Update a model's description", {"name!": "str", "description": "str"}, MODEL)
    },
    v.RegisteredModelDeleteView: {
        "delete": Op("Delete a registered model and its versions", {"name!": "str"})
    },
    v.RegisteredModelSetTagView: {
        "post": Op("Set a model tag", {"name!": "str", "key!": "str", "value": "str"})
    },
    v.RegisteredModelDeleteTagView: {
        "delete": Op("Delete a model tag", {"name!": "str", "key!": "str"})
    },
    v.AliasView: {
        "get": Op("The version an alias names", {"name!": "str", "alias!": "str"}, VERSION),
        "post": Op(
            "Set an alias (a protected one answers with the promotion request it needs)",
            {"name!": "str", "alias!": "str", "version!": "id"},
        ),
        "delete": Op("Delete an alias", {"name!": "str", "alias!": "str"}),
    },
    v.LatestVersionsView: {
        "get": Op(
            "Latest version per stage",
            {"name!": "str", "stages": "strs"},
            {"model_versions": "objs"},
        ),
        "post": Op(
            "Latest version per stage",
            {"name!": "str", "stages": "strs"},
            {"model_versions": "objs"},
        ),
    },
    v.ModelVersionCreateView: {
        "post": Op(
            "Register a model version (its files are copied into Steward's store)",
            {
                "name!": "str",
                "source!": "str",
                "run_id": "str",
                "model_id": "str",
                "description": "str",
                "tags": "tags",
            },
            VERSION,
        )
    },
    v.ModelVersionGetView: {"get": Op("Get a model version", NAMED_VERSION, VERSION)},
    v.ModelVersionSearchView: {
        "get": Op(
            "Search model versions", SEARCH, {"model_versions": "objs", "next_page_token": "str"}
        ),
        "post": Op(
            "Search model versions", SEARCH, {"model_versions": "objs", "next_page_token": "str"}
        ),
    },
    v.ModelVersionUpdateView: {
        "patch": Op(
            "Update a version's description", {**NAMED_VERSION, "description": "str"}, VERSION
        )
    },
    v.ModelVersionDeleteView: {"delete": Op("Delete a model version", NAMED_VERSION)},
    v.ModelVersionTransitionView: {
        "post": Op(
            "Move a version to a stage (deprecated in MLflow; aliases are preferred)",
            {**NAMED_VERSION, "stage!": "str", "archive_existing_versions": "bool"},
            VERSION,
        )
    },
    v.ModelVersionSetTagView: {
        "post": Op("Set a version tag", {**NAMED_VERSION, "key!": "str", "value": "str"})
    },
    v.ModelVersionDeleteTagView: {
        "delete": Op("Delete a version tag", {**NAMED_VERSION, "key!": "str"})
    },
    v.ModelVersionDownloadUriView: {
        "get": Op(
            "Where a version's files are served (the artifact proxy)",
            NAMED_VERSION,
            {"artifact_uri": "str"},
        )
    },
}

mlflow_schema("MlflowRegistry", OPERATIONS, tags=["mlflow registry"])
