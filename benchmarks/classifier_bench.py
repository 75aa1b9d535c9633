"""Classifier speed benchmark on the runtime path (default.npz, numpy only): load time, batch throughput on one
core, single-text latency, artifact size, the heavy modules loading imports, CLI end to end."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, emit

REPO = Path(__file__).resolve().parent.parent


def _figure(name: str, value: float, unit: str, floor: float | None, higher_is_better: bool) -> Figure:
    """One benchmark figure with its floor (or ceiling), printed as it is measured."""
    return emit(Figure(f"classifier.{name}", value, unit, floor=floor, higher_is_better=higher_is_better))


def _texts(n: int) -> list[str]:
    """n corpus texts (cycled), so the benchmark reads realistic lengths and scripts."""
    from classifier.data import load_corpus

    corpus = [e.text for e in load_corpus()] or ["when is our flight, nobody told us anything"]
    return [corpus[i % len(corpus)] for i in range(n)]


def _cli_end_to_end(lines: int) -> float | None:
    """Texts per second for `cfm classify FILE` on `lines` JSON lines, start-up included; None without the CLI."""
    cfm = shutil.which("cfm") or str(Path(sys.executable).with_name("cfm"))
    if not Path(cfm).exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.jsonl"
        source.write_text(
            "".join(json.dumps({"text": t, "id": i}, ensure_ascii=False) + "\n" for i, t in enumerate(_texts(lines))),
            encoding="utf-8",
        )
        env = {**os.environ, "CFM_DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        started = time.perf_counter()
        result = subprocess.run(  # noqa: S603 - our own console script with a file we wrote
            [cfm, "classify", str(source)], capture_output=True, env=env, cwd=tmp, timeout=600, check=False
        )
        elapsed = time.perf_counter() - started
    if result.returncode != 0 or result.stdout.count(b"\n") < lines:
        print(f"cfm classify unavailable or failed (exit {result.returncode})", flush=True)
        return None
    return lines / elapsed


_COLD_LOAD = """
import sys, time
wall, cpu = time.perf_counter(), time.process_time()
from classifier.predict import load_model
model = load_model()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
heavy = sorted({name.split(".")[0] for name in sys.modules if name.split(".")[0] in ("sklearn", "scipy", "skops")})
print(wall if model is not None else -1, cpu, len(heavy), ",".join(heavy))
"""


def run(quick: bool) -> list[Figure]:
    """Run every figure (quick: fewer texts) and return them; each is also printed with its floor."""
    sys.path.insert(0, str(REPO))
    # The runtime path as the web app and the worker take it: load_model() reads default.npz (numpy only).
    cold = subprocess.run(  # noqa: S603 - the running interpreter on a fixed snippet
        [sys.executable, "-c", _COLD_LOAD], capture_output=True, text=True, cwd=REPO, check=False
    )
    from classifier import language, persistence, safety_net
    from classifier.predict import DEFAULT_MODEL_PATH, load_model, safety_scanner

    figures: list[Figure] = []
    runtime = persistence.runtime_path(DEFAULT_MODEL_PATH)
    size_mb = (runtime if runtime.is_file() else DEFAULT_MODEL_PATH).stat().st_size / 1e6
    figures.append(_figure(f"artifact size ({runtime.name})", size_mb, "MB", 25.0, higher_is_better=False))
    loads = []
    for _ in range(3):
        started = time.process_time()
        model = load_model()
        loads.append(time.process_time() - started)
    assert model is not None, "no usable default model"
    figures.append(_figure("model load (modules imported, CPU time, best of 3)", min(loads), "s", 1.0, False))
    fields = cold.stdout.split()
    if len(fields) >= 3 and float(fields[0]) >= 0:
        figures.append(_figure("model load, fresh process (with imports, wall)", float(fields[0]), "s", None, False))
        figures.append(
            _figure("model load, fresh process (with imports, CPU time)", float(fields[1]), "s", None, False)
        )
        note = fields[3] if len(fields) > 3 else ""
        heavy = emit(
            Figure(
                "classifier.sklearn/scipy/skops modules imported by load_model",
                float(fields[2]),
                "packages",
                floor=0,
                higher_is_better=False,
                note=note,
            )
        )
        figures.append(heavy)

    n = 2_000 if quick else 20_000
    texts = _texts(n)
    # One-time costs (py3langid's model, the safety net's compiled lexicon and alternations, lookup tables) are
    # paid before timing, as a long-running worker pays them once. py3langid loads on the first text pycld2 cannot
    # place, which the warm-up texts may not contain: load it explicitly.
    language._identifier()
    language.detect("warm up the fallback identifier")
    safety_net.warm(all_patterns=True)
    model.predict(_texts(500))
    rates, wall_rates = [], []
    for _ in range(3):  # the median of three runs: the machine is shared
        wall, cpu = time.perf_counter(), time.process_time()
        model.predict(texts)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rates.append(n / cpu)
        wall_rates.append(n / wall)
    figures.append(
        _figure(f"batch predict ({n} texts, CPU time, median of 3)", statistics.median(rates), "texts/s", 5000, True)
    )
    figures.append(
        _figure(
            f"batch predict ({n} texts, wall clock, median of 3)", statistics.median(wall_rates), "texts/s", None, True
        )
    )

    singles = texts[: 300 if quick else 2_000]
    timings = []
    for text in singles:
        started = time.process_time()
        model.predict_one(text)
        timings.append(time.process_time() - started)
    figures.append(_figure("single text median (CPU time)", statistics.median(timings) * 1e3, "ms", 2.0, False))
    p95 = statistics.quantiles(timings, n=20)[-1] * 1e3
    figures.append(_figure("single text p95 (CPU time)", p95, "ms", None, False))

    started = time.perf_counter()
    for text in texts:
        language.detect(text)
    figures.append(_figure("language id per text", (time.perf_counter() - started) / n * 1e6, "us", None, False))
    scan = safety_scanner()
    if scan is not None:
        started = time.perf_counter()
        for text in texts:
            scan(text)
        figures.append(_figure("safety net per text", (time.perf_counter() - started) / n * 1e6, "us", None, False))

    rate = _cli_end_to_end(2_000 if quick else 20_000)
    if rate is not None:
        figures.append(_figure("cfm classify end to end (with start-up)", rate, "texts/s", 1000, True))
    return figures


def main() -> int:
    """CLI: python -m benchmarks.classifier_bench [--quick] [--json FILE]."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer texts (a few seconds)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(args.quick)
    if args.json:
        args.json.write_text(json.dumps([f.as_dict() for f in figures], indent=1) + "\n", encoding="utf-8")
    return 0 if all(f.holds is not False for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
