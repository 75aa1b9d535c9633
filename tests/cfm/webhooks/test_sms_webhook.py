"""POST /sms/twilio and /sms/twilio/status end to end with the real twilio library (issue 5)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cfm import create_app
from cfm.extensions import db
from cfm.i18n import locale_for_language
from cfm.models import AuditEvent, Case, Message, Reporter
from cfm.services.acknowledgement import acknowledgement, acknowledgement_locale
from cfm.services.crypto import generate_keys, get_crypto
from channels.sms import segments
from tests.cfm.helpers import counts
from tests.cfm.webhooks.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    PHONE,
    inbound,
    messages,
    post,
    sign,
    twiml,
)

QUESTION = "When is our flight to Canada? Nobody told us the date of the departure."
ENGLISH_ACK = "Thank you, we received your message. Your reference is {ref}. To check it, send STATUS {ref}."
NOTHING = {"case": 0, "message": 0, "reporter": 0}


def only_case() -> Case:
    """The one case stored."""
    return db.session.scalars(select(Case)).one()


def test_a_signed_sms_becomes_a_case_and_is_acknowledged_in_twiml(twilio: Flask, client: FlaskClient) -> None:
    response = post(client, "/sms/twilio", inbound(QUESTION, "SM" + "1" * 32))
    assert response.status_code == 200
    case = only_case()
    assert messages(response) == [ENGLISH_ACK.format(ref=case.reference)]
    assert case.channel == "sms" and case.text == QUESTION
    assert case.reporter is not None and case.reporter.phone == PHONE
    assert case.reporter.phone_hash == get_crypto().lookup_hash(PHONE)
    assert case.reporter.consent_to_contact is True
    assert (case.extra or {})["to_number"] == OUR_NUMBER
    assert case.messages[0].provider_id == "SM" + "1" * 32


def test_a_whatsapp_message_is_stored_on_the_whatsapp_channel(twilio: Flask, client: FlaskClient) -> None:
    form = inbound(QUESTION, "SM" + "2" * 32, phone=f"whatsapp:{PHONE}", to=f"whatsapp:{OUR_NUMBER}")
    response = post(client, "/sms/twilio", form)
    assert response.status_code == 200
    case = only_case()
    assert case.channel == "whatsapp" and case.reporter is not None and case.reporter.phone == PHONE
    assert messages(response) == [ENGLISH_ACK.format(ref=case.reference)]


def test_a_retried_message_sid_creates_one_case_and_answers_the_same_twiml(twilio: Flask, client: FlaskClient) -> None:
    form = inbound(QUESTION, "SM" + "3" * 32)
    first = post(client, "/sms/twilio", form)
    second = post(client, "/sms/twilio", form)
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data()
    assert counts()["case"] == 1 and counts()["message"] == 1


@pytest.mark.parametrize(
    "tamper",
    ["missing", "garbage", "other_token", "other_url", "body_changed", "empty"],
)
def test_a_request_without_a_valid_signature_is_refused_and_nothing_is_stored(
    twilio: Flask, client: FlaskClient, tamper: str
) -> None:
    form = inbound(QUESTION, "SM" + "4" * 32)
    url = "http://localhost/sms/twilio"
    signature = {
        "missing": None,
        "garbage": "bm90IGEgc2lnbmF0dXJl",
        "other_token": sign(url, form, "someone-elses-token"),
        "other_url": sign("http://localhost/other", form),
        "body_changed": sign(url, {**form, "Body": "something else"}),
        "empty": "",
    }[tamper]
    if signature is None:
        response = client.post("/sms/twilio", data=form)
    else:
        response = client.post("/sms/twilio", data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert b"<Message>" not in response.get_data()
    assert counts() == NOTHING


def test_without_any_auth_token_configured_every_request_is_refused(app: Flask, programme: Any) -> None:
    response = post(app.test_client(), "/sms/twilio", inbound(QUESTION, "SM" + "5" * 32))
    assert response.status_code == 403
    assert counts() == NOTHING


def test_the_programme_token_is_used_when_the_programme_has_one(twilio: Flask, client: FlaskClient) -> None:
    from cfm.models import Programme

    programme = db.session.scalars(select(Programme)).one()
    programme.twilio_auth_token = "programme-own-token-9876543210"
    db.session.commit()
    form = inbound(QUESTION, "SM" + "6" * 32)
    assert post(client, "/sms/twilio", form).status_code == 403  # signed with the configured token
    assert counts()["case"] == 0
    assert post(client, "/sms/twilio", form, token="programme-own-token-9876543210").status_code == 200
    assert counts()["case"] == 1


def test_a_request_signed_for_another_account_is_refused(twilio: Flask, client: FlaskClient) -> None:
    form = inbound(QUESTION, "SM" + "7" * 32, AccountSid="AC" + "f" * 32)
    assert post(client, "/sms/twilio", form).status_code == 403
    assert counts() == NOTHING


def test_behind_a_proxy_the_public_url_is_the_one_checked(twilio: Flask, client: FlaskClient) -> None:
    twilio.config["PUBLIC_BASE_URL"] = "https://cfm.example.org/"
    form = inbound(QUESTION, "SM" + "8" * 32)
    assert post(client, "/sms/twilio", form).status_code == 403  # signed for the internal URL
    response = post(client, "/sms/twilio", form, signed_url="https://cfm.example.org/sms/twilio")
    assert response.status_code == 200
    assert counts()["case"] == 1


def test_a_body_of_two_megabytes_is_refused_with_413_and_nothing_is_stored(twilio: Flask, client: FlaskClient) -> None:
    form = inbound("x" * (2 * 1024 * 1024), "SM" + "9" * 32)
    response = post(client, "/sms/twilio", form)
    assert response.status_code == 413
    assert counts() == NOTHING


@pytest.mark.parametrize(
    ("form", "code"),
    [
        (inbound(None, "SM" + "a" * 32), "empty_text"),
        (inbound("   ", "SM" + "a" * 32), "empty_text"),
        (inbound(QUESTION, "SM" + "a" * 32, phone="12345"), "invalid_phone"),
        (inbound(QUESTION, "SM" + "a" * 32, phone="+0123"), "invalid_phone"),
        (inbound(QUESTION, "SM" + "a" * 32, phone="messenger:12345"), "unsupported_channel"),
        (inbound(QUESTION, "SM" + "a" * 32, to="+15550009999"), "unknown_programme"),
        ({k: v for k, v in inbound(QUESTION, "x").items() if k not in ("MessageSid", "SmsSid")}, "missing_field"),
    ],
    ids=["body-missing", "body-blank", "from-not-e164", "from-bad", "from-other-channel", "unknown-to", "no-sid"],
)
def test_bad_input_gets_a_clear_error_and_nothing_is_stored(
    twilio: Flask, client: FlaskClient, form: dict[str, str], code: str
) -> None:
    response = post(client, "/sms/twilio", form)
    assert response.status_code == 400
    assert response.get_json()["error"] == code
    assert response.get_json()["message"]
    assert counts() == NOTHING


def test_database_gone_gives_a_5xx_and_no_acknowledgement(backend: str, tmp_path: Path) -> None:
    url = (
        f"sqlite:///{tmp_path / 'missing-dir' / 'cfm.sqlite'}"
        if backend == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    )
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            **generate_keys(),
        }
    )
    response = post(app.test_client(), "/sms/twilio", inbound(QUESTION, "SM" + "b" * 32))
    assert 500 <= response.status_code < 600
    assert b"<Message>" not in response.get_data()
    assert b"Thank you" not in response.get_data()


def test_a_media_message_is_noted_on_the_case_without_fetching_the_media(
    twilio: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the webhook must not reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    form = inbound(
        "",
        "SM" + "c" * 32,
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
        MediaContentType1="audio/ogg",
    )
    response = post(client, "/sms/twilio", form)
    assert response.status_code == 200
    case = only_case()
    assert case.messages[0].media_count == 2
    assert (case.extra or {})["media_count"] == 2
    assert [item["content_type"] for item in (case.extra or {})["media"]] == ["image/jpeg", "audio/ogg"]
    assert case.text == "[media message: 2 attachment(s)]"


@pytest.mark.parametrize(
    ("text", "language", "locale"),
    [
        ("متى موعد رحلتنا إلى كندا؟ لم يخبرنا أحد بالتاريخ", "ar", "ar"),
        ("پرواز ما به کانادا چه وقت است؟ هیچ کس تاریخ را به ما نگفته است", "fa", "fa_AF"),
    ],
    ids=["arabic", "dari"],
)
def test_arabic_and_dari_messages_are_acknowledged_in_their_language_within_two_segments(
    twilio: Flask, client: FlaskClient, text: str, language: str, locale: str
) -> None:
    response = post(client, "/sms/twilio", inbound(text, "SM" + "d" * 32))
    [ack] = messages(response)
    case = only_case()
    assert case.language == language
    assert acknowledgement_locale(case) == locale
    assert ack == acknowledgement(case)
    assert case.reference in ack
    assert segments(ack)[1] <= 2


def test_the_acknowledgement_fits_two_segments_in_every_locale(twilio: Flask, client: FlaskClient) -> None:
    post(client, "/sms/twilio", inbound(QUESTION, "SM" + "e" * 32))
    case = only_case()
    for locale in twilio.config["LOCALES"]:
        case.language = locale.split("_")[0]
        assert locale_for_language(case.language) == locale
        text = acknowledgement(case)
        assert case.reference in text
        encoding, count = segments(text)
        assert count <= 2, (locale, encoding, count)
    db.session.rollback()


# ---------------------------------------------------------------------------------------------------------------
# STATUS, STOP and START


def _case_by_sms(client: FlaskClient, sid: str = "SM" + "f" * 32) -> Case:
    """A case sent by SMS from PHONE."""
    post(client, "/sms/twilio", inbound(QUESTION, sid))
    return only_case()


@pytest.mark.parametrize("typed", ["STATUS {ref}", "status {lower}", "Status {compact}", "STATUS: {ref}"])
def test_status_with_a_code_answers_the_stage_in_plain_words_and_stores_nothing(
    twilio: Flask, client: FlaskClient, typed: str
) -> None:
    case = _case_by_sms(client)
    before = counts()
    text = typed.format(ref=case.reference, lower=case.reference.lower(), compact=case.reference.replace("-", ""))
    response = post(client, "/sms/twilio", inbound(text, "SM" + "0" * 31 + "1", phone="+254799000111"))
    assert messages(response) == [f"Your case {case.reference}: Received. It is waiting for our team to look at it."]
    assert counts() == before


def test_a_translated_status_keyword_is_answered_in_its_language(twilio: Flask, client: FlaskClient) -> None:
    from flask_babel import force_locale

    from cfm.public.texts import STAGES

    case = _case_by_sms(client)
    response = post(client, "/sms/twilio", inbound(f"{case.reference} حالة", "SM" + "0" * 31 + "1"))
    [reply] = messages(response)
    with force_locale("ar"):
        stage = str(STAGES["received"])
    assert case.reference in reply and stage in reply
    assert segments(reply)[1] <= 2
    assert counts()["case"] == 1


def test_status_answers_the_current_stage(twilio: Flask, client: FlaskClient) -> None:
    case = _case_by_sms(client)
    case.status = "closed"
    db.session.commit()
    response = post(client, "/sms/twilio", inbound(f"STATUS {case.reference}", "SM" + "0" * 31 + "2"))
    assert messages(response) == [f"Your case {case.reference}: Closed. Thank you for telling us."]


@pytest.mark.parametrize("language", ["en", "sw"])
def test_status_with_an_unknown_code_or_none_says_so_in_the_programme_language(
    twilio: Flask, client: FlaskClient, programme: Any, language: str
) -> None:
    from flask_babel import force_locale, gettext

    # "STATUS" says nothing about the language and there is no case: the programme's language is used.
    programme.default_language = language
    db.session.commit()
    with force_locale(language):
        not_found = gettext(
            "We could not find the reference %(reference)s. Please check the code and try again.",
            reference="7QK2-M9XD",
        )
        no_code = gettext("To check your case, send STATUS and your reference code.")
    if language == "en":
        assert not_found == "We could not find the reference 7QK2-M9XD. Please check the code and try again."
    response = post(client, "/sms/twilio", inbound("STATUS 7QK2-M9XD", "SM" + "0" * 31 + "3"))
    assert messages(response) == [not_found]
    response = post(client, "/sms/twilio", inbound("STATUS", "SM" + "0" * 31 + "4"))
    assert messages(response) == [no_code]
    assert counts() == NOTHING


def test_stop_opts_out_every_reporter_with_that_phone_and_is_not_answered(twilio: Flask, client: FlaskClient) -> None:
    _case_by_sms(client)
    post(client, "/sms/twilio", inbound("Thank you so much for the blankets", "SM" + "0" * 31 + "5", phone=PHONE))
    response = post(client, "/sms/twilio", inbound("STOP", "SM" + "0" * 31 + "6"))
    assert response.status_code == 200
    assert messages(response) == []  # Twilio answers STOP itself; we add nothing
    reporters = db.session.scalars(select(Reporter)).all()
    assert reporters and all(r.opted_out for r in reporters)
    assert db.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "reporter.opt_out")).all()
    response = post(client, "/sms/twilio", inbound("START", "SM" + "0" * 31 + "7"))
    assert messages(response) == []
    db.session.expire_all()
    assert not any(r.opted_out for r in db.session.scalars(select(Reporter)))


def test_stop_from_an_unknown_number_is_remembered_by_its_hash_only(twilio: Flask, client: FlaskClient) -> None:
    post(client, "/sms/twilio", inbound("stop", "SM" + "0" * 31 + "8", phone="+254799888777"))
    reporter = db.session.scalars(select(Reporter)).one()
    assert reporter.opted_out and reporter.phone is None
    assert reporter.phone_hash == get_crypto().lookup_hash("+254799888777")
    assert counts()["case"] == 0


def test_the_webhook_logs_references_but_never_the_phone_or_the_text(
    twilio: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("cfm", "cfm.webhooks", "cfm.webhooks.sms", "cfm.services.intake"):
        logging.getLogger(name).disabled = False
    secret = "Unique-marker-4412 the bus to the airport was late"
    post(client, "/sms/twilio", inbound(secret, "SM" + "0" * 31 + "9"))
    post(client, "/sms/twilio", inbound("STOP", "SM" + "0" * 30 + "10"))
    post(client, "/sms/twilio", inbound(secret, "SM" + "0" * 30 + "11", phone="12345"))
    case = only_case()
    assert case.reference in caplog.text
    assert PHONE.lstrip("+") not in caplog.text
    assert "Unique-marker-4412" not in caplog.text


# ---------------------------------------------------------------------------------------------------------------
# Delivery status callbacks


def _outbound(case: Case, sid: str, status: str = "queued") -> Message:
    """An outbound reply already handed to Twilio."""
    message = Message(case=case, direction="outbound", channel="sms", provider_id=sid, delivery_status=status)
    message.store_text("Your flight is on Monday.", sealed=False)
    db.session.add(message)
    db.session.commit()
    return message


def _status(sid: str, status: str, **extra: str) -> dict[str, str]:
    """A delivery status callback."""
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": OUR_NUMBER,
        "To": PHONE,
        **extra,
    }


def test_delivery_status_callbacks_update_the_reply_and_never_go_back(twilio: Flask, client: FlaskClient) -> None:
    message = _outbound(_case_by_sms(client), "SM" + "9" * 32)
    for status, expected in (("sent", "sent"), ("delivered", "delivered"), ("sent", "delivered"), ("read", "read")):
        response = post(client, "/sms/twilio/status", _status("SM" + "9" * 32, status))
        assert response.status_code == 204
        db.session.refresh(message)
        assert message.delivery_status == expected


def test_an_unsigned_status_callback_changes_nothing(twilio: Flask, client: FlaskClient) -> None:
    message = _outbound(_case_by_sms(client), "SM" + "8" * 32)
    response = client.post("/sms/twilio/status", data=_status("SM" + "8" * 32, "delivered"))
    assert response.status_code == 403
    db.session.refresh(message)
    assert message.delivery_status == "queued"


def test_an_unsubscribed_error_in_a_status_callback_opts_the_person_out(twilio: Flask, client: FlaskClient) -> None:
    case = _case_by_sms(client)
    message = _outbound(case, "SM" + "7" * 32)
    response = post(client, "/sms/twilio/status", _status("SM" + "7" * 32, "failed", ErrorCode="21610"))
    assert response.status_code == 204
    db.session.refresh(message)
    assert message.delivery_status == "failed"
    assert case.reporter is not None and case.reporter.opted_out


def test_a_status_callback_for_an_unknown_message_is_accepted_and_ignored(twilio: Flask, client: FlaskClient) -> None:
    response = post(client, "/sms/twilio/status", _status("SM" + "6" * 32, "delivered"))
    assert response.status_code == 204
    response = post(client, "/sms/twilio/status", {"MessageSid": "SM1", "AccountSid": ACCOUNT_SID})
    assert response.status_code == 400
    assert response.get_json()["error"] == "missing_field"


def test_the_twiml_reply_is_well_formed_xml(twilio: Flask, client: FlaskClient) -> None:
    response = post(client, "/sms/twilio", inbound("a < b & c > d", "SM" + "5" * 32))
    assert len(list(twiml(response).iter("Message"))) == 1
    assert AUTH_TOKEN not in response.get_data(as_text=True)
