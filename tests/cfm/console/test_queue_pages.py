"""Queue pages at scale (issue 9): officers of every programme read each programme's index range and merge the
pages; a word search walks the queue in order before it builds every match; the rows show what the console's
macros show."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from flask_login import login_user
from sqlalchemy import select

from cfm.console import queues
from cfm.extensions import db
from cfm.models import Case, Message, User
from cfm.models.types import utcnow
from cfm.services import search
from cfm.services.access import visible_cases
from tests.cfm.console.conftest import GENERAL_TEXT, RESTRICTED_TEXT, World, make_case, sign_in
from tests.cfm.console.test_queue_scale import case_page_query, plan, statements
from tests.cfm.console.test_queues import REFERENCE

OTHER_TEXT = "The water in the transit centre is not clean and children are sick."


def walk(client: FlaskClient, url: str) -> list[str]:
    """Every reference of a queue, following the next-page links."""
    seen: list[str] = []
    next_url: str | None = url
    while next_url:
        page = client.get(next_url)
        assert page.status_code == 200
        seen += [m.decode() for m in REFERENCE.findall(page.data)]
        match = re.search(rb'rel="next" href="([^"]+)"', page.data)
        next_url = match.group(1).decode().replace("&amp;", "&") if match else None
    return seen


def expected(user: User, tab: str, sort: str, text: str = "") -> list[str]:
    """The queue's references in order, by one plain query and a sort in Python (what the pages must equal)."""
    query = visible_cases(user).where(Case.queue.in_(queues.TABS[tab]), Case.status != "closed")
    if text:
        query = search.search(query, text, words=tab == "general")
    cases = list(db.session.scalars(query))
    if sort == "received":
        cases.sort(key=lambda c: (c.received_at, c.id), reverse=True)
    else:
        cases.sort(key=lambda c: (c.due_at or c.received_at, c.id))
    return [c.reference for c in cases]


def spread_cases() -> None:
    """Open and closed cases of two programmes and both queues, with interleaved due and received times."""
    now = utcnow()
    for n in range(10):
        programme = "kenya" if n % 3 else "jordan"
        case = make_case(f"{GENERAL_TEXT} ({n})" if n % 2 else f"{OTHER_TEXT} ({n})", programme)
        case.received_at = now - timedelta(hours=5 * n + (7 if programme == "jordan" else 0))
        case.due_at = None if n % 4 == 0 else now + timedelta(hours=(n * 37) % 50 - 10)
        case.status = "closed" if n == 5 else "new"
    for n in range(4):
        make_case(f"{RESTRICTED_TEXT} ({n})", "kenya" if n % 2 else "jordan", "fraud_corruption")
    db.session.commit()


@pytest.mark.parametrize("sort", ["due", "received"])
def test_officer_of_every_programme_pages_through_every_programme_in_order(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    spread_cases()
    monkeypatch.setattr(queues, "PAGE_SIZE", 3)
    everywhere = world.user("officer_all")
    sign_in(client, everywhere.email)
    pages = walk(client, f"/console/queue/general?sort={sort}")
    assert len(pages) == 11  # 9 open spread cases of both programmes, and the world's two general cases
    assert pages == expected(everywhere, "general", sort)
    assert walk(client, f"/console/queue/general?sort={sort}&programme=jordan") == [
        ref for ref in pages if db.session.scalars(select(Case).where(Case.reference == ref)).one().programme_id == 2
    ]


def test_focal_point_pages_merge_the_restricted_and_pending_queues(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    spread_cases()
    monkeypatch.setattr(queues, "PAGE_SIZE", 1)
    focal = world.user("focal")
    sign_in(client, focal.email)
    pages = walk(client, "/console/queue/restricted")
    assert world.cases["kenya_pending"] in pages and world.cases["jordan_restricted"] not in pages
    assert pages == expected(focal, "restricted", "due") and len(pages) == 4


def test_every_programme_page_reads_each_programme_from_the_open_case_index(
    app: Flask, client: FlaskClient, world: World, backend: str
) -> None:
    """Across an IN list of programmes no index gives the order; one LIMITed branch per programme does."""
    sign_in(client, world.users["officer_all"])
    statement, parameters = case_page_query(statements(app, client, "/console/queue/general"))
    setup: tuple[str, ...] = ()
    if backend == "postgresql":  # a near-empty table: make the planner show which index can serve each branch
        setup = ("SET LOCAL enable_seqscan = off", "SET LOCAL enable_bitmapscan = off")
    text = plan(statement, parameters, setup=setup)
    # Kenya and Jordan, each its own range of an index in due order (the open-case one, or the one of every case).
    assert len(re.findall(r"ix_case_(?:open_due|queue_programme_due)\b", text)) >= 2, text


@pytest.mark.parametrize("sort", ["due", "received"])
@pytest.mark.parametrize("words", ["briefing", "water", "family OR children", "(4)", "wheelchair"])
def test_word_search_pages_are_the_same_whether_walked_or_built(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch, sort: str, words: str
) -> None:
    """Small windows make every way happen: a walk that settles, one that stops and falls back, and a rare word
    found only in a thread."""
    spread_cases()
    case = db.session.scalars(select(Case).where(Case.text_plain.like(f"{OTHER_TEXT} (8)"))).one()
    case.messages.append(Message(direction="inbound", channel="web", text_plain="My son needs a wheelchair"))
    db.session.commit()
    monkeypatch.setattr(queues, "PAGE_SIZE", 2)
    monkeypatch.setattr(queues, "WALK_FIRST", 3)
    monkeypatch.setattr(queues, "WALK_MOST", 12)
    for who in ("officer", "officer_all"):
        user = world.user(who)
        sign_in(client, user.email)
        want = expected(user, "general", sort, words)
        assert want, words
        assert walk(client, f"/console/queue/general?sort={sort}&q={words}") == want


def test_common_word_search_walks_the_queue_instead_of_collecting_every_match(
    app: Flask, client: FlaskClient, world: World, backend: str
) -> None:
    for n in range(8):
        make_case(f"{GENERAL_TEXT} [{n}]")
    sign_in(client, world.users["officer"])
    found = statements(app, client, "/console/queue/general?q=briefing")
    thread_sets = [s for s, _p in found if "SELECT message.case_id" in s]
    walked = [s for s, _p in found if "EXISTS (SELECT message.id" in s]
    if backend == "postgresql":
        assert walked and not thread_sets  # every case of the window matches: the first window settles the page
    else:
        assert thread_sets and not walked  # SQLite's FTS5 tables answer (no per-row text search there)
    assert [m.decode() for m in REFERENCE.findall(client.get("/console/queue/general?q=briefing").data)] == (
        expected(world.user("officer"), "general", "due", "briefing")
    )


def test_row_condition_matches_what_search_matches(world: World, backend: str) -> None:
    spread_cases()
    case = world.case("kenya_general")
    case.messages.append(Message(direction="inbound", channel="web", text_plain="My grandmother needs a wheelchair"))
    db.session.commit()
    if backend != "postgresql":
        # The per-row condition is PostgreSQL's (to_tsvector on each row); SQLite always takes search().
        assert queues.queue_page.__doc__ and "PostgreSQL" in queues.queue_page.__doc__
        return
    everyone = select(Case.reference).where(Case.queue == "general")
    for text in (
        "briefing",
        "Brief",
        "grandmother briefing",
        "wheelch",
        "water OR family",
        "helicopter",
        world.cases["kenya_general"],
        world.cases["kenya_general"][:4],
        "%",
        "is briefing",
    ):
        by_set = set(db.session.scalars(search.search(everyone, text)))
        by_row = set(db.session.scalars(everyone.where(search.row_condition(text))))
        assert by_row == by_set, text
    restricted = select(Case.reference).where(Case.queue == "restricted")
    ref = world.cases["kenya_restricted"]
    assert set(db.session.scalars(restricted.where(search.row_condition(ref, words=False)))) == {ref}
    assert set(db.session.scalars(restricted.where(search.row_condition("interpreter", words=False)))) == set()


def macro_cells(app: Flask, user: User, case: Case, now: Any) -> dict[str, str]:
    """What the console's macros (due, the chips) render for a case, for this user's locale."""
    source = (
        '{% from "console/_macros.html" import due, category_chip, priority_chip, status_chip with context %}'
        "{{ due(case, now) }}|{{ category_chip(case.category, case.queue != 'general') }}|"
        "{{ priority_chip(case.priority) }}|{{ status_chip(case.status) }}|"
        "{{ case.received_at | datetimeformat('short') }}"
    )
    with app.test_request_context("/console/queue/general"):
        login_user(user)
        due, category, priority, status, received = render_template_string(source, case=case, now=now).split("|")
    return {"due": due, "category": category, "priority": priority, "status": status, "received": received}


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_queue_rows_show_what_the_console_macros_show(app: Flask, client: FlaskClient, world: World, lang: str) -> None:
    now = utcnow()
    officer = world.user("officer")
    officer.locale = lang
    late = make_case(GENERAL_TEXT, due_at=now - timedelta(days=3, hours=2), priority="urgent", status="under_review")
    soon = make_case(GENERAL_TEXT, due_at=now + timedelta(hours=30), category_source="officer", assignee_id=officer.id)
    none = make_case(GENERAL_TEXT, due_at=None, channel="sms", language="so")
    db.session.commit()
    sign_in(client, officer.email)
    html = client.get("/console/queue/general?status=all").data.decode()
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r'<tr class="row[^"]*" data-href="/console/cases/([^"]+)">.*?</tr>', html, re.S)
    }
    assert set(rows) >= {late.reference, soon.reference, none.reference}
    for case in (late, soon, none):
        db.session.refresh(case)
        row, cells = rows[case.reference], macro_cells(app, officer, case, now)
        assert f'<td class="nowrap">{cells["due"]}</td>' in row
        assert f"<td>{cells['category']}" in row
        assert f"<td>{cells['priority']}</td>" in row and f"<td>{cells['status']}</td>" in row
        assert f">{cells['received']}</time>" in row
    assert "is-late" in rows[late.reference] and "is-late" not in rows[soon.reference]
    assert '<td class="nowrap"></td>' in rows[none.reference]
    assert 'title="Corrected by staff"' in rows[soon.reference] or lang != "en"
    assert f'<td class="muted">{officer.email.split("@")[0]}</td>' in rows[soon.reference]


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_restricted_rows_show_the_reasons_and_chips_the_macros_show(
    app: Flask, client: FlaskClient, world: World, lang: str
) -> None:
    focal = world.user("focal")
    focal.locale = lang
    pending = world.case("kenya_pending")
    pending.restricted_reasons = None
    db.session.commit()
    sign_in(client, focal.email)
    html = client.get("/console/queue/restricted").data.decode()
    now = utcnow()
    for name in ("kenya_restricted", "kenya_pending"):
        case = world.case(name)
        row = re.search(rf'data-href="/console/cases/{case.reference}">.*?</tr>', html, re.S)
        assert row is not None, name
        cells = macro_cells(app, focal, case, now)
        assert f"<td>{cells['category']}</td>" in row.group(0)
        with app.test_request_context("/console/queue/restricted"):
            login_user(focal)
            sealed = render_template_string(
                "{% for r in case.restricted_reasons or [] %}{{ label(L.REASON_LABELS, r) }}"
                '{% if not loop.last %}, {% endif %}{% else %}{{ _("Sealed") }}{% endfor %}',
                case=case,
            )
        assert f'<span class="sealed">{sealed}</span>' in row.group(0)
        assert GENERAL_TEXT not in row.group(0) and "interpreter" not in row.group(0)
    assert "cat-none" in html  # the pending case has no category yet


def test_restricted_queue_page_leaves_the_sealed_text_sealed(app: Flask, client: FlaskClient, world: World) -> None:
    """Restricted rows show reasons, never text: the page's query does not load (and so never decrypts) it."""
    sign_in(client, world.users["focal"])
    for path in ("/console/queue/restricted", f"/console/queue/restricted?q={world.cases['kenya_restricted']}"):
        statement, _parameters = case_page_query(statements(app, client, path))
        assert '"case".text_sealed' not in statement and '"case".text_plain' not in statement, path
    sign_in(client, world.users["officer"])
    statement, _parameters = case_page_query(statements(app, client, "/console/queue/general"))
    assert '"case".text_plain' in statement  # the general queue shows the text
