"""Run a script in a fresh interpreter that can measure its own unique memory (USS) and report JSON (issue 9)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

# uss_mb(): the pages only this process holds; settle(): collect garbage and hand freed heap back (glibc).
PRELUDE = textwrap.dedent(
    """
    import ctypes, gc, json

    def uss_mb():
        with open("/proc/self/smaps_rollup") as f:
            fields = dict(line.split()[:2] for line in f if line.split()[1:2] and line.split()[1].isdigit())
        return (int(fields["Private_Clean:"]) + int(fields["Private_Dirty:"])) / 1024

    def settle():
        gc.collect()
        ctypes.CDLL(None).malloc_trim(0)
    """
)


def run_probe(body: str, timeout: int) -> dict[str, Any]:
    """PRELUDE + body in a new interpreter; the JSON object its last output line prints."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
