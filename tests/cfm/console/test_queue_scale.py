"""The queue at scale (issue 9): pages read in index order, not sorted; the open-case predicate answered by the
partial index; the language choices found by a loose index scan, and only among cases the user may see."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from cfm.console import queues
from cfm.extensions import db
from cfm.models import Case
from cfm.services.access import visible_cases
from classifier.categories import LANGUAGES
from tests.cfm.console.conftest import GENERAL_TEXT, RESTRICTED_TEXT, World, make_case, sign_in

PAGES = (
    "/console/queue/general",
    "/console/queue/general?status=all&category=service_complaint&channel=sms",
    "/console/queue/general?sort=received",
)  # (a narrow filter, such as one status's overdue cases, may rightly sort its few rows instead)


def statements(app: Flask, client: FlaskClient, path: str) -> list[tuple[str, Any]]:
    """The SQL statements (with their parameters) one request runs."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def case_page_query(found: list[tuple[str, Any]]) -> tuple[str, Any]:
    """The statement that reads the page's cases (ordered and limited)."""
    pages = [(s, p) for s, p in found if re.match(r'\s*SELECT "case"\.id', s) and "LIMIT" in s and "ORDER BY" in s]
    assert len(pages) == 1, [s[:80] for s, _p in found]
    return pages[0]


def tab_count_query(found: list[tuple[str, Any]]) -> tuple[str, Any]:
    """The statement that counts the general tab's open cases."""
    counts = [(s, p) for s, p in found if s.lstrip().startswith("SELECT count(*)")]
    assert counts, [s[:80] for s, _p in found]
    return counts[0]


def plan(statement: str, parameters: Any, *, setup: tuple[str, ...] = ()) -> str:
    """The plan of a statement, after `setup` statements run in the same transaction (rolled back afterwards)."""
    db.session.commit()  # the test's own session lets go of its locks: the setup may drop indexes
    postgresql = db.engine.dialect.name == "postgresql"
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if not postgresql:
            cursor.execute("BEGIN")  # SQLite's DDL is transactional too, once a transaction is open
        for step in setup:
            cursor.execute(step)
        prefix = "EXPLAIN (COSTS OFF) " if postgresql else "EXPLAIN QUERY PLAN "
        cursor.execute(prefix + statement, parameters)
        rows = cursor.fetchall()
    finally:
        raw.rollback()
        raw.close()
    return "\n".join(" | ".join(str(v) for v in row) for row in rows)


def full_sort(text: str) -> bool:
    """True when the plan sorts every matching row (a tie-break within equal keys does not count)."""
    if db.engine.dialect.name == "postgresql":
        return re.search(r"^\s*(?:->\s*)?Sort$", text, re.M) is not None  # a Sort node, not an Incremental Sort
    return "USE TEMP B-TREE FOR ORDER BY" in text


def test_queue_pages_read_cases_in_index_order_instead_of_sorting_them(
    app: Flask, client: FlaskClient, world: World
) -> None:
    sign_in(client, world.users["officer"])
    # PostgreSQL chooses by cost, and every plan is cheap on a near-empty table: forbidding sorts makes it show
    # whether an index delivers the order at all (a Sort node remains if none can).
    setup = ("SET LOCAL enable_sort = off",) if db.engine.dialect.name == "postgresql" else ()
    for path in PAGES:
        statement, parameters = case_page_query(statements(app, client, path))
        text = plan(statement, parameters, setup=setup)
        assert not full_sort(text), f"{path}:\n{text}"
    # The next page too: the keyset condition is on the expression the index holds.
    cursor = queues.encode_cursor(world.case("kenya_general"), "due")
    statement, parameters = case_page_query(statements(app, client, f"/console/queue/general?after={cursor}"))
    assert not full_sort(plan(statement, parameters, setup=setup))


def test_open_queue_and_its_tab_count_are_answered_by_the_open_case_index(
    app: Flask, client: FlaskClient, world: World
) -> None:
    """With every other index of the table dropped (in a rolled-back transaction), the open-case index must still
    serve: the queries spell "open" exactly as its predicate does (a bound parameter would hide it from SQLite)."""
    sign_in(client, world.users["officer"])
    others = [index.name for index in Case.__table__.indexes if index.name != "ix_case_open_due"]
    setup = tuple(f'DROP INDEX IF EXISTS "{name}"' for name in others)
    if db.engine.dialect.name == "postgresql":
        setup += ("SET LOCAL enable_seqscan = off",)
    found = statements(app, client, "/console/queue/general")
    for statement, parameters in (case_page_query(found), tab_count_query(found)):
        assert "'closed'" in statement
        assert "ix_case_open_due" in plan(statement, parameters, setup=setup), statement[:200]


def test_language_choices_are_the_languages_of_visible_cases_only(ctx: Flask, world: World) -> None:
    make_case(GENERAL_TEXT, "kenya", language="so")
    make_case(GENERAL_TEXT, "kenya", language="uk", status="closed")  # a closed case's language is still seen
    make_case(GENERAL_TEXT, "kenya", language="x:qq")  # a code outside the known list comes last
    make_case(GENERAL_TEXT, "jordan", language="am")  # another programme
    make_case(RESTRICTED_TEXT, "kenya", "sexual_exploitation_abuse", language="ti")  # restricted
    officer, everywhere, focal = world.user("officer"), world.user("officer_all"), world.user("focal")

    def brute_force(user: Any, tab: str) -> set[str]:
        """SELECT DISTINCT over everything the user may see in the tab: what the loose scan must equal."""
        query = visible_cases(user).where(Case.queue.in_(queues.TABS[tab])).with_only_columns(Case.language)
        return {lang for lang in db.session.scalars(query.distinct()) if lang}

    mine = queues.filter_choices(officer, "general")["languages"]
    assert {"so", "uk", "x:qq"} <= set(mine) and not {"am", "ti"} & set(mine)
    assert set(mine) == brute_force(officer, "general")
    assert mine == [lang for lang in LANGUAGES if lang in mine] + ["x:qq"]  # the known list's order, then the rest
    hq = queues.filter_choices(everywhere, "general")["languages"]
    assert "am" in hq and "ti" not in hq and set(hq) == brute_force(everywhere, "general")
    restricted = queues.filter_choices(focal, "restricted")["languages"]
    assert "ti" in restricted and "so" not in restricted and set(restricted) == brute_force(focal, "restricted")
    assert queues.languages_seen(visible_cases(officer), ("general",), []) == set()
