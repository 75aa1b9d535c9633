"""Logs carry reference codes, never phone numbers or message text (DESIGN.md, data protection)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from cfm.services.intake import submit
from channels.base import Contact, IntakeRequest

PHONE = "+254733999888"
TEXT = "Unique-marker-7731 the guard at gate two asked me for money to enter the list"


def test_intake_logs_the_reference_but_no_phone_or_text(
    app: Flask, programme: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for channel, sid in (("sms", "SMlog1"), ("whatsapp", "WAlog1"), ("web", None), ("hotline", "T-1")):
        result = submit(
            IntakeRequest(channel=channel, text=TEXT, provider_id=sid, contact=Contact(phone=PHONE, name="Halima"))
        )
        assert result.case.reference in caplog.text
    assert "254733999888" not in caplog.text
    assert "Unique-marker-7731" not in caplog.text
    assert "Halima" not in caplog.text


def test_a_database_error_does_not_log_the_parameters(
    app: Flask, programme: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy.exc import StatementError

    from cfm.extensions import db
    from cfm.models import Case

    caplog.set_level(logging.DEBUG)
    first = submit(IntakeRequest(channel="web", text=TEXT)).case
    duplicate = Case(reference=first.reference, programme_id=first.programme_id, channel="web")
    duplicate.store_text("Unique-marker-9999 in a failing insert", sealed=False)
    db.session.add(duplicate)
    with pytest.raises(StatementError) as info:
        db.session.commit()
    db.session.rollback()
    assert "Unique-marker-9999" not in str(info.value)


# --- issue 8: a full request cycle through every channel, and its error paths ------------------------------------


def _assert_no_personal_data(text: str) -> None:
    """No phone number in any format, no name, no message text."""
    from tests.cfm.test_data_at_rest import NAME, PHONE_FORMATS, SECRET

    for phone in PHONE_FORMATS:
        assert phone not in text, phone
    assert NAME not in text
    assert SECRET not in text


@pytest.mark.parametrize(
    "channel", ["web", "sms", "whatsapp", "voice", "hotline_import", "api_json", "api_kobo", "api_rapidpro"]
)
def test_a_request_through_each_channel_logs_no_phone_and_no_text(
    app: Flask, programme: Any, caplog: pytest.LogCaptureFixture, channel: str
) -> None:
    from tests.cfm.test_data_at_rest import CHANNELS, prepare

    token = prepare(app)
    caplog.set_level(logging.DEBUG)
    result = CHANNELS[channel](app.test_client(), token)
    assert getattr(result, "status_code", 200) < 400
    assert caplog.records  # the cycle did log (at least the reference), so the check below means something
    _assert_no_personal_data(caplog.text)
    _assert_no_personal_data(repr([(r.msg, r.args, r.exc_text) for r in caplog.records]))


def _error_paths(app: Flask, token: str) -> list[int]:
    """Requests that fail at the signature, the payload or a field, each carrying the phone, name and text."""
    import base64

    from cfm.services.imports import import_transcripts
    from tests.cfm.test_data_at_rest import NAME, PHONE, RESTRICTED
    from tests.cfm.webhooks.support import inbound, post

    client = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    statuses = [
        post(client, "/sms/twilio", inbound(RESTRICTED, "SM" + "1" * 32, phone=PHONE), signature="forged").status_code,
        post(client, "/sms/twilio", inbound(RESTRICTED, "SM" + "2" * 32, phone=PHONE, to="+10000000000")).status_code,
        post(client, "/sms/twilio", {"From": PHONE, "Body": RESTRICTED, "To": ""}).status_code,
        post(client, "/voice/twilio/transcription", {"From": PHONE, "TranscriptionText": RESTRICTED}).status_code,
        post(client, "/voice/twilio", {"From": PHONE, "CallSid": "x"}, signature="forged").status_code,
        client.post("/api/v1/feedback", json={"text": RESTRICTED, "contact": {"phone": f"call {PHONE} {NAME}"}},
                    headers=bearer).status_code,
        client.post("/api/v1/feedback", json={"text": 7, "contact": {"name": NAME, "fax": PHONE}},
                    headers=bearer).status_code,
        client.post("/api/v1/feedback", data=f'{{"text": "{RESTRICTED}", "phone": "{PHONE}"', headers={
            **bearer, "Content-Type": "application/json"}).status_code,
        client.post("/api/v1/feedback", json={"_uuid": "u-1", "phone": PHONE, "name": NAME, "note": RESTRICTED},
                    headers={"Authorization": "Basic " + base64.b64encode(f"k:{token}".encode()).decode()}).status_code,
        client.post("/api/v1/feedback", json={"text": RESTRICTED, "contact": {"phone": PHONE}},
                    headers={"Authorization": "Bearer cfm_not_a_token"}).status_code,
        client.post("/feedback", data={"text": RESTRICTED, "contact": "yes", "method": "sms", "phone": f"ring {NAME}",
                                       "name": NAME}).status_code,
    ]
    report = import_transcripts(
        f"transcript_id;text;caller_phone;caller_name\nT-9;{RESTRICTED};not {PHONE};{NAME}\n".encode(),
        filename="calls.csv",
    )
    statuses.append(400 if not report.ok else 200)
    return statuses


def test_error_paths_of_every_channel_log_no_phone_and_no_text(
    app: Flask, programme: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.cfm.test_data_at_rest import prepare

    token = prepare(app)
    caplog.set_level(logging.DEBUG)
    statuses = _error_paths(app, token)
    assert all(status >= 400 or status == 200 for status in statuses)
    assert sum(status >= 400 for status in statuses) >= 9  # the failures really happened
    _assert_no_personal_data(caplog.text)
    _assert_no_personal_data(repr([(r.msg, r.args, r.exc_text) for r in caplog.records]))
