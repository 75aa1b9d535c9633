"""Data at rest (issue 8): a phone number, a name and restricted text sent through every channel never reach the
database in clear, neither the SQLite file (and its WAL) nor any row of any table on PostgreSQL.

General case text is allowed in clear (searchable by design); here every case stays pending (no model: fail closed,
sealed like a restricted one), so the restricted text must not appear anywhere either.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cfm.api.tokens import create_token
from cfm.extensions import db
from cfm.models import Case
from cfm.services.imports import import_transcripts
from tests.cfm.webhooks.support import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, inbound, post

# One person, written in the formats the channels meet: E.164, national, spaced, with the WhatsApp prefix.
PHONE = "+254733555666"
PHONE_FORMATS = ("+254733555666", "254733555666", "0733555666", "733555666", "733 555 666", "733-555-666")
NAME = "Nyokabi Wairimu-Testname"
SECRET = "Osprey-6613"  # in every restricted text, so that its absence can be checked in any encoding
RESTRICTED = f"{SECRET} the driver of the bus said he would give us seats if I paid him and came to his room"
VOICE_SID = "CA" + "7" * 32
RECORDING_SID = "RE" + "7" * 32


def _voice(**extra: str) -> dict[str, str]:
    """A voice webhook form from the person's number."""
    return {"CallSid": VOICE_SID, "AccountSid": ACCOUNT_SID, "From": PHONE, "To": OUR_NUMBER, **extra}


def web_form(client: FlaskClient, token: str) -> Any:
    """The public feedback form with contact details."""
    data = {"text": f"web {RESTRICTED}", "contact": "yes", "method": "sms", "phone": "0733 555 666", "name": NAME}
    return client.post("/feedback", data=data)


def sms(client: FlaskClient, token: str) -> Any:
    """A Twilio SMS, signed."""
    return post(client, "/sms/twilio", inbound(f"sms {RESTRICTED}", "SM" + "7" * 32, phone=PHONE))


def whatsapp(client: FlaskClient, token: str) -> Any:
    """A WhatsApp message through Twilio, signed, with the profile name Twilio passes on."""
    form = inbound(
        f"whatsapp {RESTRICTED}",
        "SM" + "8" * 32,
        phone=f"whatsapp:{PHONE}",
        to=f"whatsapp:{OUR_NUMBER}",
        ProfileName=NAME,
        WaId=PHONE.lstrip("+"),
    )
    return post(client, "/sms/twilio", form)


def voice(client: FlaskClient, token: str) -> Any:
    """A call: menu, recording, then the transcription callback."""
    post(client, "/voice/twilio", _voice(CallStatus="ringing", Direction="inbound"))
    recording = _voice(
        RecordingSid=RECORDING_SID,
        RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}",
        RecordingDuration="20",
        Digits="#",
    )
    post(client, "/voice/twilio/recording?lang=en", recording)
    recording.pop("Digits")
    recording.update(
        TranscriptionSid="TR" + "7" * 32,
        TranscriptionStatus="completed",
        TranscriptionUrl="https://example.invalid/t",
        TranscriptionText=f"voice {RESTRICTED}",
    )
    return post(client, "/voice/twilio/transcription?lang=en", recording)


def hotline_import(client: FlaskClient, token: str) -> Any:
    """A transcript file with the caller's number and name."""
    csv = (
        "transcript_id;text;language;caller_phone;caller_name;consent\n"
        f"T-77;hotline {RESTRICTED};en;+254 733 555 666;{NAME};yes\n"
    )
    return import_transcripts(csv.encode(), filename="calls.csv")


def api_json(client: FlaskClient, token: str) -> Any:
    """The partner API, plain JSON."""
    body = {
        "text": f"api {RESTRICTED}",
        "external_id": "ext-77",
        "consent_to_contact": True,
        "contact": {"name": NAME, "phone": PHONE, "email": "nyokabi@example.org"},
    }
    return client.post("/api/v1/feedback", json=body, headers={"Authorization": f"Bearer {token}"})


def api_kobo(client: FlaskClient, token: str) -> Any:
    """The partner API, a KoboToolbox submission (Basic auth, as Kobo sends it)."""
    body = {
        "_id": 77,
        "_uuid": "77777777-4b5a-6978-8796-a5b4c3d2e1f0",
        "meta/instanceID": "uuid:77777777-4b5a-6978-8796-a5b4c3d2e1f0",
        "group_feedback/feedback": f"kobo {RESTRICTED}",
        "group_contact/consent": "yes",
        "group_contact/phone": "+254 733 555 666",
        "group_contact/name": NAME,
    }
    credentials = base64.b64encode(f"kobo:{token}".encode()).decode()
    return client.post("/api/v1/feedback", json=body, headers={"Authorization": f"Basic {credentials}"})


def api_rapidpro(client: FlaskClient, token: str) -> Any:
    """The partner API, a RapidPro flow webhook."""
    body = {
        "contact": {"uuid": "c-77", "name": NAME, "urn": f"tel:{PHONE}"},
        "flow": {"uuid": "f-77", "name": "Feedback"},
        "path": [],
        "results": {
            "feedback": {"value": f"rapidpro {RESTRICTED}", "category": "All"},
            "consent": {"value": "Yes", "category": "Yes"},
        },
        "run": {"uuid": "r-77", "created_on": "2024-05-02T08:30:00Z"},
        "input": {"uuid": "m-77", "text": "Yes", "urn": f"tel:{PHONE}", "attachments": []},
        "channel": {"uuid": "ch-77", "name": "Android"},
    }
    return client.post("/api/v1/feedback", json=body, headers={"Authorization": f"Bearer {token}"})


CHANNELS: dict[str, Callable[[FlaskClient, str], Any]] = {
    "web": web_form,
    "sms": sms,
    "whatsapp": whatsapp,
    "voice": voice,
    "hotline_import": hotline_import,
    "api_json": api_json,
    "api_kobo": api_kobo,
    "api_rapidpro": api_rapidpro,
}


def prepare(app: Flask) -> str:
    """Twilio credentials, no model (cases stay pending, sealed), and an API token; returns the token."""
    app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    app.extensions["cfm_model"] = None
    _row, token = create_token("kenya", "partner")
    return token


def send_everywhere(app: Flask) -> int:
    """Send the person's message through every channel; returns how many cases exist afterwards."""
    token = prepare(app)
    client = app.test_client()
    for name, channel in CHANNELS.items():
        result = channel(client, token)
        status = getattr(result, "status_code", 200)
        assert status < 400, (name, status, getattr(result, "data", b"")[:300])
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(Case)) or 0)


def needles() -> dict[str, bytes]:
    """Everything that must not be found, in the encodings a database might use."""
    found: dict[str, bytes] = {}
    for text in (*PHONE_FORMATS, NAME, SECRET, RESTRICTED[20:60]):
        found[text] = text.encode("utf-8")
        found[f"{text} (utf-16)"] = text.encode("utf-16-le")
        found[f"{text} (url)"] = urllib.parse.quote(text).encode()
        found[f"{text} (json)"] = json.dumps(text)[1:-1].encode()
    return found


def test_every_channel_is_covered_and_each_made_a_case(app: Flask, programme: Any) -> None:
    assert send_everywhere(app) >= len(CHANNELS) - 1  # SMS and WhatsApp from one number may share a thread
    cases = list(db.session.scalars(select(Case)))
    texts = " ".join(case.text for case in cases)
    for marker in ("web", "sms", "voice", "hotline", "api", "kobo", "rapidpro"):
        assert f"{marker} {SECRET}" in texts  # decrypted through the model, the text is all there
    assert any(case.reporter and case.reporter.name == NAME for case in cases)
    assert any(case.reporter and case.reporter.phone == PHONE for case in cases)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_sqlite_file_and_its_wal_hold_no_phone_name_or_restricted_text(app: Flask, programme: Any) -> None:
    send_everywhere(app)
    path = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    raw = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert b"kenya" in raw  # the file is readable and holds clear data (the programme's slug)
    leaks = [label for label, needle in needles().items() if needle in raw]
    assert leaks == []
    with db.engine.connect() as connection:  # and again once the WAL is folded into the file
        connection.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
    raw = path.read_bytes()
    assert [label for label, needle in needles().items() if needle in raw] == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_no_postgresql_row_holds_a_phone_name_or_restricted_text(app: Flask, programme: Any) -> None:
    send_everywhere(app)
    tables = db.session.scalars(
        sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    ).all()
    assert {"case", "message", "reporter", "audit_event"} <= set(tables)
    rows: list[str] = []
    for table in tables:
        rows += db.session.scalars(sa.text(f'SELECT row_to_json(t)::text FROM "{table}" t')).all()  # noqa: S608
    dump = "\n".join(rows)
    assert "kenya" in dump and len(rows) > 20
    leaks = [label for label, needle in needles().items() if needle.decode("utf-8", "replace") in dump]
    assert leaks == []
