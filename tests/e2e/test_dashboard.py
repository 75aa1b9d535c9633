"""The dashboard in a real browser (issue 6): Chart.js from /static draws every chart, in English and in Arabic.

A supervisor of two programmes opens the dashboard on a laptop screen; twelve weeks of intake and survey answers
are seeded. The test checks that the canvases carry pixels, that no request leaves the site, that the page raises
no script error (the console's CSP allows scripts from 'self' only), and saves screenshots to
test-artifacts/screenshots/dashboard-{en,ar}.png.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.e2e.support import SCREENSHOTS, laptop_page, production_like_app, serve

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
SUPERVISOR = "lina.supervisor@example.org"
ARABIC = "omar.supervisor@example.org"
VIEWER = "sara.viewer@example.org"
CATEGORIES = [
    ("information_request", 9),
    ("assistance_request", 5),
    ("service_complaint", 4),
    ("appreciation", 2),
    ("suggestion", 2),
    ("other", 1),
]
CHANNELS = [("sms", 5), ("web", 4), ("whatsapp", 3), ("hotline", 2), ("survey", 1)]
LANGUAGES = [("en", 4), ("ar", 4), ("fa", 2), ("sw", 2), ("fr", 1), ("so", 1)]


def _seed(app: Flask) -> None:
    """Two programmes, two supervisors (en, ar), twelve weeks of cases with responses and closures, survey answers."""
    from cfm.extensions import db
    from cfm.models import CaseEvent, Message, SurveyResponse
    from cfm.models.types import utcnow
    from cfm.services.admin import create_programme, create_user
    from cfm.services.classification import apply_prediction
    from cfm.services.intake import submit
    from cfm.services.surveys import publish_survey
    from channels.base import IntakeRequest
    from classifier.categories import is_restricted

    rng = random.Random(6)  # noqa: S311 (test data)

    def pick(weighted: list[tuple[str, int]]) -> str:
        return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]

    with app.app_context():
        db.create_all()  # the models' schema, as the unit tests build it (migrations are checked elsewhere)
        app.extensions["cfm_model"] = None  # routing below stands in for the model
        kenya = create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)
        jordan = create_programme("jordan", "Jordan family reunification", ["+962700000001"], language="ar")
        create_user(SUPERVISOR, PASSWORD, ["officer", "supervisor"], ["kenya", "jordan"])
        arabic = create_user(ARABIC, PASSWORD, ["officer", "supervisor"], ["kenya", "jordan"])
        arabic.locale = "ar"
        create_user(VIEWER, PASSWORD, ["report_viewer"], ["jordan"])
        now = utcnow()
        for n in range(150):
            category = pick(CATEGORIES) if n % 9 else "fraud_corruption"
            programme = "kenya" if rng.random() < 0.65 else "jordan"
            text = f"Feedback number {n} about the programme."
            case = submit(IntakeRequest(channel=pick(CHANNELS), text=text, programme=programme)).case
            apply_prediction(
                case,
                category=category,
                confidence=0.8,
                restricted=is_restricted(category),
                reasons=["category"] if is_restricted(category) else [],
                top_terms=["programme"],
                model_version="2025.06-demo",
                safety_net_category=None,
            )
            age = timedelta(days=rng.triangular(0, 82, 20), hours=rng.random() * 24)
            case.received_at = now - age
            case.language = pick(LANGUAGES)
            if age > timedelta(days=2):
                reply_after = timedelta(hours=rng.triangular(1, 120, 20))
                db.session.add(
                    CaseEvent(
                        case=case,
                        kind="status",
                        old_value="new",
                        new_value="under_review",
                        created_at=case.received_at + reply_after,
                    )
                )
                case.status = rng.choice(["under_review", "referred_internally", "action_taken", "closed", "closed"])
                if case.status == "closed":
                    case.closed_at = case.received_at + reply_after + timedelta(days=rng.triangular(1, 20, 6))
                    case.closure_method = "sms_reply"
                    db.session.add(
                        Message(
                            case=case, direction="outbound", channel="sms", created_at=case.closed_at, text_plain="ok"
                        )
                    )
        for programme, slug in ((kenya, "arrival"), (kenya, "travel"), (jordan, "travel")):
            survey = publish_survey(programme, slug)
            for _ in range(40):
                answers = {
                    "welcome": rng.choices([1, 2, 3, 4, 5], [1, 1, 3, 6, 5])[0],
                    "overall": rng.choices([1, 2, 3, 4, 5], [1, 2, 3, 5, 4])[0],
                    "staff_respect": rng.choices([1, 2, 3, 4, 5], [0, 1, 2, 5, 8])[0],
                    "has_housing": rng.random() < 0.7,
                    "felt_safe": rng.random() < 0.85,
                    "biggest_need": rng.choice(["documents", "health", "housing", "housing", "work_school"]),
                }
                received = now - timedelta(days=rng.random() * 80)
                db.session.add(
                    SurveyResponse(survey=survey, programme_id=programme.id, answers=answers, received_at=received)
                )
        db.session.commit()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on 127.0.0.1 (SQLite, CSRF on, TESTING off as in production)."""
    folder = tmp_path_factory.mktemp("dashboard-e2e")
    app = production_like_app(folder)
    _seed(app)
    with serve(app) as url:
        yield url


def _open(browser: Any, base: str, email: str) -> tuple[Any, Page, list[str]]:
    """Sign in on a fresh laptop-sized context; requests off the site and script errors are recorded."""
    context, page, problems = laptop_page(browser, base)
    page.goto(f"{base}/console/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/console/" in url and "/login" not in url)
    return context, page, problems


def _painted(page: Page, selector: str) -> int:
    """How many pixels of a canvas are not transparent (0: nothing drawn)."""
    return int(
        page.eval_on_selector(
            selector,
            """canvas => {
                const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { painted++; } }
                return painted;
            }""",
        )
    )


@pytest.mark.parametrize(("email", "lang", "direction"), [(SUPERVISOR, "en", "ltr"), (ARABIC, "ar", "rtl")])
def test_dashboard_draws_its_charts(site: str, browser: Any, email: str, lang: str, direction: str) -> None:
    context, page, problems = _open(browser, site, email)
    page.click("a.tab-dashboard")
    page.wait_for_url(f"{site}/console/dashboard")
    expect(page.locator("html")).to_have_attribute("dir", direction)
    expect(page.locator("body.charts-on")).to_have_count(1)
    canvases = page.locator("canvas[data-chart]")
    assert canvases.count() >= 7  # weeks, 5 breakdowns, surveys
    for chart in ("weeks", "category", "programme", "survey-travel", "survey-arrival-biggest_need"):
        assert _painted(page, f'canvas[data-chart="{chart}"]') > 500, chart
    # The numbers stay available: visually hidden tables, shown by a button.
    first_table = page.locator("#card-category .dash-table")
    expect(first_table).to_be_attached()
    page.click("#card-category .dash-toggle")
    expect(first_table).to_be_visible()
    page.click("#card-category .dash-toggle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"dashboard-{lang}.png"), full_page=True)
    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(first_table).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / f"dashboard-print-{lang}.png"), full_page=True)
    assert problems == []
    context.close()


def test_report_viewer_lands_on_suppressed_figures(site: str, browser: Any) -> None:
    context, page, problems = _open(browser, site, VIEWER)
    expect(page).to_have_url(f"{site}/console/dashboard")  # report viewers land here
    expect(page.locator(".dash-note")).to_be_visible()
    expect(page.locator("body.charts-on")).to_have_count(1)
    assert _painted(page, 'canvas[data-chart="category"]') > 500
    expect(page.locator(".tab-general")).to_have_count(0)
    expect(page.locator("[data-figure=restricted]")).to_have_count(0)
    hidden = page.locator(".dash-table td.is-hidden")
    assert hidden.count() > 0 and hidden.first.text_content() == "<5"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-viewer-en.png"), full_page=True)
    assert problems == []
    context.close()
