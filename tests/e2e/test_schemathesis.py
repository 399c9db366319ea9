"""The OpenAPI document and the server agree: schemathesis (`--checks all`) fuzzes every
operation of /api/schema/ against a live server on the demo data, as an admin and anonymously.

A 500, an undocumented status or content type, an answer that does not match its schema, or
input that breaks the schema yet is accepted fails the test. Runs are deterministic
(`--generation-deterministic`) and bounded by examples per operation (not by a time budget,
which would make schemathesis fuzz until it is spent and test less on a slower machine).

One relaxation, in the config below: `positive_data_acceptance` also expects 400, because
names, filters and other strings carry rules the schema cannot spell out (a filter's grammar,
a three-part full name); a schema-valid request may still be bad input.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import User
from tests.conftest import token_for
from tests.e2e.conftest import _wait_for_request_threads

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409"]

# The coverage phase also sends every method a path does not serve; one is enough to check
# the JSON 405 (each of the others costs a request per path).
[phases.coverage]
unexpected-methods = ["trace"]
"""
# Fuzzed examples per operation, beside the coverage phase's boundary and negative cases:
# the admin run then takes about two minutes on two cores; raise it locally for a deeper run.
MAX_EXAMPLES = int(os.environ.get("STEWARD_SCHEMATHESIS_EXAMPLES", "2"))


def _schemathesis(
    tmp_path: Path, url: str, *args: str, phases: str = "coverage,fuzzing", examples: int
) -> subprocess.CompletedProcess:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{url}/api/schema/",
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--generation-deterministic",
        "--phases",
        phases,
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        *args,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path
    )


def _verdict(result: subprocess.CompletedProcess) -> None:
    out = result.stdout
    start = out.find("FAILURES")
    tail = out[start : start + 30000] if start >= 0 else out[-5000:]
    assert result.returncode == 0, f"schemathesis found failures:\n{tail}\n{result.stderr[-2000:]}"
    selected = re.search(r"Selected: (\d+)/\d+", out)
    tested = re.search(r"Tested: (\d+)", out)
    assert selected and tested and tested.group(1) == selected.group(1), out[-3000:]


@pytest.fixture
def demo(live_server, monkeypatch):
    # The fuzzer sends hundreds of deliberately bad credentials from one address; the
    # failure throttle would turn its later 401s into 429s (tested on its own elsewhere).
    monkeypatch.setattr("accounts.authentication.FAILURE_LIMIT", 10**9)
    call_command("bootstrap_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    yield live_server.url
    _wait_for_request_threads()


def test_schema_and_server_agree_for_an_admin(demo, tmp_path):
    token = token_for(User.objects.get(username="admin"))
    result = _schemathesis(
        tmp_path,
        demo,
        "--header",
        f"Authorization: Bearer {token}",
        # Revoking tokens by fuzzed ids would revoke this run's own token midway; the route
        # is fuzzed anonymously below and tested in tests/accounts/test_tokens.py.
        "--exclude-operation-id",
        "tokens_revoke",
        # /api/3.0/mlflow/ serves the same views as /api/2.0/mlflow/; fuzzing both doubles
        # the run for nothing (the anonymous run below covers its routes).
        "--exclude-path-regex",
        "^/api/3\\.0/",
        examples=MAX_EXAMPLES,
    )
    _verdict(result)


def test_schema_and_server_agree_for_an_anonymous_caller(demo, tmp_path):
    # Every route but the public ones answers 401 before reading anything: one fuzzed case
    # per operation checks the status, the error body and its documentation.
    _verdict(_schemathesis(tmp_path, demo, phases="fuzzing", examples=1))
