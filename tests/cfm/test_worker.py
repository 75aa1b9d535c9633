"""`cfm worker` (issue 9): jobs run in the worker's process with the model loaded once, each in a session of its own.

RQ's forking worker loaded the model and compiled the safety net again in every job (seconds each), and a new
Redis connection was opened for every enqueue; tests/test_scale_out.py is the end-to-end proof at 10,000.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy.orm import Session

from cfm import jobs
from cfm.extensions import db
from cfm.models import Case
from cfm.services import classification
from tests.cfm.helpers import send
from tests.conftest import REDIS_URL

TEXTS = (
    "What is the baggage allowance on the flight to Canada?",
    "Thank you for the warm welcome at the airport",
    "Where do we collect the hygiene kits for the children this week?",
)


def test_the_worker_loads_the_model_once_and_runs_each_job_in_a_session_of_its_own(
    redis_app: Flask, runner: FlaskCliRunner, programme: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_app.config["REMIND_EVERY_MINUTES"] = 0  # only the classification jobs on the queue
    ids = [send(text).case.id for text in TEXTS]
    assert {db.session.get(Case, case_id).classification_status for case_id in ids} == {"pending"}
    redis_app.extensions.pop("cfm_model", None)
    loads: list[Any] = []
    load_model = classification.load_model
    monkeypatch.setattr(classification, "load_model", lambda path: loads.append(path) or load_model(path))
    sessions: list[Session] = []
    classify_case = classification.classify_case

    def spy(case_id: int) -> Case | None:
        sessions.append(db.session())
        return classify_case(case_id)

    monkeypatch.setattr(classification, "classify_case", spy)

    result = runner.invoke(args=["worker", "--burst"])

    assert result.exit_code == 0, result.output
    assert len(loads) == 1  # at start (cfm.jobs.warm_up), not per job
    assert len(sessions) == len(TEXTS)
    assert len({id(session) for session in sessions}) == len(TEXTS)
    assert all(session is not db.session() for session in sessions)
    db.session.expire_all()
    assert {db.session.get(Case, case_id).classification_status for case_id in ids} == {"done"}


def test_job_code_run_inline_uses_the_callers_session(ctx: Flask) -> None:
    caller = db.session()
    with jobs.app_context():  # no RQ job running: inline, as without REDIS_URL or with Redis down
        assert db.session() is caller


def test_one_redis_client_per_process_and_url(redis_app: Flask) -> None:
    with redis_app.app_context():
        client = jobs.redis_connection()
        assert jobs.redis_connection() is client  # no new connection per enqueue
        assert client.ping()
        redis_app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
        assert jobs.redis_connection() is not client
        redis_app.config["REDIS_URL"] = REDIS_URL
        assert jobs.redis_connection() is client
