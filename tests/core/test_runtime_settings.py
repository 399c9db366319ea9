"""Settings of the embedded default that a fresh `./dev up` depends on (issue 12, part 5):
no PostgreSQL connection kept per runserver thread, and STEWARD_BASE_URL following STEWARD_BIND.

Each case imports the settings module in a process of its own, with exactly the environment
given, as `./dev up` would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings.base import base_url_for_bind

ROOT = Path(__file__).resolve().parents[2]
PG = "postgres://postgres@127.0.0.1:5432/steward_dev"


def _settings(module: str, tmp_path: Path, **env: str) -> dict:
    """The names below, as `module` computes them with only `env` set (and a data folder)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "STEWARD_", "CELERY_"))
    }
    code = (
        f"import json, {module} as s; "
        "print(json.dumps({'conn_max_age': s.DATABASES['default']['CONN_MAX_AGE'], "
        "'engine': s.DATABASES['default']['ENGINE'], 'base_url': s.STEWARD_BASE_URL}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "STEWARD_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_keeps_no_postgresql_connection_per_thread(tmp_path):
    seen = _settings("config.settings.embedded", tmp_path, DATABASE_URL=PG)
    assert seen["engine"] == "django.db.backends.postgresql"
    assert seen["conn_max_age"] == 0


def test_production_keeps_its_postgresql_connections(tmp_path):
    """gunicorn's workers reuse their connections: the 60-second default stays there."""
    seen = _settings("config.settings.base", tmp_path, DATABASE_URL=PG)
    assert seen["conn_max_age"] == 60


def test_embedded_honours_an_explicit_conn_max_age(tmp_path):
    seen = _settings(
        "config.settings.embedded", tmp_path, DATABASE_URL=PG, DATABASE_CONN_MAX_AGE="5"
    )
    assert seen["conn_max_age"] == 5


def test_embedded_sqlite_keeps_no_connection_whatever_is_asked(tmp_path):
    seen = _settings("config.settings.embedded", tmp_path, DATABASE_CONN_MAX_AGE="60")
    assert seen["engine"] == "django.db.backends.sqlite3"
    assert seen["conn_max_age"] == 0


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        (None, "http://127.0.0.1:8000"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("127.0.0.1:8001", "http://127.0.0.1:8001"),
        ("localhost:9000", "http://localhost:9000"),
    ],
)
def test_base_url_follows_bind_when_unset(tmp_path, bind, expected):
    env = {} if bind is None else {"STEWARD_BIND": bind}
    assert _settings("config.settings.embedded", tmp_path, **env)["base_url"] == expected


def test_an_explicit_base_url_wins_over_bind(tmp_path):
    seen = _settings(
        "config.settings.embedded",
        tmp_path,
        STEWARD_BIND="0.0.0.0:9000",
        STEWARD_BASE_URL="https://steward.example.org/",
    )
    assert seen["base_url"] == "https://steward.example.org"


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("9000", "http://127.0.0.1:9000"),
        ("0:9000", "http://127.0.0.1:9000"),
        ("[::]:9000", "http://127.0.0.1:9000"),
        ("[::1]:8000", "http://[::1]:8000"),
        ("::1:8000", "http://[::1]:8000"),
        ("steward.internal:80", "http://steward.internal:80"),
    ],
)
def test_base_url_for_bind(bind, expected):
    assert base_url_for_bind(bind) == expected


@pytest.mark.parametrize(
    "bind", ["", "localhost", "127.0.0.1:", "127.0.0.1:http", "x:0", "x:70000"]
)
def test_a_bind_that_is_not_host_and_port_is_a_clear_error(bind):
    with pytest.raises(ImproperlyConfigured, match=r"STEWARD_BIND must be \[host:\]port"):
        base_url_for_bind(bind)


def test_a_bad_bind_stops_the_settings_with_that_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings.embedded"],
        cwd=ROOT,
        env={**os.environ, "STEWARD_DATA_DIR": str(tmp_path), "STEWARD_BIND": "localhost"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "STEWARD_BIND must be [host:]port" in result.stderr
