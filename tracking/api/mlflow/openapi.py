"""The MLflow tracking door in the OpenAPI document: each operation's inputs and answer, as
MLflow's client sends and reads them (docs/research/mlflow-client-wire.md). Applied to the
views when the door's routes load; nothing here parses a request."""

from core.openapi import Op, mlflow_schema
from tracking.api.mlflow import views as v

RUN = {"run_id": "str", "run_uuid": "str"}
PAGE = {"max_results": "size", "page_token": "str"}
EXPERIMENT_SEARCH = {"view_type": "str", "filter": "str", "order_by": "strs", **PAGE}

OPERATIONS = {
    v.ServerInfoView: {
        "get": Op("What the server supports", answer={"store_type": "str", "any": "any"})
    },
    v.ExperimentCreateView: {
        "post": Op(
            "Create an experiment",
            {"name!": "str", "artifact_location": "str", "tags": "objs"},
            {"experiment_id": "str"},
        )
    },
    v.ExperimentGetView: {
        "get": Op("Get an experiment", {"experiment_id!": "id"}, {"experiment": "obj"})
    },
    v.ExperimentGetByNameView: {
        "get": Op("Get an experiment by name", {"experiment_name!": "str"}, {"experiment": "obj"})
    },
    v.ExperimentSearchView: {
        "get": Op(
            "Search experiments",
            EXPERIMENT_SEARCH,
            {"experiments": "objs", "next_page_token": "str"},
        ),
        "post": Op(
            "Search experiments",
            EXPERIMENT_SEARCH,
            {"experiments": "objs", "next_page_token": "str"},
        ),
    },
    v.ExperimentUpdateView: {
        "post": Op("Rename an experiment", {"experiment_id!": "id", "new_name": "str"})
    },
    v.ExperimentDeleteView: {"post": Op("Delete an experiment", {"experiment_id!": "id"})},
    v.ExperimentRestoreView: {"post": Op("Restore an experiment", {"experiment_id!": "id"})},
    v.ExperimentSetTagView: {
        "post": Op("Set an experiment tag", {"experiment_id!": "id", "key!": "str", "value": "str"})
    },
    v.ExperimentDeleteTagView: {
        "post": Op("Delete an experiment tag", {"experiment_id!": "id", "key!": "str"})
    },
    v.RunCreateView: {
        "post": Op(
            "Create a run",
            {
                "experiment_id": "id",
                "start_time": "int",
                "tags": "objs",
                "run_name": "str",
                "user_id": "str",
            },
            {"run": "obj"},
        )
    },
    v.RunGetView: {"get": Op("Get a run", RUN, {"run": "obj"})},
    v.RunUpdateView: {
        "post": Op(
            "Update a run",
            {**RUN, "status": "str", "end_time": "int", "run_name": "str"},
            {"run_info": "obj"},
        )
    },
    v.RunDeleteView: {"post": Op("Delete a run", {"run_id": "str"})},
    v.RunRestoreView: {"post": Op("Restore a run", {"run_id": "str"})},
    v.RunSearchView: {
        "post": Op(
            "Search runs",
            {
                "experiment_ids": "ids",
                "filter": "str",
                "run_view_type": "str",
                "order_by": "strs",
                **PAGE,
            },
            {"runs": "objs", "next_page_token": "str"},
        )
    },
    v.RunLogMetricView: {
        "post": Op(
            "Log a metric",
            {
                **RUN,
                "key": "str",
                "value": "number",
                "timestamp": "int",
                "step": "int",
                "model_id": "str",
                "dataset_name": "str",
                "dataset_digest": "str",
            },
        )
    },
    v.RunLogParamView: {"post": Op("Log a parameter", {**RUN, "key": "str", "value": "any"})},
    v.RunLogBatchView: {
        "post": Op(
            "Log metrics, parameters and tags",
            {**RUN, "metrics": "objs", "params": "objs", "tags": "objs"},
        )
    },
    v.RunSetTagView: {"post": Op("Set a run tag", {**RUN, "key": "str", "value": "any"})},
    v.RunDeleteTagView: {"post": Op("Delete a run tag", {**RUN, "key": "str"})},
    v.RunLogInputsView: {
        "post": Op("Log a run's inputs", {**RUN, "datasets": "objs", "models": "objs"})
    },
    v.RunLogOutputsView: {"post": Op("Log a run's outputs", {**RUN, "models": "objs"})},
    v.MetricHistoryView: {
        "get": Op(
            "A metric's history",
            {**RUN, "metric_key": "str", **PAGE},
            {"metrics": "objs", "next_page_token": "str"},
        )
    },
    v.LoggedModelCreateView: {
        "post": Op(
            "Create a logged model",
            {
                "experiment_id": "id",
                "name": "str",
                "model_type": "str",
                "source_run_id": "str",
                "params": "objs",
                "tags": "objs",
            },
            {"model": "obj"},
        )
    },
    v.LoggedModelSearchView: {
        "post": Op(
            "Search logged models",
            {
                "experiment_ids": "ids",
                "filter": "str",
                "datasets": "objs",
                "order_by": "objs",
                **PAGE,
            },
            {"models": "objs", "next_page_token": "str"},
        )
    },
    v.LoggedModelDetailView: {
        "get": Op("Get a logged model", answer={"model": "obj"}),
        "patch": Op("Finalize a logged model", {"status": "any"}, {"model": "obj"}),
        "delete": Op("Delete a logged model"),
    },
    v.LoggedModelTagsView: {"patch": Op("Set logged-model tags", {"tags": "objs"})},
    v.LoggedModelTagDetailView: {"delete": Op("Delete a logged-model tag", {"tag_key": "str"})},
    v.LoggedModelParamsView: {"post": Op("Log logged-model parameters", {"params": "objs"})},
}

mlflow_schema("MlflowTracking", OPERATIONS, tags=["mlflow tracking"])
