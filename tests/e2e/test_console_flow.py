"""The console in a real browser: headless Chromium (Debian package) on a laptop screen, keyboard first.

An officer signs in, works the general queue from the keyboard (j/k, o, a), changes a status, writes a note,
replies to the person, searches, and moves a case into the restricted queue; a focal point signs in with a TOTP
code, opens that case and records its referral. Cookies are Secure (TESTING off) and CSRF is on, as in
production; no request may leave the site. Screenshots go to test-artifacts/screenshots/console-*.png.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from twilio.http import HttpClient
from twilio.http.response import Response

from tests.e2e.support import SCREENSHOTS, laptop_page, production_like_app, serve

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
TOTP_SECRET = pyotp.random_base32()
OFFICER, FOCAL = "amina.officer@example.org", "joseph.focal@example.org"

# (text, language, channel, category, confidence, top terms, hours since received)
CASES = [
    (
        "When is the pre-departure briefing for our family? We were told last week but nobody called us.",
        "en",
        "sms",
        "information_request",
        0.91,
        ["briefing", "pre-departure", "when"],
        50,
    ),
    (
        "متى موعد رحلتنا إلى كندا؟ لم يخبرنا أحد بالتاريخ.",
        "ar",
        "web",
        "information_request",
        0.84,
        ["رحلتنا", "موعد"],
        30,
    ),
    (
        "My mother needs a wheelchair at the airport, she cannot walk far.",
        "en",
        "whatsapp",
        "assistance_request",
        0.88,
        ["wheelchair", "airport"],
        20,
    ),
    (
        "The bus to the transit centre had no water for six hours and the children were sick.",
        "en",
        "web",
        "service_complaint",
        0.79,
        ["bus", "water", "hours"],
        12,
    ),
    (
        "Thank you to the team at the reception centre, they were very kind to my children.",
        "en",
        "sms",
        "appreciation",
        0.95,
        ["thank", "kind"],
        8,
    ),
    (
        "We were moved to the back of the list after my husband refused to sign the paper the coordinator gave him.",
        "en",
        "web",
        "service_complaint",
        0.52,
        ["list", "paper", "sign"],
        6,
    ),
    ("Il faudrait des panneaux en français au centre de transit.", "fr", "web", "suggestion", 0.73, ["panneaux"], 4),
    ("Mnaweza kutuambia lini safari itaanza?", "sw", "sms", "information_request", 0.81, ["safari", "lini"], 2),
]
RESTRICTED = (
    "The interpreter said he would help my case if I came to his room at night.",
    "en",
    "hotline",
    "sexual_exploitation_abuse",
    0.93,
    ["interpreter", "room", "night"],
    3,
)


class TwilioAccepts(HttpClient):
    """A twilio HttpClient that accepts every message (201) and never touches the network."""

    def __init__(self) -> None:
        super().__init__(logger=logging.getLogger("tests.e2e.twilio"), is_async=False)
        self.sent = 0

    def request(self, method: str, uri: str, *args: Any, **kwargs: Any) -> Response:
        """Answer like Twilio's Messages API."""
        self.sent += 1
        return Response(201, json.dumps({"sid": f"SM{self.sent:032d}", "status": "queued"}))


@dataclasses.dataclass
class Served:
    """The running app: its address, the app itself, the seeded case references."""

    url: str
    app: Flask
    refs: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app on 127.0.0.1 (SQLite, CSRF on, TESTING off so cookies are Secure) served by werkzeug in a thread."""
    folder = tmp_path_factory.mktemp("console-e2e")
    app = production_like_app(folder, TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN="e2e-token")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    app.extensions["twilio_http_client"] = TwilioAccepts()
    refs = _seed(app)
    with serve(app) as url:
        yield Served(url, app, refs)


def _seed(app: Flask) -> dict[str, str]:
    """Schema, two programmes, an officer and a focal point, a morning's intake routed as the model would."""
    from cfm.extensions import db
    from cfm.models import Reporter
    from cfm.models.types import utcnow
    from cfm.services.admin import create_programme, create_user, upgrade_schema
    from cfm.services.classification import apply_prediction
    from cfm.services.intake import submit
    from channels.base import IntakeRequest
    from classifier.categories import is_restricted

    with app.app_context():
        upgrade_schema()
        app.extensions["cfm_model"] = None  # routing below stands in for the model: the run does not hang on it
        create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)
        create_user(OFFICER, PASSWORD, ["officer", "supervisor"], ["kenya"])
        focal = create_user(FOCAL, PASSWORD, ["focal_point"], ["kenya"])
        focal.totp_secret = TOTP_SECRET
        create_user("grace.officer@example.org", PASSWORD, ["officer"], ["kenya"])
        refs: dict[str, str] = {}
        now = utcnow()
        for n, (text, lang, channel, category, confidence, terms, hours) in enumerate([*CASES, RESTRICTED]):
            case = submit(IntakeRequest(channel=channel, text=text, language_hint=lang, programme="kenya")).case
            apply_prediction(
                case,
                category=category,
                confidence=confidence,
                restricted=is_restricted(category),
                reasons=["category"] if is_restricted(category) else [],
                top_terms=terms,
                model_version="2025.06-demo",
                safety_net_category=None,
            )
            case.received_at = now - timedelta(hours=hours)
            case.due_at = case.received_at + timedelta(hours=72 if is_restricted(category) else 30 * 24)
            if n == 0:
                case.due_at = now - timedelta(hours=5)  # one overdue case, flagged in red
                case.reporter = Reporter(phone="+254711222333", consent_to_contact=True, preferred_language="en")
            refs[f"case{n}"] = case.reference
        db.session.commit()
        return refs


def _page(browser: Any, base: str, locale: str = "en-GB") -> tuple[Any, Page, list[str]]:
    """A laptop page; the run provokes 401s (wrong password, wrong code) and a 404 on purpose."""
    return laptop_page(browser, base, locale, expected_4xx=True)


def _shot(page: Page, name: str, *, full: bool = True) -> None:
    """Save a screenshot under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=full)


def _export(page: Page, fmt: str) -> str:
    """Open the queue's Export menu, download the file in this format, return its text (CSV) or its name."""
    page.click("details.export-menu summary")
    _shot(page, "export-menu", full=False)
    with page.expect_download() as info:
        page.click(f"details.export-menu button[formaction$='.{fmt}']")
    path = info.value.path()
    return path.read_text(encoding="utf-8-sig") if fmt == "csv" else info.value.suggested_filename


def _sign_in(page: Page, base: str, email: str) -> None:
    """Fill and send the sign-in form."""
    page.goto(f"{base}/console/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_officer_and_focal_point_work_the_queues(server: Served, browser: Any) -> None:
    base = server.url
    context, page, problems = _page(browser, base)

    # --- the officer ---------------------------------------------------------------------------------------
    page.goto(f"{base}/console/")
    expect(page).to_have_url(f"{base}/console/login?next=/console/")
    page.fill("#email", OFFICER)
    page.fill("#password", "not my password")
    _shot(page, "login", full=False)
    page.click("button[type=submit]")
    expect(page.locator(".alert-error")).to_contain_text("The email or password is not right.")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/console/queue/general")
    cookie = next(c for c in context.cookies() if c["name"] == "session")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    rows = page.locator("table.cases tbody tr")
    expect(rows).to_have_count(len(CASES))
    expect(page.locator(".tab-general .count")).to_have_text(str(len(CASES)))
    expect(page.locator(".tab-restricted")).to_have_count(0)  # an officer never sees the restricted tab
    expect(rows.first.locator(".due.is-late")).to_be_visible()  # overdue first, in red
    _shot(page, "queue-general")

    # Keyboard: j selects the first row, o opens it, a assigns it to me.
    page.wait_for_load_state()
    page.keyboard.press("j")
    expect(rows.first).to_have_class("row prio-row-normal is-selected")
    page.keyboard.press("o")
    expect(page).to_have_url(f"{base}/console/cases/{server.refs['case0']}")
    page.wait_for_load_state()
    expect(page.locator(".banner-late")).to_be_visible()
    page.keyboard.press("a")
    expect(page.locator(".flash-ok")).to_contain_text(f"Assigned to {OFFICER}.")
    page.wait_for_load_state()
    page.select_option("#status-status", "under_review")
    page.fill("#status-reason", "Checking the briefing schedule with the movement team")
    page.click("form[action$='/status'] button")
    expect(page.locator(".flash-ok")).to_contain_text("Status: Under review.")
    page.wait_for_load_state()
    page.keyboard.press("n")
    expect(page.locator("#note-body")).to_be_focused()
    page.keyboard.type("Briefing moved to Thursday 10:00; the family was on the list.")
    page.click("form[action$='/notes'] button")
    expect(page.locator(".tl-note").first).to_contain_text("Briefing moved to Thursday")
    page.wait_for_load_state()
    page.keyboard.press("r")
    expect(page.locator("#reply-body")).to_be_focused()
    page.keyboard.type("Hello, your pre-departure briefing is on Thursday at 10:00 at the transit centre.")
    page.click("form[action$='/reply'] button")
    expect(page.locator(".flash-ok")).to_contain_text("Reply queued")
    expect(page.locator(".message-out")).to_contain_text("Thursday at 10:00")
    page.select_option("#status-status", "action_taken")
    page.click("form[action$='/status'] button")
    _shot(page, "case-general")

    # Search the general queue from the keyboard.
    page.keyboard.press("u")
    expect(page).to_have_url(f"{base}/console/queue/general")
    page.wait_for_load_state()
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("wheelchair")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("wheelchair")
    _shot(page, "queue-search", full=False)

    # A coordinator punishing a refusal is misconduct, not a service complaint: the officer moves it on.
    suspicious = server.refs["case5"]
    page.goto(f"{base}/console/cases/{suspicious}")
    page.select_option("#category-category", "staff_misconduct")
    page.fill("#category-reason", "Abuse of power by the coordinator, not a delay")
    page.click("form[action$='/category'] button")
    expect(page).to_have_url(f"{base}/console/queue/general")
    expect(page.locator(".flash-ok")).to_contain_text("is now in the restricted queue")
    expect(page.locator(f"table.cases >> text={suspicious}")).to_have_count(0)
    _shot(page, "queue-after-reclassify", full=False)
    assert page.goto(f"{base}/console/cases/{suspicious}").status == 404
    page.goto(f"{base}/console/queue/general")
    exported = _export(page, "csv")
    assert suspicious not in exported and "Reference" in exported  # the officer's file has no restricted case
    page.goto(f"{base}/console/")
    page.click("form[action$='/logout'] button")
    expect(page).to_have_url(f"{base}/console/login")

    # --- the focal point ----------------------------------------------------------------------------------
    _sign_in(page, base, FOCAL)
    expect(page).to_have_url(f"{base}/console/login/verify")
    page.fill("#code", "000000")
    page.click("button[type=submit]")
    expect(page.locator(".alert-error")).to_be_visible()
    page.fill("#code", pyotp.TOTP(TOTP_SECRET).now())
    _shot(page, "totp", full=False)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/console/queue/restricted")
    expect(page.locator("table.cases tbody tr")).to_have_count(2)
    expect(page.locator(".tab-general")).to_have_count(0)
    _shot(page, "queue-restricted")
    page.click(f"text={suspicious}")
    expect(page.locator(".message-text").first).to_contain_text("refused to sign")
    expect(page.locator(".banner-restricted")).to_contain_text("recorded in the audit log")
    page.fill("#referral-referral_id", "MRP-2025-0147")
    page.click("form[action$='/referral'] button")
    expect(page.locator(".flash-ok")).to_contain_text("Referral recorded.")
    expect(page.locator(".referral")).to_contain_text("MRP-2025-0147")
    expect(page.locator(".case-head .status")).to_have_text("Referred internally")
    _shot(page, "case-restricted")
    page.goto(f"{base}/console/queue/restricted")
    assert suspicious in _export(page, "csv")  # the focal point's file has it
    context.close()
    assert problems == []


def test_queue_reads_right_to_left(server: Served, browser: Any) -> None:
    base = server.url
    context, page, problems = _page(browser, base, locale="ar")
    page.set_extra_http_headers({"Accept-Language": "ar"})
    _sign_in(page, base, OFFICER)
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("table.cases")).to_be_visible()
    _shot(page, "queue-rtl", full=False)
    context.close()
    assert problems == []


def test_enrolment_shows_a_scannable_qr_code(server: Served, browser: Any) -> None:
    from sqlalchemy import select

    from cfm.extensions import db
    from cfm.models import User
    from cfm.services.admin import create_user

    base = server.url
    email = "new.admin@example.org"
    with server.app.app_context():
        create_user(email, PASSWORD, ["admin"])
    context, page, problems = _page(browser, base)
    _sign_in(page, base, email)
    expect(page).to_have_url(f"{base}/console/login/enrol")
    expect(page.locator("figure.qr svg")).to_be_visible()
    _shot(page, "enrol", full=False)
    secret = page.locator(".secret-key").inner_text().replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/console/admin/users")  # an admin lands on the administration pages
    expect(page.locator(".flash-ok")).to_contain_text("Two-step sign-in is on")
    _shot(page, "home-admin", full=False)
    with server.app.app_context():
        assert db.session.scalars(select(User.totp_secret).where(User.email == email)).one() == secret
    context.close()
    assert problems == []


def test_hotline_operator_enters_an_arabic_call_and_reads_out_the_code(server: Served, browser: Any) -> None:
    import re

    base = server.url
    context, page, problems = _page(browser, base)
    _sign_in(page, base, "grace.officer@example.org")
    page.click("a.tab-hotline")
    expect(page).to_have_url(f"{base}/console/hotline/new")
    expect(page.locator("#text")).to_be_focused()  # the operator types at once
    expect(page.locator("#programme")).to_have_value("kenya")
    expect(page.locator("#consent")).not_to_be_checked()
    page.keyboard.type("متى موعد رحلتنا إلى كندا؟ لم يخبرنا أحد بالتاريخ")
    page.select_option("#language", "ar")
    _shot(page, "hotline-call")
    page.click(".hotline-submit")
    expect(page.locator(".hotline-code")).to_have_text(re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$"))
    expect(page.locator(".hotline-ack")).to_have_attribute("lang", "ar")
    expect(page.locator(".hotline-ack")).to_have_attribute("dir", "rtl")
    _shot(page, "hotline-done")
    page.keyboard.press("Enter")  # "Next call" has the focus
    expect(page.locator("#text")).to_be_focused()
    expect(page.locator("#text")).to_have_value("")
    context.close()
    assert problems == []
