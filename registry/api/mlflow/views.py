"""The MLflow model-registry REST door (/api/2.0/mlflow/registered-models/... and
/api/2.0/mlflow/model-versions/...): parse, call one service or selector, render.

Wire rules (docs/research/mlflow-client-wire.md §0, §2): GET reads the query string (lists as
repeated keys), POST/PATCH/DELETE a JSON body (DELETE has one too). A registry name is
`catalog.schema.model`, or a bare `model` in STEWARD_DEFAULT_NAMESPACE; answers carry the full
name. Errors use MLflow's codes and are never a 5xx for bad input (the client retries those).
"""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.response import Response

from accounts.permissions import IsAuthenticatedPrincipal
from core.errors import InvalidParameter
from registry import selectors, services, storage
from registry.api.mlflow import render
from tracking.api.mlflow.views import MlflowView

EMPTY: dict = {}


class RegistryView(MlflowView):
    """Base of the door: authenticated principals only; objects are checked by services."""

    permission_classes = [IsAuthenticatedPrincipal]

    def query(self, *names: str) -> dict:
        return {name: self.q(name) for name in names}


# --- parsing ---------------------------------------------------------------------------------


def name_of(data: dict, field: str = "name") -> str:
    """The full name a request's `name` means (a bare name lives in the default namespace)."""
    if data.get(field) in (None, ""):
        raise InvalidParameter(f"Missing value for required parameter '{field}'.")
    return selectors.qualify_name(data.get(field), field=field)


def required(data: dict, field: str):
    value = data.get(field)
    if value in (None, ""):
        raise InvalidParameter(f"Missing value for required parameter '{field}'.")
    return value


def version_of(data: dict):
    """The version as sent (a string on the wire; numbers accepted); services parse it."""
    value = required(data, "version")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidParameter("version must be a string holding a positive integer.")
    return value


def optional_str(data: dict, field: str) -> str | None:
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise InvalidParameter(f"{field} must be a string.")
    return value


def strict_bool(data: dict, field: str) -> bool:
    value = data.get(field, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidParameter(f"{field} must be true or false.")
    return value


def page_out(field: str, items: list, token: str | None) -> Response:
    out: dict = {field: items}
    if token:
        out["next_page_token"] = token
    return Response(out)


# --- registered models -----------------------------------------------------------------------


class RegisteredModelCreateView(RegistryView):
    def post(self, request):
        data = self.body()
        catalog_name, schema_name, name = name_of(data).split(".")
        model = services.registered_model_create(
            actor=self.actor(),
            catalog_name=catalog_name,
            schema_name=schema_name,
            name=name,
            comment=optional_str(data, "description"),
            tags=data.get("tags"),
        )
        model = selectors.registered_model_get(actor=self.actor(), full_name=model.full_name)
        return Response({"registered_model": render.model_out(model)})


class RegisteredModelGetView(RegistryView):
    def get(self, request):
        model = selectors.registered_model_get(
            actor=self.actor(), full_name=name_of(self.query("name"))
        )
        return Response({"registered_model": render.model_out(model)})


class SearchView(RegistryView):
    """MLflow's search: GET (query string, repeated order_by) and POST (body) alike."""

    search: Callable  # the selector: (actor=, filter=, max_results=, order_by=, page_token=)
    key: str  # the list's name in the answer
    render_items: Callable

    def _search(self, data: dict) -> Response:
        items, token = self.search(
            actor=self.actor(),
            filter=data.get("filter"),
            max_results=data.get("max_results"),
            order_by=data.get("order_by"),
            page_token=data.get("page_token"),
        )
        return page_out(self.key, self.render_items(items), token)

    def get(self, request):
        data = self.query("filter", "max_results", "page_token")
        data["order_by"] = request.query_params.getlist("order_by") or None
        return self._search(data)

    def post(self, request):
        return self._search(self.body())


class RegisteredModelSearchView(SearchView):
    search = staticmethod(selectors.registered_model_search)
    key = "registered_models"
    render_items = staticmethod(render.models_out)


class RegisteredModelRenameView(RegistryView):
    def post(self, request):
        data = self.body()
        full_name = name_of(data)
        new_full_name = name_of(data, "new_name")
        namespace, _, new_name = new_full_name.rpartition(".")
        if namespace != full_name.rpartition(".")[0]:
            raise InvalidParameter("A model can only be renamed within its catalog and schema.")
        model = services.registered_model_update(
            actor=self.actor(), full_name=full_name, new_name=new_name
        )
        return Response({"registered_model": render.model_out(model)})


class RegisteredModelUpdateView(RegistryView):
    def patch(self, request):
        data = self.body()
        model = services.registered_model_update(
            actor=self.actor(),
            full_name=name_of(data),
            comment=optional_str(data, "description"),
        )
        return Response({"registered_model": render.model_out(model)})


class RegisteredModelDeleteView(RegistryView):
    def delete(self, request):
        # MLflow deletes a registered model together with its versions.
        services.registered_model_delete(
            actor=self.actor(), full_name=name_of(self.body()), force=True
        )
        return Response(EMPTY)


class RegisteredModelSetTagView(RegistryView):
    def post(self, request):
        data = self.body()
        services.registered_model_tag_set(
            actor=self.actor(),
            full_name=name_of(data),
            key=required(data, "key"),
            value=data.get("value"),
        )
        return Response(EMPTY)


class RegisteredModelDeleteTagView(RegistryView):
    def delete(self, request):
        data = self.body()
        services.registered_model_tag_delete(
            actor=self.actor(), full_name=name_of(data), key=required(data, "key")
        )
        return Response(EMPTY)


class AliasView(RegistryView):
    def get(self, request):
        data = self.query("name", "alias")
        version = selectors.model_version_by_alias(
            actor=self.actor(), full_name=name_of(data), alias=required(data, "alias")
        )
        return Response({"model_version": render.versions_out([version])[0]})

    def post(self, request):
        data = self.body()
        services.alias_set(
            actor=self.actor(),
            full_name=name_of(data),
            alias=required(data, "alias"),
            version=version_of(data),
        )
        return Response(EMPTY)

    def delete(self, request):
        data = self.body()
        services.alias_delete(
            actor=self.actor(), full_name=name_of(data), alias=required(data, "alias")
        )
        return Response(EMPTY)


class LatestVersionsView(RegistryView):
    def _latest(self, data: dict) -> Response:
        versions = selectors.model_version_latest(
            actor=self.actor(), full_name=name_of(data), stages=data.get("stages")
        )
        return Response({"model_versions": render.versions_out(versions)})

    def get(self, request):
        data = self.query("name")
        data["stages"] = request.query_params.getlist("stages") or None
        return self._latest(data)

    def post(self, request):
        return self._latest(self.body())


# --- model versions --------------------------------------------------------------------------


class ModelVersionCreateView(RegistryView):
    def post(self, request):
        data = self.body()
        version = services.model_version_create(
            actor=self.actor(),
            full_name=name_of(data),
            source=required(data, "source"),
            run_id=optional_str(data, "run_id") or "",
            logged_model_id=optional_str(data, "model_id") or "",
            description=optional_str(data, "description"),
            tags=data.get("tags"),
            copy_files=True,
        )
        if version.status == version.Status.PENDING_REGISTRATION:
            # A large source is copied after commit; an eager Celery (the embedded default)
            # has done so by now and may have sealed the version READY.
            version = selectors.model_version_get(
                actor=self.actor(), full_name=version.model.full_name, version=version.version
            )
        # A new version holds no alias yet.
        return Response({"model_version": render.versions_out([version], aliases={})[0]})


class ModelVersionGetView(RegistryView):
    def get(self, request):
        data = self.query("name", "version")
        version = selectors.model_version_get(
            actor=self.actor(), full_name=name_of(data), version=version_of(data)
        )
        return Response({"model_version": render.versions_out([version])[0]})


class ModelVersionSearchView(SearchView):
    search = staticmethod(selectors.model_version_search)
    key = "model_versions"
    render_items = staticmethod(render.versions_out)


class ModelVersionUpdateView(RegistryView):
    def patch(self, request):
        data = self.body()
        version = services.model_version_update(
            actor=self.actor(),
            full_name=name_of(data),
            version=version_of(data),
            description=optional_str(data, "description"),
        )
        return Response({"model_version": render.versions_out([version])[0]})


class ModelVersionDeleteView(RegistryView):
    def delete(self, request):
        data = self.body()
        services.model_version_delete(
            actor=self.actor(), full_name=name_of(data), version=version_of(data)
        )
        return Response(EMPTY)


class ModelVersionTransitionView(RegistryView):
    def post(self, request):
        data = self.body()
        version = services.model_version_transition_stage(
            actor=self.actor(),
            full_name=name_of(data),
            version=version_of(data),
            stage=required(data, "stage"),
            archive_existing_versions=strict_bool(data, "archive_existing_versions"),
        )
        return Response({"model_version": render.versions_out([version])[0]})


class ModelVersionSetTagView(RegistryView):
    def post(self, request):
        data = self.body()
        services.model_version_tag_set(
            actor=self.actor(),
            full_name=name_of(data),
            version=version_of(data),
            key=required(data, "key"),
            value=data.get("value"),
        )
        return Response(EMPTY)


class ModelVersionDeleteTagView(RegistryView):
    def delete(self, request):
        data = self.body()
        services.model_version_tag_delete(
            actor=self.actor(),
            full_name=name_of(data),
            version=version_of(data),
            key=required(data, "key"),
        )
        return Response(EMPTY)


class ModelVersionDownloadUriView(RegistryView):
    def get(self, request):
        data = self.query("name", "version")
        version = selectors.model_version_get(
            actor=self.actor(), full_name=name_of(data), version=version_of(data)
        )
        # Served by the artifact proxy, which checks EXECUTE and audits each download.
        return Response({"artifact_uri": f"mlflow-artifacts:/{storage.version_prefix(version)}"})
