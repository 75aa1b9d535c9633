"""The database (and Redis) going away (issue 8): a retryable answer, nothing half-written, the retry succeeds once.

PostgreSQL is really stopped and started with pg_ctlcluster. Not the shared `main` cluster: the other test runs on
this machine use it, and stopping it under them would fail their tests at random. A throwaway cluster of the same
PostgreSQL installation is created for this module (pg_createcluster, trust auth on 127.0.0.1, a free port) and
dropped afterwards; every test starts it again in a `finally`, so no failure leaves it stopped. On SQLite the
outage is a lock held by another connection (running as root, file permissions would not stop a writer).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from cfm import create_app
from cfm.api.tokens import create_token
from cfm.extensions import db
from cfm.models import AuditEvent, Case, Message, Reporter
from cfm.services.admin import create_programme
from cfm.services.crypto import generate_keys
from classifier.predict import DEFAULT_MODEL_PATH, Model, load_model
from tests.cfm.helpers import send
from tests.cfm.public.conftest import reference_in, token_in
from tests.cfm.webhooks.support import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, inbound, messages, post
from tests.conftest import REDIS_URL, run_worker

WEB_TEXT = "The water point at the transit centre has been broken for three days."
SMS_TEXT = "When is the medical check for my family before the flight?"
API_TEXT = "Thank you for the interpreter at the airport, it helped my mother."
SMS_SID = "SM" + "4" * 32
CLOSED_REDIS = "redis://127.0.0.1:6390/0"  # nothing listens there


# --- a PostgreSQL cluster of our own ----------------------------------------------------------------------------


@dataclasses.dataclass
class Cluster:
    """A throwaway PostgreSQL cluster that the tests stop and start for real."""

    version: str
    name: str
    port: int

    def ctl(self, action: str) -> None:
        """pg_ctlcluster start|stop (fast shutdown: open connections are cut, as in a crash or failover)."""
        command = ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action]
        if action == "stop":
            command += ["-m", "fast"]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def accepts_connections(self) -> bool:
        """True when a connection can be made."""
        try:
            with psycopg.connect(self.dsn, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def start(self) -> None:
        """Start (if stopped) and wait until it accepts connections."""
        if not self.accepts_connections():
            status = subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "status"],
                capture_output=True,
                timeout=30,
            )
            if status.returncode != 0:
                self.ctl("start")
        deadline = time.monotonic() + 60
        while not self.accepts_connections():
            assert time.monotonic() < deadline, "PostgreSQL did not come back within a minute"
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop now; connections are refused until start()."""
        self.ctl("stop")
        assert not self.accepts_connections()

    @property
    def dsn(self) -> str:
        """libpq connection string."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def url(self) -> str:
        """SQLAlchemy URL (short connect timeout: a dead server must not hold a request for long)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres?connect_timeout=3"

    @contextmanager
    def down(self) -> Iterator[None]:
        """Stopped inside the block, started again (and reachable) after it, whatever happens."""
        self.stop()
        try:
            yield
        finally:
            self.start()


def _free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A fresh cluster for this module; dropped at the end even when a test failed."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    made = Cluster(version, f"cfm_outage_{os.getpid()}", _free_port())
    subprocess.run(
        ["pg_createcluster", version, made.name, "-p", str(made.port), "--start", "--", "--auth=trust"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        made.start()
        yield made
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, made.name], capture_output=True, timeout=120)


# --- the app under test -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Setup:
    """The app, a client, an API token and a way to take the database away."""

    app: Flask
    client: FlaskClient
    api_token: str
    outage: Callable[[], AbstractContextManager[None]]


def _make_app(url: str) -> tuple[Flask, str]:
    """An app on `url` with fresh tables, the default programme, a Twilio account and an API token."""
    app = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "DATABASE_URL": url,
            "REDIS_URL": None,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            **generate_keys(),
        }
    )
    app.extensions["cfm_model"] = None  # no model: cases fail closed at once (the outage is what is tested)
    with app.app_context():
        db.drop_all()
        db.create_all()
        create_programme("kenya", "Kenya resettlement", [OUR_NUMBER], language="sw", is_default=True)
        _row, secret = create_token("kenya", "outage partner")
    return app, secret


@pytest.fixture
def on_postgresql(cluster: Cluster) -> Iterator[Setup]:
    """The app on the throwaway cluster; the outage really stops PostgreSQL."""
    cluster.start()
    app, secret = _make_app(cluster.url)
    yield Setup(app, app.test_client(), secret, cluster.down)
    cluster.start()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Iterator[Setup]:
    """The app on a SQLite file; the outage is another connection holding the write lock."""
    path = tmp_path / "cfm.sqlite"
    app, secret = _make_app(f"sqlite:///{path}")
    with app.app_context():
        # Fail in a fifth of a second instead of the production 10 s wait (the pragma is set after ours runs).
        event.listen(db.engine, "connect", _short_busy_timeout)
        db.engine.dispose()

    @contextmanager
    def locked() -> Iterator[None]:
        holder = sqlite3.connect(path, timeout=5, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # takes the write lock, as a long import or a backup would
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    yield Setup(app, app.test_client(), secret, locked)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
    """PRAGMA busy_timeout of 200 ms for this test's engine."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=200")
    cursor.close()


@pytest.fixture(params=["postgresql", "sqlite"])
def setup(request: pytest.FixtureRequest) -> Setup:
    """Each test on both backends."""
    return request.getfixturevalue(f"on_{request.param}")  # type: ignore[no-any-return]


# --- helpers ----------------------------------------------------------------------------------------------------


def rows(app: Flask) -> dict[str, int]:
    """Rows of every table a submission writes to."""
    with app.app_context():
        tables = {"case": Case, "message": Message, "reporter": Reporter, "audit": AuditEvent}
        counts = {
            name: db.session.scalar(select(func.count()).select_from(model)) or 0 for name, model in tables.items()
        }
        db.session.remove()
    return counts


@dataclasses.dataclass
class Submissions:
    """The same three submissions, replayed: web form (with its idempotency token), Twilio SMS, partner API."""

    web: dict[str, str]
    sms: dict[str, str]
    api: dict[str, str]


def prepare(setup: Setup) -> Submissions:
    """Load the form (its token) while the database is up."""
    token = token_in(setup.client.get("/en/feedback").data)
    return Submissions(
        web={"text": WEB_TEXT, "submission": token},
        sms=inbound(SMS_TEXT, SMS_SID),
        api={"text": API_TEXT, "external_id": "kobo-outage-1"},
    )


def bearer(token: str) -> dict[str, str]:
    """Authorization header for the API."""
    return {"Authorization": f"Bearer {token}"}


def submit_all(setup: Setup, sub: Submissions) -> dict[str, Any]:
    """Send all three; the raw responses."""
    client = setup.client
    return {
        "web": client.post("/en/feedback", data=sub.web),
        "sms": post(client, "/sms/twilio", sub.sms),
        "api": client.post("/api/v1/feedback", json=sub.api, headers=bearer(setup.api_token)),
    }


def assert_refused_for_retry(responses: dict[str, Any]) -> None:
    """Web and API: 503 with Retry-After; Twilio: a 5xx and no acknowledgement, so that Twilio retries."""
    web, sms, api = responses["web"], responses["sms"], responses["api"]
    assert web.status_code == 503, web.data[:300]
    assert int(web.headers["Retry-After"]) > 0
    assert web.mimetype == "text/html"
    assert b'id="reference"' not in web.data
    assert 500 <= sms.status_code < 600
    assert b"<Message>" not in sms.data
    assert api.status_code == 503, api.data[:300]
    assert int(api.headers["Retry-After"]) > 0
    assert api.get_json()["error"] == "unavailable"


def assert_accepted_once(setup: Setup, sub: Submissions, before: dict[str, int]) -> None:
    """The retries succeed; a second retry of each answers the same case and stores nothing more."""
    first = submit_all(setup, sub)
    assert first["web"].status_code == 200 and first["sms"].status_code == 200, first["sms"].data[:300]
    assert first["api"].status_code == 201
    references = {
        "web": reference_in(first["web"].data),
        "sms": messages(first["sms"])[0],
        "api": first["api"].get_json()["reference"],
    }
    again = submit_all(setup, sub)
    assert reference_in(again["web"].data) == references["web"]
    assert messages(again["sms"])[0] == references["sms"]
    assert again["api"].status_code == 200 and again["api"].get_json()["reference"] == references["api"]
    after = rows(setup.app)
    assert after["case"] == before["case"] + 3
    assert after["message"] == before["message"] + 3
    with setup.app.app_context():
        stored = {c.channel: c for c in db.session.scalars(select(Case))}
        assert set(stored) == {"web", "sms", "api"}
        assert stored["sms"].reference in references["sms"]
        assert stored["web"].text == WEB_TEXT and stored["api"].text == API_TEXT
        assert all(c.queue == "restricted" for c in stored.values())  # no model: failed closed, never lost
        db.session.remove()


# --- the tests ----------------------------------------------------------------------------------------------------


def test_with_the_database_down_every_channel_gets_a_retryable_error_and_the_retry_succeeds_once(
    setup: Setup,
) -> None:
    sub = prepare(setup)
    before = rows(setup.app)
    with setup.outage():
        assert_refused_for_retry(submit_all(setup, sub))
    assert rows(setup.app) == before  # nothing half-written
    assert_accepted_once(setup, sub, before)


@contextmanager
def outage_at_first_case_flush(outage: Callable[[], AbstractContextManager[None]]) -> Iterator[list[str]]:
    """Take the database away at the moment a request is about to write its case (mid-request); back after."""
    taken: list[str] = []
    stack: list[AbstractContextManager[None]] = []

    def cut(session: Session, *_: Any) -> None:
        if not taken and any(isinstance(obj, Case) for obj in session.new):
            taken.append("cut")
            manager = outage()
            manager.__enter__()
            stack.append(manager)

    event.listen(Session, "before_flush", cut)
    try:
        yield taken
    finally:
        event.remove(Session, "before_flush", cut)
        while stack:
            stack.pop().__exit__(None, None, None)


@pytest.mark.parametrize("channel", ["web", "sms", "api"])
def test_the_database_going_away_mid_request_leaves_nothing_half_written(setup: Setup, channel: str) -> None:
    sub = prepare(setup)
    before = rows(setup.app)
    client = setup.client
    with outage_at_first_case_flush(setup.outage) as taken:
        if channel == "web":
            response = client.post("/en/feedback", data=sub.web)
        elif channel == "sms":
            response = post(client, "/sms/twilio", sub.sms)
        else:
            response = client.post("/api/v1/feedback", json=sub.api, headers=bearer(setup.api_token))
    assert taken == ["cut"]  # the database really went away after the request had read from it
    assert 500 <= response.status_code < 600
    assert response.status_code == 503
    if channel != "sms":
        assert int(response.headers["Retry-After"]) > 0
    assert rows(setup.app) == before
    assert_accepted_once(setup, sub, before)


def test_postgresql_is_running_again_after_the_outage_tests(cluster: Cluster) -> None:
    assert cluster.accepts_connections()


# --- Redis going away -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> Model:
    """The shipped model, loaded once for the Redis tests (classification really runs)."""
    loaded = load_model(DEFAULT_MODEL_PATH)
    assert loaded is not None
    return loaded


def test_with_redis_unreachable_intake_classifies_inline_with_one_clear_log_line(
    app: Flask, programme: Any, model: Model, caplog: pytest.LogCaptureFixture
) -> None:
    app.config["REDIS_URL"] = CLOSED_REDIS
    app.extensions["cfm_model"] = model
    caplog.set_level(logging.INFO)
    result = send(WEB_TEXT)
    assert result.created
    case = db.session.get(Case, result.case.id)
    assert case is not None and case.classification_status == "done"
    fallback = [r for r in caplog.records if "job queue unreachable" in r.getMessage()]
    assert len(fallback) == 1
    assert fallback[0].levelno == logging.ERROR
    assert "classify_case" in fallback[0].getMessage()
    assert all(WEB_TEXT not in r.getMessage() for r in caplog.records)


def test_redis_going_away_and_coming_back_loses_nothing(redis_app: Flask, programme: Any, model: Model) -> None:
    redis_app.extensions["cfm_model"] = model
    queued = send("When is the pre-departure briefing for our family?").case
    assert queued.classification_status == "pending"  # waiting on the real Redis for a worker
    redis_app.config["REDIS_URL"] = CLOSED_REDIS  # Redis gone for the next submission
    inline = send("Thank you for the blankets and the hygiene kits.").case
    assert inline.classification_status == "done"
    redis_app.config["REDIS_URL"] = REDIS_URL  # back: the worker drains what was queued before
    run_worker(redis_app)
    db.session.expire_all()
    assert db.session.get(Case, queued.id).classification_status == "done"  # type: ignore[union-attr]
    assert db.session.scalar(select(func.count()).select_from(Case)) == 2
