"""Every public page: weight budget, nothing from another host, no script, headers, language picker, layout."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cfm.models import Survey
from cfm.services.surveys import publish_survey
from tests.cfm.helpers import send
from tests.cfm.public.conftest import reference_in

BUDGET = 30 * 1024  # bytes transferred per page, gzip as served: HTML + CSS + images (issue 4)
ROOT = Path(__file__).resolve().parents[3]
_RESOURCE = re.compile(r'<(?:link|img|script|source|iframe)\b[^>]*?\b(?:href|src)="([^"]+)"')
_EXTERNAL = re.compile(r"(?:https?:)?//[a-z0-9.-]+", re.IGNORECASE)


def public_pages(client: FlaskClient, lang: str) -> Iterator[tuple[str, bytes]]:
    """(name, HTML) of every public page as a person meets it."""
    for name, path in (
        ("feedback", f"/{lang}/feedback"),
        ("programme", f"/{lang}/p/kenya"),
        ("survey pre-departure", f"/{lang}/p/kenya/survey/pre-departure-briefing"),
        ("survey travel", f"/{lang}/p/kenya/survey/travel"),
        ("survey arrival", f"/{lang}/p/kenya/survey/arrival"),
        ("status", f"/{lang}/status"),
        ("not found", f"/{lang}/p/no-such-programme"),
    ):
        yield name, client.get(path).data
    confirmation = client.post(f"/{lang}/feedback", data={"text": "When does the bus leave?"}).data
    yield "confirmation", confirmation
    yield "status result", client.post(f"/{lang}/status", data={"reference": reference_in(confirmation)}).data
    yield "status unknown", client.post(f"/{lang}/status", data={"reference": "ZZZZ-ZZZZ"}).data
    yield "form errors", client.post(f"/{lang}/feedback", data={"text": "", "contact": "yes"}).data
    yield "survey done", client.post(f"/{lang}/p/kenya/survey/travel", data={"q_overall": "4"}).data


@pytest.fixture
def surveys(programme: Any) -> list[Survey]:
    """All shipped surveys published for the default programme."""
    return [publish_survey(programme, slug) for slug in ("pre-departure-briefing", "travel", "arrival")]


def test_every_public_page_is_under_the_weight_budget(client: FlaskClient, surveys: list[Survey], lang: str) -> None:
    for name, html in public_pages(client, lang):
        weight = len(gzip.compress(html))
        for url in set(_RESOURCE.findall(html.decode())):
            with client.get(url) as resource:
                assert resource.status_code == 200, url
                weight += len(gzip.compress(resource.get_data()))
        assert weight < BUDGET, f"{name}: {weight} bytes"


def test_no_public_page_makes_a_request_to_another_host_or_runs_a_script(
    client: FlaskClient, surveys: list[Survey], lang: str
) -> None:
    for name, html in public_pages(client, lang):
        page = html.decode()
        assert not _EXTERNAL.search(page), f"{name}: {_EXTERNAL.search(page)}"
        assert "<script" not in page and not re.search(r"<[^>]*\son[a-z]+\s*=", page), name
        for url in _RESOURCE.findall(page):
            assert url.startswith("/") and not url.startswith("//"), url
    css = (ROOT / "cfm" / "static" / "cfm.css").read_text()
    assert not _EXTERNAL.search(css) and "@import" not in css and "url(" not in css and "@font-face" not in css


def test_the_stylesheet_uses_logical_properties_only() -> None:
    css = re.sub(r"/\*.*?\*/", "", (ROOT / "cfm" / "static" / "cfm.css").read_text(), flags=re.S)
    assert not re.search(r"\b(left|right)\b", css)
    assert "margin-inline-start" in css or "margin-inline-end" in css
    assert "Noto Sans Arabic" in css and "Noto Sans Ethiopic" in css


def test_public_pages_send_protective_headers(client: FlaskClient, programme: Any) -> None:
    response = client.get("/en/feedback")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "style-src 'self'" in policy and "form-action 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_language_picker_names_each_language_in_itself(client: FlaskClient, programme: Any, lang: str) -> None:
    page = client.get(f"/{lang}/p/kenya").data.decode()
    for code, tag, name in (
        ("ar", "ar", "العربية"),
        ("fa_AF", "fa-AF", "دری"),
        ("ps", "ps", "پښتو"),
        ("uk", "uk", "Українська"),
        ("am", "am", "አማርኛ"),
        ("ti", "ti", "ትግርኛ"),
        ("fr", "fr", "Français"),
        ("en", "en", "English"),
    ):
        assert f'<a href="/{code}/p/kenya" lang="{tag}" hreflang="{tag}" dir="auto"' in page, code
        assert f">{name}</a>" in page, name
    assert re.search(rf'<a href="/{lang}/p/kenya"[^>]*aria-current="true"', page)


def test_reference_code_is_large_and_isolated_from_the_text_direction(client: FlaskClient, programme: Any) -> None:
    page = client.post("/ar/feedback", data={"text": "متى موعد الرحلة؟"}).data.decode()
    reference = reference_in(page)
    assert f'<p class="ref"><bdi dir="ltr" id="reference">{reference}</bdi></p>' in page
    # The Arabic STATUS keyword reads first (right); the code inside it stays left to right (issue 7).
    assert f'<bdi dir="rtl">حالة <bdi dir="ltr">{reference}</bdi></bdi>' in page


def test_status_replies_and_text_never_leak_between_pages(client: FlaskClient, programme: Any) -> None:
    case = send("My secret words").case
    page = client.post("/en/status", data={"reference": case.reference}).data
    assert b"My secret words" not in page


def test_public_package_imports_nothing_of_the_console() -> None:
    for path in (ROOT / "cfm" / "public").glob("*.py"):
        assert not re.search(r"^\s*(from|import) cfm\.console", path.read_text(), re.M), path.name


def test_channels_web_is_pure_python() -> None:
    source = (ROOT / "channels" / "web.py").read_text()
    assert not re.search(r"^\s*(from|import) (flask|sqlalchemy|cfm)\b", source, re.M)


def test_user_facing_strings_in_public_templates_are_marked_for_translation() -> None:
    for path in (ROOT / "cfm" / "templates" / "public").glob("*.html"):
        text = re.sub(r"{[{%#].*?[}%#]}", "", path.read_text(), flags=re.S)
        text = re.sub(r"<[^>]+>", " ", text)
        text = re.sub(r'[a-z-]+="[^"]*"', " ", text)  # attributes that macros write outside a tag
        words = [w for w in re.findall(r"[A-Za-z]{3,}", text) if w not in ("STATUS",)]
        assert not words, f"{path.name}: untranslated text {words[:5]}"


def test_language_prefixed_routes_never_shadow_another_blueprints_route(client: FlaskClient) -> None:
    adapter = client.application.url_map.bind("localhost")
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint.startswith("public.") or rule.arguments:
            continue
        method = next(iter((rule.methods or {"GET"}) - {"HEAD", "OPTIONS"}), "GET")
        endpoint, _ = adapter.match(rule.rule, method=method)
        assert endpoint == rule.endpoint, rule.rule
