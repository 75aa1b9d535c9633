"""The hotline in the console (issue 5): the call form and the transcript upload, through the real intake."""

from __future__ import annotations

import codecs
import io
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from cfm.extensions import db
from cfm.models import Case, Programme
from cfm.services.audit import verify_chain
from classifier.predict import load_model
from tests.cfm.console.conftest import RESTRICTED_TEXT, World, audit_events, sign_in
from tests.cfm.helpers import counts

NEW, IMPORT = "/console/hotline/new", "/console/hotline/import"
CALL_TEXT = "When is our flight to Canada? Nobody told us the date and we need to prepare the children."
ARABIC_TEXT = "متى موعد رحلتنا إلى كندا؟ لم يخبرنا أحد بالتاريخ"
REFERENCE = re.compile(r'data-reference="([0-9A-Z]{4}-[0-9A-Z]{4})"')
CSV = (
    "transcript_id;text;language;caller_phone;consent\n"
    "T-1;When is our flight to Canada? Nobody told us the date;en;+254 711 000 001;yes\n"
    "T-2;Thank you for the blankets and the tea at the transit centre;en;;no\n"
    "T-3;;en;;\n"
    "T-4;The bus to the airport was four hours late;en;not a number;\n"
    "T-1;The same transcript id again;en;;\n"
)


@pytest.fixture(scope="session")
def shipped_model() -> Any:
    """The shipped classifier, loaded once for the session (a real model routes the general cases)."""
    model = load_model()
    assert model is not None
    return model


@pytest.fixture
def routed(world: World, ctx: Flask, shipped_model: Any) -> World:
    """The console world with the real classifier (the world fixture switches it off)."""
    ctx.extensions["cfm_model"] = shipped_model
    return world


def call(client: FlaskClient, text: str = CALL_TEXT, **fields: str) -> Any:
    """Post the call form with a fresh submission token taken from the form."""
    page = client.get(NEW).get_data(as_text=True)
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', page)
    assert token is not None
    data = {"text": text, "programme": "kenya", "language": "en", "submission": token.group(1), **fields}
    return client.post(NEW, data=data)


def reference_of(response: Any) -> str:
    """The reference code the confirmation shows."""
    found = REFERENCE.search(response.get_data(as_text=True))
    assert found is not None, response.get_data(as_text=True)[:2000]
    return found.group(1)


def case_by(reference: str) -> Case:
    """A fresh copy of a case by its reference."""
    db.session.expire_all()
    return db.session.scalars(select(Case).where(Case.reference == reference)).one()


def upload(client: FlaskClient, data: bytes, name: str = "calls.csv", **fields: Any) -> Any:
    """Post a file to the upload page (encoded in memory: the test client spools big bodies to a file it never
    closes)."""
    boundary, body = encode_multipart(
        {"file": FileStorage(io.BytesIO(data), filename=name), "programme": "kenya", **fields}
    )
    return client.post(IMPORT, data=body, content_type=f"multipart/form-data; boundary={boundary}")


# --- the call form ---------------------------------------------------------------------------------------------


def test_the_form_is_ready_for_the_keyboard_with_sensible_defaults(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    page = client.get(NEW).get_data(as_text=True)
    assert re.search(r"<textarea[^>]*autofocus[^>]*name=\"text\"|<textarea[^>]*name=\"text\"[^>]*autofocus", page)
    assert re.search(r'<option selected value="kenya">|<option value="kenya" selected>', page)
    assert re.search(r'<option selected value="sw">|<option value="sw" selected>', page)  # Kenya's language
    assert re.search(r'<input[^>]*name="consent"[^>]*>', page) and "checked" not in page
    assert 'name="serious"' in page
    assert 'href="/console/hotline/new"' in page  # the nav link
    jordan = client.get(NEW + "?programme=jordan").get_data(as_text=True)
    assert 'value="jordan"' not in jordan  # not one of this officer's programmes
    sign_in(client, world.users["officer_all"])
    jordan = client.get(NEW + "?programme=jordan").get_data(as_text=True)
    assert re.search(r'<option selected value="ar">|<option value="ar" selected>', jordan)


def test_a_call_creates_exactly_one_case_through_the_real_intake(client: FlaskClient, routed: World) -> None:
    sign_in(client, routed.users["officer"])
    before = counts()
    response = call(client, caller_phone="+254 711 222 333", caller_name="Amina", consent="y")
    assert response.status_code == 200
    reference = reference_of(response)
    assert counts()["case"] == before["case"] + 1 and counts()["message"] == before["message"] + 1
    case = case_by(reference)
    assert case.channel == "hotline" and case.programme.slug == "kenya" and case.language == "en"
    assert case.queue == "general" and case.category == "information_request"  # classified by the real model
    assert case.reporter is not None and case.reporter.phone == "+254711222333"
    assert case.reporter.consent_to_contact is True
    page = response.get_data(as_text=True)
    assert f"Your reference is {reference}" in page  # the acknowledgement, in the caller's language
    assert f'href="/console/cases/{reference}"' in page
    assert CALL_TEXT not in page
    assert 'href="/console/hotline/new?programme=kenya"' in page  # next call: an empty form
    empty = client.get("/console/hotline/new?programme=kenya").get_data(as_text=True)
    assert CALL_TEXT not in empty and reference not in empty


def test_an_arabic_call_is_acknowledged_in_arabic(client: FlaskClient, routed: World) -> None:
    sign_in(client, routed.users["officer"])
    response = call(client, ARABIC_TEXT, language="ar")
    reference = reference_of(response)
    assert case_by(reference).language == "ar"
    page = response.get_data(as_text=True)
    ack = re.search(r'<blockquote class="hotline-ack" lang="ar" dir="rtl">([^<]+)</blockquote>', page)
    assert ack is not None and reference in ack.group(1)
    assert re.search("[\u0600-\u06ff]", ack.group(1))


def test_sending_the_same_form_twice_records_one_call(client: FlaskClient, routed: World) -> None:
    sign_in(client, routed.users["officer"])
    token = "t" * 24
    data = {"text": CALL_TEXT, "programme": "kenya", "language": "en", "submission": token}
    first = client.post(NEW, data=data)
    before = counts()
    again = client.post(NEW, data=data)
    assert counts() == before
    assert reference_of(first) == reference_of(again)
    assert "already recorded" in again.get_data(as_text=True)


def test_officer_cannot_see_the_content_of_a_restricted_call(client: FlaskClient, routed: World) -> None:
    sign_in(client, routed.users["officer"])
    response = call(client, RESTRICTED_TEXT)
    assert response.status_code == 200
    reference = reference_of(response)
    case = case_by(reference)
    assert case.queue == "restricted" and case.safety_net_category == "sexual_exploitation_abuse"
    page = response.get_data(as_text=True)
    assert "Sent to the focal points." in page
    assert "interpreter" not in page and "Sexual exploitation" not in page
    assert f"/console/cases/{reference}" not in page
    assert client.get(f"/console/cases/{reference}").status_code == 404


def test_focal_point_gets_a_link_to_the_restricted_call(client: FlaskClient, routed: World) -> None:
    sign_in(client, routed.users["focal"])
    response = call(client, RESTRICTED_TEXT)
    reference = reference_of(response)
    page = response.get_data(as_text=True)
    assert "Sent to the focal points." in page and f'href="/console/cases/{reference}"' in page
    assert "interpreter" not in page


def test_the_serious_box_sets_the_reporter_flagged_hint_as_the_web_form_does(
    client: FlaskClient, routed: World
) -> None:
    sign_in(client, routed.users["officer"])
    response = call(client, "I want to talk about something that happened at the transit centre.", serious="y")
    case = case_by(reference_of(response))
    assert case.category_hint == "serious"
    assert case.queue == "restricted" and "reporter_flagged" in (case.restricted_reasons or [])
    assert "Sent to the focal points." in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"text": "   "}, "text", "Write what the caller says."),
        ({"caller_phone": "call me maybe", "consent": "y"}, "caller_phone", "This is not an international number"),
        ({"consent": "y"}, "caller_phone", "Consent needs a number to call back on."),
        ({"caller_phone": "+254711222333"}, "consent", "kept only with the caller&#39;s consent"),
        ({"programme": "jordan"}, "programme", "Choose one of your programmes."),
        ({"programme": ""}, "programme", "Choose the programme."),
        ({"language": "klingon"}, "language", "Choose one of the languages."),
    ],
    ids=["empty-text", "bad-phone", "consent-without-phone", "phone-without-consent", "other-programme",
         "no-programme", "bad-language"],
)  # fmt: skip
def test_validation_errors_are_shown_next_to_the_field_and_nothing_is_stored(
    client: FlaskClient, world: World, fields: dict[str, str], field: str, message: str
) -> None:
    sign_in(client, world.users["officer"])
    before = counts()
    response = call(client, **fields)
    assert response.status_code == 400
    assert counts() == before
    page = response.get_data(as_text=True)
    block = re.search(rf'<div class="field[^"]*has-error">.*?name="{field}".*?</div>', page, re.S)
    assert block is not None and message in block.group(0), page[page.find("has-error") - 200 :][:1500]
    if fields.get("text") != "   ":
        assert CALL_TEXT in page  # what the operator typed is kept


@pytest.mark.parametrize(
    ("who", "new", "imports"),
    [
        ("officer", 200, 404),
        ("supervisor", 200, 200),
        ("focal", 200, 200),
        ("admin", 404, 200),
        ("viewer", 404, 404),
    ],
)
def test_only_the_right_roles_open_the_hotline_pages(
    client: FlaskClient, world: World, who: str, new: int, imports: int
) -> None:
    sign_in(client, world.users[who])
    assert client.get(NEW).status_code == new
    assert client.get(IMPORT).status_code == imports
    if new == 404:
        assert client.post(NEW, data={"text": CALL_TEXT, "programme": "kenya"}).status_code == 404
        assert counts()["case"] == 5
    if imports == 404:
        assert upload(client, CSV.encode()).status_code == 404
        assert counts()["case"] == 5
    nav = client.get("/console/account").get_data(as_text=True)
    assert ('class="tab tab-hotline' in nav) == (new == 200 or imports == 200)


def test_signed_out_users_are_sent_to_sign_in(client: FlaskClient, world: World) -> None:
    for path in (NEW, IMPORT):
        response = client.get(path)
        assert response.status_code == 302 and "/console/login" in response.headers["Location"]
    assert client.post(NEW, data={"text": CALL_TEXT, "programme": "kenya"}).status_code == 302
    assert counts()["case"] == 5


@pytest.mark.parametrize("app", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_both_pages_need_the_csrf_token(client: FlaskClient, routed: World) -> None:
    login = client.get("/console/login").get_data(as_text=True)
    token = login.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    from tests.cfm.helpers import PASSWORD

    signed = {"email": routed.users["supervisor"], "password": PASSWORD, "csrf_token": token}
    assert client.post("/console/login", data=signed).status_code == 302
    before = counts()
    forged = client.post(NEW, data={"text": CALL_TEXT, "programme": "kenya", "language": "en"})
    assert forged.status_code == 400 and "This form had expired" in forged.get_data(as_text=True)
    assert CALL_TEXT in forged.get_data(as_text=True)  # the transcript is not lost
    forged_upload = upload(client, CSV.encode(), dry_run="")
    assert forged_upload.status_code == 400 and "This form had expired" in forged_upload.get_data(as_text=True)
    assert counts() == before
    page = client.get(NEW).get_data(as_text=True)
    form_token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    ok = client.post(NEW, data={"text": CALL_TEXT, "programme": "kenya", "language": "en", "csrf_token": form_token})
    assert ok.status_code == 200 and counts()["case"] == before["case"] + 1
    done = upload(client, CSV.encode(), csrf_token=form_token)
    assert done.status_code == 200 and counts()["case"] == before["case"] + 3


# --- the upload page -------------------------------------------------------------------------------------------


def count_of(page: str, name: str) -> int:
    """A number from the report's counters."""
    found = re.search(rf'data-count="{name}">(\d+)<', page)
    assert found is not None, name
    return int(found.group(1))


def test_upload_with_bom_and_semicolons_reports_each_row(client: FlaskClient, routed: World) -> None:
    sign_in(client, routed.users["supervisor"])
    before = counts()
    response = upload(client, codecs.BOM_UTF8 + CSV.encode())
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert count_of(page, "created") == 2 and count_of(page, "duplicate") == 1 and count_of(page, "rejected") == 2
    assert counts()["case"] == before["case"] + 2
    assert re.search(r"<td[^>]*>4</td>\s*<td[^>]*>T-3</td>\s*<td>Rejected</td>\s*<td>The text is empty.</td>", page)
    assert re.search(r"<td[^>]*>5</td>\s*<td[^>]*>T-4</td>\s*<td>Rejected</td>\s*<td>The caller_phone is not", page)
    assert "The same transcript_id appears on an earlier row." in page
    assert "blankets" not in page and "flight to Canada" not in page  # no case text in the report
    created = [case for case in db.session.scalars(select(Case).where(Case.channel == "hotline"))]
    assert {case.programme.slug for case in created} == {"kenya"}
    for case in created:
        assert f'href="/console/cases/{case.reference}"' in page
    (event,) = audit_events("transcripts.import")
    assert event.actor == routed.users["supervisor"]
    assert event.details is not None and event.details["file"] == "calls.csv" and event.details["created"] == 2
    assert "blankets" not in json.dumps(event.details) and "+254" not in json.dumps(event.details)
    assert verify_chain() is None


def test_a_dry_run_is_the_default_and_creates_nothing(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["supervisor"])
    page = client.get(IMPORT).get_data(as_text=True)
    assert re.search(r'<input checked[^>]*name="dry_run"|<input[^>]*name="dry_run"[^>]*checked', page)
    before = counts()
    response = upload(client, CSV.encode(), dry_run="y")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "nothing was stored" in page and count_of(page, "created") == 2
    assert counts() == before and audit_events("transcripts.import") == []
    # After a dry run the switch is off: the next upload of the same file is for real.
    assert not re.search(r'<input checked[^>]*name="dry_run"|<input[^>]*name="dry_run"[^>]*checked', page)


def test_uploading_the_same_file_again_creates_nothing_new(client: FlaskClient, routed: World) -> None:
    sign_in(client, routed.users["supervisor"])
    upload(client, CSV.encode())
    before = counts()
    again = upload(client, CSV.encode()).get_data(as_text=True)
    assert counts() == before
    assert count_of(again, "created") == 0 and count_of(again, "duplicate") == 3
    assert "Already imported as " in again


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("transcript_id,text\nT-1,Le bus était en retard à l'aéroport\n".encode("latin-1"), "The file is not UTF-8"),
        (b"transcript_id;language\nT-1;en\n", "The required column text is missing."),
        (b"", "The file is empty."),
    ],
    ids=["latin-1", "missing-column", "empty"],
)
def test_a_bad_file_gets_a_clear_error_and_nothing_is_stored(
    client: FlaskClient, world: World, data: bytes, message: str
) -> None:
    sign_in(client, world.users["supervisor"])
    before = counts()
    response = upload(client, data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and "Nothing was imported." in page
    assert counts() == before and audit_events("transcripts.import") == []


def test_a_two_megabyte_upload_gets_a_clear_message(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["supervisor"])
    before = counts()
    big = b"transcript_id,text\n" + b"".join(b"B-%07d,Where is the bus to the airport?\n" % i for i in range(60000))
    assert len(big) > 2 * 1024 * 1024
    response = upload(client, big)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "The file is larger than 1 MB" in page and "nothing was imported" in page
    assert 'name="file"' in page  # the upload page, not a bare error page
    assert counts() == before


def test_restricted_imported_rows_are_counted_but_never_shown(client: FlaskClient, routed: World) -> None:
    sign_in(client, routed.users["supervisor"])
    rows = [
        {"transcript_id": "R-1", "text": RESTRICTED_TEXT},
        {"transcript_id": "R-2", "text": "Thank you for the warm welcome at the reception centre"},
    ]
    data = "\n".join(json.dumps(row) for row in rows).encode()
    page = upload(client, data, name="calls.jsonl").get_data(as_text=True)
    assert count_of(page, "created") == 2
    assert "1 of the created cases was sent to the focal points." in page
    assert "interpreter" not in page and "warm welcome" not in page
    restricted = db.session.scalars(select(Case).where(Case.queue == "restricted", Case.channel == "hotline")).one()
    assert restricted.reference in page  # the reference is shown ...
    assert f'href="/console/cases/{restricted.reference}"' not in page  # ... but not as a link for an officer


def test_rows_for_a_programme_outside_the_users_scope_are_rejected(client: FlaskClient, routed: World) -> None:
    sign_in(client, routed.users["supervisor"])
    data = (
        b"transcript_id,text,programme\n"
        b"P-1,Where do we sleep tonight in the transit centre?,\n"
        b"P-2,Where do we sleep tonight in the hotel?,jordan\n"
    )
    page = upload(client, data).get_data(as_text=True)
    assert count_of(page, "created") == 1 and count_of(page, "rejected") == 1
    assert "Not one of your programmes." in page
    jordan = db.session.scalars(select(Programme).where(Programme.slug == "jordan")).one()
    assert db.session.scalars(select(Case).where(Case.programme_id == jordan.id, Case.channel == "hotline")).all() == []
    refused = upload(client, data, programme="jordan")
    assert refused.status_code == 400 and "Choose one of your programmes." in refused.get_data(as_text=True)


def test_a_duplicate_of_another_programmes_transcript_never_shows_its_reference(
    client: FlaskClient, routed: World
) -> None:
    from cfm.services.imports import import_transcripts

    elsewhere = import_transcripts(
        b"transcript_id,text\nX-1,Where do we sleep tonight in the hotel?\n", filename="j.csv", programme="jordan"
    )
    jordan_reference = elsewhere.rows[0].reference
    assert elsewhere.rows[0].outcome == "created" and jordan_reference
    sign_in(client, routed.users["supervisor"])
    data = b"transcript_id,text\nX-1,Where do we sleep tonight in the transit centre?\n"
    for dry_run in ("y", ""):
        page = upload(client, data, **({"dry_run": dry_run} if dry_run else {})).get_data(as_text=True)
        assert count_of(page, "duplicate") == 1 and count_of(page, "created") == 0
        assert "Already imported." in page
        assert jordan_reference not in page
    # the importer's own earlier transcript still names its case
    own = b"transcript_id,text\nK-1,Where do we sleep tonight in the transit centre?\n"
    first = upload(client, own).get_data(as_text=True)
    assert count_of(first, "created") == 1
    kenya_reference = db.session.scalars(
        select(Case.reference).where(Case.channel == "hotline", Case.programme.has(Programme.slug == "kenya"))
    ).one()
    again = upload(client, own).get_data(as_text=True)
    assert f"Already imported as {kenya_reference}." in again
