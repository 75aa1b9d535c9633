"""The dashboard's case figures at scale (issue 9): one GROUPING SETS pass on PostgreSQL, the SQLite fallback, and
the first-response median reading only the responses of the cases counted; same figures on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cfm.extensions import db
from cfm.models import Case
from cfm.services import dashboard
from cfm.services.dashboard import DashboardFilters
from tests.cfm.console.conftest import RESTRICTED_TEXT, World, make_case
from tests.cfm.console.test_dashboard import event as status_change
from tests.cfm.console.test_dashboard import reply

MARCH = DashboardFilters(programme="", date_from=date(2025, 3, 3), date_to=date(2025, 3, 16))


def at(day: int, hour: int = 10) -> datetime:
    """A UTC time in March 2025."""
    return datetime(2025, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def march(world: World) -> dict[str, Case]:
    """Three Kenya general cases in range (one without a language), each answered; quick answers to cases that must
    not count."""
    cases = {
        "before": make_case("Before the range.", "kenya", received_at=at(2), channel="web", language="en"),
        "a": make_case("Which documents?", "kenya", received_at=at(3), channel="web", language="en"),
        # Between a and c by id: their responses lie in the id range the median reads, the scope must drop them.
        "jordan": make_case("Jordan case.", "jordan", received_at=at(5), channel="web", language="ar"),
        "restricted": make_case(RESTRICTED_TEXT, "kenya", "sexual_exploitation_abuse", received_at=at(6)),
        "b": make_case("The bus was late.", "kenya", "service_complaint", received_at=at(4), channel="sms"),
        "c": make_case("No answer yet.", "kenya", received_at=at(10), channel="sms", language=None),
        "after": make_case("After the range.", "kenya", received_at=at(20), channel="web", language="en"),
    }
    cases["b"].language = "ar"
    # The first and the last case counted (by id) have responses: the id range must take in both ends.
    status_change(cases["a"], at(3, 12))  # 2 hours
    reply(cases["b"], at(4, 14))  # 4 hours, before its status change
    status_change(cases["b"], at(4, 20))
    status_change(cases["b"], at(4, 11), old="under_review", new="closed")  # not a change away from "new"
    reply(cases["c"], at(10, 16))  # 6 hours
    for name in ("before", "jordan", "restricted", "after"):  # a minute each: they would pull the median down
        reply(cases[name], cases[name].received_at + timedelta(minutes=1))
    db.session.commit()
    return cases


def test_case_figures_count_the_range_and_scope_only(march: dict[str, Case], world: World) -> None:
    data = dashboard.build(world.user("officer"), MARCH)
    assert data.total.value == 3
    assert [(c.key, c.value) for c in data.weeks] == [("2025-03-03", 2), ("2025-03-10", 1)]
    counts = {name: {c.key: c.value for c in cells} for name, cells in data.breakdowns.items()}
    assert counts["language"] == {"ar": 1, "en": 1, dashboard.UNKNOWN: 1}  # a missing language is counted too
    assert counts["channel"] == {"sms": 2, "web": 1}
    assert counts["category"] == {"information_request": 2, "service_complaint": 1}
    assert counts["programme"] == {"kenya": 3} and counts["status"] == {"new": 3}
    # 2 h, 4 h, 6 h: the replies to cases outside the range, the programme or the queue are not read.
    assert data.first_response.n.value == 3
    assert data.first_response.seconds == pytest.approx(4 * 3600, abs=1)


def test_all_programmes_take_in_the_other_programme_and_its_responses(march: dict[str, Case], world: World) -> None:
    data = dashboard.build(world.user("officer_all"), MARCH)
    assert data.total.value == 4
    assert {c.key: c.value for c in data.breakdowns["programme"]} == {"kenya": 3, "jordan": 1}
    assert data.first_response.n.value == 4  # 1 min, 2 h, 4 h, 6 h
    assert data.first_response.seconds == pytest.approx(3 * 3600, abs=1)


def test_an_empty_range_has_no_figures(march: dict[str, Case], world: World) -> None:
    empty = DashboardFilters(programme="", date_from=date(2024, 1, 1), date_to=date(2024, 1, 31))
    data = dashboard.build(world.user("officer"), empty)
    assert data.total.value == 0 and sum(c.value or 0 for c in data.weeks) == 0
    assert all(not cells for cells in data.breakdowns.values())
    assert data.first_response.seconds is None and data.first_response.n.value == 0
    assert data.closure.seconds is None and data.closed.value == 0
