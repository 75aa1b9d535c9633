"""`cfm purge`: strip personal data from cases closed longer than the retention period ago (issue 8).

What goes: the reporter's name, phone, email and phone hash (once no unpurged case uses the reporter), the case
text (sealed or not: general text is in clear for search, and free text can identify people), the thread's text,
internal notes, the reasons given for changes, the keywords the classifier picked from the text, and contact or
media details in `extra`. What stays, for anonymous statistics: programme, channel, language, category and its
source, queue, priority, status, closure method, dates, the thread's size and direction, referrals' ids.

An opted-out reporter keeps its phone hash (a keyed HMAC, not the number) so that STOP still holds.
Each batch is one transaction; a purged case has `purged_at` set and is never selected again, so the command is
safe to interrupt and to run repeatedly. One audit event per run carries the counts and the references.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, or_, select, text, update

from cfm.extensions import db
from cfm.models import Case, CaseEvent, CaseNote, Message, Programme, Reporter
from cfm.models.case import FTS_TABLES
from cfm.models.types import utcnow
from cfm.services import audit

BATCH_SIZE = 500
# Keys of Case.extra that say nothing about the person (kept); everything else in it is dropped.
KEEP_EXTRA = ("ui_locale", "contact_method", "media_count", "recording_duration", "transcription_missing")


@dataclasses.dataclass
class PurgeReport:
    """What a run purged (or would purge, on a dry run)."""

    dry_run: bool = False
    cases: int = 0
    messages: int = 0
    notes: int = 0
    events: int = 0
    reporters: int = 0
    references: list[str] = dataclasses.field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The counters as a dict (for the audit event and the command's output)."""
        return {
            "cases": self.cases,
            "messages": self.messages,
            "notes": self.notes,
            "events": self.events,
            "reporters": self.reporters,
        }


def retention_days(programme: Programme) -> int | None:
    """Days a closed case keeps its personal data: the programme's own setting, else RETENTION_DAYS; None: forever."""
    days = programme.retention_days if programme.retention_days is not None else current_app.config["RETENTION_DAYS"]
    return int(days) if days is not None and int(days) > 0 else None


def _due_condition(now: datetime) -> Any:
    """SQL condition: closed, not yet purged, closed before its programme's cut-off."""
    per_programme = []
    for programme in db.session.scalars(select(Programme)):
        days = retention_days(programme)
        if days is not None:
            cutoff = now - timedelta(days=days)
            per_programme.append(and_(Case.programme_id == programme.id, Case.closed_at < cutoff))
    if not per_programme:
        return None
    return and_(Case.purged_at.is_(None), Case.status == "closed", Case.closed_at.is_not(None), or_(*per_programme))


def purge(*, dry_run: bool = False, batch_size: int = BATCH_SIZE, now: datetime | None = None) -> PurgeReport:
    """Purge every case due, batch by batch; write one audit event (unless nothing was due or it is a dry run)."""
    now = now or utcnow()
    report = PurgeReport(dry_run=dry_run)
    due = _due_condition(now)
    if due is None:
        return report
    after = 0
    while True:
        ids = list(
            db.session.scalars(select(Case.id).where(due, Case.id > after).order_by(Case.id).limit(batch_size))
        )
        if not ids:
            break
        after = ids[-1]
        _purge_batch(ids, report, now=now, dry_run=dry_run)
    if report.cases and not dry_run:
        audit.record(
            "retention.purge",
            object_type="case",
            details={**report.counts(), "references": report.references},
        )
        db.session.commit()
        _scrub_sqlite()
    return report


def _purge_batch(ids: list[int], report: PurgeReport, *, now: datetime, dry_run: bool) -> None:
    """Strip one batch of cases, their thread, notes, change reasons and (when free) their reporters."""
    cases = list(db.session.scalars(select(Case).where(Case.id.in_(ids)).order_by(Case.id)))
    report.cases += len(cases)
    report.references.extend(case.reference for case in cases)
    report.messages += _count(select(Message.id).where(Message.case_id.in_(ids)))
    report.notes += _count(select(CaseNote.id).where(CaseNote.case_id.in_(ids)))
    report.events += _count(select(CaseEvent.id).where(CaseEvent.case_id.in_(ids), CaseEvent.reason.is_not(None)))
    reporter_ids = {case.reporter_id for case in cases if case.reporter_id is not None}
    still_used = set(
        db.session.scalars(
            select(Case.reporter_id).where(
                Case.reporter_id.in_(reporter_ids), Case.purged_at.is_(None), Case.id.not_in(ids)
            )
        )
    )
    free = sorted(reporter_ids - still_used)
    report.reporters += len(free)
    if dry_run:
        db.session.rollback()
        return
    for case in cases:
        case.text_plain = None
        case.text_sealed = None
        case.top_terms = None
        case.category_hint = None
        case.extra = {k: v for k, v in (case.extra or {}).items() if k in KEEP_EXTRA} or None
        case.purged_at = now
    db.session.execute(
        update(Message)
        .where(Message.case_id.in_(ids))
        .values(text_plain=None, text_sealed=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(CaseNote).where(CaseNote.case_id.in_(ids)).values(body="").execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(CaseEvent)
        .where(CaseEvent.case_id.in_(ids))
        .values(reason=None)
        .execution_options(synchronize_session=False)
    )
    if free:
        db.session.execute(
            update(Reporter)
            .where(Reporter.id.in_(free))
            .values(name=None, phone=None, email=None)
            .execution_options(synchronize_session=False)
        )
        db.session.execute(
            update(Reporter)
            .where(Reporter.id.in_(free), Reporter.opted_out.is_(False))
            .values(phone_hash=None)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def _count(query: Any) -> int:
    """Rows a select() returns."""
    return len(list(db.session.scalars(query)))


def _scrub_sqlite() -> None:
    """On SQLite: merge the search indexes (dropping deleted entries) and empty the WAL into the zeroed file."""
    if db.engine.dialect.name != "sqlite":
        return
    with db.engine.connect() as connection:
        names = set(connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars())
        for name in FTS_TABLES:
            if name in names:
                optimize = f"INSERT INTO {name}({name}) VALUES ('optimize')"  # noqa: S608  # nosec B608: constant
                connection.execute(text(optimize))
        connection.commit()
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
