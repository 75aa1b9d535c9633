"""GET|POST /status: the status in plain words and staff replies; nothing that tells a restricted case apart."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cfm.extensions import db
from cfm.models import Case, Message
from tests.cfm.helpers import send
from tests.cfm.public.conftest import words

HTML_TAG = {"ar": b'<html dir="rtl" lang="ar">', "en": b'<html dir="ltr" lang="en">'}
NOT_FOUND = "We found no message with this code. Please check the code and try again."


def without(page: bytes, *values: str) -> str:
    """The page with the given values (the code typed, the code found) blanked out."""
    text = page.decode()
    for value in values:
        text = text.replace(value, "")
    return text


def test_status_form_is_in_the_persons_language(client: FlaskClient, programme: Any, lang: str) -> None:
    response = client.get(f"/{lang}/status")
    assert response.status_code == 200
    assert HTML_TAG[lang] in response.data
    assert b'<label for="reference">' in response.data and b'name="reference"' in response.data
    assert f'action="/{lang}/status"'.encode() in response.data


@pytest.mark.parametrize("typed", ["{ref}", "{lower}", "{compact}", "  {ref}  ", "{with_o}"])
def test_a_code_is_found_however_it_is_typed(client: FlaskClient, programme: Any, lang: str, typed: str) -> None:
    case = send("When is our flight to Canada? Nobody told us the date.").case
    case.category, case.status = "information_request", "new"
    db.session.commit()
    reference = case.reference
    value = typed.format(
        ref=reference,
        lower=reference.lower(),
        compact=reference.replace("-", ""),
        with_o=reference.replace("0", "O").replace("1", "I"),
    )
    response = client.post(f"/{lang}/status", data={"reference": value})
    assert response.status_code == 200
    assert HTML_TAG[lang] in response.data
    assert f'<bdi dir="ltr">{reference}</bdi>'.encode() in response.data
    assert words(lang, "Received. It is waiting for our team to look at it.") in response.data
    assert b"Nobody told us" not in response.data
    assert b"information_request" not in response.data
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("new", b"Received."),
        ("under_review", b"Our team is working on it."),
        ("referred_internally", b"Our team is working on it."),
        ("referred_externally", b"Our team is working on it."),
        ("action_taken", b"Our team has acted on it."),
        ("no_action_required", b"No further action was needed."),
        ("closed", b"Closed."),
    ],
)
def test_every_status_has_plain_words(client: FlaskClient, programme: Any, status: str, words: bytes) -> None:
    case = send("Thank you for the blankets").case
    case.status = status
    db.session.commit()
    assert words in client.post("/en/status", data={"reference": case.reference}).data


def test_a_restricted_case_reads_exactly_like_a_general_one(client: FlaskClient, programme: Any, lang: str) -> None:
    general = send("When is our flight to Canada? Nobody told us the date.").case
    restricted = send("The driver said I must sleep with him or he will remove my name from the bus list.").case
    # Set here rather than left to the model: this test is about the page, not the classifier.
    general.queue, general.category, general.priority = "general", "information_request", "normal"
    general.set_sealed(False)
    restricted.queue, restricted.category = "restricted", "sexual_exploitation_abuse"
    for status in ("new", "referred_externally", "closed"):
        general.status = restricted.status = status
        db.session.commit()
        pages = [
            client.post(f"/{lang}/status", data={"reference": case.reference}).data for case in (general, restricted)
        ]
        assert without(pages[0], general.reference) == without(pages[1], restricted.reference)


def test_invalid_and_unknown_codes_get_the_same_answer(client: FlaskClient, programme: Any, lang: str) -> None:
    send("Where do I collect my hygiene kit?")
    answers = []
    for typed in ("ZZZZ-ZZZZ", "not a code at all", "", "7QK2-M9X", "<script>x</script>", "\u202e7QK2-M9XD"):
        response = client.post(f"/{lang}/status", data={"reference": typed})
        assert response.status_code == 200
        assert words(lang, NOT_FOUND) in response.data and b'id="reference-error"' in response.data
        answers.append(re.sub(r'name="reference" type="text" value="[^"]*"', "", response.data.decode()))
    assert len(set(answers)) == 1


def test_replies_from_staff_are_shown_only_when_there_are_some(client: FlaskClient, programme: Any) -> None:
    case = send("Please tell me when the bus leaves").case
    page = client.post("/en/status", data={"reference": case.reference}).data
    assert b"Answers from our team" not in page
    reply = Message(case=case, direction="outbound", channel="sms")
    reply.store_text("The bus leaves on Monday at 8.\nBring your documents.", sealed=case.is_restricted)
    db.session.add(reply)
    db.session.commit()
    page = client.post("/en/status", data={"reference": case.reference}).data
    assert b"Answers from our team" in page
    assert b"The bus leaves on Monday at 8.\nBring your documents." in page
    assert b"Please tell me when the bus leaves" not in page  # the person's own text is never shown


def test_status_lookups_are_rate_limited_per_session(client: FlaskClient, programme: Any, lang: str) -> None:
    for _ in range(10):
        assert client.post(f"/{lang}/status", data={"reference": "ZZZZ-ZZZZ"}).status_code == 200
    response = client.post(f"/{lang}/status", data={"reference": "ZZZZ-ZZZZ"})
    assert response.status_code == 429
    assert HTML_TAG[lang] in response.data
    assert words(lang, "Too many attempts. Please wait a moment and try again.") in response.data
    assert client.get(f"/{lang}/status").status_code == 200


def test_status_lookups_are_rate_limited_per_address_for_clients_without_cookies(app: Flask, programme: Any) -> None:
    app.config["PUBLIC_STATUS_LIMIT_PER_ADDRESS"] = "3 per minute"
    codes = [
        app.test_client(use_cookies=False).post("/status", data={"reference": "ZZZZ-ZZZZ"}).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]


def test_the_status_page_never_shows_the_case_text_or_category(client: FlaskClient, programme: Any) -> None:
    case: Case = send("The escort asked for money to keep our names on the list for the flight").case
    page = client.post("/en/status", data={"reference": case.reference}).data.decode()
    for secret in ("escort", "money", "fraud", "restricted", case.queue, "urgent", "high"):
        assert secret not in page, secret
