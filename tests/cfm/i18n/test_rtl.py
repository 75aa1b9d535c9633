"""Right-to-left done properly on every public page (issue 7), in ar and en, and in fa_AF and ps as well.

<html lang dir> comes from Babel's locale data; reference codes and phone numbers shown inside text are
bidi-isolated (<bdi dir="ltr"> or an element with dir="ltr"); no English string of ours is left on a page in
another locale; numbers and dates are Babel's, for the reader's locale, in the programme's time zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
import yaml
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal
from flask.testing import FlaskClient

from cfm.extensions import db
from cfm.models import Message, Programme
from cfm.services.admin import create_programme
from cfm.services.surveys import publish_survey
from channels.base import MAX_TEXT_LENGTH
from channels.sms import STATUS_KEYWORDS, parse_keyword
from tests.cfm.helpers import send
from tests.cfm.i18n.conftest import ROOT, catalog

LOCALES = ("ar", "en", "fa_AF", "ps")
CODE = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{4}-[0-9A-Z]{4}(?![0-9A-Z])")
PHONE = re.compile(r"\+[0-9][0-9 ]{6,}[0-9]")
COMMAND = re.compile(r'<bdi dir="(rtl|ltr)">(\S+) (?:<bdi dir="ltr">)?([0-9A-Z]{4}-[0-9A-Z]{4})<')
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})
LABELS = ("aria-label", "title", "placeholder", "alt")
# 21:00 UTC on 4 March is already 5 March in Kabul (UTC+4:30): the date shown must be the programme's.
REPLY_AT = datetime(2025, 3, 4, 21, 0, tzinfo=UTC)
LOCAL_DAY, UTC_DAY = date(2025, 3, 5), date(2025, 3, 4)


class Page(HTMLParser):
    """What the checks need of a page: <html> attributes, text with its isolation, labels, inputs."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html_attrs: dict[str, str] = {}
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[tuple[str, bool, str]] = []
        self.inputs: list[dict[str, str]] = []
        self.feed(html)

    def _ltr(self) -> bool:
        """True inside an element whose direction is left to right (dir="ltr", inherited)."""
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record <html> attributes, labels and fields; open an element with its direction."""
        values = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.html_attrs = values
        for name in LABELS:
            if values.get(name):
                self.texts.append((values[name], self._ltr(), f"{tag}[{name}]"))
        if tag in ("input", "textarea"):
            self.inputs.append(values)
        if tag not in VOID:
            ltr = values.get("dir") == "ltr" or (values.get("dir") is None and self._ltr())
            self.stack.append((tag, ltr))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """A self-closed tag: recorded, never left open."""
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        """Close the innermost open element of this name (and any left open inside it)."""
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        """Visible text with the direction it is shown in."""
        if data.strip() and not (self.stack and self.stack[-1][0] in ("style", "script")):
            self.texts.append((data, self._ltr(), self.stack[-1][0] if self.stack else ""))

    def lines(self) -> Iterator[str]:
        """Every visible line of text and every label, stripped."""
        for text, _, _ in self.texts:
            for line in text.splitlines():
                if line.strip():
                    yield line.strip()


@pytest.fixture
def kabul(ctx: Any) -> Programme:
    """The default programme, in Kabul's time zone, with a number and all shipped surveys published."""
    programme = create_programme(
        "kenya", "Kenya resettlement", ["+254700000001"], language="sw", timezone="Asia/Kabul", is_default=True
    )
    for slug in ("pre-departure-briefing", "travel", "arrival"):
        publish_survey(programme, slug)
    return programme


def public_pages(client: FlaskClient, lang: str) -> Iterator[tuple[str, str]]:
    """(name, HTML) of every public page in one locale, including errors, results and replies."""
    for name, path in (
        ("feedback", f"/{lang}/feedback"),
        ("programme", f"/{lang}/p/kenya"),
        ("survey pre-departure", f"/{lang}/p/kenya/survey/pre-departure-briefing"),
        ("survey travel", f"/{lang}/p/kenya/survey/travel"),
        ("survey arrival", f"/{lang}/p/kenya/survey/arrival"),
        ("status", f"/{lang}/status"),
        ("not found", f"/{lang}/p/no-such-programme"),
    ):
        yield name, client.get(path).get_data(as_text=True)
    yield "confirmation", client.post(f"/{lang}/feedback", data={"text": "When does the bus leave?"}).get_data(True)
    case = send("Please tell me when the bus leaves").case
    reply = Message(case=case, direction="outbound", channel="sms", created_at=REPLY_AT)
    reply.store_text("The bus leaves on Monday at 8.", sealed=case.is_restricted)
    db.session.add(reply)
    db.session.commit()
    yield "status result", client.post(f"/{lang}/status", data={"reference": case.reference}).get_data(True)
    yield "status unknown", client.post(f"/{lang}/status", data={"reference": "ZZZZ-ZZZZ"}).get_data(True)
    bad = {"text": "x" * (MAX_TEXT_LENGTH + 1), "contact": "yes", "phone": "call me"}
    yield "form errors", client.post(f"/{lang}/feedback", data=bad).get_data(True)
    yield "survey errors", client.post(f"/{lang}/p/kenya/survey/travel", data={"contact": "yes"}).get_data(True)
    yield "survey done", client.post(f"/{lang}/p/kenya/survey/travel", data={"q_overall": "4"}).get_data(True)


def english_strings(lang: str) -> set[str]:
    """Our English strings that have a different translation in this locale (they must not show on its pages)."""
    if lang == "en":
        return set()
    found = set()
    for message in catalog(lang):
        singular = message.id[0] if isinstance(message.id, tuple | list) else message.id
        text = message.string[0] if isinstance(message.string, tuple | list) else message.string
        if singular and text and text != singular and "%" not in singular:
            found.add(singular)
    for path in (ROOT / "cfm" / "surveys").glob("*.yaml"):
        found.update(english for english, own in survey_texts(yaml.safe_load(path.read_text()), lang) if own != english)
    return found


def survey_texts(node: Any, lang: str) -> Iterator[tuple[str, str | None]]:
    """(English, this locale's text) of every text in a survey definition."""
    if isinstance(node, dict):
        if isinstance(node.get("en"), str):
            yield node["en"], node.get(lang)
            return
        for value in node.values():
            yield from survey_texts(value, lang)
    elif isinstance(node, list):
        for value in node:
            yield from survey_texts(value, lang)


@pytest.mark.parametrize("lang", LOCALES)
def test_every_public_page_has_lang_and_dir_from_babel(client: FlaskClient, kabul: Programme, lang: str) -> None:
    expected = "rtl" if Locale.parse(lang).character_order == "right-to-left" else "ltr"
    for name, html in public_pages(client, lang):
        page = Page(html)
        assert page.html_attrs.get("dir") == expected, f"{name}: dir={page.html_attrs.get('dir')}"
        assert page.html_attrs.get("lang") == lang.replace("_", "-"), f"{name}: lang={page.html_attrs.get('lang')}"


@pytest.mark.parametrize("lang", LOCALES)
def test_codes_and_phone_numbers_are_isolated_left_to_right(client: FlaskClient, kabul: Programme, lang: str) -> None:
    shown = 0
    for name, html in public_pages(client, lang):
        page = Page(html)
        for text, ltr, where in page.texts:
            for match in [*CODE.finditer(text), *PHONE.finditer(text)]:
                shown += 1
                assert ltr, f"{name}: {match.group(0)!r} in <{where}> is not inside <bdi dir=ltr> (or dir=ltr)"
        for field in page.inputs:
            if field.get("type") == "tel" or field.get("name") == "reference":
                assert field.get("dir") == "ltr", f"{name}: the {field.get('name')} field must be dir=ltr"
    assert shown >= 5, "the pages should show codes (confirmation, status) and phone numbers (numbers, examples)"


@pytest.mark.parametrize("lang", [code for code in LOCALES if code != "en"])
def test_no_english_string_of_ours_is_left_on_a_translated_page(
    client: FlaskClient, kabul: Programme, lang: str
) -> None:
    english = english_strings(lang)
    for name, html in public_pages(client, lang):
        left = sorted({line for line in Page(html).lines() if line in english})
        assert not left, f"{name} in {lang}: English left on the page: {left}"


@pytest.mark.parametrize("lang", LOCALES)
def test_numbers_are_formatted_for_the_reader(client: FlaskClient, kabul: Programme, lang: str) -> None:
    page = client.get(f"/{lang}/feedback").get_data(as_text=True)
    assert format_decimal(MAX_TEXT_LENGTH, locale=lang) in page
    errors = client.post(f"/{lang}/feedback", data={"text": "x" * (MAX_TEXT_LENGTH + 1)}).get_data(as_text=True)
    assert format_decimal(MAX_TEXT_LENGTH, locale=lang) in errors


@pytest.mark.parametrize("lang", LOCALES)
def test_reply_dates_are_in_the_readers_locale_and_the_programmes_time_zone(
    client: FlaskClient, kabul: Programme, lang: str
) -> None:
    pages = dict(public_pages(client, lang))
    result = pages["status result"]
    assert format_date(LOCAL_DAY, "long", locale=lang) in result, "the date must be Babel's, in Kabul time"
    assert format_date(UTC_DAY, "long", locale=lang) not in result


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_console_sign_in_page_has_lang_and_dir(client: FlaskClient, lang: str) -> None:
    html = client.get("/console/login", headers={"Accept-Language": lang}).get_data(as_text=True)
    page = Page(html)
    assert page.html_attrs.get("lang") == lang
    assert page.html_attrs.get("dir") == ("rtl" if lang == "ar" else "ltr")


@pytest.mark.parametrize("lang", LOCALES)
def test_the_sms_command_on_the_confirmation_page_works_in_that_language(
    client: FlaskClient, kabul: Programme, lang: str
) -> None:
    html = client.post(f"/{lang}/feedback", data={"text": "When does the bus leave?"}).get_data(as_text=True)
    found = COMMAND.search(html)
    assert found, "the page should tell people what to send by SMS"
    direction, keyword, reference = found.groups()
    assert direction == ("rtl" if Locale.parse(lang).character_order == "right-to-left" else "ltr")
    parsed = parse_keyword(f"{keyword} {reference}")
    assert parsed is not None and parsed.kind == "status" and parsed.reference == reference
    assert keyword in STATUS_KEYWORDS[lang.split("_")[0]]
