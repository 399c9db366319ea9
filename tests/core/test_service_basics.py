"""Health checks, the OpenAPI schema, production settings guards, and README commands."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_is_public(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database(client):
    assert client.get("/readyz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_unavailable_database(client, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def broken(self, sql, params=None):
        from django.db import OperationalError

        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", broken)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


@pytest.mark.django_db
def test_openapi_schema_documents_uc_native_and_token_auth(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in [
        "/api/2.1/unity-catalog/catalogs",
        "/api/2.1/unity-catalog/models/{full_name}",
        "/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}",
        "/api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}",
        "/api/v1/audit-events",
        "/api/v1/tokens",
    ]:
        assert path in paths, path
    assert "bearerAuth" in schema["components"]["securitySchemes"]
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_unknown_api_route_answers_json_404(client):
    response = client.get("/api/2.1/unity-catalog/nothing/here/at/all")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def _production(env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _production({"DATABASE_URL": "postgres://u@127.0.0.1/x"})
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_production_refuses_sqlite():
    result = _production({"DJANGO_SECRET_KEY": "k" * 50})
    assert result.returncode != 0 and "PostgreSQL" in result.stderr


def test_production_starts_with_real_settings():
    result = _production(
        {"DJANGO_SECRET_KEY": "k" * 50, "DATABASE_URL": "postgres://u@127.0.0.1/x"}
    )
    assert result.returncode == 0, result.stderr


def test_readme_names_exactly_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "./dev up" in readme and "./dev test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./dev test" in ci


def test_readme_documents_every_environment_variable():
    """Keep the README's configuration table true: every variable the settings read."""
    import re

    names = set()
    for path in (ROOT / "config" / "settings").glob("*.py"):
        names |= set(re.findall(r'env(?:_bool|_int|_list)?\("([A-Z0-9_]+)"', path.read_text()))
    readme = (ROOT / "README.md").read_text()
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert missing == []
