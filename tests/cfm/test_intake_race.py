"""A follow-up SMS racing its open case's classification (optimistic locking), forced deterministically (issue 8).

Under load a follow-up joining an open case read the case, then the classification job changed it (Case.version)
before the follow-up's flush: StaleDataError, answered 503. submit() now retries (_STALE_ATTEMPTS) or answers with
the stored case. These tests force that interleaving without sleeps: a before_flush hook on the follow-up's flush
lets another writer change the case first, in a session of its own (a nested app context, so another connection).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from cfm.extensions import db
from cfm.models import Case, Message
from cfm.services import intake
from cfm.services.acknowledgement import acknowledgement
from cfm.services.intake import IntakeUnavailable, submit
from tests.cfm.helpers import counts, sms
from tests.cfm.webhooks.support import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, inbound, messages, post
from tests.conftest import run_worker

PHONE = "+254711111111"
OTHER_PHONE = "+254722222222"
QUESTION = "When is our flight to Canada? Nobody told us the date of the departure."
OTHER_QUESTION = "Where do we collect the hygiene kits for the children this week?"
FOLLOW_UP = "Also, can my mother bring her wheelchair on the plane?"
FOLLOW_UP_SID = "SM" + "f" * 32


@contextlib.contextmanager
def before_follow_up_flush(app: Flask, sid: str, competitor: Callable[[int], None]) -> Iterator[list[int]]:
    """Run competitor(n) in a session of its own just before the n-th flush that stores message `sid`.

    The follow-up has read the case by then (conversations.open_thread); its UPDATE ... WHERE version = read
    version comes after. Yields the list of calls, so a test can count the attempts submit() made.
    """
    calls: list[int] = []
    busy = False

    def hook(session: Session, flush_context: Any, instances: Any) -> None:
        nonlocal busy
        if busy or not any(isinstance(obj, Message) and obj.provider_id == sid for obj in session.new):
            return
        calls.append(len(calls) + 1)
        busy = True  # the competitor's own flushes (same provider id, in the retry scenario) pass through
        try:
            with app.app_context():  # a new app context: another scoped session, another connection
                competitor(calls[-1])
        finally:
            busy = False

    event.listen(db.session, "before_flush", hook)
    try:
        yield calls
    finally:
        event.remove(db.session, "before_flush", hook)


def bump_version(case_id: int) -> Callable[[int], None]:
    """A competitor that changes the case (as another process would): its version moves on."""

    def competitor(_call: int) -> None:
        db.session.execute(update(Case).where(Case.id == case_id).values(version=Case.version + 1))
        db.session.commit()

    return competitor


def only_first(competitor: Callable[[int], None]) -> Callable[[int], None]:
    """The competitor on the first attempt only."""

    def first_only(call: int) -> None:
        if call == 1:
            competitor(call)

    return first_only


def messages_with_sid(sid: str) -> list[Message]:
    """Messages stored for a provider message id."""
    db.session.expire_all()
    return list(db.session.scalars(select(Message).where(Message.provider_id == sid)))


def open_cases() -> tuple[Case, Case]:
    """Two people's open SMS cases: the follow-up must join the first one's, never the other's."""
    first = submit(sms(QUESTION, "SM-1", phone=PHONE)).case
    other = submit(sms(OTHER_QUESTION, "SM-2", phone=OTHER_PHONE)).case
    return first, other


def test_a_follow_up_racing_the_classification_job_is_stored_once_on_its_case(redis_app: Flask, programme: Any) -> None:
    first, other = open_cases()
    assert first.classification_status == "pending"  # queued on Redis, not run yet
    case_id = first.id

    def classification_job(_call: int) -> None:
        run_worker(redis_app)  # the real RQ job classifies the case (and other's) and commits: version moves on

    with before_follow_up_flush(redis_app, FOLLOW_UP_SID, classification_job) as calls:
        result = submit(sms(FOLLOW_UP, FOLLOW_UP_SID, phone=PHONE))

    assert calls == [1, 2]  # the first flush was refused (stale), the retry went through
    assert result.threaded and not result.created
    assert result.case.id == case_id
    assert result.acknowledgement == acknowledgement(result.case)
    assert result.case.reference in result.acknowledgement
    [message] = messages_with_sid(FOLLOW_UP_SID)
    assert message.case_id == case_id
    case = db.session.get(Case, case_id)
    assert case is not None and case.classification_status == "done" and case.queue == "general"
    assert [m.provider_id for m in case.messages] == ["SM-1", FOLLOW_UP_SID]
    assert message.text == FOLLOW_UP and message.text_plain == FOLLOW_UP  # the retry saw the case routed general
    assert [m.provider_id for m in db.session.get(Case, other.id).messages] == ["SM-2"]
    assert counts() == {"case": 2, "message": 3, "reporter": 2}


def test_a_twilio_retry_handled_elsewhere_during_the_race_is_answered_with_the_stored_case(
    app: Flask, programme: Any
) -> None:
    first, _other = open_cases()
    retry_elsewhere: list[Any] = []

    def same_message_in_another_process(_call: int) -> None:
        retry_elsewhere.append(submit(sms(FOLLOW_UP, FOLLOW_UP_SID, phone=PHONE)))

    with before_follow_up_flush(app, FOLLOW_UP_SID, same_message_in_another_process) as calls:
        result = submit(sms(FOLLOW_UP, FOLLOW_UP_SID, phone=PHONE))

    assert calls == [1]  # no second attempt: the message is stored, its case is the answer
    assert not result.created and result.case.id == first.id
    assert result.acknowledgement == acknowledgement(result.case)
    assert [message.case_id for message in messages_with_sid(FOLLOW_UP_SID)] == [first.id]
    assert counts() == {"case": 2, "message": 3, "reporter": 2}


def test_when_every_attempt_is_stale_the_caller_gets_the_retryable_error_and_nothing_is_written(
    app: Flask, programme: Any
) -> None:
    first, _other = open_cases()
    before = counts()
    version = db.session.get(Case, first.id).version

    with (
        before_follow_up_flush(app, FOLLOW_UP_SID, bump_version(first.id)) as calls,
        pytest.raises(IntakeUnavailable),
    ):
        submit(sms(FOLLOW_UP, FOLLOW_UP_SID, phone=PHONE))

    assert len(calls) == intake._STALE_ATTEMPTS
    assert messages_with_sid(FOLLOW_UP_SID) == []
    assert counts() == before
    case = db.session.get(Case, first.id)
    # Only the competitor's changes landed: the follow-up wrote nothing to the case.
    assert case.version == version + intake._STALE_ATTEMPTS
    assert [m.provider_id for m in case.messages] == ["SM-1"]


@pytest.fixture
def twilio_app(app: Flask, programme: Any) -> Flask:
    """The app with the configured Twilio account the test requests are signed for."""
    app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    return app


def test_the_webhook_acknowledges_a_follow_up_whose_case_changed_once(twilio_app: Flask, client: FlaskClient) -> None:
    first, _other = open_cases()
    with before_follow_up_flush(twilio_app, FOLLOW_UP_SID, only_first(bump_version(first.id))) as calls:
        response = post(client, "/sms/twilio", inbound(FOLLOW_UP, FOLLOW_UP_SID, phone=PHONE, to=OUR_NUMBER))

    assert response.status_code == 200
    assert calls == [1, 2]
    assert messages(response) == [acknowledgement(db.session.get(Case, first.id))]
    assert [message.case_id for message in messages_with_sid(FOLLOW_UP_SID)] == [first.id]


def test_the_webhook_answers_503_when_every_attempt_is_stale_and_stores_nothing(
    twilio_app: Flask, client: FlaskClient
) -> None:
    first, _other = open_cases()
    before = counts()
    with before_follow_up_flush(twilio_app, FOLLOW_UP_SID, bump_version(first.id)) as calls:
        response = post(client, "/sms/twilio", inbound(FOLLOW_UP, FOLLOW_UP_SID, phone=PHONE, to=OUR_NUMBER))

    assert response.status_code == 503  # Twilio retries; the retry finds nothing half-written
    assert b"<Message>" not in response.get_data()
    assert len(calls) == intake._STALE_ATTEMPTS
    assert messages_with_sid(FOLLOW_UP_SID) == []
    assert counts() == before

    retried = post(client, "/sms/twilio", inbound(FOLLOW_UP, FOLLOW_UP_SID, phone=PHONE, to=OUR_NUMBER))
    assert retried.status_code == 200
    assert [message.case_id for message in messages_with_sid(FOLLOW_UP_SID)] == [first.id]
    assert db.session.scalar(select(func.count()).select_from(Case)) == before["case"]
