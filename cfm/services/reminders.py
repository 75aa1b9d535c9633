"""Overdue reminders (issue 6): flag open cases past their due date and tell the people who must act.

General cases go to the supervisors of the case's programme; restricted and pending cases to the programme's
focal points only (a supervisor who is not a focal point never hears of them). Each recipient gets one console
notice per case and, when SMTP_HOST is configured, one email per run with counts and links: never case text,
reporter data or, for restricted cases, anything beyond their number. Who sees which case is decided by
access.visible_cases(recipient), as everywhere else.

A case is reminded once, then again every REMIND_INTERVAL_HOURS while it stays overdue (and once more if its
due date moved and passed again): running twice in a row notifies nobody twice. Each run writes one audit event
with its counts. `cfm remind` runs it; with RQ, cfm.jobs.remind_overdue runs it on a schedule.
"""

from __future__ import annotations

import dataclasses
import logging
import smtplib
from collections import Counter
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import cast

from flask import current_app
from sqlalchemy import Select, func, or_, select, text, update

from cfm.extensions import db
from cfm.models import Case, Notice, Programme, User
from cfm.models.case import QUEUE_GENERAL, QUEUE_PENDING, QUEUE_RESTRICTED
from cfm.models.types import utcnow
from cfm.services import audit
from cfm.services.access import visible_cases

log = logging.getLogger(__name__)

OVERDUE = "overdue"
# Which queues each receiving role hears about (shared/DESIGN.md: "escalated to the programme's supervisor").
RECEIVES: dict[str, tuple[str, ...]] = {
    "supervisor": (QUEUE_GENERAL,),
    "focal_point": (QUEUE_RESTRICTED, QUEUE_PENDING),
}
NOTICE_LIMIT = 200
LOCK_ID = 4242006  # PostgreSQL advisory lock: one reminder run at a time across workers and cron


@dataclasses.dataclass
class Summary:
    """What one recipient is told in this run: general cases per programme name, and a bare restricted count."""

    general: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    restricted: int = 0

    @property
    def total(self) -> int:
        """All cases in the summary."""
        return sum(n for _name, n in self.general) + self.restricted


@dataclasses.dataclass
class RunResult:
    """Counts of one run (printed by `cfm remind`, recorded in the audit event)."""

    overdue: int = 0
    reminded: int = 0
    unrouted: int = 0
    notices: int = 0
    recipients: int = 0
    emails: int = 0
    email_failures: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return dataclasses.asdict(self)


def may_receive(user: User) -> bool:
    """True for the roles that receive overdue reminders."""
    return bool(user.active and set(user.roles or []) & set(RECEIVES))


def _queues_for(user: User) -> set[str]:
    """The queues whose overdue cases this user hears about."""
    return {queue for role, queues in RECEIVES.items() if user.has_role(role) for queue in queues}


def due_for_reminder(now: datetime, interval: timedelta) -> Select[tuple[Case]]:
    """Open overdue cases never reminded, reminded before their current due date, or longer ago than interval."""
    return select(Case).where(
        Case.status != "closed",
        Case.due_at.is_not(None),
        Case.due_at < now,
        or_(Case.reminded_at.is_(None), Case.reminded_at < Case.due_at, Case.reminded_at <= now - interval),
    )


def run(now: datetime | None = None) -> RunResult:
    """One reminder run: notices (and emails) for the cases due a reminder; idempotent within the interval."""
    now = now or utcnow()
    interval = timedelta(hours=int(current_app.config.get("REMIND_INTERVAL_HOURS", 24)))
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
    result = RunResult()
    ids = list(db.session.scalars(due_for_reminder(now, interval).with_only_columns(Case.id)))
    result.overdue = len(ids)
    reached: set[int] = set()
    summaries: dict[int, Summary] = {}
    if ids:
        recipients = [u for u in db.session.scalars(select(User).where(User.active.is_(True))) if may_receive(u)]
        for user in recipients:
            summary, case_ids, created = _notify(user, ids)
            if case_ids:
                summaries[user.id] = summary
                reached.update(case_ids)
                result.notices += created
        if reached:
            db.session.execute(update(Case).where(Case.id.in_(sorted(reached))).values(reminded_at=now))
    result.reminded = len(reached)
    result.unrouted = result.overdue - result.reminded
    result.recipients = len(summaries)
    if result.unrouted:
        log.warning("%d overdue case(s) have no supervisor or focal point to remind", result.unrouted)
    audit.record("reminders.run", details=result.as_dict())
    db.session.commit()
    if summaries and current_app.config.get("SMTP_HOST"):
        _send_emails(summaries, result)
    return result


def _notify(user: User, ids: list[int]) -> tuple[Summary, list[int], int]:
    """Notices for the overdue cases this user may see in the queues they hear about: summary, cases, new notices."""
    queues = _queues_for(user)
    rows = db.session.execute(
        visible_cases(user)
        .where(Case.id.in_(ids), Case.queue.in_(sorted(queues)))
        .join(Programme, Programme.id == Case.programme_id)
        .with_only_columns(Case.id, Case.queue, Programme.name)
    ).all()
    if not rows:
        return Summary(), [], 0
    already = set(
        db.session.scalars(
            select(Notice.case_id).where(
                Notice.user_id == user.id,
                Notice.kind == OVERDUE,
                Notice.read_at.is_(None),
                Notice.case_id.in_([row[0] for row in rows]),
            )
        )
    )
    general: Counter[str] = Counter()
    created = 0
    restricted = 0
    for case_id, queue, programme in rows:
        if case_id not in already:  # an unread notice about the case stays, and is not repeated
            db.session.add(Notice(user_id=user.id, kind=OVERDUE, case_id=case_id))
            created += 1
        if queue == QUEUE_GENERAL:
            general[programme] += 1
        else:
            restricted += 1
    return Summary(sorted(general.items()), restricted), [row[0] for row in rows], created


def _send_emails(summaries: dict[int, Summary], result: RunResult) -> None:
    """One email per recipient over one SMTP connection; a failure is logged and counted, never raised."""
    from cfm.console.notices import overdue_email  # the words live with the console's strings

    config = current_app.config
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(list(summaries))))}
    try:
        with smtplib.SMTP(config["SMTP_HOST"], int(config.get("SMTP_PORT") or 25), timeout=30) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls()
            if config.get("SMTP_USER"):
                smtp.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
            for user_id, summary in summaries.items():
                user = users[user_id]
                subject, body = overdue_email(user, summary)
                message = EmailMessage()
                message["From"] = config.get("SMTP_FROM") or "cfm@localhost"
                message["To"] = user.email
                message["Subject"] = subject
                message.set_content(body)
                try:
                    smtp.send_message(message)
                    result.emails += 1
                except smtplib.SMTPException as exc:
                    result.email_failures += 1
                    log.error("reminder email to user %d refused: %s", user_id, type(exc).__name__)
    except (OSError, smtplib.SMTPException) as exc:
        result.email_failures += len(summaries) - result.emails
        log.error("reminder emails not sent: SMTP server unreachable (%s)", type(exc).__name__)


# --- the console's notice list ----------------------------------------------------------------------------------


def _mine(user: User) -> Select[tuple[Notice]]:
    """The user's notices about cases they may still open (a case moved out of their sight drops out)."""
    visible_ids = visible_cases(user).with_only_columns(Case.id)
    return select(Notice).where(
        Notice.user_id == user.id, or_(Notice.case_id.is_(None), Notice.case_id.in_(visible_ids))
    )


def notices_for(user: User) -> list[Notice]:
    """The user's latest notices, newest first."""
    query = _mine(user).order_by(Notice.created_at.desc(), Notice.id.desc()).limit(NOTICE_LIMIT)
    return cast(list[Notice], list(db.session.scalars(query)))


def unread_count(user: User) -> int:
    """Unread notices of the user (the number in the nav)."""
    query = _mine(user).where(Notice.read_at.is_(None)).with_only_columns(func.count())
    return int(db.session.scalar(query) or 0)


def mark_read(user: User, notice_id: int | None = None) -> int:
    """Mark one of the user's notices, or all of them, as read; returns how many changed."""
    query = update(Notice).where(Notice.user_id == user.id, Notice.read_at.is_(None)).values(read_at=utcnow())
    if notice_id is not None:
        query = query.where(Notice.id == notice_id)
    changed = int(getattr(db.session.execute(query), "rowcount", 0) or 0)
    db.session.commit()
    return changed
