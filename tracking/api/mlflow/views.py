"""The MLflow tracking REST door (/api/2.0/mlflow/ and /api/3.0/mlflow/): parse, call one
service or selector, render.

Wire rules (docs/research/mlflow-client-wire.md §0): GET takes its fields from the query
string (lists as repeated keys), POST/PATCH/DELETE from a JSON body; runs are named by
`run_id` or `run_uuid` (both may come, and must agree); ids are strings, int64 values numbers;
errors are {"error_code", "message"} with MLflow's codes, never a 5xx for bad input (the
client retries those for minutes).
"""

from __future__ import annotations

from rest_framework.response import Response

from core.api import json_body, query_bool, query_one
from core.errors import InvalidParameter
from tracking import selectors, services
from tracking.api.base import TrackingView
from tracking.api.mlflow import render


class MlflowView(TrackingView):
    """Base of the door: authenticated principals only; objects are checked by services."""

    def body(self) -> dict:
        return json_body(self.request)

    def q(self, name: str):
        return query_one(self.request, name)


def run_id_of(values: dict):
    """The run a request names by `run_id` and/or `run_uuid` (the client sends both)."""
    run_id = values.get("run_id")
    run_uuid = values.get("run_uuid")
    if run_id not in (None, "") and run_uuid not in (None, "") and run_id != run_uuid:
        raise InvalidParameter("run_id and run_uuid name different runs.")
    return run_id if run_id not in (None, "") else run_uuid


def _same_model_id(body: dict, model_id: str) -> None:
    """A model_id in the body must be the one in the path (the check runs on what is acted on)."""
    given = body.get("model_id")
    if given not in (None, "") and given != model_id:
        raise InvalidParameter("model_id in the body does not match the one in the path.")


EMPTY: dict = {}


# --- server info -----------------------------------------------------------------------------


class ServerInfoView(MlflowView):
    def get(self, request):
        return Response(
            {
                "store_type": "SqlStore",
                "workspaces_enabled": False,
                "multipart_uploads_enabled": False,
                "multipart_downloads_enabled": False,
            }
        )


# --- experiments -----------------------------------------------------------------------------


class ExperimentCreateView(MlflowView):
    def post(self, request):
        data = self.body()
        obj = services.experiment_create(
            actor=self.actor(),
            name=data.get("name"),
            artifact_location=data.get("artifact_location"),
            tags=data.get("tags"),
        )
        return Response({"experiment_id": obj.experiment_id})


class ExperimentGetView(MlflowView):
    def get(self, request):
        obj = selectors.experiment_get(actor=self.actor(), experiment_id=self.q("experiment_id"))
        return Response({"experiment": render.experiment_out(obj)})


class ExperimentGetByNameView(MlflowView):
    def get(self, request):
        obj = selectors.experiment_get_by_name(actor=self.actor(), name=self.q("experiment_name"))
        return Response({"experiment": render.experiment_out(obj)})


class ExperimentSearchView(MlflowView):
    def _search(self, data: dict):
        items, token = selectors.experiment_search(
            actor=self.actor(),
            view_type=data.get("view_type"),
            filter=data.get("filter"),
            max_results=data.get("max_results"),
            order_by=data.get("order_by"),
            page_token=data.get("page_token"),
        )
        out: dict = {"experiments": [render.experiment_out(e) for e in items]}
        if token:
            out["next_page_token"] = token
        return Response(out)

    def get(self, request):
        data = {name: self.q(name) for name in ("view_type", "filter", "max_results", "page_token")}
        data["order_by"] = request.query_params.getlist("order_by") or None
        return self._search(data)

    def post(self, request):
        return self._search(self.body())


class ExperimentUpdateView(MlflowView):
    def post(self, request):
        data = self.body()
        services.experiment_update(
            actor=self.actor(),
            experiment_id=data.get("experiment_id"),
            new_name=data.get("new_name"),
        )
        return Response(EMPTY)


class ExperimentDeleteView(MlflowView):
    def post(self, request):
        services.experiment_delete(
            actor=self.actor(), experiment_id=self.body().get("experiment_id")
        )
        return Response(EMPTY)


class ExperimentRestoreView(MlflowView):
    def post(self, request):
        services.experiment_restore(
            actor=self.actor(), experiment_id=self.body().get("experiment_id")
        )
        return Response(EMPTY)


class ExperimentSetTagView(MlflowView):
    def post(self, request):
        data = self.body()
        services.experiment_tag_set(
            actor=self.actor(),
            experiment_id=data.get("experiment_id"),
            key=data.get("key"),
            value=data.get("value"),
        )
        return Response(EMPTY)


class ExperimentDeleteTagView(MlflowView):
    def post(self, request):
        data = self.body()
        services.experiment_tag_delete(
            actor=self.actor(), experiment_id=data.get("experiment_id"), key=data.get("key")
        )
        return Response(EMPTY)


# --- runs ------------------------------------------------------------------------------------


class RunCreateView(MlflowView):
    def post(self, request):
        data = self.body()
        run = services.run_create(
            actor=self.actor(),
            experiment_id=data.get("experiment_id"),
            start_time=data.get("start_time"),
            tags=data.get("tags"),
            run_name=data.get("run_name"),
            user_id=data.get("user_id"),
        )
        run = selectors.run_get(actor=self.actor(), run_id=run.run_id)
        return Response({"run": render.run_out(run)})


class RunGetView(MlflowView):
    def get(self, request):
        run_id = run_id_of({"run_id": self.q("run_id"), "run_uuid": self.q("run_uuid")})
        run = selectors.run_get(actor=self.actor(), run_id=run_id)
        return Response({"run": render.run_out(run)})


class RunUpdateView(MlflowView):
    def post(self, request):
        data = self.body()
        run = services.run_update(
            actor=self.actor(),
            run_id=run_id_of(data),
            status=data.get("status"),
            end_time=data.get("end_time"),
            run_name=data.get("run_name"),
        )
        return Response({"run_info": render.run_info_out(run)})


class RunDeleteView(MlflowView):
    def post(self, request):
        services.run_delete(actor=self.actor(), run_id=run_id_of(self.body()))
        return Response(EMPTY)


class RunRestoreView(MlflowView):
    def post(self, request):
        services.run_restore(actor=self.actor(), run_id=run_id_of(self.body()))
        return Response(EMPTY)


class RunSearchView(MlflowView):
    def post(self, request):
        data = self.body()
        items, token = selectors.run_search(
            actor=self.actor(),
            experiment_ids=data.get("experiment_ids"),
            filter=data.get("filter"),
            run_view_type=data.get("run_view_type"),
            max_results=data.get("max_results"),
            order_by=data.get("order_by"),
            page_token=data.get("page_token"),
        )
        out: dict = {"runs": [render.run_out(r) for r in items]}
        if token:
            out["next_page_token"] = token
        return Response(out)


class RunLogMetricView(MlflowView):
    def post(self, request):
        data = self.body()
        services.run_log_metric(
            actor=self.actor(),
            run_id=run_id_of(data),
            key=data.get("key"),
            value=data.get("value"),
            timestamp=data.get("timestamp"),
            step=data.get("step"),
            model_id=data.get("model_id"),
            dataset_name=data.get("dataset_name"),
            dataset_digest=data.get("dataset_digest"),
        )
        return Response(EMPTY)


class RunLogParamView(MlflowView):
    def post(self, request):
        data = self.body()
        services.run_log_param(
            actor=self.actor(),
            run_id=run_id_of(data),
            key=data.get("key"),
            value=data.get("value"),
        )
        return Response(EMPTY)


class RunLogBatchView(MlflowView):
    def post(self, request):
        data = self.body()
        services.run_log_batch(
            actor=self.actor(),
            run_id=run_id_of(data),
            metrics=data.get("metrics"),
            params=data.get("params"),
            tags=data.get("tags"),
        )
        return Response(EMPTY)


class RunSetTagView(MlflowView):
    def post(self, request):
        data = self.body()
        services.run_tag_set(
            actor=self.actor(),
            run_id=run_id_of(data),
            key=data.get("key"),
            value=data.get("value"),
        )
        return Response(EMPTY)


class RunDeleteTagView(MlflowView):
    def post(self, request):
        data = self.body()
        services.run_tag_delete(actor=self.actor(), run_id=run_id_of(data), key=data.get("key"))
        return Response(EMPTY)


class RunLogInputsView(MlflowView):
    def post(self, request):
        data = self.body()
        services.run_log_inputs(
            actor=self.actor(),
            run_id=run_id_of(data),
            datasets=data.get("datasets"),
            models=data.get("models"),
        )
        return Response(EMPTY)


class RunLogOutputsView(MlflowView):
    def post(self, request):
        data = self.body()
        services.run_log_outputs(
            actor=self.actor(), run_id=run_id_of(data), models=data.get("models")
        )
        return Response(EMPTY)


class MetricHistoryView(MlflowView):
    def get(self, request):
        items, token = selectors.metric_history(
            actor=self.actor(),
            run_id=run_id_of({"run_id": self.q("run_id"), "run_uuid": self.q("run_uuid")}),
            metric_key=self.q("metric_key"),
            max_results=self.q("max_results"),
            page_token=self.q("page_token"),
        )
        out: dict = {"metrics": [render.metric_out(m) for m in items]}
        if token:
            out["next_page_token"] = token
        return Response(out)


# --- logged models ---------------------------------------------------------------------------


class LoggedModelCreateView(MlflowView):
    def post(self, request):
        data = self.body()
        model = services.logged_model_create(
            actor=self.actor(),
            experiment_id=data.get("experiment_id"),
            name=data.get("name"),
            model_type=data.get("model_type"),
            source_run_id=data.get("source_run_id"),
            params=data.get("params"),
            tags=data.get("tags"),
        )
        model = selectors.logged_model_get(actor=self.actor(), model_id=model.model_id)
        return Response({"model": render.logged_model_out(model)})


class LoggedModelSearchView(MlflowView):
    def post(self, request):
        data = self.body()
        items, token = selectors.logged_model_search(
            actor=self.actor(),
            experiment_ids=data.get("experiment_ids"),
            filter=data.get("filter"),
            datasets=data.get("datasets"),
            max_results=data.get("max_results"),
            order_by=data.get("order_by"),
            page_token=data.get("page_token"),
        )
        out: dict = {"models": [render.logged_model_out(m) for m in items]}
        if token:
            out["next_page_token"] = token
        return Response(out)


class LoggedModelDetailView(MlflowView):
    def get(self, request, model_id):
        model = selectors.logged_model_get(
            actor=self.actor(),
            model_id=model_id,
            allow_deleted=query_bool(request, "allow_deleted"),
        )
        return Response({"model": render.logged_model_out(model)})

    def patch(self, request, model_id):
        data = self.body()
        _same_model_id(data, model_id)
        services.logged_model_finalize(
            actor=self.actor(), model_id=model_id, status=data.get("status")
        )
        model = selectors.logged_model_get(actor=self.actor(), model_id=model_id)
        return Response({"model": render.logged_model_out(model)})

    def delete(self, request, model_id):
        _same_model_id(self.body(), model_id)
        services.logged_model_delete(actor=self.actor(), model_id=model_id)
        return Response(EMPTY)


class LoggedModelTagsView(MlflowView):
    def patch(self, request, model_id):
        data = self.body()
        _same_model_id(data, model_id)
        services.logged_model_tags_set(actor=self.actor(), model_id=model_id, tags=data.get("tags"))
        return Response(EMPTY)


class LoggedModelTagDetailView(MlflowView):
    def delete(self, request, model_id, tag_key):
        data = self.body()
        _same_model_id(data, model_id)
        if data.get("tag_key") not in (None, "") and data["tag_key"] != tag_key:
            raise InvalidParameter("tag_key in the body does not match the one in the path.")
        services.logged_model_tag_delete(actor=self.actor(), model_id=model_id, key=tag_key)
        return Response(EMPTY)


class LoggedModelParamsView(MlflowView):
    def post(self, request, model_id):
        data = self.body()
        _same_model_id(data, model_id)
        services.logged_model_params_log(
            actor=self.actor(), model_id=model_id, params=data.get("params")
        )
        return Response(EMPTY)
