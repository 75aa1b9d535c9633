"""The dashboard (issue 6): figures computed by the database, who sees what, small-number suppression, no CDN."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

import cfm
from cfm.extensions import db
from cfm.models import Case, CaseEvent, Message, Programme, Survey, SurveyResponse, User
from cfm.services import dashboard
from cfm.services.classification import apply_prediction
from cfm.services.dashboard import Cell, ChoiceQuestion, DashboardFilters, RestrictedTile, suppress
from cfm.services.surveys import publish_survey
from channels.base import Contact
from channels.web import Option, Question, SurveyDefinition
from tests.cfm.console.conftest import RESTRICTED_TEXT, World, make_case, sign_in
from tests.cfm.helpers import send, user

JAN = DashboardFilters(programme="", date_from=date(2025, 1, 6), date_to=date(2025, 2, 2))
CONTACT_NAME = "Amina Tesfaye"
CONTACT_PHONE = "+254722333444"


def at(day: int, hour: int = 10, minute: int = 0, month: int = 1) -> datetime:
    """A UTC time in 2025."""
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def event(case: Case, when: datetime, old: str = "new", new: str = "under_review") -> None:
    """A status change recorded at a chosen time, noted as a response as cfm.services.triage notes one."""
    db.session.add(CaseEvent(case_id=case.id, kind="status", old_value=old, new_value=new, created_at=when))
    if old == "new":
        dashboard.record_response(case, when)


def reply(case: Case, when: datetime) -> None:
    """An outbound reply stored at a chosen time, noted as a response as cfm.services.outbound notes one."""
    message = Message(case_id=case.id, direction="outbound", channel="sms", created_at=when)
    message.store_text("Thank you, we are looking into it.", sealed=False)
    db.session.add(message)
    dashboard.record_response(case, when)


@pytest.fixture
def january(world: World) -> dict[str, Case]:
    """Four Kenya general cases in January 2025 (one on a Sunday night, one on the Monday after), plus noise."""
    cases = {
        "a": make_case("Which documents do I need?", "kenya", received_at=at(6), channel="web", language="en"),
        "b": make_case(
            "The bus was late again.",
            "kenya",
            "service_complaint",
            received_at=at(12, 23, 30),  # Sunday: still the week of Monday 6 January
            channel="sms",
            language="ar",
            status="under_review",
        ),
        "c": make_case(
            "When do we fly?",
            "kenya",
            received_at=at(13, 0, 30),  # Monday: the next week
            channel="sms",
            language="ar",
            status="closed",
            closed_at=at(15, 0, 30),
        ),
        "d": make_case(
            "Please add a bench at the waiting area.",
            "kenya",
            "suggestion",
            received_at=at(27, 8),
            channel="web",
            language="en",
            status="closed",
            closed_at=at(31, 8),
        ),
        # Not counted: before the range, restricted, another programme.
        "early": make_case("Before the range.", "kenya", received_at=at(5, 23, 59), channel="web", language="en"),
        "restricted": make_case(RESTRICTED_TEXT, "kenya", "sexual_exploitation_abuse", received_at=at(8)),
        "jordan": make_case("Jordan case.", "jordan", received_at=at(8), channel="web", language="ar"),
    }
    event(cases["b"], at(13, 1, 30))  # 2 hours after b
    reply(cases["c"], at(13, 4, 30))  # 4 hours after c (the reply comes first)
    event(cases["c"], at(13, 6, 30))
    event(cases["c"], at(13, 7, 30), old="under_review", new="closed")
    event(cases["d"], at(27, 18))  # 10 hours after d
    event(cases["a"], at(7), old="under_review", new="new")  # not a change away from "new": no response
    db.session.commit()
    return cases


def test_figures_for_a_known_world(january: dict[str, Case], world: World) -> None:
    data = dashboard.build(world.user("officer"), JAN)
    assert data.allowed and not data.suppressed
    assert data.total == Cell("total", 4)
    assert [(c.key, c.value) for c in data.weeks] == [
        ("2025-01-06", 2),
        ("2025-01-13", 1),
        ("2025-01-20", 0),
        ("2025-01-27", 1),
    ]
    counts = {name: {c.key: c.value for c in cells} for name, cells in data.breakdowns.items()}
    assert counts["category"] == {"information_request": 2, "service_complaint": 1, "suggestion": 1}
    assert counts["channel"] == {"sms": 2, "web": 2}
    assert counts["language"] == {"ar": 2, "en": 2}
    assert counts["programme"] == {"kenya": 4}
    assert counts["status"] == {"closed": 2, "new": 1, "under_review": 1}
    assert [c.key for c in data.breakdowns["category"]] == ["information_request", "service_complaint", "suggestion"]
    # First responses 2 h, 4 h, 10 h -> 4 h; closures 2 days and 4 days -> 3 days.
    assert data.first_response.seconds == pytest.approx(4 * 3600, abs=1)
    assert data.first_response.n.value == 3
    assert data.closure.seconds == pytest.approx(3 * 86400, abs=1)
    assert data.closed.value == 2


def test_programme_filter_and_all_programmes(january: dict[str, Case], world: World) -> None:
    everywhere = dashboard.build(world.user("officer_all"), JAN)
    assert everywhere.total.value == 5
    assert {c.key: c.value for c in everywhere.breakdowns["programme"]} == {"kenya": 4, "jordan": 1}
    jordan = dashboard.build(world.user("officer_all"), dataclass_replace(JAN, programme="jordan"))
    assert jordan.total.value == 1
    # A programme that is not the user's is ignored: the user's own programmes are shown.
    kenya_officer = dashboard.build(world.user("officer"), dataclass_replace(JAN, programme="jordan"))
    assert kenya_officer.total.value == 4


def dataclass_replace(filters: DashboardFilters, **changes: str) -> DashboardFilters:
    """A copy of the filters with some fields changed."""
    import dataclasses

    return dataclasses.replace(filters, **changes)


def test_median_on_an_odd_and_an_even_number_of_cases(january: dict[str, Case], world: World) -> None:
    cases = january
    cases["a"].status, cases["a"].closed_at = "closed", at(6, 16)  # 6 hours
    db.session.commit()
    data = dashboard.build(world.user("officer"), JAN)
    # 6 h, 2 days, 4 days -> 2 days.
    assert data.closure.seconds == pytest.approx(2 * 86400, abs=1)
    assert data.closed.value == 3


def test_week_buckets_are_mondays_on_both_backends(ctx: Flask) -> None:
    expression = dashboard.week_start(
        db.literal(datetime(2025, 1, 12, 23, 59, tzinfo=UTC), type_=Case.received_at.type)
    )
    assert db.session.scalar(select(expression)) == "2025-01-06"
    expression = dashboard.week_start(db.literal(datetime(2025, 1, 13, 0, 1, tzinfo=UTC), type_=Case.received_at.type))
    assert db.session.scalar(select(expression)) == "2025-01-13"


def test_default_range_is_the_last_twelve_weeks() -> None:
    filters = DashboardFilters.from_args({}, today=date(2025, 3, 19))  # a Wednesday
    assert filters.date_to == date(2025, 3, 19)
    assert filters.date_from == date(2024, 12, 30)  # the Monday 11 weeks before this week's Monday
    assert len(filters.weeks()) == 12
    swapped = DashboardFilters.from_args({"from": "2025-02-01", "to": "2025-01-01"}, today=date(2025, 3, 19))
    assert (swapped.date_from, swapped.date_to) == (date(2025, 1, 1), date(2025, 2, 1))
    garbage = DashboardFilters.from_args({"from": "not a date", "programme": "x" * 500}, today=date(2025, 3, 19))
    assert garbage.date_from == date(2024, 12, 30) and len(garbage.programme) == 64


def test_suppression_hides_small_numbers_and_the_one_that_would_give_them_away() -> None:
    assert suppress([("a", 10), ("b", 3), ("c", 7), ("d", 0)], active=True) == [
        Cell("a", 10),
        Cell("b", None),
        Cell("c", None),  # b could be worked out from the total and the others
        Cell("d", 0),
    ]
    assert suppress([("a", 1), ("b", 2), ("c", 9)], active=True) == [Cell("a", None), Cell("b", None), Cell("c", 9)]
    assert suppress([("a", 1), ("b", 2)], active=False) == [Cell("a", 1), Cell("b", 2)]
    assert Cell("x", None).display == "<5" and Cell("x", 7).display == "7"


def test_report_viewer_figures_are_suppressed(january: dict[str, Case], world: World) -> None:
    viewer = dashboard.build(world.user("viewer"), JAN)  # all programmes: 5 cases, every cell below 5
    assert viewer.suppressed
    assert viewer.total.value == 5
    assert all(
        cell.value is None or cell.value == 0 or cell.value >= 5
        for cells in viewer.breakdowns.values()
        for cell in cells
    )
    assert {c.key for c in viewer.breakdowns["category"]} == {"information_request", "service_complaint", "suggestion"}
    assert all(c.value is None for c in viewer.breakdowns["category"])
    assert viewer.first_response.seconds is None and viewer.first_response.n.value is None  # 3 cases: too few
    assert viewer.restricted is None
    officer = dashboard.build(world.user("officer"), JAN)
    assert officer.breakdowns["category"][0].value == 2


def test_report_viewer_page_shows_no_personal_data_and_no_restricted_count(client: FlaskClient, world: World) -> None:
    case = send(
        "Call me about my brother's visa, please.",
        programme="kenya",
        contact=Contact(name=CONTACT_NAME, phone=CONTACT_PHONE),
        consent_to_contact=True,
    ).case
    apply_prediction(
        case,
        category="information_request",
        confidence=0.9,
        restricted=False,
        reasons=[],
        top_terms=["visa"],
        model_version="test-1",
        safety_net_category=None,
    )
    db.session.commit()
    references = [*world.cases.values(), case.reference]
    sign_in(client, world.users["viewer"])
    response = client.get("/console/dashboard")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "dashboard-data" in html and "<canvas" in html
    for reference in references:
        assert reference not in html
    for text in ("brother", "briefing", "interpreter", CONTACT_NAME, CONTACT_PHONE, "254722333444", '@example.org">'):
        assert text not in html
    assert 'data-figure="restricted"' not in html and "Restricted queue" not in html
    assert "&lt;5" in html  # 2 general cases in Kenya, 1 in Jordan: every figure is small
    payload = json.loads(re.search(r'id="dashboard-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    for chart in payload["charts"]:
        for dataset in chart["datasets"]:
            assert all(value is None or value == 0 or value >= 5 for value in dataset["data"]), chart["id"]


def test_officer_sees_no_restricted_count(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    html = client.get("/console/dashboard").get_data(as_text=True)
    assert 'data-figure="restricted"' not in html
    assert re.search(r'data-figure="total">\s*1\s*<', html)  # the Kenya general case only, exact for officers
    assert dashboard.build(world.user("officer"), DashboardFilters.from_args({})).restricted is None


def test_focal_point_sees_the_restricted_count_of_their_programme_only(client: FlaskClient, world: World) -> None:
    overdue = world.case("kenya_restricted")
    overdue.due_at = datetime.now(UTC) - timedelta(hours=5)
    for _ in range(2):
        make_case(RESTRICTED_TEXT, "jordan", "sexual_exploitation_abuse")
    db.session.commit()
    focal = world.user("focal")
    # Kenya: the restricted case and the one awaiting classification; Jordan: three.
    assert dashboard.build(focal, DashboardFilters.from_args({})).restricted == RestrictedTile(open=2, overdue=1)
    jordan = dashboard.build(world.user("focal_jordan"), DashboardFilters.from_args({}))
    assert jordan.restricted == RestrictedTile(open=3, overdue=0)
    # Asking for the other programme changes nothing: the filter only narrows within the user's own.
    other = dashboard.build(focal, DashboardFilters.from_args({"programme": "jordan"}))
    assert other.restricted == RestrictedTile(open=2, overdue=1)
    sign_in(client, world.users["focal"])
    html = client.get("/console/dashboard").get_data(as_text=True)
    tile = re.search(r'data-figure="restricted">(.*?)</a>', html, re.S)
    assert tile is not None
    assert "2 open" in tile.group(1) and "1 overdue" in tile.group(1) and "3 open" not in html
    # Never broken down: the restricted category appears nowhere on the page.
    assert "Sexual exploitation" not in html and "sexual_exploitation_abuse" not in html


def test_admin_without_a_reading_role_sees_nothing(client: FlaskClient, world: World) -> None:
    assert not dashboard.build(world.user("admin"), DashboardFilters.from_args({})).allowed
    sign_in(client, world.users["admin"])
    home = client.get("/console/").get_data(as_text=True)
    assert "/console/dashboard" not in home  # no nav link
    response = client.get("/console/dashboard")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Nothing to show" in html
    assert "<canvas" not in html and "dashboard-data" not in html and "data-figure" not in html


def test_report_viewer_lands_on_the_dashboard(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["viewer"])
    response = client.get("/console/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/dashboard")
    html = client.get("/console/dashboard").get_data(as_text=True)
    assert 'class="tab tab-dashboard is-current"' in html


def test_survey_rating_distributions(client: FlaskClient, world: World) -> None:
    kenya = db.session.scalars(select(Programme).where(Programme.slug == "kenya")).one()
    jordan = db.session.scalars(select(Programme).where(Programme.slug == "jordan")).one()
    kenya_survey, jordan_survey = publish_survey(kenya, "arrival"), publish_survey(jordan, "arrival")
    ratings = [5, 5, 4, 5, 1, 3, 5, 4]
    for index, rating in enumerate(ratings):
        answers = {"welcome": rating, "has_housing": True}
        db.session.add(
            SurveyResponse(
                survey=kenya_survey,
                programme_id=kenya.id,
                answers=answers,
                received_at=datetime.now(UTC) - timedelta(days=index),
            )
        )
    db.session.add(SurveyResponse(survey=kenya_survey, programme_id=kenya.id, answers={"has_housing": False}))
    db.session.add(
        SurveyResponse(
            survey=kenya_survey,
            programme_id=kenya.id,
            answers={"welcome": 2},
            received_at=datetime.now(UTC) - timedelta(days=200),
        )
    )  # outside the range
    db.session.add(SurveyResponse(survey=jordan_survey, programme_id=jordan.id, answers={"welcome": 1}))
    db.session.commit()
    officer = dashboard.build(world.user("officer"), DashboardFilters.from_args({}))
    [survey] = officer.surveys
    assert survey.slug == "arrival" and survey.responses.value == 9
    welcome = next(q for q in survey.questions if q.id == "welcome")
    assert [c.value for c in welcome.cells] == [1, 0, 1, 2, 4]
    assert welcome.answered.value == 8 and welcome.mean == pytest.approx(32 / 8)
    viewer = dashboard.build(world.user("viewer"), DashboardFilters.from_args({"programme": "kenya"}))
    [viewed] = viewer.surveys
    cells = [c.value for c in next(q for q in viewed.questions if q.id == "welcome").cells]
    assert cells == [None, 0, None, None, None]  # 1, 1, 2 and 4 are all below 5; 0 reveals nobody
    sign_in(client, world.users["officer"])
    html = client.get("/console/dashboard").get_data(as_text=True)
    assert "How well were you received on arrival?" in html and "Survey results" in html


@pytest.mark.parametrize(("lang", "direction"), [("ar", "rtl"), ("en", "ltr")])
def test_page_uses_only_local_scripts_and_styles(client: FlaskClient, world: World, lang: str, direction: str) -> None:
    account = world.user("supervisor")
    account.locale = lang
    db.session.commit()
    sign_in(client, world.users["supervisor"])
    response = client.get("/console/dashboard")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'dir="{direction}"' in re.search(r"<html[^>]*>", html).group(0)  # type: ignore[union-attr]
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert urls and all(url.startswith(("/", "#")) and not url.startswith("//") for url in urls), urls
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all("src=" in attrs or 'type="application/json"' in attrs for attrs in scripts), scripts  # CSP: no inline JS
    assert "/static/vendor/chart.umd.min.js" in html and "/static/dashboard.js" in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    json.loads(re.search(r'id="dashboard-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]


def test_vendored_chart_js_exists_and_is_served(client: FlaskClient) -> None:
    vendor = Path(cfm.__file__).parent / "static" / "vendor"
    script = (vendor / "chart.umd.min.js").read_text(encoding="utf-8")
    assert "Chart.js v4" in script[:200]
    assert "MIT" in (vendor / "chart.js.LICENSE.md").read_text(encoding="utf-8")
    response = client.get("/static/vendor/chart.umd.min.js")
    assert response.status_code == 200 and b"Chart.js v4" in response.data[:200]
    response.close()
    response = client.get("/static/dashboard.js")
    assert response.status_code == 200 and b"dashboard-data" in response.data
    response.close()


# --- survey yes/no and choice questions (issue 6) ------------------------------------------------------------

MULTIPLE = Question(
    id="services_used",
    type="multiple_choice",
    text={"en": "Which services did you use?", "ar": "ما الخدمات التي استخدمتها؟"},
    options=(
        Option("transport", {"en": "Transport", "ar": "النقل"}),
        Option("interpreter", {"en": "Interpreter", "ar": "الترجمة"}),
        Option("medical", {"en": "Medical check", "ar": "الفحص الطبي"}),
    ),
)


def programme_named(slug: str) -> Programme:
    """A programme by slug."""
    return db.session.scalars(select(Programme).where(Programme.slug == slug)).one()


def answer(survey: Survey, answers: dict[str, Any], days_ago: float = 1) -> None:
    """One stored survey response, received some days ago."""
    db.session.add(
        SurveyResponse(
            survey=survey,
            programme_id=survey.programme_id,
            answers=answers,
            received_at=datetime.now(UTC) - timedelta(days=days_ago),
        )
    )


@pytest.fixture
def arrival(world: World) -> dict[str, Survey]:
    """'arrival' published in Kenya and Jordan; Kenya has answers, Jordan one; more Kenyan ones outside the range.

    Kenya, last 12 weeks: has_housing yes 6, no 2, unanswered 2; biggest_need housing 5, documents 2, health 1,
    an unknown option once (not counted), a wrongly typed answer once (not counted, and no failed cast on PostgreSQL).
    """
    kenya, jordan = (
        publish_survey(programme_named("kenya"), "arrival"),
        publish_survey(programme_named("jordan"), "arrival"),
    )
    housing = [True] * 6 + [False] * 2 + [None] * 2
    needs = ["housing"] * 5 + ["documents"] * 2 + ["health", "pizza", 7]
    for index, (has, need) in enumerate(zip(housing, needs, strict=True)):
        answers: dict[str, Any] = {"welcome": 4, "biggest_need": need}
        if has is not None:
            answers["has_housing"] = has
        answer(kenya, answers, days_ago=index)
    for _ in range(3):
        answer(kenya, {"has_housing": False, "biggest_need": "documents"}, days_ago=200)
    answer(jordan, {"has_housing": True, "biggest_need": "health"})
    db.session.commit()
    return {"kenya": kenya, "jordan": jordan}


def choice(result: dashboard.Dashboard, qid: str, slug: str = "arrival") -> ChoiceQuestion:
    """One choice question of the dashboard's survey results."""
    survey = next(s for s in result.surveys if s.slug == slug)
    return next(q for q in survey.choices if q.id == qid)


def counted(question: ChoiceQuestion) -> list[tuple[str, int | None]]:
    """(option id, respondents) in the order shown."""
    return [(o.id, o.count.value) for o in question.options]


def payload(html: str) -> dict[str, Any]:
    """The charts' JSON block of a dashboard page."""
    return json.loads(re.search(r'id="dashboard-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]


def test_survey_yes_no_and_choice_counts_per_option(arrival: dict[str, Survey], world: World) -> None:
    officer = dashboard.build(world.user("officer"), DashboardFilters.from_args({}))
    [survey] = officer.surveys
    assert survey.responses.value == 10
    assert [q.id for q in survey.choices] == ["received", "has_housing", "biggest_need"]  # the definition's order
    housing = choice(officer, "has_housing")
    assert housing.type == "yes_no" and counted(housing) == [("yes", 6), ("no", 2)]
    assert housing.answered.value == 8  # the two responses without an answer are in no option
    assert [o.share for o in housing.options] == [pytest.approx(6 / 8), pytest.approx(2 / 8)]
    need = choice(officer, "biggest_need")
    assert counted(need) == [("documents", 2), ("health", 1), ("housing", 5), ("work_school", 0), ("nothing", 0)]
    assert need.answered.value == 8  # "pizza" and 7 are no option of the question
    assert need.options[2].share == pytest.approx(5 / 8) and need.options[3].share == 0
    assert need.options[0].text["en"] == "Documents"
    assert [q.id for q in survey.questions] == ["welcome"]  # the ratings are still there


def test_survey_choice_counts_are_suppressed_below_five(arrival: dict[str, Survey], world: World) -> None:
    viewer = dashboard.build(world.user("viewer"), DashboardFilters.from_args({"programme": "kenya"}))
    need = choice(viewer, "biggest_need")
    # 2 and 1 hidden (two cells: neither gives the other away); 5 and the zeros shown.
    assert counted(need) == [("documents", None), ("health", None), ("housing", 5), ("work_school", 0), ("nothing", 0)]
    assert [o.share for o in need.options] == [None, None, pytest.approx(5 / 8), 0, 0]
    housing = choice(viewer, "has_housing")
    # "no" (2) is hidden; "yes" too, since 8 answered minus 6 would give it away.
    assert counted(housing) == [("yes", None), ("no", None)] and housing.answered.value == 8
    assert all(o.share is None for o in housing.options)
    jordan = dashboard.build(world.user("viewer"), DashboardFilters.from_args({"programme": "jordan"}))
    assert choice(jordan, "has_housing").answered.value is None  # 1 respondent: "<5"
    # The officer, who may open the cases, sees exact figures.
    assert counted(choice(dashboard.build(world.user("officer"), DashboardFilters.from_args({})), "has_housing")) == [
        ("yes", 6),
        ("no", 2),
    ]


def test_survey_choice_page_hides_small_numbers_from_a_report_viewer(
    client: FlaskClient, arrival: dict[str, Survey], world: World
) -> None:
    sign_in(client, world.users["viewer"])
    html = client.get("/console/dashboard?programme=kenya").get_data(as_text=True)
    charts = {c["id"]: c for c in payload(html)["charts"]}
    need = charts["survey-arrival-biggest_need"]
    assert need["kind"] == "choice" and need["datasets"][0]["data"] == [None, None, 5, 0, 0]
    assert need["shares"][:3] == [None, None, "62%"]  # 5 of 8 (62.5%: Babel rounds half to even)
    assert charts["survey-arrival-has_housing"]["datasets"][0]["data"] == [None, None]
    card = re.search(r'id="card-survey-arrival-biggest_need">(.*?)</figure>', html, re.S)
    assert card is not None
    assert re.findall(r'<td class="num is-hidden">([^<]*)</td>', card.group(1)) == ["&lt;5", "—", "&lt;5", "—"]


def test_survey_multiple_choice_counts_each_option_once_per_respondent(
    arrival: dict[str, Survey], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stored answers the public form never sends (an id listed twice, a scalar) are counted safely; the question is
    # added to the stored definitions the dashboard reads. The form's own path: test_..._from_the_public_form below.
    parsed = dashboard._survey_definitions

    def with_multiple(scope: list[int]) -> dict[str, list[SurveyDefinition]]:
        found = parsed(scope)
        return {
            slug: [dataclasses.replace(d, questions=(*d.questions, MULTIPLE)) for d in definitions]
            for slug, definitions in found.items()
        }

    monkeypatch.setattr(dashboard, "_survey_definitions", with_multiple)
    kenya = arrival["kenya"]
    for chosen in (
        ["transport", "interpreter"],
        ["transport", "transport"],  # listed twice: counted once
        ["transport", "medical", "interpreter"],
        ["interpreter"],
        ["transport", "unknown"],
        ["unknown"],  # no option of the question: not a respondent
        [],  # nothing chosen: not a respondent
        "transport",  # not a list: not counted (and no error on PostgreSQL)
    ):
        answer(kenya, {"services_used": chosen})
    answer(kenya, {"services_used": ["medical"]}, days_ago=200)  # outside the range
    answer(arrival["jordan"], {"services_used": ["medical", "transport"]})  # another programme
    db.session.commit()
    officer = dashboard.build(world.user("officer"), DashboardFilters.from_args({}))
    used = choice(officer, "services_used")
    assert used.type == "multiple_choice"
    assert counted(used) == [("transport", 4), ("interpreter", 3), ("medical", 1)]
    assert used.answered.value == 5
    assert [o.share for o in used.options] == [pytest.approx(4 / 5), pytest.approx(3 / 5), pytest.approx(1 / 5)]
    assert sum(o.share or 0 for o in used.options) > 1  # shares of respondents, not of choices
    everywhere = dashboard.build(world.user("officer_all"), DashboardFilters.from_args({}))
    assert counted(choice(everywhere, "services_used")) == [("transport", 5), ("interpreter", 3), ("medical", 2)]


NEEDS = ["documents", "health", "housing", "work_school", "nothing"]  # arrival.yaml's order
ARABIC_NEEDS = ["الوثائق", "الرعاية الصحية", "السكن", "العمل أو المدرسة"]
ENGLISH_NEEDS = ["Documents", "Health care", "Housing", "Work or school"]


@pytest.mark.parametrize(
    ("lang", "direction", "yes", "needs", "title"),
    [
        ("ar", "rtl", "نعم", ARABIC_NEEDS, "ما أكثر ما تحتاجه الآن؟"),
        ("en", "ltr", "Yes", ENGLISH_NEEDS, "What do you need most now?"),
    ],
    ids=["ar", "en"],
)
def test_survey_choice_labels_in_the_viewers_language(
    client: FlaskClient,
    arrival: dict[str, Survey],
    world: World,
    lang: str,
    direction: str,
    yes: str,
    needs: list[str],
    title: str,
) -> None:
    # One option without words in the viewer's language falls back to English.
    definition = dict(arrival["kenya"].definition)
    question = next(q for q in definition["questions"] if q["id"] == "biggest_need")
    nothing = next(o for o in question["options"] if o["id"] == "nothing")
    nothing["text"] = {"en": "Nothing at the moment", "fr": "Rien pour le moment"}
    arrival["kenya"].definition = definition
    flag_modified(arrival["kenya"], "definition")
    db.session.commit()
    account = world.user("supervisor")
    account.locale = lang
    db.session.commit()
    sign_in(client, world.users["supervisor"])
    html = client.get("/console/dashboard").get_data(as_text=True)
    assert f'dir="{direction}"' in re.search(r"<html[^>]*>", html).group(0)  # type: ignore[union-attr]
    data = payload(html)
    assert data["settings"]["rtl"] is (direction == "rtl")
    charts = {c["id"]: c for c in data["charts"]}
    biggest = charts["survey-arrival-biggest_need"]
    assert biggest["labels"] == [*needs, "Nothing at the moment"]
    assert biggest["title"] == title
    assert biggest["datasets"][0]["data"] == [2, 1, 5, 0, 0] and biggest["horizontal"] is True
    assert charts["survey-arrival-has_housing"]["labels"][0] == yes
    assert 'data-chart="survey-arrival-has_housing"' in html and 'data-chart="survey-arrival-biggest_need"' in html
    assert ("وصولك" if lang == "ar" else "Your arrival") in html  # the survey's heading


def test_survey_choice_counts_follow_the_programme_and_date_filters(arrival: dict[str, Survey], world: World) -> None:
    hq = world.user("officer_all")
    assert counted(choice(dashboard.build(hq, DashboardFilters.from_args({})), "has_housing")) == [
        ("yes", 7),
        ("no", 2),
    ]
    kenya = dashboard.build(hq, DashboardFilters.from_args({"programme": "kenya"}))
    assert counted(choice(kenya, "has_housing")) == [("yes", 6), ("no", 2)]
    jordan = dashboard.build(hq, DashboardFilters.from_args({"programme": "jordan"}))
    assert counted(choice(jordan, "biggest_need")) == [("documents", 0), ("health", 1), *[(k, 0) for k in NEEDS[2:]]]
    today = datetime.now(UTC).date()
    old = {"from": (today - timedelta(days=230)).isoformat(), "to": (today - timedelta(days=150)).isoformat()}
    back_then = dashboard.build(hq, DashboardFilters.from_args(old))
    assert counted(choice(back_then, "has_housing")) == [("yes", 0), ("no", 3)]
    assert counted(choice(back_then, "biggest_need"))[0] == ("documents", 3)
    assert next(s for s in back_then.surveys if s.slug == "arrival").responses.value == 3


def test_user_of_another_programme_sees_none_of_the_survey_answers(
    client: FlaskClient, arrival: dict[str, Survey], world: World
) -> None:
    user("officer.jordan@example.org", "officer", programmes=("jordan",))
    db.session.commit()
    kenya_officer = dashboard.build(world.user("officer"), DashboardFilters.from_args({}))  # as a check
    assert choice(kenya_officer, "has_housing").answered.value == 8
    db.session.expire_all()
    account = db.session.scalars(select(User).where(User.email == "officer.jordan@example.org")).one()
    seen = dashboard.build(account, DashboardFilters.from_args({}))
    assert counted(choice(seen, "has_housing")) == [("yes", 1), ("no", 0)]  # the Jordan answer only
    asked = dashboard.build(account, DashboardFilters.from_args({"programme": "kenya"}))  # not theirs: ignored
    assert counted(choice(asked, "has_housing")) == [("yes", 1), ("no", 0)]
    focal = dashboard.build(world.user("focal_jordan"), DashboardFilters.from_args({}))
    assert choice(focal, "biggest_need").answered.value is None  # 1 respondent, suppressed for a focal point
    sign_in(client, "officer.jordan@example.org")
    html = client.get("/console/dashboard?programme=kenya").get_data(as_text=True)
    charts = {c["id"]: c for c in payload(html)["charts"]}
    assert charts["survey-arrival-has_housing"]["datasets"][0]["data"] == [1, 0]
    assert charts["survey-arrival-biggest_need"]["datasets"][0]["data"] == [0, 1, 0, 0, 0]
    # Kenya's old answers are not theirs either: in that period nobody of Jordan answered, and the page says so.
    today = datetime.now(UTC).date()
    old = f"from={today - timedelta(days=230)}&to={today - timedelta(days=150)}"
    html = client.get(f"/console/dashboard?{old}&programme=kenya").get_data(as_text=True)
    assert 'data-chart="survey-arrival-has_housing"' not in html and 'id="card-survey-arrival-has_housing"' in html
    assert html.count("Nobody answered this question in this period.") == 3  # received, has_housing, biggest_need


def test_multiple_choice_answers_from_the_public_form_are_counted(client: FlaskClient, world: World) -> None:
    # End to end, nothing patched: arrival.yaml's checkbox question, ticked on the public page, charted for an officer.
    publish_survey(programme_named("kenya"), "arrival")
    url = "/en/p/kenya/survey/arrival"
    for ticked in (["food", "cash"], ["cash", "sim_card", "food"], ["nothing"], ["cash"]):
        assert client.post(url, data={"q_received": ticked, "q_welcome": "4"}).status_code == 200
    assert client.post(url, data={"q_welcome": "5"}).status_code == 200  # the question left unanswered
    assert client.post(url, data={"q_received": ["cash", "gold"]}).status_code == 400  # refused: not stored
    db.session.expire_all()
    stored = sorted(r.answers.get("received", []) for r in db.session.scalars(select(SurveyResponse)))
    assert stored == [[], ["cash"], ["food", "cash"], ["food", "cash", "sim_card"], ["nothing"]]
    officer = dashboard.build(world.user("officer"), DashboardFilters.from_args({}))
    received = choice(officer, "received")
    assert received.type == "multiple_choice"
    expected = [("food", 2), ("hygiene_kit", 0), ("cash", 3), ("sim_card", 1), ("information", 0), ("nothing", 1)]
    assert counted(received) == expected
    assert received.answered.value == 4  # respondents, not ticks (7)
    assert received.options[2].share == pytest.approx(3 / 4)
    assert next(s for s in officer.surveys if s.slug == "arrival").responses.value == 5
    sign_in(client, world.users["officer"])
    charts = {c["id"]: c for c in payload(client.get("/console/dashboard").get_data(as_text=True))["charts"]}
    chart = charts["survey-arrival-received"]
    assert chart["title"] == "What did you receive on arrival?"
    assert chart["labels"] == ["Food", "Hygiene kit", "Cash", "SIM card", "Information about services", "Nothing"]
    assert chart["datasets"][0]["data"] == [n for _, n in expected]
