"""The code base stays ruff-clean (the rules in ruff.toml), so CI catches what review would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing() -> None:
    # ruff is in the test extra; run it from this interpreter's environment (the venv need not be activated).
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
