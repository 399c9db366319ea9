"""Names of lineage nodes: the identity digest, the public node id, and how an MLflow dataset is
named in OpenLineage's terms so that both sources meet on the same node.

Pure functions (no models), so migrations may import them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import unquote, urlsplit

from lineage.openlineage import storable_problem

MAX_NAME = 1024
# Object stores whose OpenLineage name is the object key (no leading slash).
_KEY_SCHEMES = {"s3", "s3a", "s3n", "gs", "gcs", "wasbs", "wasb", "abfs", "abfss", "oss", "r2"}
# Kinds whose node id has a namespace (`dataset:<namespace>:<name>`); the others are
# `<kind>:<name>`.
NAMESPACED = {"dataset", "job"}


def identity(kind: str, namespace: str, name: str) -> str:
    """The unique key of a node: SHA-256 over kind, namespace and name (unambiguous, bounded)."""
    raw = json.dumps([kind, namespace, name], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _escape(name: str) -> str:
    return name.replace("%", "%25").replace(":", "%3A")


def node_key(kind: str, namespace: str, name: str) -> str:
    """The public node id: `dataset:<namespace>:<name>`, `job:<namespace>:<name>`,
    `run:<uuid>`, `mlflow_run:<run id>`, `model_version:<version uuid>`.

    Namespaces often hold ':' (`postgres://db:5432`), names seldom do; so in the name, and only
    there, '%' and ':' are percent-encoded, and the last ':' of an id always ends the namespace.
    An id is therefore unambiguous, and the usual one (`dataset:s3://bucket:raw/x.csv`) reads as
    OpenLineage tools write it.
    """
    if kind in NAMESPACED:
        return f"{kind}:{namespace}:{_escape(name)}"
    return f"{kind}:{name}"


def parse_key(node_id: str) -> tuple[str, str, str] | None:
    """(kind, namespace, name) of a public node id, or None if it cannot be one."""
    kind, sep, rest = node_id.partition(":")
    if not sep or not rest:
        return None
    if kind not in NAMESPACED:
        return kind, "", rest
    namespace, sep, name = rest.rpartition(":")
    if not sep or not namespace or not name:
        return None
    return kind, namespace, unquote(name)


def _text(value: Any) -> str:
    return str(value).replace("\x00", "")[:MAX_NAME]


def _loads(text: Any) -> dict:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def mlflow_dataset_name(dataset: dict) -> tuple[str, str]:
    """(namespace, name) of an MLflow dataset, following OpenLineage's dataset naming.

    A source with a URI (`{"uri": "s3://bucket/wine.csv"}`, `{"url": "https://..."}`, a local
    path) is named as OpenLineage integrations name it: `s3://bucket` + `wine.csv`,
    `file` + `/data/wine.csv`, `https://host` + `/x.csv`; query strings and fragments (which can
    hold signatures) are dropped. A dataset without a URI (an in-memory frame) is
    `mlflow` + `<name>@<digest>`: content-addressed, so two runs that logged the same data
    under the same name meet on one node.
    """
    source = _loads(dataset.get("source"))
    uri = source.get("uri") or source.get("url") or source.get("path")
    if isinstance(uri, str) and uri.strip() and "\x00" not in uri:
        named = _from_uri(uri.strip())
        if named is not None:
            return named
    return "mlflow", f"{dataset.get('name') or 'dataset'}@{dataset.get('digest') or ''}"[:MAX_NAME]


def _from_uri(uri: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or len(scheme) == 1:  # a plain path, file://, or C:\...
        path = parts.path if scheme == "file" else uri.split("?", 1)[0].split("#", 1)[0]
        namespace, name = "file", path
    else:
        if not parts.netloc:
            return None
        namespace = f"{scheme}://{parts.netloc.rpartition('@')[2]}"  # never keep credentials
        name = parts.path.lstrip("/") if scheme in _KEY_SCHEMES else parts.path or "/"
    if not name or len(namespace) > MAX_NAME or len(name) > MAX_NAME:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in namespace + name):
        return None
    return namespace, name


def mlflow_dataset_facets(dataset: dict, *, producer: str) -> dict[str, Any]:
    """OpenLineage-style facets for an MLflow dataset: `schema` (from MLflow's column spec),
    `dataSource`, `version` (the digest) and `mlflow` (name, digest, source type, profile)."""
    schema_url = "https://openlineage.io/spec/facets/1-0-0/"
    facets: dict[str, Any] = {}
    colspec = _loads(dataset.get("schema")).get("mlflow_colspec")
    if isinstance(colspec, list):
        fields = [
            {"name": _text(col.get("name", "")), "type": _text(col.get("type", ""))}
            for col in colspec[:1000]
            if isinstance(col, dict)
        ]
        facets["schema"] = {
            "_producer": producer,
            "_schemaURL": schema_url + "SchemaDatasetFacet.json",
            "fields": fields,
        }
    source = _loads(dataset.get("source"))
    uri = source.get("uri") or source.get("url") or source.get("path")
    named = _from_uri(uri.strip()) if isinstance(uri, str) and uri.strip() else None
    if named is not None:
        namespace, name = named
        facets["dataSource"] = {
            "_producer": producer,
            "_schemaURL": schema_url + "DatasourceDatasetFacet.json",
            "name": _text(dataset.get("source_type", "")),
            # Rebuilt from the cleaned name: no credentials, query string or fragment.
            "uri": name if namespace == "file" else f"{namespace}/{name.lstrip('/')}",
        }
    if dataset.get("digest"):
        facets["version"] = {
            "_producer": producer,
            "_schemaURL": schema_url + "DatasetVersionDatasetFacet.json",
            "datasetVersion": dataset["digest"],
        }
    mlflow: dict[str, Any] = {
        "_producer": producer,
        "_schemaURL": producer,
        "name": _text(dataset.get("name", "")),
        "digest": _text(dataset.get("digest", "")),
        "sourceType": _text(dataset.get("source_type", "")),
    }
    profile = _loads(dataset.get("profile"))
    if profile and storable_problem(profile) is None:  # a profile jsonb cannot hold is dropped
        mlflow["profile"] = profile
    facets["mlflow"] = mlflow
    return facets
