"""GET|POST /feedback and /p/<slug>, with and without a language prefix; bad input; database loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from cfm import create_app
from cfm.extensions import db
from cfm.models import Case, Reporter
from cfm.services.admin import create_programme
from cfm.services.crypto import generate_keys
from channels.base import MAX_TEXT_LENGTH
from tests.cfm.public.conftest import NOTHING, csrf_in, reference_in, rows, token_in, words

PROTECTED = (
    "Reports of abuse, exploitation, fraud or misconduct by staff go only to a protected team trained to handle them."
)
HTML_TAG = {"ar": b'<html dir="rtl" lang="ar">', "en": b'<html dir="ltr" lang="en">'}


def only_case() -> Case:
    """The one stored case."""
    db.session.expire_all()
    return db.session.scalars(select(Case)).one()


def test_feedback_form_is_in_the_persons_language_and_direction(client: FlaskClient, programme: Any, lang: str) -> None:
    response = client.get(f"/{lang}/feedback")
    assert response.status_code == 200
    assert HTML_TAG[lang] in response.data
    page = response.data.decode()
    assert f'action="/{lang}/feedback"' in page
    assert '<label for="text">' in page and 'id="text"' in page
    assert 'name="website"' in page and 'class="hp"' in page
    assert 'name="submission" type="hidden"' in page
    assert words(lang, PROTECTED).decode() in page
    assert 'value="no" checked' in page  # anonymous unless the person chooses otherwise


def test_feedback_without_prefix_follows_the_browser_language(client: FlaskClient, programme: Any) -> None:
    response = client.get("/feedback", headers={"Accept-Language": "ar-SY,ar;q=0.9,en;q=0.5"})
    assert HTML_TAG["ar"] in response.data
    assert b'action="/ar/feedback"' in response.data


def test_root_leads_to_the_feedback_form(client: FlaskClient, programme: Any) -> None:
    response = client.get("/", headers={"Accept-Language": "en"})
    assert response.status_code == 302 and response.headers["Location"] == "/en/feedback"


def test_feedback_is_stored_anonymously_and_the_reference_shown(client: FlaskClient, programme: Any, lang: str) -> None:
    response = client.post(
        f"/{lang}/feedback", data={"text": "When is our flight to Canada?", "category": "question", "contact": "no"}
    )
    assert response.status_code == 200
    assert HTML_TAG[lang] in response.data
    reference = reference_in(response.data)
    assert f'<bdi dir="ltr" id="reference">{reference}</bdi>'.encode() in response.data
    assert response.headers["Cache-Control"] == "no-store"
    case = only_case()
    assert case.reference == reference
    assert case.channel == "web"
    assert case.programme.slug == "kenya"
    assert case.category_hint == "information_request"
    assert case.reporter is None
    assert case.extra == {"ui_locale": lang}
    assert case.text == "When is our flight to Canada?"
    keyword = {"en": "STATUS ", "ar": 'حالة <bdi dir="ltr">'}[lang]  # the language's own keyword (issue 7)
    assert (keyword + reference).encode() in response.data and b"+254700000001" in response.data


def test_contact_details_are_kept_only_when_the_person_asks(client: FlaskClient, programme: Any) -> None:
    data = {"text": "My child needs a wheelchair at the airport", "phone": "+254 711 222 333", "name": "Amina"}
    client.post("/en/feedback", data={**data, "contact": "no"})
    assert rows()["reporter"] == 0
    client.post("/en/feedback", data={**data, "contact": "yes", "method": "sms"})
    reporter = db.session.scalars(select(Reporter)).one()
    assert reporter.phone == "+254711222333" and reporter.name == "Amina" and reporter.consent_to_contact
    assert rows()["case"] == 2


def test_sending_the_same_form_twice_makes_one_case(client: FlaskClient, programme: Any) -> None:
    token = token_in(client.get("/en/feedback").data)
    data = {"text": "The tent is leaking", "submission": token}
    first = reference_in(client.post("/en/feedback", data=data).data)
    second = reference_in(client.post("/en/feedback", data=data).data)
    assert first == second
    assert rows()["case"] == 1


def test_a_report_of_abuse_through_the_form_goes_to_the_restricted_queue(client: FlaskClient, programme: Any) -> None:
    text = "The driver said I must sleep with him or he will remove my name from the bus list."
    client.post("/ar/feedback", data={"text": text, "category": "serious"})
    case = only_case()
    assert case.queue == "restricted"
    assert case.category_hint == "serious"
    assert case.text_plain is None and case.text_sealed == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Please write your message."),
        ("   \n  ", "Please write your message."),
        ("x" * 6000, "This is too long. Please shorten it to %(max)s characters or fewer."),
        ("y" * 10_000, "This is too long. Please shorten it to %(max)s characters or fewer."),
        ("before\x00after", "This contains characters that cannot be accepted. Please remove them."),
    ],
)
def test_bad_text_is_refused_next_to_the_field_and_nothing_is_stored(
    client: FlaskClient, programme: Any, lang: str, text: str, message: str
) -> None:
    response = client.post(f"/{lang}/feedback", data={"text": text})
    assert response.status_code == 400
    assert HTML_TAG[lang] in response.data
    shown = words(lang, message, max=MAX_TEXT_LENGTH)
    assert b'id="text-error"' in response.data and shown in response.data
    assert b'aria-invalid="true"' in response.data
    assert b'role="alert"' in response.data
    assert rows() == NOTHING
    if len(text) > 5000:
        assert text.encode() in response.data  # what the person wrote is not lost


def test_invalid_utf8_in_the_body_is_refused_not_guessed(client: FlaskClient, programme: Any) -> None:
    response = client.post(
        "/en/feedback",
        data=b"text=caf%E9+au+lait&contact=no",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert b'id="text-error"' in response.data and b"could not be read as text" in response.data
    assert rows() == NOTHING


def test_invalid_utf8_in_an_optional_field_is_refused_too(client: FlaskClient, programme: Any) -> None:
    body = b"text=hello&contact=yes&phone=%2B254711222333&name=%FF%FE"
    response = client.post("/en/feedback", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and b'id="name-error"' in response.data
    assert rows() == NOTHING


def test_a_two_megabyte_body_is_refused_with_413(client: FlaskClient, programme: Any, lang: str) -> None:
    response = client.post(f"/{lang}/feedback", data={"text": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert HTML_TAG[lang] in response.data
    assert rows() == NOTHING


def test_a_filled_honeypot_looks_accepted_but_stores_nothing(client: FlaskClient, programme: Any) -> None:
    response = client.post("/en/feedback", data={"text": "cheap pills", "website": "http://spam.example"})
    assert response.status_code == 200
    reference = reference_in(response.data)
    assert rows() == NOTHING
    status = client.post("/en/status", data={"reference": reference})
    assert b"We found no message with this code" in status.data


@pytest.mark.parametrize(
    "text", ["🙏🙏🙏", "<script>alert('x')</script>", "\u202eeman ym si siht", "مرحبا \u202b hello \u202c"]
)
def test_odd_text_is_stored_exactly_and_never_breaks_the_page(client: FlaskClient, programme: Any, text: str) -> None:
    response = client.post("/ar/feedback", data={"text": text})
    assert response.status_code == 200
    reference_in(response.data)
    assert only_case().text == text
    assert b"<script>alert" not in response.data


def test_a_script_tag_is_escaped_when_the_form_is_shown_again(client: FlaskClient, programme: Any) -> None:
    response = client.post("/en/feedback", data={"text": "<script>alert('x')</script>", "contact": "yes"})
    assert response.status_code == 400
    assert b"<script>alert" not in response.data
    assert b"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in response.data
    assert rows() == NOTHING


def test_contact_requested_without_a_number_is_explained_next_to_the_phone_field(
    client: FlaskClient, programme: Any
) -> None:
    response = client.post("/en/feedback", data={"text": "please call", "contact": "yes"})
    assert response.status_code == 400
    assert b'id="phone-error"' in response.data and b'aria-describedby="phone-hint phone-error"' in response.data
    assert b"please call" in response.data
    assert rows() == NOTHING


def test_unknown_programme_is_a_404_page_in_the_persons_language(
    client: FlaskClient, programme: Any, lang: str
) -> None:
    response = client.get(f"/{lang}/p/no-such-programme")
    assert response.status_code == 404
    assert HTML_TAG[lang] in response.data
    assert client.post(f"/{lang}/p/no-such-programme", data={"text": "hello"}).status_code == 404
    assert rows() == NOTHING


def test_unknown_language_prefix_is_a_404_and_a_variant_is_redirected(client: FlaskClient, programme: Any) -> None:
    response = client.get("/xx/feedback")
    assert response.status_code == 404 and b"<html" in response.data
    assert client.get("/klingon/status").status_code == 404
    for variant, canonical in (("ar-SY", "ar"), ("AR", "ar"), ("fa-af", "fa_AF"), ("fa", "fa_AF")):
        response = client.get(f"/{variant}/feedback")
        assert response.status_code == 302
        assert response.headers["Location"] == f"/{canonical}/feedback"


def test_programme_entry_files_under_that_programme(client: FlaskClient, programme: Any, lang: str) -> None:
    create_programme("jordan", "Jordan transit", ["+962700000001"], language="ar")
    page = client.get(f"/{lang}/p/jordan")
    assert page.status_code == 200 and b"Jordan transit" in page.data
    assert f'action="/{lang}/p/jordan"'.encode() in page.data
    response = client.post(f"/{lang}/p/jordan", data={"text": "Where do we collect the blankets?"})
    assert response.status_code == 200
    assert only_case().programme.slug == "jordan"
    assert b"+962700000001" in response.data


def test_programme_entry_speaks_the_programme_language_when_the_browser_says_nothing(
    client: FlaskClient, programme: Any
) -> None:
    create_programme("jordan", "Jordan transit", language="ar")
    assert HTML_TAG["ar"] in client.get("/p/jordan").data


def test_without_a_default_programme_the_form_asks_which_one(ctx: Flask, client: FlaskClient) -> None:
    create_programme("jordan", "Jordan transit")
    create_programme("kenya", "Kenya resettlement")
    page = client.get("/en/feedback")
    assert b"Which operation is this about?" in page.data and b'value="jordan"' in page.data
    response = client.post("/en/feedback", data={"text": "hello"})
    assert response.status_code == 400 and b'id="programme-error"' in response.data
    assert rows() == NOTHING
    response = client.post("/en/feedback", data={"text": "hello", "programme": "kenya"})
    assert response.status_code == 200
    assert only_case().programme.slug == "kenya"


def test_without_any_programme_the_form_is_not_found(ctx: Flask, client: FlaskClient) -> None:
    assert client.get("/en/feedback").status_code == 404


@pytest.mark.parametrize("app", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_a_forged_csrf_token_stores_nothing_and_keeps_what_was_typed(client: FlaskClient, programme: Any) -> None:
    page = client.get("/en/feedback")
    response = client.post("/en/feedback", data={"text": "My words are kept", "csrf_token": "forged"})
    assert response.status_code == 400
    assert b"This form had expired" in response.data and b"My words are kept" in response.data
    assert rows() == NOTHING
    response = client.post("/en/feedback", data={"text": "My words are kept", "csrf_token": csrf_in(response.data)})
    assert response.status_code == 200
    reference_in(response.data)
    assert rows()["case"] == 1
    assert csrf_in(page.data)


def test_the_database_failing_on_commit_answers_503_and_stores_nothing(
    client: FlaskClient, programme: Any, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    def gone() -> None:
        raise OperationalError("COMMIT", {}, Exception("the database is gone"))

    monkeypatch.setattr(db.session, "commit", gone)
    response = client.post(f"/{lang}/feedback", data={"text": "Is the bus late today?"})
    monkeypatch.undo()
    assert response.status_code == 503
    assert HTML_TAG[lang] in response.data
    assert response.headers["Retry-After"]
    assert rows() == NOTHING


def test_an_unreachable_database_answers_503(backend: str, tmp_path: Path) -> None:
    url = (
        f"sqlite:///{tmp_path / 'missing-dir' / 'cfm.sqlite'}"
        if backend == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    )
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "DATABASE_URL": url, **generate_keys()})
    client = app.test_client()
    for method, path in (("get", "/en/feedback"), ("post", "/ar/feedback"), ("get", "/p/kenya"), ("post", "/status")):
        response = getattr(client, method)(path, data={"text": "hello", "reference": "7QK2-M9XD"})
        assert response.status_code == 503, path
        assert b"<html" in response.data


def test_submissions_are_rate_limited_per_session(app: Flask, client: FlaskClient, programme: Any) -> None:
    app.config["PUBLIC_SUBMIT_LIMIT_PER_SESSION"] = "2 per minute"
    assert client.post("/en/feedback", data={"text": "one"}).status_code == 200
    assert client.post("/en/feedback", data={"text": ""}).status_code == 400
    response = client.post("/ar/feedback", data={"text": "three"})
    assert response.status_code == 429
    assert HTML_TAG["ar"] in response.data
    assert client.get("/en/feedback").status_code == 200  # reading the form is never limited
    assert app.test_client().post("/en/feedback", data={"text": "another phone"}).status_code == 200
