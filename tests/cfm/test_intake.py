"""submit(): store first, then safety net, classifier and routing; idempotent; faults lose nothing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from cfm import create_app
from cfm.extensions import db
from cfm.models import Case, Message, Reporter
from cfm.services.intake import IntakeUnavailable, submit
from cfm.services.reference import normalise_reference
from channels.base import ChannelError, Contact, IntakeRequest
from tests.cfm.helpers import counts, send, sms, web


def test_general_feedback_is_stored_classified_and_routed_to_the_general_queue(programme: Any) -> None:
    result = send("When is our flight to Canada? Nobody told us the date of the departure.")
    case = result.case
    assert result.created
    assert normalise_reference(case.reference) == case.reference
    assert case.classification_status == "done"
    assert case.category == "information_request"
    assert case.category_source == "model"
    assert case.queue == "general"
    assert case.text_plain is not None and case.text_sealed is None
    assert case.due_at is not None and (case.due_at - case.received_at).days == 7  # information_request: 7 days
    assert case.reference in result.acknowledgement
    assert [m.direction for m in case.messages] == ["inbound"]


def test_abuse_report_goes_to_the_restricted_queue_sealed(programme: Any) -> None:
    result = send("The driver said I must sleep with him or he will remove my name from the bus list.")
    case = result.case
    assert case.queue == "restricted"
    assert case.category == "sexual_exploitation_abuse"
    assert case.priority == "urgent"
    assert case.text_plain is None and case.text_sealed is not None
    assert (case.due_at - case.received_at).total_seconds() == 72 * 3600


def test_safety_net_hit_is_restricted_even_when_the_model_is_missing(app: Flask, programme: Any) -> None:
    app.config["MODEL_PATH"] = "/nonexistent/model.skops"
    app.extensions.pop("cfm_model", None)
    case = send("The escort asked for money to keep our names on the list for the flight").case
    assert case.queue == "restricted"
    assert case.safety_net_category == "fraud_corruption"
    assert case.classification_status == "failed"


def test_without_a_model_cases_fail_closed_to_the_restricted_queue(app: Flask, programme: Any) -> None:
    app.config["MODEL_PATH"] = "/nonexistent/model.skops"
    app.extensions.pop("cfm_model", None)
    case = send("Thank you for the blankets and the tea at the transit centre").case
    assert case.classification_status == "failed"
    assert case.queue == "restricted"
    assert case.category is None
    assert "unclassified" in (case.restricted_reasons or [])


def test_submission_is_committed_before_classification(app: Flask, programme: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.skops"
    broken.write_bytes(b"not a model at all")
    app.config["MODEL_PATH"] = str(broken)
    app.extensions.pop("cfm_model", None)
    result = send("Where do I collect my hygiene kit?")
    db.session.expunge_all()
    stored = db.session.scalars(select(Case).where(Case.reference == result.case.reference)).one()
    assert stored.text == "Where do I collect my hygiene kit?"
    assert stored.queue != "general"


def test_a_classifier_that_raises_is_retried_then_fails_closed(app: Flask, programme: Any) -> None:
    class Exploding:
        calls = 0

        def predict_one(self, text: str) -> Any:
            Exploding.calls += 1
            raise RuntimeError("boom")

    app.extensions["cfm_model"] = Exploding()
    case = send("Please tell me what documents to bring").case
    assert Exploding.calls == app.config["CLASSIFY_RETRIES"]
    assert case.classification_status == "failed"
    assert case.queue == "restricted"


def test_same_provider_id_twice_returns_the_same_case_and_acknowledgement(programme: Any) -> None:
    first = submit(sms("hello when is the bus", "SM0001"))
    again = submit(sms("hello when is the bus", "SM0001"))
    assert again.case.id == first.case.id
    assert again.acknowledgement == first.acknowledgement
    assert not again.created
    assert counts() == {"case": 1, "message": 1, "reporter": 1}


def test_same_provider_id_on_another_channel_is_another_case(programme: Any) -> None:
    submit(sms("hello", "ID-1"))
    submit(IntakeRequest(channel="whatsapp", text="hello", provider_id="ID-1", to_number="whatsapp:+254700000001"))
    assert counts()["case"] == 2


def test_anonymous_submission_has_no_reporter(programme: Any) -> None:
    case = send("Suggestion: put a water point near the buses").case
    assert case.reporter is None
    assert counts()["reporter"] == 0


def test_contact_is_stored_sealed_with_a_lookup_hash(programme: Any) -> None:
    case = send(
        "Please call me about my wheelchair",
        contact=Contact(name="Amina", phone="+254722222222"),
        consent_to_contact=True,
    ).case
    reporter = db.session.get(Reporter, case.reporter_id)
    assert reporter is not None and reporter.phone == "+254722222222" and reporter.consent_to_contact
    raw = db.session.execute(text("SELECT phone, name, phone_hash FROM reporter")).one()
    assert "254722222222" not in raw.phone and "Amina" not in raw.name
    assert len(raw.phone_hash) == 64 and "254722222222" not in raw.phone_hash


def test_the_to_number_selects_the_programme(ctx: Flask) -> None:
    from cfm.services.admin import create_programme

    create_programme("kenya", "Kenya", ["+254700000001"])
    uganda = create_programme("uganda", "Uganda", ["+256700000001"])
    case = submit(sms("hello", "SM9", to="+256700000001")).case
    assert case.programme_id == uganda.id
    with pytest.raises(ChannelError) as info:
        submit(sms("hello", "SM10", to="+999000000"))
    assert info.value.code == "unknown_programme"
    with pytest.raises(ChannelError):
        send("no default programme among two")


@pytest.mark.parametrize(
    "bad", ["", "   ", "x" * 5001, "nul\x00byte", "lone \ud800 surrogate", b"\xff\xfe invalid utf-8"]
)
def test_bad_input_is_refused_and_nothing_is_stored(programme: Any, bad: Any) -> None:
    with pytest.raises(ChannelError):
        submit(web(bad))
    assert counts() == {"case": 0, "message": 0, "reporter": 0}


def test_database_gone_gives_a_retryable_error_and_no_acknowledgement(backend: str, tmp_path: Path) -> None:
    url = (
        f"sqlite:///{tmp_path / 'missing-dir' / 'cfm.sqlite'}"
        if backend == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    )
    app = create_app({"TESTING": True, "DATABASE_URL": url, "ENCRYPTION_KEYS": None})
    from cfm.services.crypto import generate_keys

    app.config.update(generate_keys())
    with app.app_context(), pytest.raises(IntakeUnavailable):
        submit(sms("hello, when is the flight", "SM-DOWN"))


def test_two_identical_submissions_at_once_make_exactly_one_case(app: Flask, programme: Any) -> None:
    barrier = threading.Barrier(6)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results.append(submit(sms("is the bus late today", "SM-RACE")).case.reference)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == 6 and len(set(results)) == 1
    assert counts()["case"] == 1
    assert db.session.scalars(select(Message.provider_id)).all() == ["SM-RACE"]


def test_the_person_choosing_something_serious_sends_the_case_to_the_restricted_queue(programme: Any) -> None:
    case = send("I need to talk to someone privately about the escort", category_hint="serious").case
    assert case.queue == "restricted"
    assert "reporter_flagged" in (case.restricted_reasons or [])
    assert case.text_plain is None
