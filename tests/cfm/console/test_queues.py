"""Queues: built on visible_cases() only; tabs, counts, filters, search, keyset pagination; security proofs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient

from cfm.console import queues
from cfm.extensions import db
from cfm.models import Message
from cfm.models.types import utcnow
from tests.cfm.console.conftest import GENERAL_TEXT, World, make_case, sign_in

REFERENCE = re.compile(rb'class="ref"><a href="/console/cases/([0-9A-Z]{4}-[0-9A-Z]{4})"')


def listed(client: FlaskClient, path: str, **params: str) -> list[str]:
    """References a queue page lists, in order."""
    response = client.get(path, query_string=params)
    assert response.status_code == 200, response.status_code
    return [m.decode() for m in REFERENCE.findall(response.data)]


def tab_count(html: bytes, tab: str) -> int | None:
    """The count shown on a queue tab, or None when the tab is absent."""
    match = re.search(
        rb'class="tab tab-' + tab.encode() + rb'[^"]*".*?<span class="count"[^>]*>(\d+)</span>', html, re.S
    )
    return int(match.group(1)) if match else None


def test_officer_lands_on_the_general_queue_of_their_programme(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    response = client.get("/console/")
    assert response.status_code == 302 and response.headers["Location"] == "/console/queue/general"
    assert listed(client, "/console/queue/general") == [world.cases["kenya_general"]]


def test_focal_point_lands_on_the_restricted_queue_with_pending_cases(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["focal"])
    assert client.get("/console/").headers["Location"] == "/console/queue/restricted"
    assert set(listed(client, "/console/queue/restricted")) == {
        world.cases["kenya_restricted"],
        world.cases["kenya_pending"],
    }
    assert client.get("/console/queue/general").status_code == 404


def test_officer_cannot_list_the_restricted_queue(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["supervisor"])
    response = client.get("/console/queue/restricted")
    assert response.status_code == 404
    for ref in ("kenya_restricted", "kenya_pending", "jordan_restricted"):
        assert world.cases[ref].encode() not in response.data


@pytest.mark.parametrize(("role", "landing"), [("viewer", "/console/dashboard"), ("admin", "/console/admin/")])
def test_report_viewer_cannot_list_cases(client: FlaskClient, world: World, role: str, landing: str) -> None:
    sign_in(client, world.users[role])
    assert client.get("/console/").headers["Location"] == landing
    home = client.get(landing, follow_redirects=True)
    assert home.status_code == 200
    for tab in ("general", "restricted"):
        response = client.get(f"/console/queue/{tab}")
        assert response.status_code == 404
        assert not any(ref.encode() in response.data for ref in world.cases.values())
    assert tab_count(home.data, "general") is None and tab_count(home.data, "restricted") is None


def test_queue_counts_hide_restricted_from_officers(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer_all"])  # all programmes: two general cases, three restricted/pending
    page = client.get("/console/queue/general").data
    assert tab_count(page, "general") == 2
    assert tab_count(page, "restricted") is None
    assert b"/console/queue/restricted" not in page


def test_focal_point_counts_cover_their_programme_only(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["focal_jordan"])
    page = client.get("/console/queue/restricted").data
    assert tab_count(page, "restricted") == 1 and tab_count(page, "general") is None
    assert listed(client, "/console/queue/restricted") == [world.cases["jordan_restricted"]]


def test_focal_point_of_other_programme_does_not_list_the_case(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["focal_jordan"])
    refs = listed(client, "/console/queue/restricted", q=world.cases["kenya_restricted"])
    assert refs == []


def test_officer_and_focal_point_roles_together_see_both_tabs(client: FlaskClient, world: World) -> None:
    secret = world.user("focal").totp_secret
    both = world.user("supervisor")
    both.roles = ["officer", "supervisor", "focal_point"]
    both.totp_secret = secret
    db.session.commit()
    sign_in(client, both.email)
    page = client.get("/console/queue/general").data
    assert tab_count(page, "general") == 1 and tab_count(page, "restricted") == 2


def test_unknown_tab_is_404(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    assert client.get("/console/queue/pending").status_code == 404


def test_filters_narrow_the_general_queue(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer_all"])
    kenya, jordan = world.cases["kenya_general"], world.cases["jordan_general"]
    officer = world.user("officer_all")
    case = world.case("jordan_general")
    case.channel, case.priority, case.language, case.status = "sms", "high", "ar", "under_review"
    case.assignee = officer
    case.due_at = utcnow() - timedelta(days=1)
    case.received_at = utcnow() - timedelta(days=40)
    db.session.commit()
    general = "/console/queue/general"
    assert set(listed(client, general)) == {kenya, jordan}
    assert listed(client, general, programme="jordan") == [jordan]
    assert listed(client, general, channel="sms") == [jordan]
    assert listed(client, general, channel="web") == [kenya]
    assert listed(client, general, language="ar") == [jordan]
    assert listed(client, general, priority="high") == [jordan]
    assert listed(client, general, status="under_review") == [jordan]
    assert listed(client, general, status="new") == [kenya]
    assert listed(client, general, assignee="me") == [jordan]
    assert listed(client, general, assignee="none") == [kenya]
    assert listed(client, general, overdue="1") == [jordan]
    today = utcnow().date()
    assert listed(client, general, **{"from": (today - timedelta(days=1)).isoformat()}) == [kenya]
    assert listed(client, general, to=(today - timedelta(days=30)).isoformat()) == [jordan]
    category = world.case("kenya_general").category or ""
    assert kenya in listed(client, general, category=category)
    assert listed(client, general, channel="carrier-pigeon", priority="nonsense") == listed(client, general)


def test_closed_cases_leave_the_default_list(client: FlaskClient, world: World) -> None:
    case = world.case("kenya_general")
    case.status = "closed"
    db.session.commit()
    sign_in(client, world.users["officer"])
    assert listed(client, "/console/queue/general") == []
    assert listed(client, "/console/queue/general", status="all") == [case.reference]
    assert b"Nothing waiting" in client.get("/console/queue/general").data


def test_search_finds_words_in_text_and_thread_and_references(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    ref = world.cases["kenya_general"]
    case = world.case("kenya_general")
    case.messages.append(
        Message(direction="inbound", channel="web", text_plain="Also my grandmother needs a wheelchair")
    )
    db.session.commit()
    general = "/console/queue/general"
    assert listed(client, general, q="PRE-DEPARTURE briefing") == [ref]
    assert listed(client, general, q="wheelchair") == [ref]
    assert listed(client, general, q=ref.lower().replace("-", "")) == [ref]
    assert listed(client, general, q=ref[:4]) == [ref]
    assert listed(client, general, q="%") == []  # LIKE wildcards are taken literally
    assert listed(client, general, q="_") == []
    assert listed(client, general, q="interpreter touched") == []  # restricted text never leaks into this queue


def test_restricted_search_covers_references_only_and_says_so(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["focal"])
    restricted = "/console/queue/restricted"
    assert listed(client, restricted, q="interpreter") == []
    assert listed(client, restricted, q=world.cases["kenya_restricted"]) == [world.cases["kenya_restricted"]]
    assert b"finds reference codes only" in client.get(restricted).data


def test_keyset_pagination_walks_every_case_once(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queues, "PAGE_SIZE", 2)
    for n in range(4):
        make_case(f"{GENERAL_TEXT} ({n})")
    sign_in(client, world.users["officer"])
    for sort in ("due", "received"):
        seen: list[str] = []
        url: str | None = f"/console/queue/general?sort={sort}"
        while url:
            page = client.get(url).data
            refs = [m.decode() for m in REFERENCE.findall(page)]
            assert 0 < len(refs) <= 2
            seen += refs
            match = re.search(rb'rel="next" href="([^"]+)"', page)
            url = match.group(1).decode().replace("&amp;", "&") if match else None
        assert len(seen) == len(set(seen)) == 5
        if sort == "received":
            received = [world_case_received(ref) for ref in seen]
            assert received == sorted(received, reverse=True)
    assert len(listed(client, "/console/queue/general", after="garbage~x")) == 2


def world_case_received(reference: str) -> datetime:
    """The received time of a case."""
    from sqlalchemy import select

    from cfm.models import Case

    return db.session.scalars(select(Case.received_at).where(Case.reference == reference)).one()


def test_html_in_text_is_escaped(client: FlaskClient, world: World) -> None:
    text = f'<script>alert("x")</script><img src=x onerror=alert(1)> {GENERAL_TEXT}'
    case = make_case(text)
    assert case.queue == "general"
    ref = case.reference
    sign_in(client, world.users["officer"])
    queue_page = client.get("/console/queue/general").data
    case_page = client.get(f"/console/cases/{ref}").data
    for page in (queue_page, case_page):
        assert b"<script>alert" not in page and b"<img src=x" not in page
        assert b"&lt;script&gt;alert(" in page
