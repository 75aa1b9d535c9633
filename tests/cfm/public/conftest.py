"""Fixtures of the public-page tests: a published survey, the locales every page is rendered in."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask_babel import force_locale, format_number, gettext
from markupsafe import escape
from sqlalchemy import func, select

from cfm.extensions import db
from cfm.models import Case, Message, Reporter, Survey, SurveyResponse
from cfm.services.surveys import publish_survey

LOCALES = ("ar", "en")
_REFERENCE = re.compile(r'id="reference">([0-9A-Z]{4}-[0-9A-Z]{4})</bdi>')
_TOKEN = re.compile(r'name="submission" type="hidden" value="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture(params=LOCALES)
def lang(request: pytest.FixtureRequest) -> str:
    """Every rendered page is checked in a right-to-left and a left-to-right locale."""
    return str(request.param)


@pytest.fixture
def survey(programme: Any) -> Survey:
    """The shipped travel survey, published by the default programme."""
    return publish_survey(programme, "travel")


def words(lang: str, english: str, **values: object) -> bytes:
    """What a page in `lang` shows for one of our English strings: translated, numbers as Babel writes them, escaped."""
    with force_locale(lang):
        shown = {name: format_number(value) if isinstance(value, int) else value for name, value in values.items()}
        return str(escape(gettext(english, **shown))).encode()


def reference_in(html: bytes | str) -> str:
    """The reference code shown on a confirmation page."""
    text = html.decode() if isinstance(html, bytes) else html
    match = _REFERENCE.search(text)
    assert match, "no reference code on the page"
    return match.group(1)


def token_in(html: bytes) -> str:
    """The idempotency token of a rendered form."""
    match = _TOKEN.search(html.decode())
    assert match
    return match.group(1)


def csrf_in(html: bytes) -> str:
    """The CSRF token of a rendered form."""
    match = _CSRF.search(html.decode())
    assert match
    return match.group(1)


def rows() -> dict[str, int]:
    """Rows in every table a public submission can write."""
    db.session.expire_all()
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Case, Message, Reporter, SurveyResponse)
    }


NOTHING = {"case": 0, "message": 0, "reporter": 0, "survey_response": 0}
