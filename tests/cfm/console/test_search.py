"""Full-text search (issue 6): words and prefixes in text and thread, many scripts, never restricted text."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql

from cfm.extensions import db
from cfm.models import Case, Message, Programme, User
from cfm.models.case import QUEUE_GENERAL
from cfm.services import search, triage
from cfm.services.access import visible_cases
from tests.cfm.console.conftest import RESTRICTED_TEXT, World, make_case, sign_in
from tests.cfm.console.test_queues import listed


def found(user: User, text: str) -> set[str]:
    """References of the general queue a search finds for this user."""
    query = search.search(visible_cases(user).where(Case.queue == QUEUE_GENERAL), text)
    return set(db.session.scalars(query.with_only_columns(Case.reference)))


def anywhere(text: str) -> set[str]:
    """References the word search matches in the whole table, whoever asks (proves what the index holds)."""
    query = select(Case.reference).where(search.text_matches(search.terms(text)))
    return set(db.session.scalars(query))


def sqlite_indexed(fts: str, rowid: int) -> bool:
    """True when the SQLite FTS5 table holds a document for this row."""
    assert fts in ("case_fts", "message_fts")
    query = sa.text(f"SELECT count(*) FROM {fts}_docsize WHERE id = :id")  # noqa: S608 - fixed table names
    return db.session.execute(query, {"id": rowid}).scalar() == 1


def test_words_and_prefixes_match_text_and_thread(world: World) -> None:
    officer = world.user("officer")
    ref = world.cases["kenya_general"]
    case = world.case("kenya_general")
    case.messages.append(Message(direction="inbound", channel="web", text_plain="My grandmother needs a wheelchair"))
    db.session.commit()
    assert found(officer, "briefing") == {ref}
    assert found(officer, "Brief") == {ref}  # prefix, any case
    assert found(officer, "pre-departure FAMILY") == {ref}
    assert found(officer, "wheelch") == {ref}  # a word of the thread
    assert found(officer, "grandmother briefing") == {ref}  # every word, in the text or the thread
    assert found(officer, "is briefing") == {ref}  # a two-letter word too
    assert found(officer, "helicopter") == set()
    assert found(officer, "briefing OR helicopter") == {ref}
    assert found(officer, "helicopter OR wheelchair") == {ref}
    # The search only narrows visible_cases(): Jordan's identical case stays out of a Kenya officer's results.
    assert found(world.user("officer_all"), "briefing") == {ref, world.cases["jordan_general"]}


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("متى موعد الرحلة إلى كندا؟ أحتاج كرسيًا متحركًا لوالدتي", "الرحلة"),
        ("Когда будет автобус до лагеря? Мы ждём уже три дня.", "АВТОБУС"),
        ("Коли буде автобус до табору?", "автоб"),
        ("የአውቶቡሱ ሰዓት መቼ ነው? ለቤተሰቤ መረጃ እፈልጋለሁ።", "መረጃ"),
        ("ቤተሰቤ ወደ ካናዳ መቼ ይጓዛል?", "ካናዳ"),
        ("Chhe naamji mushkila la usafiri kwenda kambini", "usafir"),
    ],
)
def test_words_of_other_scripts_match(world: World, text: str, query: str) -> None:
    case = make_case(text)
    assert found(world.user("officer"), query) == {case.reference}


def test_restricted_text_is_never_matched_nor_indexed(world: World, backend: str) -> None:
    restricted = world.case("kenya_restricted")
    pending = world.case("kenya_pending")
    restricted.messages.append(Message(direction="inbound", channel="sms", text_sealed="He asked me for money"))
    for message in pending.messages:  # the world fixture seals the pending case's text only; intake seals both
        message.set_sealed(True)
    db.session.commit()
    for word in ("interpreter", "touched", "money", "transit"):
        assert anywhere(word) == set(), word
        assert found(world.user("officer_all"), word) == set()
    assert restricted.text_plain is None and restricted.text == RESTRICTED_TEXT
    if backend == "sqlite":
        for case in (restricted, pending):
            assert not sqlite_indexed("case_fts", case.id)
        assert not sqlite_indexed("message_fts", restricted.messages[0].id)
        hits = db.session.execute(sa.text("SELECT rowid FROM case_fts WHERE case_fts MATCH '\"interpreter\"'")).all()
        assert hits == []
        assert sqlite_indexed("case_fts", world.case("kenya_general").id)


def test_moving_a_case_between_queues_keeps_the_index_right(world: World, backend: str) -> None:
    case = make_case("Which gate for the Nairobi charter?")
    case.messages.append(Message(direction="inbound", channel="web", text_plain="Also a wheelchair please"))
    db.session.commit()
    reference, message_id = case.reference, case.messages[-1].id
    assert anywhere("charter") == anywhere("wheelchair") == {reference}

    triage.reclassify(case, "fraud_corruption", actor=world.user("officer"), reason="asked for a bribe")
    assert anywhere("charter") == anywhere("wheelchair") == set()
    if backend == "sqlite":
        assert not sqlite_indexed("case_fts", case.id) and not sqlite_indexed("message_fts", message_id)

    case = _case(reference)
    triage.reclassify(case, "information_request", actor=world.user("focal"), reason="not a bribe after all")
    assert anywhere("charter") == anywhere("wheelchair") == {reference}
    if backend == "sqlite":
        assert sqlite_indexed("case_fts", case.id) and sqlite_indexed("message_fts", message_id)

    case = _case(reference)
    case.store_text("Where do we collect the blankets?", sealed=False)
    case.messages[0].store_text("Where do we collect the blankets?", sealed=False)  # intake's copy of the text
    db.session.commit()
    assert anywhere("charter") == set() and anywhere("blankets") == {reference}
    db.session.delete(case)
    db.session.commit()
    assert anywhere("blankets") == anywhere("wheelchair") == set()
    if backend == "sqlite":
        assert not sqlite_indexed("case_fts", case.id) and not sqlite_indexed("message_fts", message_id)


def _case(reference: str) -> Case:
    """A fresh copy of a case."""
    db.session.expire_all()
    return db.session.scalars(select(Case).where(Case.reference == reference)).one()


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "*",
        "OR",
        "NEAR(",
        "'",
        ":",
        "&|!",
        "brief*",
        '"briefing',
        "a:*",
        "'briefing':*",
        "!briefing",
        "(",
        ")",
        "NOT briefing",
        "AND",
        "-briefing",
        "briefing NEAR(family",
        "\\",
        "^",
        "{text_plain}: x",
        "%",
        "_",
        "؟",
        "\x00",
    ],
)
def test_operators_and_punctuation_never_raise(client: FlaskClient, world: World, query: str) -> None:
    refs = found(world.user("officer"), query)
    assert refs <= {world.cases["kenya_general"]}
    sign_in(client, world.users["officer"])
    assert set(listed(client, "/console/queue/general", q=query)) == refs


def test_search_only_filters_keeps_sort_and_pagination(client: FlaskClient, world: World) -> None:
    extra = [make_case(f"Briefing question number {n}") for n in range(3)]
    sign_in(client, world.users["officer"])
    refs = listed(client, "/console/queue/general", q="briefing", sort="received")
    assert refs == [c.reference for c in reversed(extra)] + [world.cases["kenya_general"]]


def _bulk_cases(programme_id: int, n: int) -> None:
    """Thousands of general cases and messages, written directly (fast) for the planner test."""
    words = ["briefing", "bus", "luggage", "visa", "medical", "wheelchair", "flight", "shelter", "food", "water"]
    rows: list[dict[str, Any]] = [
        {
            "reference": f"Z{i // 10000:03d}-{i % 10000:04d}",
            "programme_id": programme_id,
            "channel": "web",
            "queue": QUEUE_GENERAL,
            "text_plain": f"Question {i} about {words[i % 10]} and {words[(i * 7) % 10]} for case {i}",
        }
        for i in range(n)
    ]
    db.session.execute(insert(Case), rows)
    ids = db.session.scalars(select(Case.id).where(Case.reference.like("Z%"))).all()
    db.session.execute(
        insert(Message),
        [{"case_id": cid, "direction": "inbound", "channel": "web", "text_plain": f"follow up {cid}"} for cid in ids],
    )
    db.session.commit()


def test_postgresql_search_uses_the_gin_indexes(world: World, backend: str) -> None:
    if backend != "postgresql":
        # SQLite answers from the FTS5 tables instead: proven by the sqlite_indexed() checks above.
        assert db.session.execute(sa.text("SELECT count(*) FROM case_fts_docsize")).scalar() == 2
        return
    programme_id = db.session.scalars(select(Programme.id).where(Programme.slug == "kenya")).one()
    _bulk_cases(programme_id, 4000)
    db.session.execute(sa.text('ANALYZE "case"'))
    db.session.execute(sa.text("ANALYZE message"))
    query = search.search(visible_cases(world.user("officer")).where(Case.queue == QUEUE_GENERAL), "wheelch")
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db.session.execute(sa.text("EXPLAIN " + sql)).scalars())
    assert "ix_case_text_plain_fts" in plan and "ix_message_text_plain_fts" in plan, plan
    assert len(found(world.user("officer"), "wheelch")) == 400
    assert len(found(world.user("officer"), "bus shel")) == 400  # i % 10 == 1: "bus" and "shelter"
