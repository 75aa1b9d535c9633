"""What every benchmark shares: figures with floors and baselines, a gunicorn on 127.0.0.1, PostgreSQL schemas.

Everything a benchmark starts it stops (context managers), every loop is bounded in count and in time, and
nothing listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("CFM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CFM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@dataclasses.dataclass
class Figure:
    """One measured figure, its floor (or ceiling) and, when it has one, the baseline measured in the same run."""

    name: str
    value: float
    unit: str
    floor: float | None = None
    higher_is_better: bool = True
    baseline: float | None = None  # the value this one is compared with (same run, same machine)
    ratio_floor: float | None = None  # a floor on value / baseline instead of on value
    note: str = ""
    failures: int = 0  # requests that went wrong while measuring: the figure cannot hold then

    @property
    def ratio(self) -> float | None:
        """value / baseline, when there is a baseline."""
        return None if not self.baseline else self.value / self.baseline

    @property
    def holds(self) -> bool | None:
        """Whether the floor (or the ratio floor) holds; None when the figure has neither."""
        if self.failures:
            return False
        if self.ratio_floor is not None:
            return self.ratio is not None and self.ratio >= self.ratio_floor
        if self.floor is None:
            return None
        return self.value >= self.floor if self.higher_is_better else self.value <= self.floor

    def bound(self) -> str:
        """The floor as text: '>= 5000', '<= 100', 'ratio >= 0.6'."""
        if self.ratio_floor is not None:
            return f"ratio >= {self.ratio_floor:g}"
        if self.floor is None:
            return ""
        return f"{'>=' if self.higher_is_better else '<='} {self.floor:g}"

    def line(self) -> str:
        """The one line printed for this figure."""
        ratio = f"x{self.ratio:.2f}" if self.ratio is not None else ""
        verdict = {None: "", True: "ok", False: "BELOW FLOOR"}[self.holds]
        note = f"  ({self.note})" if self.note else ""
        return f"{self.name:44s} {self.value:12.2f} {self.unit:8s} {ratio:>7s}  {self.bound():16s} {verdict}{note}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for RESULTS.md and --json."""
        return {
            "name": self.name,
            "value": round(self.value, 3),
            "unit": self.unit,
            "floor": self.bound(),
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "holds": self.holds,
            "note": self.note,
        }


def emit(figure: Figure) -> Figure:
    """Print a figure as soon as it is measured (a long run shows its progress)."""
    print(figure.line(), flush=True)
    return figure


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def pg_schema(base_url: str = POSTGRES_URL, prefix: str = "cfm_bench") -> Iterator[str]:
    """A PostgreSQL schema of the caller's own, dropped afterwards; yields the URL that selects it."""
    engine = sa.create_engine(base_url)
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base_url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def wait_http(port: int, path: str = "/healthz", timeout: float = 60.0) -> None:
    """Wait until 127.0.0.1:port answers path (any status); raise after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()  # also after a failed attempt (an unclosed socket is a ResourceWarning: an error in pytest)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path} within {timeout:.0f} s")


@dataclasses.dataclass
class Server:
    """A running gunicorn: its port and master process."""

    port: int
    process: subprocess.Popen[bytes]

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (children of the master)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], *, workers: int = 2, threads: int = 1) -> Iterator[Server]:
    """gunicorn serving `app` (module:attribute) on 127.0.0.1 with `workers` workers; stopped on exit."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--backlog",
        "512",
        app,
    ]
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env})
    try:
        wait_http(port)
        yield Server(port, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> str:
    """Cores, memory and Python of this machine, for RESULTS.md."""
    memory = 0.0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) / 1024 / 1024
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    version = ".".join(map(str, sys.version_info[:3]))
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB memory, Python {version}"
