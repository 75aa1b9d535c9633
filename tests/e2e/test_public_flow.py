"""The public side in a real browser: headless Chromium (Debian package) on a 360x640 phone screen.

Feedback and a survey are sent in Arabic and English with JavaScript switched off, the reference code is
read from the page and looked up on /status; no request may leave the site. Screenshots go to
test-artifacts/screenshots/. axe-core (shipped inside the axe-playwright-python package) then checks
the same pages, JavaScript on, for serious or critical accessibility violations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest
from babel.messages.pofile import read_po

from tests.e2e.support import ROOT, SCREENSHOTS

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 640}
TEXTS = {
    "ar": {
        "feedback": "متى موعد رحلتنا إلى كندا؟ لم يخبرنا أحد بالتاريخ.",
        "comment": "كان الحافلة بلا ماء لمدة ست ساعات.",
        "dir": "rtl",
    },
    "en": {
        "feedback": "When is our flight to Canada? Nobody told us the date.",
        "comment": "The bus had no water for six hours.",
        "dir": "ltr",
    },
}
REFERENCE = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$")


@pytest.fixture
def phone(browser: Any, server: str) -> Iterator[tuple[Any, list[str]]]:
    """A phone-sized page with JavaScript off; every URL it requests is recorded."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, java_script_enabled=False)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    yield page, requested
    context.close()
    outside = [url for url in requested if not url.startswith(server + "/")]
    assert not outside, f"requests that left the site: {outside}"


def shot(page: Any, name: str) -> None:
    """Save a full-page screenshot under test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def stage_texts(lang: str) -> set[str]:
    """The status words of a new case (received, or in progress), in the page's language (translated: issue 7)."""
    english = {"Received. It is waiting for our team to look at it.", "Our team is working on it."}
    if lang == "en":
        return english
    with (ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    return {str(catalog.get(text).string) for text in english if catalog.get(text) is not None}


def look_up(page: Any, server: str, lang: str, reference: str, name: str) -> str:
    """Type the code (lower case, no dash, as a person might) on /status and return the status words."""
    page.goto(f"{server}/{lang}/status")
    page.fill("#reference", reference.lower().replace("-", ""))
    page.click("button[type=submit]")
    assert page.locator("#result-title bdi").inner_text() == reference
    shot(page, f"{lang}-{name}")
    return str(page.locator(".stage").inner_text())


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_feedback_then_status_on_a_phone_without_javascript(
    phone: tuple[Any, list[str]], server: str, lang: str
) -> None:
    page, _ = phone
    page.goto(f"{server}/{lang}/feedback")
    assert page.get_attribute("html", "dir") == TEXTS[lang]["dir"]
    assert page.get_attribute("html", "lang") == lang
    assert page.locator("#website").is_hidden()  # the honeypot is not shown to people
    shot(page, f"{lang}-feedback-form")

    page.click("button[type=submit]")  # empty: the error is shown next to the field
    assert page.locator("#text-error").is_visible()
    assert page.locator(".error-summary a[href='#text']").is_visible()
    shot(page, f"{lang}-feedback-error")

    page.fill("#text", TEXTS[lang]["feedback"])
    page.check("#category-0")
    page.click("button[type=submit]")
    reference = page.locator("#reference").inner_text()
    assert REFERENCE.match(reference)
    box = page.locator("#reference").bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]  # the code fits on the screen
    shot(page, f"{lang}-feedback-confirmation")

    words = look_up(page, server, lang, reference, "status")
    assert words in stage_texts(lang)


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_survey_then_status_on_a_phone_without_javascript(phone: tuple[Any, list[str]], server: str, lang: str) -> None:
    page, _ = phone
    page.goto(f"{server}/{lang}/p/kenya")
    page.click("a[href$='/survey/travel']")
    assert page.url.endswith(f"/{lang}/p/kenya/survey/travel")
    assert page.get_attribute("html", "dir") == TEXTS[lang]["dir"]
    shot(page, f"{lang}-survey-form")
    page.check("label[for='q_overall-3']")
    page.check("label[for='q_felt_safe-0']")
    page.fill("#q_comment", TEXTS[lang]["comment"])
    page.click("button[type=submit]")
    reference = page.locator("#reference").inner_text()
    assert REFERENCE.match(reference)
    shot(page, f"{lang}-survey-confirmation")
    look_up(page, server, lang, reference, "survey-status")


def test_pages_fit_a_phone_screen_without_sideways_scrolling(browser: Any, server: str) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    page = context.new_page()
    for path in ("/ar/feedback", "/en/p/kenya/survey/travel", "/ar/status", "/en/p/nowhere"):
        page.goto(server + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    context.close()


def _axe_source() -> str:
    """axe.min.js as shipped inside the axe-playwright-python package (nothing fetched)."""
    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_axe_core_finds_no_serious_or_critical_violation(browser: Any, server: str, lang: str) -> None:
    source = _axe_source()
    context = browser.new_context(viewport=PHONE, is_mobile=True, bypass_csp=True)
    page = context.new_page()
    pages = {
        "feedback": lambda: page.goto(f"{server}/{lang}/feedback"),
        "feedback errors": lambda: (page.goto(f"{server}/{lang}/feedback"), page.click("button[type=submit]")),
        "confirmation": lambda: (
            page.goto(f"{server}/{lang}/feedback"),
            page.fill("#text", TEXTS[lang]["feedback"]),
            page.click("button[type=submit]"),
        ),
        "survey": lambda: page.goto(f"{server}/{lang}/p/kenya/survey/travel"),
        "survey errors": lambda: (
            page.goto(f"{server}/{lang}/p/kenya/survey/travel"),
            page.fill("#q_comment", "x"),
            page.check("label[for='q_overall-0']"),
            page.fill("#phone", "not a phone"),
            page.check("label[for='contact-1']"),
            page.click("button[type=submit]"),
        ),
        "status": lambda: page.goto(f"{server}/{lang}/status"),
        "status unknown": lambda: (
            page.goto(f"{server}/{lang}/status"),
            page.fill("#reference", "ZZZZ-ZZZZ"),
            page.click("button[type=submit]"),
        ),
        "not found": lambda: page.goto(f"{server}/{lang}/p/nowhere"),
    }
    problems: dict[str, list[str]] = {}
    for name, open_page in pages.items():
        open_page()
        page.evaluate(source)
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        bad = [
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if bad:
            problems[name] = bad
    context.close()
    assert not problems, problems
