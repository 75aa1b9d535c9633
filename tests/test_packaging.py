"""The wheel carries what a plain `pip install .` needs: migrations, templates, corpus, lexicon, model."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_the_data_files(tmp_path: Path) -> None:
    # Build from a clean copy: an in-tree build/ folder could carry files from earlier builds into the wheel.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "test-artifacts", "instance", "__pycache__")
    shutil.copytree(ROOT, source, symlinks=True, ignore=ignore)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*command, str(source)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("cfm-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cfm/migrations/env.py" in names
    # Every source package of the tree is in the wheel (a folder without __init__.py is silently left out).
    for init in sorted(ROOT.glob("*/**/__init__.py")):
        relative = init.relative_to(ROOT).as_posix()
        if relative.split("/")[0] in ("cfm", "channels", "classifier"):
            assert relative in names, relative
    for module in sorted(ROOT.glob("cfm/**/*.py")):
        relative = module.relative_to(ROOT).as_posix()
        if "migrations/" not in relative:
            assert relative in names, f"{relative} is not packaged (missing __init__.py in its folder?)"
    assert any(n.startswith("cfm/migrations/versions/") and n.endswith(".py") for n in names)
    assert "cfm/templates/base.html" in names
    assert "cfm/static/vendor/chart.umd.min.js" in names and "cfm/static/vendor/chart.js.LICENSE.md" in names
    assert "classifier/models/default.skops" in names
    # The runtime arrays the app predicts and identifies languages from (without them: slower, larger workers).
    assert "classifier/models/default.npz" in names and "classifier/models/langid.npz" in names
    assert sum(n.startswith("classifier/data/corpus/") and n.endswith(".jsonl") for n in names) >= 12
    assert any(n.startswith("classifier/lexicon/") for n in names)
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "cfm = cfm.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
