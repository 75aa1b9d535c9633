"""The console benchmark's generator (benchmarks/generate.py, issue 9): a bulk load that drops and rebuilds the
secondary indexes (and SQLite's full-text triggers) must leave the schema as it found it, the full-text index
filled, restricted text sealed, and cases in arrival order; on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from benchmarks.generate import PROGRAMMES, _secondary_ddl, generate
from cfm.extensions import db
from cfm.models import Case, CaseEvent, Message
from cfm.services import search
from classifier.categories import is_restricted

TABLES = ("case", "message", "case_event")


def schema_objects() -> list[tuple[str, str, str]]:
    """The secondary indexes and triggers of the tables the generator loads."""
    with db.engine.connect() as conn:
        return sorted(ddl for table in TABLES for ddl in _secondary_ddl(conn, table))


def count(model: type[db.Model], *where: sa.ColumnElement[bool]) -> int:  # type: ignore[name-defined]
    """Rows of a table that match."""
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


def test_generator_loads_cases_and_threads_and_leaves_the_schema_as_it_was(app: Flask) -> None:
    with app.app_context():
        before = schema_objects()
        assert any(name == "ix_case_open_due" for _kind, name, _sql in before)
    assert generate(app, 600, seed=5) == {"cases": 600, "programmes": len(PROGRAMMES)}
    with app.app_context():
        assert schema_objects() == before
        cases = list(db.session.scalars(sa.select(Case).order_by(Case.id)))
        assert len(cases) == 600
        received = [case.received_at for case in cases]
        assert received == sorted(received)  # ids follow arrival, as in a live database
        for case in cases:
            restricted = is_restricted(case.category or "")
            assert case.queue == ("restricted" if restricted else "general")
            assert (case.text_plain is None) == restricted and (case.text_sealed is not None) == restricted
            assert case.text  # sealed text decrypts with the app's keys
        assert count(Message, Message.direction == "inbound") == 600
        assert count(Message, Message.direction == "outbound") == 100  # every sixth case
        assert count(CaseEvent, CaseEvent.old_value == "new") == 200  # every third case
        assert count(CaseEvent, CaseEvent.new_value == "closed") == sum(case.status == "closed" for case in cases)
        # Each case's first_response_at is its earliest reply or change away from "new", as the dashboard reads it.
        responses = sa.union_all(
            sa.select(Message.case_id, Message.created_at).where(Message.direction == "outbound"),
            sa.select(CaseEvent.case_id, CaseEvent.created_at).where(
                CaseEvent.kind == "status", CaseEvent.old_value == "new"
            ),
        ).subquery()
        firsts = sa.select(responses.c.case_id, sa.func.min(responses.c.created_at)).group_by(responses.c.case_id)
        earliest = {case_id: first for case_id, first in db.session.execute(firsts)}
        assert len(earliest) == 200
        assert {case.id: case.first_response_at for case in cases if case.first_response_at} == earliest
        # The full-text index holds the loaded text (SQLite: filled in one statement after the load).
        general = next(case for case in cases if case.queue == "general" and len(case.text.split()[0]) > 3)
        word = search.terms(general.text)[0][0]
        found = set(db.session.scalars(search.search(sa.select(Case.id), word).with_only_columns(Case.id)))
        assert general.id in found
