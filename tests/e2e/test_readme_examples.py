"""Every shell and Python example in README.md runs, as written, against a live server on the
demo data (issue 12, part 5). A new example runs here by being in the README; one that fails
breaks the build.

How the reader is imitated:
- The server is started as `./dev up` starts it (embedded settings: `migrate`,
  `bootstrap_demo`, `runserver`), on a data folder of its own and a free port: the examples'
  `127.0.0.1:8000` is the only text changed, to that port.
- The fenced blocks (```sh, ```bash, ```console, ```python) run in README order, in one bash
  session in the repository (so `$TOKEN`, `$H`, `$UC` set by one block serve the next, as in
  the reader's terminal); a Python block runs with `python` from that session, which is the
  virtual environment's (`./dev up` installs into .venv).
- A block fails when a command in it fails or a curl call answers an HTTP error. A block that
  shows an error on purpose says so in the README, inside the block, with a comment line
  `# expect: <status>` after its curl call.
- A block preceded by `<!-- readme-test: skip (reason) -->` does not run: only for what cannot
  run here (the two commands that set the machine up). Every other language tag is refused,
  so an example cannot slip past by its fence.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RUN = {"sh", "bash", "console", "python"}
SHOWN_ONLY = {"text", "json", "yaml", "toml", "ini", "http"}  # not programs: nothing to run
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
EXPECT = re.compile(r"^\s*#\s*expect:\s*(?P<status>\d{3})\b")

pytestmark = [pytest.mark.e2e]


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, dedented (list items indent theirs)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        start, indent = i, opening["indent"]
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"README.md:{start + 1}: a code block is never closed")
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        skip = SKIP.search(before)
        code = textwrap.dedent("\n".join(body))
        if indent and not all(line.startswith(indent) or not line.strip() for line in body):
            raise AssertionError(f"README.md:{start + 1}: the block's lines leave its indent")
        blocks.append(
            Block(start + 1, opening["lang"], code + "\n", skip["reason"] if skip else None)
        )
        i += 1
    return blocks


def console_commands(code: str) -> str:
    """A ```console block: the commands after `$ ` prompts; the rest is shown output."""
    return "".join(line[2:] + "\n" for line in code.splitlines() if line.startswith("$ "))


def expected_statuses(code: str) -> dict[int, int]:
    """{index of the curl call: its expected HTTP status} from `# expect: NNN` lines, each
    about the curl call before it."""
    expected, calls = {}, 0
    for line in code.splitlines():
        if re.match(r"^\s*curl\s", line):
            calls += 1
        match = EXPECT.match(line)
        if match:
            assert calls, f"'# expect:' before any curl call: {line!r}"
            expected[calls - 1] = int(match["status"])
    return expected


def test_readme_blocks_are_all_runnable_or_marked():
    """Guards the guard: each block is in a language this test runs (or shows no program),
    and skips are few and say why."""
    blocks = readme_blocks(README.read_text())
    langs = {b.lang for b in blocks}
    assert langs <= RUN | SHOWN_ONLY, f"blocks in other languages: {langs - RUN - SHOWN_ONLY}"
    assert "" not in langs, "a code block without a language: name it (sh, python, ...)"
    skipped = [b for b in blocks if b.skip]
    assert len(skipped) <= 2, skipped
    assert [b for b in blocks if b.lang in RUN and not b.skip], "no example found to run"


def test_the_harness_reads_fences_markers_and_expectations():
    text = (
        "<!-- readme-test: skip (needs docker) -->\n```sh\ndocker run x\n```\n"
        "1. item\n\n   ```python\n   print(1)\n   ```\n"
        "```console\n$ echo hi\nhi\n```\n"
    )
    blocks = readme_blocks(text)
    assert [(b.lang, b.skip) for b in blocks] == [
        ("sh", "needs docker"),
        ("python", None),
        ("console", None),
    ]
    assert blocks[1].code == "print(1)\n"
    assert console_commands(blocks[2].code) == "echo hi\n"
    code = "curl a\n# expect: 403\ncurl b \\\n  -d x\ncurl c\n# expect: 400 (a gate)\n"
    assert expected_statuses(code) == {0: 403, 2: 400}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """`./dev up` without the install step: embedded settings, migrate, bootstrap_demo,
    runserver; on a data folder and port of its own. Yields (base URL, environment)."""
    data = tmp_path_factory.mktemp("readme-demo")
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "STEWARD_", "CELERY_", "MLFLOW_"))
    }
    env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "STEWARD_DATA_DIR": str(data),
            "STEWARD_BIND": f"127.0.0.1:{port}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
        }
    )
    manage = [sys.executable, "manage.py"]
    for step in (["migrate", "--noinput", "-v0"], ["bootstrap_demo"]):
        result = subprocess.run(
            [*manage, *step], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
    log = data / "server.log"
    with open(log, "wb") as handle:
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo server did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield base, env, log
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)


# Defined in the reader's shell before the first block: curl as the reader types it, with each
# call's HTTP status written down; a failing command is written down too.
PRELUDE = r"""
set -o pipefail
curl() {
  local body code
  body=$(mktemp)
  if ! code=$(command curl -sS -o "$body" -w '%{http_code}' "$@"); then
    echo "curl could not complete: curl $*" >> "$README_ERRORS"
  fi
  cat "$body"; echo
  rm -f "$body"
  printf '%s curl %s\n' "$code" "$(printf '%s ' "$@" | tr '\n' ' ')" >> "$README_CALLS"
}
trap 'echo "line $LINENO: $BASH_COMMAND (exit $?)" >> "$README_ERRORS"' ERR
"""


class Shell:
    """One bash session in the repository, fed block by block."""

    def __init__(self, env: dict, workdir: Path):
        self.workdir = workdir
        self.calls = workdir / "calls"
        self.errors = workdir / "errors"
        self.output = workdir / "output"
        env = {**env, "README_CALLS": str(self.calls), "README_ERRORS": str(self.errors)}
        self.out_handle = open(self.output, "wb")  # noqa: SIM115  (closed in close())
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self.out_handle,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.count = 0
        self.send(PRELUDE)

    def send(self, script: str, timeout: float = 600) -> None:
        """Run `script` in the session and wait until it is done."""
        self.count += 1
        done = self.workdir / f"done-{self.count}"
        path = self.workdir / f"block-{self.count}.sh"
        path.write_text(script)
        self.proc.stdin.write(f'source "{path}"; : > "{done}"\n')
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while not done.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"the shell ended:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the block did not finish in {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def run_python(self, code: str) -> None:
        self.count += 1
        path = self.workdir / f"block-{self.count}.py"
        path.write_text(code)
        self.send(f'python "{path}"\n')

    def lines(self, path: Path) -> list[str]:
        return path.read_text().splitlines() if path.exists() else []

    def log(self) -> str:
        return self.output.read_text(errors="replace")[-6000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.out_handle.close()


def test_every_readme_example_runs_against_the_demo(demo_server, tmp_path):
    base, env, server_log = demo_server
    port = base.rsplit(":", 1)[1]
    shell = Shell(env, tmp_path)
    ran = 0
    try:
        for block in readme_blocks(README.read_text()):
            if block.lang not in RUN or block.skip:
                continue
            # `./dev up` never returns and `./dev test` would run this test again.
            assert not re.search(r"(^|[\s;&|(])\./dev\b", block.code), (
                f"README.md:{block.line}: runs ./dev; mark the block with a readme-test skip"
            )
            code = block.code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            calls_before = len(shell.lines(shell.calls))
            errors_before = len(shell.lines(shell.errors))
            if block.lang == "python":
                shell.run_python(code)
            else:
                shell.send(console_commands(code) if block.lang == "console" else code)
            ran += 1
            where = f"README.md:{block.line} ({block.lang})"
            context = (
                f"\n--- session output ---\n{shell.log()}\n--- server ---\n"
                + (server_log.read_text(errors="replace")[-3000:])
            )
            errors = shell.lines(shell.errors)[errors_before:]
            assert not errors, f"{where}: a command failed: {errors}{context}"
            calls = shell.lines(shell.calls)[calls_before:]
            expected = expected_statuses(code)
            assert max(expected, default=-1) < len(calls), f"{where}: fewer calls than expects"
            for index, call in enumerate(calls):
                status = int(call.split(" ", 1)[0])
                wanted = expected.get(index)
                ok = status == wanted if wanted is not None else 200 <= status < 400
                assert ok, f"{where}: {call} (wanted {wanted or '2xx/3xx'}){context}"
    finally:
        shell.close()
    assert ran >= 8, f"only {ran} README examples ran"
