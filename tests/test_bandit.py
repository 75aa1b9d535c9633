"""Bandit finds no medium or high severity issue (issue 8); each judged false positive is a `# nosec BXXX: why`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cfm", "channels", "classifier")


def bandit(*args: str) -> subprocess.CompletedProcess[str]:
    """Run bandit from this interpreter's environment (it is in the test extra)."""
    return subprocess.run([sys.executable, "-m", "bandit", *args], capture_output=True, text=True, cwd=ROOT)


def test_bandit_finds_no_medium_or_high_issue() -> None:
    result = bandit("-r", *PACKAGES, "-ll", "-q", "-f", "json")
    report = json.loads(result.stdout)
    findings = [
        f"{item['filename']}:{item['line_number']} {item['test_id']} {item['issue_text']}" for item in report["results"]
    ]
    assert findings == [], "\n".join(findings)
    assert not report["errors"], report["errors"]
    assert result.returncode == 0, result.stderr


def test_every_nosec_names_the_check_and_says_why() -> None:
    """A bare `# nosec` would silence every check on its line; ours name one and give the reason."""
    bare = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "nosec" in line and not re.search(r"#\s*nosec B\d{3}: \S", line):
                    bare.append(f"{path.relative_to(ROOT)}:{number}")
    assert bare == []
