"""What one submission costs the database (issue 9): one commit, no repeated look-ups; the guarantees unchanged.

Counted with SQLAlchemy's engine events on the real SQLite and PostgreSQL: a submission classified inline is
stored, classified and routed in ONE commit (it used to take three fsyncs); a classifier that fails, or no model,
still stores the case in that one commit (fail closed); the webhook finds the programme of the number once.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from cfm.extensions import db
from cfm.models import Case
from cfm.services.intake import submit
from tests.cfm.helpers import counts, sms
from tests.cfm.webhooks.support import ACCOUNT_SID, AUTH_TOKEN, inbound, post

QUESTION = "When is our flight to Canada? Nobody told us the date of the departure."


@pytest.fixture
def twilio(app: Flask, programme: Any) -> Flask:
    """The app with the default programme and the Twilio account the test requests are signed for."""
    app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    return app


@dataclasses.dataclass
class Traffic:
    """Statements and commits seen on the app's engine."""

    statements: list[str] = dataclasses.field(default_factory=list)
    commits: int = 0

    def selects_from(self, table: str) -> int:
        """SELECT statements whose FROM names the table."""
        return sum(1 for s in self.statements if s.startswith("SELECT") and f" FROM {table} " in f"{s} ")


@contextlib.contextmanager
def traffic() -> Iterator[Traffic]:
    """Record what the app's engine executes and commits while the block runs."""
    seen = Traffic()
    engine = db.engine

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.statements.append(" ".join(statement.split()))

    def on_commit(conn: Any) -> None:
        seen.commits += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


def test_an_inline_submission_is_stored_classified_and_routed_in_one_commit(programme: Any) -> None:
    submit(sms("warm-up: the model loads once per app", "SM-WARM"))
    with traffic() as seen:
        result = submit(sms(QUESTION, "SM-ONE", phone="+254722000001"))  # another person: not a follow-up
    assert seen.commits == 1
    writes = [s.split()[0] for s in seen.statements if not s.startswith("SELECT")]
    assert writes == ["INSERT", "INSERT", "INSERT"]  # reporter, case, message: no UPDATE after the insert
    # The acknowledgement reads the committed case from memory: nothing is read back after the writes.
    assert [s.split()[0] for s in seen.statements[-3:]] == ["INSERT", "INSERT", "INSERT"]
    assert result.case.reference in result.acknowledgement
    db.session.expunge_all()
    case = db.session.scalars(select(Case).where(Case.reference == result.case.reference)).one()
    assert case.classification_status == "done"
    assert case.classification_attempts == 1
    assert case.category == "information_request" and case.queue == "general"
    assert case.text_plain == QUESTION and case.text_sealed is None
    assert case.version == 1  # written once


def test_a_restricted_submission_is_sealed_in_its_one_commit(programme: Any) -> None:
    with traffic() as seen:
        result = submit(sms("The driver said I must sleep with him or he will remove my name.", "SM-SEA"))
    assert seen.commits == 1
    db.session.expunge_all()
    case = db.session.scalars(select(Case).where(Case.reference == result.case.reference)).one()
    assert case.queue == "restricted" and case.classification_status == "done"
    assert case.text_plain is None and case.text_sealed is not None
    assert all(m.text_plain is None and m.text_sealed is not None for m in case.messages)
    assert not any("text_plain" in s and s.startswith("UPDATE") for s in seen.statements)


def test_a_failing_classifier_still_stores_the_case_in_one_commit(app: Flask, programme: Any) -> None:
    class Exploding:
        calls = 0

        def predict_one(self, text: str) -> Any:
            Exploding.calls += 1
            raise RuntimeError("boom")

    app.extensions["cfm_model"] = Exploding()
    with traffic() as seen:
        result = submit(sms("Please tell me what documents to bring", "SM-BOOM"))
    assert seen.commits == 1
    assert Exploding.calls == app.config["CLASSIFY_RETRIES"]
    db.session.expunge_all()
    case = db.session.scalars(select(Case).where(Case.reference == result.case.reference)).one()
    assert case.classification_status == "failed"
    assert case.classification_attempts == app.config["CLASSIFY_RETRIES"]
    assert case.queue == "restricted" and "unclassified" in (case.restricted_reasons or [])
    assert case.text_sealed is not None and case.text_plain is None
    assert counts() == {"case": 1, "message": 1, "reporter": 1}


def test_without_a_model_the_case_is_stored_for_manual_triage_in_one_commit(app: Flask, programme: Any) -> None:
    app.config["MODEL_PATH"] = "/nonexistent/model.skops"
    app.extensions.pop("cfm_model", None)
    with traffic() as seen:
        result = submit(sms("Thank you for the blankets and the tea", "SM-NOMODEL"))
    assert seen.commits == 1
    db.session.expunge_all()
    case = db.session.scalars(select(Case).where(Case.reference == result.case.reference)).one()
    assert case.classification_status == "failed" and case.queue == "restricted"
    assert case.text_plain is None


def test_the_sms_webhook_finds_the_programme_once_and_commits_once(twilio: Flask, client: FlaskClient) -> None:
    post(client, "/sms/twilio", inbound("warm-up: the model loads once per app", "SM" + "0" * 32))
    with twilio.app_context(), traffic() as seen:
        response = post(client, "/sms/twilio", inbound(QUESTION, "SM" + "1" * 32, phone="+254733000111"))
    assert response.status_code == 200
    assert seen.commits == 1
    assert seen.selects_from("programme") == 1  # the signature check's look-up serves submit() as well
    assert "Thank you" in response.get_data(as_text=True)
    # programme, duplicate check, open thread, then reporter, case and message: the TwiML is answered from memory
    # (issue 9: no read-back of the committed case, which on PostgreSQL also cost a second connection checkout).
    assert [s.split()[0] for s in seen.statements] == ["SELECT"] * 3 + ["INSERT"] * 3


def test_a_repeated_webhook_delivery_answers_from_the_stored_case_without_writing(
    twilio: Flask, client: FlaskClient
) -> None:
    form = inbound(QUESTION, "SM" + "2" * 32)
    first = post(client, "/sms/twilio", form)
    with twilio.app_context(), traffic() as seen:
        again = post(client, "/sms/twilio", form)
    assert again.get_data() == first.get_data()
    assert seen.commits == 0
    assert not [s for s in seen.statements if not s.startswith("SELECT")]
    with twilio.app_context():
        assert counts()["case"] == 1


def test_an_inline_submission_identifies_its_language_once(programme: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from cfm.services import intake
    from classifier import language

    submit(sms("warm-up: the model loads once per app", "SM-WARM-LANG"))
    calls: list[str] = []
    real = language.detect

    def counting(text: str) -> str:
        calls.append(text)
        return real(text)

    # The classifier calls classifier.language.detect, intake its own import of it: both are counted.
    monkeypatch.setattr(language, "detect", counting)
    monkeypatch.setattr(intake, "detect", counting)
    text = "Bonjour, quand est-ce que notre vol pour le Canada va partir ? Personne ne nous a rien dit."
    result = submit(sms(text, "SM-LANG", phone="+254722000002"))
    assert len(calls) == 1  # the classifier's identification serves the case as well
    assert result.case.language == "fr"
    calls.clear()
    digits = submit(sms("12345 678", "SM-DIGITS", phone="+254722000003"))
    assert digits.case.language is None  # no letters: intake still asks detect() itself, which says unknown
    assert calls == ["12345 678"]
