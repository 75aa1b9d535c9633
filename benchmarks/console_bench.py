"""The console at scale: queue page, a filtered page, a full-text search and the dashboard, timed through the
Flask app for a signed-in officer over many generated cases, with the query plans that make them fast.

The officer works on one of four programmes (a quarter of the cases), as officers do. Server time is the time
the app takes to answer the request in-process (Flask's test client: no network, no browser).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.common import Figure, emit, machine

PASSWORD = "bench-officer-password-1"  # noqa: S105  (a generated benchmark account in a throw-away database)
PLANS = Path(__file__).resolve().parent / "PLANS.md"


@dataclasses.dataclass
class Settings:
    """Case counts and how many timed requests per page."""

    postgresql_cases: int = 1_000_000
    sqlite_cases: int = 200_000
    requests: int = 60


QUICK = Settings(postgresql_cases=100_000, sqlite_cases=40_000, requests=20)
FULL = Settings()
PAGES = {
    "queue": "/console/queue/general",
    "filtered": "/console/queue/general?category=service_complaint&channel=sms&status=all",
    "search": "/console/queue/general?q=documents",
    "search_common": "/console/queue/general?q=the",
    "dashboard": "/console/dashboard",
}
# Officers of every programme (headquarters, compliance: no programme on their account) read the queue pages over
# all four programmes; their figures carry this prefix (issue 9).
EVERY_PROGRAMME = ("every_programme.", "hq@bench.example.org", ("queue", "filtered", "search", "search_common"))
FLOORS_MS = {"postgresql": 150.0, "sqlite": 300.0}


def _app(database_url: str) -> Any:
    """The app on the benchmark database, migrated, with an officer of the first programme."""
    from cfm import create_app
    from cfm.services.admin import upgrade_schema
    from cfm.services.crypto import generate_keys

    app = create_app(
        {
            "DATABASE_URL": database_url,
            **generate_keys(),
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "SESSION_COOKIE_SECURE": False,
        }
    )
    with app.app_context():
        upgrade_schema()
        changed = _indexes_as_declared()
    if changed:
        print(f"# indexes changed in the models and not yet in a migration (created, -dropped): {', '.join(changed)}")
    return app


def _indexes_as_declared() -> list[str]:
    """Make the database's indexes those the models declare: create the ones no migration creates yet, drop the
    ones the models no longer declare; return what changed.

    The benchmark measures the models' schema: an index changed in a model is measured before its migration is
    written, and named on the output so that it is not forgotten. Indexes of other dialects (ddl_if) are skipped.
    """
    from cfm.extensions import db

    engine = db.engine
    before = _index_names(engine)
    declared = {str(index.name) for table in db.metadata.sorted_tables for index in table.indexes}
    for table in db.metadata.sorted_tables:
        for index in table.indexes:
            if index.name not in before:
                with warnings.catch_warnings():  # SQLite's reflection (checkfirst) warns of expression indexes
                    warnings.simplefilter("ignore", sa.exc.SAWarning)
                    index.create(engine, checkfirst=True)  # checkfirst: skips what ddl_if keeps for another dialect
    stale = sorted(name for name in before if name.startswith("ix_") and name not in declared)
    with engine.begin() as conn:
        for name in stale:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
    return sorted(_index_names(engine) - before) + [f"-{name}" for name in stale]


def _index_names(engine: sa.Engine) -> set[str]:
    """Names of the indexes in the database (expression indexes included, which SQLite's reflection skips)."""
    if engine.dialect.name == "postgresql":
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
    with engine.connect() as conn:
        return set(conn.scalars(sa.text(query)))


def _officer(app: Any) -> None:
    """An officer of the kenya programme (created after the generator made the programmes)."""
    from cfm.services.admin import create_user

    with app.app_context():
        create_user("officer@bench.example.org", PASSWORD, ["officer"], ["kenya"])
        create_user(EVERY_PROGRAMME[1], PASSWORD, ["officer"], [])  # no programme: every programme


def _statements(app: Any, client: Any, path: str) -> list[tuple[str, Any]]:
    """The SQL statements (with parameters) one request runs."""
    from cfm.extensions import db

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        client.get(path)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def _explain(app: Any, statement: str, parameters: Any) -> tuple[float, str]:
    """The statement's time (run once, rows fetched, in ms) and its plan: EXPLAIN ANALYZE on PostgreSQL, EXPLAIN
    QUERY PLAN on SQLite (which has no ANALYZE: the time is what shows the cost there)."""
    from cfm.extensions import db

    with app.app_context():
        engine = db.engine
        prefix = "EXPLAIN (ANALYZE, COSTS OFF) " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            began = time.perf_counter()
            cursor.execute(statement, parameters)
            cursor.fetchall()
            took = (time.perf_counter() - began) * 1000
            cursor.execute(prefix + statement, parameters)
            rows = cursor.fetchall()
        finally:
            raw.rollback()
            raw.close()
    return took, "\n".join(" | ".join(str(v) for v in row) for row in rows)


def _time_page(client: Any, path: str, requests: int) -> tuple[list[float], float, int]:
    """Server times of `requests` requests (ms), the app's own CPU time per request (ms), and failed requests."""
    for _ in range(3):
        warm = client.get(path)
    failures = 0 if warm.status_code == 200 else 1
    timings = []
    cpu = time.process_time()
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        failures += answer.status_code != 200
    return timings, (time.process_time() - cpu) * 1000 / requests, failures


def _page_plans(app: Any, client: Any, name: str, path: str) -> list[str]:
    """PLANS.md lines for one page: every query with its time, then the plans of the two slowest."""
    statements = _statements(app, client, path)
    timed = []
    for statement, parameters in statements:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            took, plan = _explain(app, statement, parameters)
            timed.append((took, statement.strip(), plan))
    total = sum(took for took, _statement, _plan in timed)
    lines = [
        f"### {name}: `{path}`\n",
        f"{len(statements)} statements, the {len(timed)} queries take {total:.1f} ms together when run one by one:\n",
        *(f"- {took:7.1f} ms `{' '.join(statement.split())[:110]}`" for took, statement, _plan in timed),
        "",
    ]
    for took, statement, plan in sorted(timed, key=lambda item: item[0], reverse=True)[:2]:
        lines.append(f"```sql\n{statement}\n```\n{took:.1f} ms\n```\n{plan}\n```\n")
    return lines


def run(backend: str, database_url: str, settings: Settings, plans: list[str]) -> list[Figure]:
    """Generate the cases, sign in, time every page; add each page's queries and the slowest ones' plans to `plans`.

    Server time is wall time in-process; the note adds the app's CPU time per request (on SQLite that includes the
    database's work, on PostgreSQL the database's own processes are not in it) and the machine's load average, since
    a busy machine stretches wall time.
    """
    from benchmarks.generate import generate

    app = _app(database_url)
    n = settings.postgresql_cases if backend == "postgresql" else settings.sqlite_cases
    started = time.perf_counter()
    counts = generate(app, n)
    generated = time.perf_counter() - started
    _officer(app)
    figures = [
        emit(
            Figure(
                f"console.{backend}.generate_cases",
                counts["cases"] / generated,
                "cases/s",
                note=f"{counts['cases']:,} cases with their threads in {generated:.0f} s",
            )
        )
    ]
    plans.append(f"## {backend}, {counts['cases']:,} cases\n")
    officers = [("", "officer@bench.example.org", tuple(PAGES)), EVERY_PROGRAMME]
    for prefix, email, names in officers:
        client = app.test_client()
        response = client.post("/console/login", data={"email": email, "password": PASSWORD})
        if response.status_code != 302:
            raise RuntimeError(f"the benchmark officer {email} could not sign in ({response.status_code})")
        for name in names:
            path = PAGES[name]
            timings, cpu_ms, failures = _time_page(client, path, settings.requests)
            p95 = statistics.quantiles(timings, n=20, method="inclusive")[-1]
            note = (
                f"{counts['cases']:,} cases, median {statistics.median(timings):.1f} ms, app CPU {cpu_ms:.1f} "
                f"ms/request, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            )
            figures.append(
                emit(
                    Figure(
                        f"console.{backend}.{prefix}{name}_p95",
                        p95,
                        "ms",
                        floor=FLOORS_MS[backend],
                        higher_is_better=False,
                        note=note,
                        failures=failures,
                    )
                )
            )
            plans.extend(_page_plans(app, client, f"{prefix}{name}", path))
    return figures


def write_plans(plans: list[str]) -> None:
    """benchmarks/PLANS.md: the query plans behind the console figures."""
    header = (
        "# Query plans of the console benchmark\n\n"
        "Written by `python -m benchmarks --only console` (benchmarks/console_bench.py) on "
        f"{machine()}: for each page, the queries one request runs, each timed on its own, and the plans of the two "
        "slowest (PostgreSQL: EXPLAIN ANALYZE; SQLite: EXPLAIN QUERY PLAN).\n\n"
    )
    PLANS.write_text(header + "\n".join(plans), encoding="utf-8")
