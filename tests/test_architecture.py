"""The layers of docs/architecture.md hold: import-linter's contracts (.importlinter) pass.

.ci/run runs `lint-imports` as well; this test makes `./dev test` catch an upward import or an
import circle before CI does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and result.stdout.count("KEPT") == 3


def test_the_readme_layout_names_every_app():
    from django.conf import settings

    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    missing = [app for app in settings.LOCAL_APPS if f"`{app}/`" not in layout]
    assert not missing, f"README's Layout section does not name {missing}"
