"""Outbound replies: stored, sent through the twilio client from a job, retried, never to opted-out people."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from cfm.extensions import db
from cfm.models import AuditEvent, Case, Message, Reporter
from cfm.models.types import utcnow
from cfm.services.crypto import get_crypto
from cfm.services.intake import submit
from cfm.services.outbound import OutboundRefused, queue_reply, resend_pending, set_opt_out
from channels.base import Contact, IntakeRequest
from tests.cfm.helpers import sms, user
from tests.cfm.webhooks.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    MESSAGES_URL,
    OUR_NUMBER,
    CapturingHttpClient,
    created,
    refused,
)
from tests.conftest import run_worker

PHONE = "+254711111111"
QUESTION = "When is our flight to Canada? Nobody told us the date of the departure."
SENSITIVE = "The escort asked for money to keep our names on the list for the flight"
REPLY = "Your flight is on Monday 3 June; please be at the transit centre at 6:00."


@pytest.fixture
def http(app: Flask, programme: Any) -> CapturingHttpClient:
    """Twilio configured, and its HTTP captured: nothing leaves the machine."""
    app.config.update(
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL="https://cfm.example.org"
    )
    client = CapturingHttpClient()
    app.extensions["twilio_http_client"] = client
    return client


def sms_case(text: str = QUESTION, sid: str = "SM-1", phone: str = PHONE) -> Case:
    """A case written by SMS (consent to be answered there)."""
    request = dataclasses.replace(sms(text, sid, phone=phone), consent_to_contact=True)
    return submit(request).case


def officer() -> Any:
    """An officer of the programme."""
    return user("officer@example.org", "officer")


def reload(message: Message) -> Message:
    """The message as stored now."""
    db.session.expire_all()
    found = db.session.get(Message, message.id)
    assert found is not None
    return found


def test_a_reply_is_stored_and_sent_with_the_twilio_client(http: CapturingHttpClient) -> None:
    case = sms_case()
    author = officer()
    message = reload(queue_reply(case, REPLY, author))
    [call] = http.calls
    assert call.method == "POST" and call.url == MESSAGES_URL
    assert call.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert call.data == {
        "To": PHONE,
        "From": OUR_NUMBER,
        "Body": REPLY,
        "StatusCallback": "https://cfm.example.org/sms/twilio/status",
    }
    assert message.direction == "outbound" and message.author_id == author.id
    assert message.provider_id == "SM" + "1".zfill(32) and message.delivery_status == "queued"
    assert message.text_plain == REPLY  # the case is general
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "case.reply")).one()
    assert event.object_ref == case.reference and event.actor == author.email


def test_a_reply_on_a_restricted_case_is_sealed(http: CapturingHttpClient) -> None:
    case = sms_case(SENSITIVE)
    assert case.queue == "restricted"
    message = reload(queue_reply(case, REPLY, officer()))
    assert message.text_plain is None and message.text == REPLY
    assert len(http.calls) == 1


def test_a_whatsapp_conversation_is_answered_on_whatsapp(http: CapturingHttpClient) -> None:
    case = submit(
        dataclasses.replace(sms(QUESTION, "WA-1", phone=PHONE), channel="whatsapp", consent_to_contact=True)
    ).case
    queue_reply(case, REPLY, officer())
    assert http.calls[0].data is not None
    assert (http.calls[0].data["To"], http.calls[0].data["From"]) == (f"whatsapp:{PHONE}", f"whatsapp:{OUR_NUMBER}")


def test_the_programme_credentials_are_used_when_it_has_them(http: CapturingHttpClient, programme: Any) -> None:
    programme.twilio_account_sid = "AC" + "c" * 32
    programme.twilio_auth_token = "programme-token-abcdef"
    db.session.commit()
    queue_reply(sms_case(), REPLY, officer())
    assert http.calls[0].auth == ("AC" + "c" * 32, "programme-token-abcdef")
    assert http.calls[0].url.startswith(f"https://api.twilio.com/2010-04-01/Accounts/AC{'c' * 32}/")


def test_a_reply_goes_from_the_number_the_person_wrote_to(http: CapturingHttpClient, programme: Any) -> None:
    from cfm.models import PhoneNumber

    programme.numbers.append(PhoneNumber(number="+254700000002"))
    db.session.commit()
    request = dataclasses.replace(
        sms(QUESTION, "SM-9", phone=PHONE, to="+254700000002"),
        consent_to_contact=True,
        extra={"to_number": "+254700000002"},
    )
    queue_reply(submit(request).case, REPLY, officer())
    assert http.calls[0].data is not None and http.calls[0].data["From"] == "+254700000002"


@pytest.mark.parametrize("reason", ["opted_out", "opted_out_elsewhere", "no_consent", "no_phone", "anonymous"])
def test_no_reply_is_sent_to_a_person_who_opted_out_or_gave_no_consent(http: CapturingHttpClient, reason: str) -> None:
    if reason == "anonymous":
        case = submit(IntakeRequest(channel="web", text=QUESTION)).case
    elif reason == "no_phone":
        case = submit(IntakeRequest(channel="web", text=QUESTION, contact=Contact(name="Amina"))).case
    elif reason == "no_consent":
        case = submit(IntakeRequest(channel="web", text=QUESTION, contact=Contact(phone=PHONE))).case
    else:
        case = sms_case()
        if reason == "opted_out":
            assert case.reporter is not None
            case.reporter.opted_out = True
            db.session.commit()
        else:
            # STOP sent in another conversation from the same phone: a reporter row of its own.
            set_opt_out(get_crypto().lookup_hash(PHONE), True)
    before = db.session.scalars(select(Message)).all()
    with pytest.raises(OutboundRefused) as info:
        queue_reply(case, REPLY, officer())
    expected = {"opted_out_elsewhere": "opted_out", "anonymous": "no_phone"}.get(reason, reason)
    assert info.value.code == expected
    assert db.session.scalars(select(Message)).all() == before
    assert http.calls == []


@pytest.mark.parametrize("text", ["", "   ", "x" * 1601])
def test_an_empty_or_too_long_reply_is_refused(http: CapturingHttpClient, text: str) -> None:
    with pytest.raises(OutboundRefused):
        queue_reply(sms_case(), text, officer())
    assert http.calls == []


def test_a_retryable_failure_is_retried_until_twilio_takes_the_message(http: CapturingHttpClient) -> None:
    http.outcomes = [refused(500), requests.ConnectionError("reset"), refused(429), created("SM" + "d" * 32)]
    message = reload(queue_reply(sms_case(), REPLY, officer()))
    assert len(http.calls) == 4
    assert message.provider_id == "SM" + "d" * 32 and message.delivery_status == "queued"


def test_after_the_last_retry_the_reply_is_marked_failed(app: Flask, http: CapturingHttpClient) -> None:
    http.outcomes = [refused(503)] * 10
    message = reload(queue_reply(sms_case(), REPLY, officer()))
    assert len(http.calls) == app.config["OUTBOUND_RETRIES"] + 1
    assert message.delivery_status == "failed" and message.provider_id is None


def test_a_refusal_that_cannot_pass_is_not_retried(http: CapturingHttpClient) -> None:
    http.outcomes = [refused(400, 21211)]
    message = reload(queue_reply(sms_case(), REPLY, officer()))
    assert len(http.calls) == 1 and message.delivery_status == "failed"


def test_twilio_saying_the_person_unsubscribed_opts_them_out(http: CapturingHttpClient) -> None:
    http.outcomes = [refused(400, 21610)]
    case = sms_case()
    author = officer()
    message = reload(queue_reply(case, REPLY, author))
    assert message.delivery_status == "not_sent"
    reporter = db.session.scalars(select(Reporter)).one()
    assert reporter.opted_out
    with pytest.raises(OutboundRefused):
        queue_reply(case, "Another reply", author)


def test_without_credentials_the_reply_fails_without_calling_anyone(app: Flask, http: CapturingHttpClient) -> None:
    app.config.update(TWILIO_ACCOUNT_SID=None, TWILIO_AUTH_TOKEN=None)
    message = reload(queue_reply(sms_case(), REPLY, officer()))
    assert message.delivery_status == "failed" and http.calls == []


def test_pending_replies_left_behind_are_sent_again(app: Flask, http: CapturingHttpClient) -> None:
    case = sms_case()
    stuck = Message(case=case, direction="outbound", channel="sms", delivery_status="pending")
    stuck.store_text(REPLY, sealed=False)
    stuck.created_at = utcnow() - timedelta(hours=1)
    fresh = Message(case=case, direction="outbound", channel="sms", delivery_status="pending")
    fresh.store_text(REPLY, sealed=False)
    db.session.add_all([stuck, fresh])
    db.session.commit()
    assert resend_pending() == 1
    assert reload(stuck).delivery_status == "queued" and reload(fresh).delivery_status == "pending"
    assert len(http.calls) == 1


# ---------------------------------------------------------------------------------------------------------------
# With Redis: the reply is sent by an RQ worker, retried with backoff by RQ.


def _classified_sms_case(app: Flask) -> Case:
    """An SMS case, classified (the classification job drained first)."""
    case = sms_case()
    run_worker(app)
    db.session.expire_all()
    found = db.session.get(Case, case.id)
    assert found is not None and found.queue == "general"
    return found


def test_with_redis_the_worker_sends_the_reply(redis_app: Flask, http: CapturingHttpClient) -> None:
    case = _classified_sms_case(redis_app)
    message = queue_reply(case, REPLY, officer())
    assert reload(message).delivery_status == "pending" and http.calls == []
    run_worker(redis_app)
    assert reload(message).delivery_status == "queued"
    assert [call.url for call in http.calls] == [MESSAGES_URL]


def test_with_redis_a_failing_send_is_retried_by_rq(redis_app: Flask, http: CapturingHttpClient) -> None:
    case = _classified_sms_case(redis_app)
    http.outcomes = [refused(500), refused(503), created("SM" + "e" * 32)]
    message = queue_reply(case, REPLY, officer())
    run_worker(redis_app)
    assert len(http.calls) == 3
    assert reload(message).provider_id == "SM" + "e" * 32


def test_with_redis_the_retries_end_in_failed(redis_app: Flask, http: CapturingHttpClient) -> None:
    case = _classified_sms_case(redis_app)
    http.outcomes = [refused(500)] * 10
    message = queue_reply(case, REPLY, officer())
    run_worker(redis_app)
    assert len(http.calls) == redis_app.config["OUTBOUND_RETRIES"] + 1
    assert reload(message).delivery_status == "failed"


def test_a_stop_between_queueing_and_sending_stops_the_reply(redis_app: Flask, http: CapturingHttpClient) -> None:
    case = _classified_sms_case(redis_app)
    message = queue_reply(case, REPLY, officer())
    set_opt_out(get_crypto().lookup_hash(PHONE), True)
    run_worker(redis_app)
    assert reload(message).delivery_status == "not_sent"
    assert http.calls == []
