"""Classification as a job on a real Redis with RQ, and the inline fallback."""

from __future__ import annotations

from typing import Any

from flask import Flask

from cfm.extensions import db
from cfm.models import Case
from tests.cfm.helpers import send
from tests.conftest import run_worker


def test_with_redis_the_case_waits_out_of_the_general_queue_until_the_worker_classifies_it(
    redis_app: Flask, programme: Any
) -> None:
    case = send("What is the baggage allowance on the flight to Canada?").case
    assert case.queue == "pending" and case.classification_status == "pending"
    assert case.text_plain is None
    run_worker(redis_app)
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert case.classification_status == "done"
    assert case.queue == "general" and case.category == "information_request"
    assert case.text_plain is not None


def test_a_job_that_keeps_failing_is_retried_then_fails_closed(redis_app: Flask, programme: Any) -> None:
    class Exploding:
        calls = 0

        def predict_one(self, text: str) -> Any:
            Exploding.calls += 1
            raise RuntimeError("model crashed")

    redis_app.extensions["cfm_model"] = Exploding()
    case = send("Thanks for the warm welcome at the airport").case
    run_worker(redis_app)
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert Exploding.calls == redis_app.config["CLASSIFY_RETRIES"]
    assert case.classification_status == "failed"
    assert case.queue == "restricted"


def test_redis_down_falls_back_to_inline_classification(app: Flask, programme: Any) -> None:
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    case = send("Thank you for the hygiene kits and the blankets").case
    assert case.classification_status == "done"
    assert case.queue == "general"
