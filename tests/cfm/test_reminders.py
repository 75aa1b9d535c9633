"""Overdue reminders (issue 6): who is told, idempotence, email through a real SMTP server, the notice page."""

from __future__ import annotations

import dataclasses
import email
import socket
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message as EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cfm import jobs
from cfm.extensions import db
from cfm.models import AuditEvent, Case, Notice, User
from cfm.models.types import utcnow
from cfm.services import reminders, triage
from cfm.services.admin import create_programme
from tests.cfm.console.conftest import (  # noqa: F401 - fixtures used by name
    TOTP_SECRET,
    IsolatedClient,
    _fast_password_hashing,
    make_case,
    sign_in,
)
from tests.cfm.helpers import user
from tests.conftest import run_worker

GENERAL = "When is the pre-departure briefing for our family?"
RESTRICTED = "The interpreter touched me and said he would help my case if I came to his room at night."
PHONE = "+254711222333"


@dataclasses.dataclass
class Setup:
    """References of the cases and emails of the users."""

    cases: dict[str, str]
    users: dict[str, str]

    def user(self, name: str) -> User:
        """A fresh copy of a user."""
        db.session.expire_all()
        return db.session.scalars(select(User).where(User.email == self.users[name])).one()

    def case(self, name: str) -> Case:
        """A fresh copy of a case."""
        db.session.expire_all()
        return db.session.scalars(select(Case).where(Case.reference == self.cases[name])).one()

    def noticed(self, name: str) -> set[str]:
        """References a user has notices about."""
        db.session.expire_all()
        query = (
            select(Case.reference).join(Notice, Notice.case_id == Case.id).where(Notice.user_id == self.user(name).id)
        )
        return set(db.session.scalars(query))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """HTTP test client with a fresh app context per request (as in the console tests)."""
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def setup(ctx: Flask) -> Setup:
    """Kenya and Jordan, overdue and not overdue cases in both queues, supervisors, focal points and an officer."""
    ctx.extensions["cfm_model"] = None
    create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)
    create_programme("jordan", "Jordan family reunification", ["+962700000001"], language="ar")
    late = utcnow() - timedelta(hours=2)
    cases = {
        "kenya_general": make_case(GENERAL, "kenya", due_at=late),
        "kenya_restricted": make_case(RESTRICTED, "kenya", "sexual_exploitation_abuse", due_at=late),
        "jordan_general": make_case(GENERAL, "jordan", due_at=late),
        "jordan_restricted": make_case(RESTRICTED, "jordan", "fraud_corruption", due_at=late),
        "kenya_on_time": make_case(GENERAL, "kenya", due_at=utcnow() + timedelta(days=3)),
        "kenya_closed": make_case(GENERAL, "kenya", due_at=late, status="closed"),
    }
    people = {
        "supervisor": user("sup@example.org", "officer", "supervisor", programmes=("kenya",)),
        "supervisor_jordan": user("sup.jordan@example.org", "officer", "supervisor", programmes=("jordan",)),
        "officer": user("officer@example.org", "officer", programmes=("kenya",)),
        "focal": user("focal@example.org", "focal_point", programmes=("kenya",)),
        "focal_jordan": user("focal.jordan@example.org", "focal_point", programmes=("jordan",)),
        "admin": user("admin@example.org", "admin"),
    }
    for name in ("focal", "focal_jordan", "admin"):
        people[name].totp_secret = TOTP_SECRET
    db.session.commit()
    return Setup({k: c.reference for k, c in cases.items()}, {k: u.email for k, u in people.items()})


def test_supervisor_of_the_programme_is_notified_not_others(setup: Setup) -> None:
    result = reminders.run()
    assert result.overdue == result.reminded == 4 and result.unrouted == 0
    assert setup.noticed("supervisor") == {setup.cases["kenya_general"]}
    assert setup.noticed("supervisor_jordan") == {setup.cases["jordan_general"]}
    assert setup.noticed("officer") == set() and setup.noticed("admin") == set()
    assert setup.case("kenya_general").reminded_at is not None
    assert setup.case("kenya_on_time").reminded_at is None and setup.case("kenya_closed").reminded_at is None


def test_restricted_overdue_goes_to_focal_points_only(setup: Setup) -> None:
    both = user("both@example.org", "officer", "supervisor", "focal_point", programmes=("kenya",))
    reminders.run()
    assert setup.noticed("focal") == {setup.cases["kenya_restricted"]}
    assert setup.noticed("focal_jordan") == {setup.cases["jordan_restricted"]}
    for name in ("supervisor", "supervisor_jordan"):
        assert not setup.noticed(name) & {setup.cases["kenya_restricted"], setup.cases["jordan_restricted"]}
    setup.users["both"] = both.email
    assert setup.noticed("both") == {setup.cases["kenya_general"], setup.cases["kenya_restricted"]}


def notices() -> int:
    """Notice rows in the database."""
    return int(db.session.scalar(select(func.count()).select_from(Notice)) or 0)


def test_running_twice_notifies_nobody_twice(setup: Setup, app: Flask) -> None:
    first = reminders.run()
    assert first.notices == 4 and notices() == 4
    second = reminders.run()
    assert second.overdue == second.notices == second.recipients == 0 and notices() == 4
    # After the interval a case still overdue is reminded again; an unread notice is not repeated, a read one is.
    reminders.mark_read(setup.user("supervisor"))
    later = utcnow() + timedelta(hours=app.config["REMIND_INTERVAL_HOURS"], minutes=1)
    third = reminders.run(now=later)
    assert third.reminded == 4 and third.notices == 1 and notices() == 5
    assert reminders.run(now=later).overdue == 0
    runs = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "reminders.run")).all()
    assert [event.details["notices"] for event in runs] == [4, 0, 1, 0]


def test_a_new_due_date_that_passes_is_reminded_again(setup: Setup) -> None:
    reminders.run()
    case = setup.case("kenya_general")
    case.due_at = utcnow() + timedelta(minutes=1)  # e.g. the case moved queue and its service level was reset
    db.session.commit()
    reminders.mark_read(setup.user("supervisor"))
    assert reminders.run().overdue == 0
    result = reminders.run(now=utcnow() + timedelta(minutes=2))  # the new due date passed after the reminder
    assert result.reminded == 1 and setup.noticed("supervisor") == {case.reference}


def test_overdue_case_without_anyone_to_remind_is_counted_and_retried(setup: Setup) -> None:
    late = make_case(GENERAL, "jordan", due_at=utcnow() - timedelta(hours=1))
    supervisor = setup.user("supervisor_jordan")
    supervisor.active = False
    db.session.commit()
    result = reminders.run()
    assert result.unrouted == 2 and setup.case("jordan_general").reminded_at is None
    assert db.session.get(Case, late.id).reminded_at is None


@dataclasses.dataclass
class SmtpSink:
    """Messages a real SMTP server received."""

    host: str
    port: int
    messages: list[EmailMessage]


class _Handler:
    """aiosmtpd handler that keeps every message."""

    def __init__(self, sink: list[EmailMessage]) -> None:
        """Keep a reference to the list."""
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        """Store the parsed message."""
        self.sink.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server on a free local port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    received: list[EmailMessage] = []
    controller = Controller(_Handler(received), hostname="127.0.0.1", port=port)
    controller.start()
    yield SmtpSink("127.0.0.1", port, received)
    controller.stop()


def test_email_lists_counts_and_links_never_case_text(setup: Setup, app: Flask, smtp: SmtpSink) -> None:
    from cfm.services.intake import submit
    from tests.cfm.helpers import sms

    texted = submit(sms("Nobody told us the bus times for the camp transfer", "SM-rem-1", phone=PHONE)).case
    texted.due_at = utcnow() - timedelta(hours=3)
    texted.queue, texted.category = "general", "information_request"
    texted.set_sealed(False)
    db.session.commit()
    app.config.update(
        SMTP_HOST=smtp.host,
        SMTP_PORT=smtp.port,
        SMTP_STARTTLS=False,
        SMTP_FROM="cfm@example.org",
        PUBLIC_BASE_URL="https://cfm.example.org",
    )
    result = reminders.run()
    assert result.emails == 4 and result.email_failures == 0
    by_recipient = {message["To"]: message for message in smtp.messages}
    assert set(by_recipient) == {setup.users[n] for n in ("supervisor", "supervisor_jordan", "focal", "focal_jordan")}
    body = {to: message.get_payload(decode=True).decode() for to, message in by_recipient.items()}
    assert "Kenya resettlement: 2 cases overdue in the general queue" in body[setup.users["supervisor"]]
    assert "https://cfm.example.org/console/queue/general?overdue=1" in body[setup.users["supervisor"]]
    assert "1 restricted case overdue" in body[setup.users["focal"]]
    assert "https://cfm.example.org/console/queue/restricted?overdue=1" in body[setup.users["focal"]]
    assert by_recipient[setup.users["focal"]]["Subject"] == "CFM: 1 case is overdue"
    for text in body.values():
        for secret in (
            "briefing",
            "interpreter",
            "bus times",
            PHONE,
            "sexual",
            "exploitation",
            "fraud",
            "Jordan" if text is body[setup.users["supervisor"]] else "\x00",
        ):
            assert secret not in text
        for reference in setup.cases.values():
            assert reference not in text
    assert "restricted" not in body[setup.users["supervisor"]]
    reminders.run()
    assert len(smtp.messages) == 4  # nothing new to say: no second email


def test_without_smtp_only_notices(setup: Setup, app: Flask, smtp: SmtpSink) -> None:
    assert app.config["SMTP_HOST"] is None
    result = reminders.run()
    assert result.notices == 4 and result.emails == result.email_failures == 0 and smtp.messages == []


def test_unreachable_smtp_is_counted_not_raised(setup: Setup, app: Flask) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_STARTTLS=False)
    result = reminders.run()
    assert result.notices == 4 and result.emails == 0 and result.email_failures == 4


def test_notice_page_shows_only_the_users_notices_and_the_unread_count(client: FlaskClient, setup: Setup) -> None:
    reminders.run()
    sign_in(client, setup.users["supervisor"])
    page = client.get("/console/notices").data.decode()
    assert setup.cases["kenya_general"] in page
    for other in ("jordan_general", "kenya_restricted", "jordan_restricted"):
        assert setup.cases[other] not in page
    assert "briefing" not in page  # a notice never shows case text
    assert 'class="tab tool-notices is-current"' in page and 'title="Unread notices">1</span>' in page
    queue = client.get("/console/queue/general").data.decode()
    assert 'title="Unread notices">1</span>' in queue
    assert client.post("/console/notices/read", data={}).status_code == 302
    page = client.get("/console/notices").data.decode()
    assert "Unread notices" not in page and "0 unread notices" in page
    assert setup.cases["kenya_general"] in page  # still listed, now read


def test_notice_of_a_case_moved_out_of_sight_disappears(client: FlaskClient, setup: Setup) -> None:
    reminders.run()
    case = setup.case("kenya_general")
    triage.reclassify(case, "fraud_corruption", actor=setup.user("supervisor"), reason="a bribe was asked")
    sign_in(client, setup.users["supervisor"])
    page = client.get("/console/notices").data.decode()
    assert setup.cases["kenya_general"] not in page and "No notices" in page
    assert reminders.unread_count(setup.user("supervisor")) == 0


def test_roles_without_reminders_have_no_notice_link(client: FlaskClient, setup: Setup) -> None:
    reminders.run()
    sign_in(client, setup.users["officer"])
    queue = client.get("/console/queue/general").data.decode()
    assert "tool-notices" not in queue
    assert "No notices" in client.get("/console/notices").data.decode()


def test_cfm_remind_prints_counts(setup: Setup, app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["remind"])
    assert result.exit_code == 0, result.output
    assert (
        "4 overdue case(s) due a reminder, 4 reminded" in result.output
        and "4 notice(s) for 4 person(s)" in result.output
    )
    again = runner.invoke(args=["remind"])
    assert "0 overdue case(s)" in again.output


def test_worker_runs_reminders_on_a_schedule(redis_app: Flask, setup: Setup) -> None:
    from redis import Redis
    from rq import Queue
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    connection = Redis.from_url(redis_app.config["REDIS_URL"])
    rq_queue = Queue(redis_app.config["JOB_QUEUE"], connection=connection)

    def reminder_jobs(ids: list[str]) -> list[str]:
        """The ids among these that are reminder runs."""
        return [job.id for job in Job.fetch_many(ids, connection) if job and job.func_name == jobs.REMINDER_JOB]

    assert jobs.schedule_reminders() is True
    assert jobs.schedule_reminders() is True  # already waiting: not queued twice
    assert len(reminder_jobs(rq_queue.get_job_ids())) == 1
    run_worker(redis_app)  # also classifies the cases the setup filed (their jobs share the queue)
    assert setup.noticed("supervisor") == {setup.cases["kenya_general"]}
    scheduled = reminder_jobs(ScheduledJobRegistry(queue=rq_queue).get_job_ids())
    assert len(scheduled) == 1  # the next run, REMIND_EVERY_MINUTES from now
    assert jobs.schedule_reminders() is True
    assert reminder_jobs(ScheduledJobRegistry(queue=rq_queue).get_job_ids()) == scheduled
    ScheduledJobRegistry(queue=rq_queue).remove(scheduled[0], delete_job=True)
    connection.close()


def test_no_schedule_without_redis(app: Flask, ctx: Flask) -> None:
    assert jobs.schedule_reminders() is False
