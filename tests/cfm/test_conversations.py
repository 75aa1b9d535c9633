"""Conversations: a follow-up SMS joins the person's open case, unless it is restricted (issue 5)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cfm.extensions import db
from cfm.models import Case, Message
from cfm.models.types import utcnow
from cfm.services.intake import submit
from channels.base import Contact, IntakeRequest
from classifier.predict import Prediction
from tests.cfm.helpers import counts, sms, web

PHONE = "+254711111111"
QUESTION = "When is our flight to Canada? Nobody told us the date of the departure."
FOLLOW_UP = "Also, can my mother bring her wheelchair on the plane?"
SENSITIVE = "The escort asked for money to keep our names on the list for the flight"


class FakeModel:
    """A model that routes texts containing "secret" restricted (the safety net does not know the word)."""

    def predict_one(self, text: str) -> Prediction:
        """Restricted staff misconduct for "secret", information request otherwise."""
        restricted = "secret" in text
        category = "staff_misconduct" if restricted else "information_request"
        return Prediction(
            category=category,
            confidence=0.9,
            probabilities={category: 0.9},
            language="en",
            restricted=restricted,
            restricted_reasons=("category",) if restricted else (),
            safety_net_category=None,
            top_terms=(),
            model_version="fake",
        )


def cases() -> list[Case]:
    """Every case, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(select(Case).order_by(Case.id)))


def test_a_second_sms_within_the_window_joins_the_open_case(programme: Any) -> None:
    first = submit(sms(QUESTION, "SM-1", phone=PHONE))
    second = submit(sms(FOLLOW_UP, "SM-2", phone=PHONE))
    assert second.threaded and not second.created
    assert second.case.id == first.case.id
    assert second.acknowledgement == first.acknowledgement
    [case] = cases()
    assert [(m.direction, m.provider_id, m.text) for m in case.messages] == [
        ("inbound", "SM-1", QUESTION),
        ("inbound", "SM-2", FOLLOW_UP),
    ]
    # Sealed like the case: the case is general, so both are searchable in clear.
    assert case.queue == "general" and all(m.text_plain is not None for m in case.messages)


def test_a_retried_follow_up_is_stored_once(programme: Any) -> None:
    submit(sms(QUESTION, "SM-1", phone=PHONE))
    again = [submit(sms(FOLLOW_UP, "SM-2", phone=PHONE)) for _ in range(3)]
    assert len({result.acknowledgement for result in again}) == 1
    assert counts() == {"case": 1, "message": 2, "reporter": 1}


def test_a_whatsapp_follow_up_joins_the_sms_case(programme: Any) -> None:
    submit(sms(QUESTION, "SM-1", phone=PHONE))
    request = dataclasses.replace(sms(FOLLOW_UP, "WA-2", phone=PHONE), channel="whatsapp")
    assert submit(request).threaded
    assert [m.channel for m in cases()[0].messages] == ["sms", "whatsapp"]


def test_a_sensitive_follow_up_opens_a_new_restricted_case(programme: Any) -> None:
    first = submit(sms(QUESTION, "SM-1", phone=PHONE)).case
    second = submit(sms(SENSITIVE, "SM-2", phone=PHONE))
    assert second.created and not second.threaded
    assert second.case.id != first.id
    assert second.case.queue == "restricted" and second.case.text_plain is None
    general = db.session.get(Case, first.id)
    assert general is not None and [m.provider_id for m in general.messages] == ["SM-1"]


def test_a_follow_up_the_classifier_routes_restricted_opens_a_new_case(app: Flask, programme: Any) -> None:
    app.extensions["cfm_model"] = FakeModel()
    first = submit(sms(QUESTION, "SM-1", phone=PHONE)).case
    assert first.queue == "general"
    second = submit(sms("I have a secret to tell about the team leader", "SM-2", phone=PHONE)).case
    assert second.id != first.id and second.queue == "restricted"


def test_without_a_model_a_follow_up_opens_a_new_case(app: Flask, programme: Any) -> None:
    submit(sms(QUESTION, "SM-1", phone=PHONE))
    app.config["MODEL_PATH"] = "/nonexistent/model.skops"
    app.extensions.pop("cfm_model", None)
    assert not submit(sms(FOLLOW_UP, "SM-2", phone=PHONE)).threaded
    assert len(cases()) == 2


def test_a_benign_follow_up_to_a_restricted_case_joins_it_sealed(programme: Any) -> None:
    first = submit(sms(SENSITIVE, "SM-1", phone=PHONE)).case
    assert first.queue == "restricted"
    second = submit(sms(FOLLOW_UP, "SM-2", phone=PHONE))
    assert second.threaded and second.case.id == first.id
    message = db.session.scalars(select(Message).where(Message.provider_id == "SM-2")).one()
    assert message.text_plain is None and message.text == FOLLOW_UP


def test_after_the_window_a_message_opens_a_new_case(app: Flask, programme: Any) -> None:
    submit(sms(QUESTION, "SM-1", phone=PHONE))
    late = dataclasses.replace(sms(FOLLOW_UP, "SM-2", phone=PHONE), received_at=utcnow() + timedelta(hours=25))
    assert submit(late).created
    assert len(cases()) == 2


def test_the_window_is_configurable_and_zero_turns_threading_off(app: Flask, programme: Any) -> None:
    app.config["CONVERSATION_WINDOW_HOURS"] = 48
    submit(sms(QUESTION, "SM-1", phone=PHONE))
    later = dataclasses.replace(sms(FOLLOW_UP, "SM-2", phone=PHONE), received_at=utcnow() + timedelta(hours=30))
    assert submit(later).threaded
    app.config["CONVERSATION_WINDOW_HOURS"] = 0
    assert submit(sms("And one more question about the baggage", "SM-3", phone=PHONE)).created


def test_the_window_runs_from_the_last_message_of_the_thread(app: Flask, programme: Any) -> None:
    submit(sms(QUESTION, "SM-1", phone=PHONE))
    now = utcnow()
    step = dataclasses.replace(sms(FOLLOW_UP, "SM-2", phone=PHONE), received_at=now + timedelta(hours=20))
    assert submit(step).threaded
    message = db.session.scalars(select(Message).where(Message.provider_id == "SM-2")).one()
    message.created_at = now + timedelta(hours=20)
    db.session.commit()
    later = dataclasses.replace(sms("Thank you", "SM-3", phone=PHONE), received_at=now + timedelta(hours=40))
    assert submit(later).threaded


def test_a_closed_case_is_not_reopened_by_a_new_message(programme: Any) -> None:
    first = submit(sms(QUESTION, "SM-1", phone=PHONE)).case
    first.status = "closed"
    db.session.commit()
    assert submit(sms(FOLLOW_UP, "SM-2", phone=PHONE)).created
    assert len(cases()) == 2


def test_another_phone_and_other_channels_never_join_a_thread(programme: Any) -> None:
    submit(sms(QUESTION, "SM-1", phone=PHONE))
    assert submit(sms(FOLLOW_UP, "SM-2", phone="+254722222222")).created
    assert submit(web(FOLLOW_UP, contact=Contact(phone=PHONE))).created
    hotline = IntakeRequest(channel="hotline", text=FOLLOW_UP, provider_id="T-1", contact=Contact(phone=PHONE))
    assert submit(hotline).created
    assert len(cases()) == 4


def test_a_follow_up_with_media_is_noted_on_the_case(programme: Any) -> None:
    submit(sms(QUESTION, "SM-1", phone=PHONE))
    media = [{"content_type": "image/jpeg", "url": "https://api.twilio.com/x/Media/ME1"}]
    request = dataclasses.replace(
        sms("[media message: 1 attachment(s)]", "SM-2", phone=PHONE), extra={"media": media, "media_count": 1}
    )
    assert submit(request).threaded
    [case] = cases()
    assert case.messages[1].media_count == 1
    assert (case.extra or {})["media"] == [{**media[0], "message": "SM-2"}]


@pytest.mark.parametrize("status", ["new", "under_review", "action_taken"])
def test_any_open_status_keeps_the_thread(programme: Any, status: str) -> None:
    first = submit(sms(QUESTION, "SM-1", phone=PHONE)).case
    first.status = status
    db.session.commit()
    assert submit(sms(FOLLOW_UP, "SM-2", phone=PHONE)).threaded
