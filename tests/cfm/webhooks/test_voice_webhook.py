"""The IVR end to end with the real twilio library: menu, prompt, <Record>, recording and transcription callbacks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cfm.extensions import db
from cfm.models import Case
from channels.hotline import IVR_PLACEHOLDER
from tests.cfm.helpers import counts
from tests.cfm.webhooks.support import ACCOUNT_SID, OUR_NUMBER, PHONE, post, twiml

CALL_SID = "CA" + "1" * 32
RECORDING_SID = "RE" + "1" * 32
TRANSCRIPT = "The bus to the transit centre did not come this morning and we waited four hours."


def call(**extra: str) -> dict[str, str]:
    """The fields of an incoming call request."""
    return {
        "CallSid": CALL_SID,
        "AccountSid": ACCOUNT_SID,
        "From": PHONE,
        "To": OUR_NUMBER,
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


def recording(sid: str = RECORDING_SID, duration: str = "23") -> dict[str, str]:
    """<Record>'s action request."""
    return call(
        RecordingSid=sid,
        RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}",
        RecordingDuration=duration,
        Digits="#",
    )


def transcription(sid: str = RECORDING_SID, text: str = TRANSCRIPT, status: str = "completed") -> dict[str, str]:
    """The transcribeCallback request."""
    form = recording(sid)
    form.pop("Digits")
    form.update(
        TranscriptionSid="TR" + "1" * 32, TranscriptionStatus=status, TranscriptionUrl="https://example.invalid/t"
    )
    if text:
        form["TranscriptionText"] = text
    return form


def only_case() -> Case:
    """The one case stored."""
    db.session.expire_all()
    return db.session.scalars(select(Case)).one()


def test_an_incoming_call_gets_the_language_menu(twilio: Flask, client: FlaskClient) -> None:
    response = post(client, "/voice/twilio", call())
    assert response.status_code == 200
    root = twiml(response)
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == "http://localhost/voice/twilio/language"
    says = [(say.get("language"), say.text) for say in gather.iter("Say")]
    # The programme's language (Swahili, no Twilio voice: read in English) first, then IVR_LANGUAGES.
    assert says[0] == ("en-US", "For Swahili, press 1.")
    assert says[1] == ("en-US", "For English, press 2.")
    # Arabic has a Twilio voice: its item is read in Arabic (English wording until the catalog has it).
    assert says[3][0] == "arb" and "العربية" in str(says[3][1])
    assert ("en-US", "For Dari, press 5.") in says
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text == "http://localhost/voice/twilio/language?lang=sw"
    assert counts()["case"] == 0


def test_a_recorded_menu_prompt_replaces_the_spoken_one(twilio: Flask, client: FlaskClient) -> None:
    twilio.config["IVR_PROMPT_URLS"] = {"menu": "https://cdn.example.org/menu.mp3"}
    gather = twiml(post(client, "/voice/twilio", call())).find("Gather")
    assert gather is not None
    assert [play.text for play in gather.iter("Play")] == ["https://cdn.example.org/menu.mp3"]
    assert list(gather.iter("Say")) == []


def _record(root: ET.Element) -> ET.Element:
    """The <Record> verb."""
    record = root.find("Record")
    assert record is not None
    return record


def test_choosing_a_language_records_with_transcription_and_both_callbacks(twilio: Flask, client: FlaskClient) -> None:
    root = twiml(post(client, "/voice/twilio/language", call(Digits="4")))
    say = root.find("Say")
    assert say is not None and say.get("language") == "arb"
    record = _record(root)
    assert record.get("transcribe") == "true"
    assert record.get("playBeep") == "true"
    assert record.get("maxLength") == str(twilio.config["IVR_MAX_RECORDING_SECONDS"])
    action, callback = urlsplit(record.get("action") or ""), urlsplit(record.get("transcribeCallback") or "")
    assert action.path == "/voice/twilio/recording" and parse_qs(action.query) == {"lang": ["ar"]}
    assert callback.path == "/voice/twilio/transcription" and parse_qs(callback.query) == {"lang": ["ar"]}


def test_no_key_or_a_wrong_key_carries_on_in_the_programme_language(twilio: Flask, client: FlaskClient) -> None:
    for form, path in ((call(), "/voice/twilio/language?lang=sw"), (call(Digits="9"), "/voice/twilio/language")):
        record = _record(twiml(post(client, path, form)))
        assert parse_qs(urlsplit(record.get("action") or "").query) == {"lang": ["sw"]}


def test_behind_a_proxy_the_twiml_urls_are_public(twilio: Flask, client: FlaskClient) -> None:
    twilio.config["PUBLIC_BASE_URL"] = "https://cfm.example.org"
    root = twiml(
        post(client, "/voice/twilio", call(), signed_url="https://cfm.example.org/voice/twilio"),
    )
    gather = root.find("Gather")
    assert gather is not None and gather.get("action") == "https://cfm.example.org/voice/twilio/language"
    response = post(
        client,
        "/voice/twilio/language?lang=en",
        call(Digits="2"),
        signed_url="https://cfm.example.org/voice/twilio/language?lang=en",
    )
    record = _record(twiml(response))
    assert (record.get("transcribeCallback") or "").startswith("https://cfm.example.org/voice/twilio/transcription")


def test_recording_then_transcription_make_one_case_whose_text_is_the_transcription(
    twilio: Flask, client: FlaskClient
) -> None:
    response = post(client, "/voice/twilio/recording?lang=en", recording())
    case = only_case()
    assert case.channel == "ivr" and case.text == IVR_PLACEHOLDER
    # No text to classify: held out of the general queue for a focal point to listen to.
    assert case.queue == "restricted" and "unclassified" in (case.restricted_reasons or [])
    spoken = " ".join(twiml(response).find("Say").text.split())  # type: ignore[union-attr]
    assert ", ".join(" ".join(part) for part in case.reference.split("-")) in spoken
    assert twiml(response).find("Hangup") is not None

    response = post(client, "/voice/twilio/transcription?lang=en", transcription())
    assert response.status_code == 204
    case = only_case()
    assert counts() == {"case": 1, "message": 1, "reporter": 1}
    assert case.text == TRANSCRIPT and case.messages[0].text == TRANSCRIPT
    assert case.classification_status == "done"
    assert case.category == "service_complaint" and case.queue == "general"
    assert (case.extra or {})["recording_url"].endswith(RECORDING_SID)
    assert (case.extra or {})["transcription_missing"] is False


def test_transcription_then_recording_make_one_case_and_the_caller_still_hears_the_code(
    twilio: Flask, client: FlaskClient
) -> None:
    assert post(client, "/voice/twilio/transcription?lang=en", transcription()).status_code == 204
    response = post(client, "/voice/twilio/recording?lang=en", recording())
    case = only_case()
    assert counts()["case"] == 1
    assert case.text == TRANSCRIPT
    assert case.reference[:4] in "".join(twiml(response).find("Say").text.split())  # type: ignore[union-attr]


def test_a_failed_transcription_keeps_the_placeholder(twilio: Flask, client: FlaskClient) -> None:
    post(client, "/voice/twilio/recording", recording())
    post(client, "/voice/twilio/transcription", transcription(text="", status="failed"))
    case = only_case()
    assert case.text == IVR_PLACEHOLDER and case.queue == "restricted"


def test_a_retried_recording_callback_answers_the_same_and_creates_nothing(twilio: Flask, client: FlaskClient) -> None:
    first = post(client, "/voice/twilio/recording?lang=en", recording())
    second = post(client, "/voice/twilio/recording?lang=en", recording())
    assert first.get_data() == second.get_data()
    assert counts()["case"] == 1
    post(client, "/voice/twilio/transcription?lang=en", transcription())
    post(client, "/voice/twilio/transcription?lang=en", transcription(text="A different text on a retry"))
    assert only_case().text == TRANSCRIPT


def test_a_sensitive_transcription_goes_to_the_restricted_queue_sealed(twilio: Flask, client: FlaskClient) -> None:
    post(client, "/voice/twilio/recording", recording())
    text = "The escort asked for money to keep our names on the list for the flight"
    post(client, "/voice/twilio/transcription", transcription(text=text))
    case = only_case()
    assert case.queue == "restricted" and case.safety_net_category == "fraud_corruption"
    assert case.text_plain is None and case.text == text


def test_a_call_without_a_recording_stores_nothing(twilio: Flask, client: FlaskClient) -> None:
    response = post(client, "/voice/twilio/recording", recording(duration="0"))
    assert response.status_code == 200 and twiml(response).find("Hangup") is not None
    assert counts()["case"] == 0


@pytest.mark.parametrize(
    "path", ["/voice/twilio", "/voice/twilio/language", "/voice/twilio/recording", "/voice/twilio/transcription"]
)
def test_unsigned_voice_requests_are_refused_and_store_nothing(twilio: Flask, client: FlaskClient, path: str) -> None:
    response = client.post(path, data=transcription())
    assert response.status_code == 403
    assert counts()["case"] == 0


def test_a_withheld_caller_id_is_not_stored_as_a_phone(twilio: Flask, client: FlaskClient, programme: Any) -> None:
    form = recording()
    form["From"] = "+266696687"
    post(client, "/voice/twilio/recording", form)
    case = only_case()
    assert case.reporter is None
    assert (case.extra or {})["caller_id"] == "withheld"


def test_a_call_to_a_number_no_programme_owns_is_ended_politely(twilio: Flask, client: FlaskClient) -> None:
    root = twiml(post(client, "/voice/twilio", call(To="+15550001111")))
    assert root.find("Gather") is None and root.find("Record") is None
    assert root.find("Hangup") is not None
    response = post(client, "/voice/twilio/recording", {**recording(), "To": "+15550001111"})
    assert response.status_code == 400 and response.get_json()["error"] == "unknown_programme"
    assert counts()["case"] == 0


def test_with_one_language_the_call_goes_straight_to_the_prompt(twilio: Flask, client: FlaskClient) -> None:
    twilio.config["IVR_LANGUAGES"] = []
    root = twiml(post(client, "/voice/twilio", call()))
    assert root.find("Gather") is None
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text == "http://localhost/voice/twilio/language?lang=sw"
