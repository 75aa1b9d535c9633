"""python -m benchmarks [--quick|--full] [--only SECTION ...] [--write-results]: every figure of issue 9.

Each section starts what it needs on 127.0.0.1 (gunicorn, a PostgreSQL schema of its own, a temporary SQLite
file), bounds its loops in count and time, and stops what it started. One line per figure: value, unit, the
ratio against the baseline measured in the same run (where the figure has one), the floor, and whether it holds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import REPO, Figure, emit, machine, pg_schema

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _classifier(quick: bool) -> list[Figure]:
    from benchmarks import classifier_bench

    return classifier_bench.run(quick)


def _intake(quick: bool) -> list[Figure]:
    from benchmarks import intake_bench

    settings = intake_bench.QUICK if quick else intake_bench.FULL
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        figures += intake_bench.run("sqlite", f"sqlite:///{tmp}/intake.sqlite", settings)
    with pg_schema() as url:
        figures += intake_bench.run("postgresql", url, settings)
    return figures


def _export(quick: bool) -> list[Figure]:
    from benchmarks import export_bench

    n = 20_000 if quick else 100_000
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        result = export_bench.run(n, f"sqlite:///{tmp}/export.sqlite")
    figures.append(
        emit(
            Figure(
                "export.sqlite.csv_rows_per_second",
                result["rows_per_s"],
                "rows/s",
                floor=20_000,
                note=f"{n} rows; {result['cpu_rows_per_s']} rows per CPU second, load average {result['load']}",
            )
        )
    )
    figures.append(
        emit(
            Figure(
                "export.sqlite.memory_added_by_export",
                result["rss_growth_export_mb"],
                "MB",
                floor=150,
                higher_is_better=False,
                note=f"Python heap peak {result['python_peak_mb']} MB, process {result['max_rss_process_mb']} MB",
            )
        )
    )
    return figures


def _load(quick: bool) -> list[Figure]:
    from benchmarks import load_bench

    with pg_schema() as url:
        return load_bench.run(url, load_bench.QUICK if quick else load_bench.FULL)


def _console(quick: bool) -> list[Figure]:
    from benchmarks import console_bench

    settings = console_bench.QUICK if quick else console_bench.FULL
    plans: list[str] = []
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        figures += console_bench.run("sqlite", f"sqlite:///{tmp}/console.sqlite", settings, plans)
    with pg_schema() as url:
        figures += console_bench.run("postgresql", url, settings, plans)
    console_bench.write_plans(plans)
    return figures


SECTIONS: dict[str, Callable[[bool], list[Figure]]] = {
    "classifier": _classifier,
    "intake": _intake,
    "console": _console,
    "export": _export,
    "load": _load,
}


def _git(*args: str) -> str:
    """Output of a git command in the repository (raises OSError or CalledProcessError)."""
    command = ["git", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603


def source_revision() -> str:
    """The commit the benchmarked code comes from (with "+ changes" when the tree differs), or "unknown"."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def write_results(figures: list[Figure], command: str, seconds: float, load: float, revision: str) -> None:
    """benchmarks/RESULTS.md: the figures of this run, the command, the code's commit and the machine."""
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {seconds / 60:.1f} min, "
        f"code at commit {revision}.",
        f"Machine: {machine()}; load average {load:.1f} when the run started (other work on the machine makes the "
        "throughput and latency figures lower).",
        "",
        "| figure | value | unit | ratio to baseline | floor | holds |",
        "|---|---|---|---|---|---|",
    ]
    for figure in figures:
        ratio = "" if figure.ratio is None else f"{figure.ratio:.2f}"
        holds = {None: "", True: "yes", False: "**no**"}[figure.holds]
        note = f" ({figure.note})" if figure.note else ""
        cells = (f"{figure.name}{note}", f"{figure.value:.2f}", figure.unit, ratio, figure.bound(), holds)
        lines.append("| " + " | ".join(cells) + " |")
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections; exit 1 when a floor does not hold."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller runs: every figure in under 5 minutes")
    size.add_argument("--full", action="store_true", help="the sizes the floors are stated for (default)")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument("--write-results", action="store_true", help="write benchmarks/RESULTS.md")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    started = time.perf_counter()
    load = os.getloadavg()[0]
    revision = source_revision()  # before the run writes PLANS.md
    figures: list[Figure] = []
    print(f"# {machine()}", flush=True)
    for name in args.only or list(SECTIONS):
        print(f"## {name}", flush=True)
        figures += SECTIONS[name](args.quick)
    seconds = time.perf_counter() - started
    print(f"# {len(figures)} figures in {seconds:.0f} s", flush=True)
    command = "python -m benchmarks" + (" --quick" if args.quick else "") + " --write-results"
    if args.write_results:
        write_results(figures, command, seconds, load, revision)
    if args.json:
        args.json.write_text(json.dumps([f.as_dict() for f in figures], indent=1) + "\n", encoding="utf-8")
    return 0 if all(figure.holds is not False for figure in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
