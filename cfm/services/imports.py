"""Hotline transcript import: a CSV / JSON-lines file -> one result per row (created, duplicate, rejected).

One bad row never stops the others; a transcript already imported (same transcript_id) is a duplicate, so that
importing the same file again creates nothing new; a dry run reports what would be created and stores nothing.
File-level problems (encoding, a missing column) raise ChannelError before any row is stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Collection
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from cfm.extensions import db
from cfm.models import Case, Message, Programme, User
from cfm.services import audit
from cfm.services.intake import IntakeUnavailable, resolve_programme, submit
from channels.base import ChannelError, IntakeRequest
from channels.hotline import parse_transcripts

log = logging.getLogger(__name__)

Outcome = Literal["created", "would_create", "duplicate", "rejected", "failed"]
OUTCOMES: Final = ("created", "would_create", "duplicate", "rejected", "failed")


@dataclasses.dataclass(frozen=True)
class RowResult:
    """What happened to one row: its number as the user sees it, the transcript id, and the case or the reason."""

    row: int
    outcome: Outcome
    transcript_id: str | None = None
    reference: str | None = None
    code: str | None = None
    reason: str | None = None
    # The queue a created case landed in, so that a page can say "sent to the focal points" without reading it.
    queue: str | None = None
    field: str | None = None  # the column a rejection is about, when it is about one


@dataclasses.dataclass
class ImportReport:
    """Per-row results of one import, in row order."""

    format: str
    dry_run: bool
    rows: list[RowResult] = dataclasses.field(default_factory=list)
    ignored_columns: list[str] = dataclasses.field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Rows per outcome (every outcome present, zero or not)."""
        found = Counter(result.outcome for result in self.rows)
        return {outcome: found.get(outcome, 0) for outcome in OUTCOMES}

    @property
    def ok(self) -> bool:
        """True when no row was rejected or failed."""
        counts = self.counts()
        return counts["rejected"] == 0 and counts["failed"] == 0


def import_transcripts(
    data: bytes,
    *,
    filename: str | None = None,
    fmt: str | None = None,
    programme: str | None = None,
    dry_run: bool = False,
    actor: User | None = None,
    allowed_programmes: Collection[str] | None = None,
) -> ImportReport:
    """Import a transcript file; `programme` (a slug) applies to rows that name none. ChannelError for the file.

    `allowed_programmes` (slugs; None: any) scopes an upload from the console to its user's programmes: a row
    that lands anywhere else is rejected. `actor` is named in the audit event.
    """
    if (
        programme is not None
        and db.session.scalars(select(Programme.id).where(Programme.slug == programme)).first() is None
    ) or (programme is not None and allowed_programmes is not None and programme not in allowed_programmes):
        raise ChannelError("unknown_programme", f"Unknown programme: {programme}.", field="programme")
    batch = parse_transcripts(data, filename=filename, fmt=fmt)
    report = ImportReport(format=batch.format, dry_run=dry_run, ignored_columns=list(batch.ignored_columns))
    for error in batch.errors:
        outcome: Outcome = "duplicate" if error.code == "duplicate" else "rejected"
        report.rows.append(
            RowResult(error.row, outcome, error.transcript_id, code=error.code, reason=error.message, field=error.field)
        )
    for row, request in batch.requests:
        if programme is not None and request.programme is None:
            request = dataclasses.replace(request, programme=programme)
        report.rows.append(_import_row(row, request, dry_run, allowed_programmes))
    report.rows.sort(key=lambda result: result.row)
    counts = report.counts()
    log.info("transcript import%s: %s", " (dry run)" if dry_run else "", counts)
    if not dry_run:
        _audit(data, filename, report, actor)
    return report


def _import_row(
    row: int, request: IntakeRequest, dry_run: bool, allowed_programmes: Collection[str] | None = None
) -> RowResult:
    """One row: a duplicate of an earlier import, created (or would be), or rejected with the reason."""
    transcript_id = request.provider_id
    try:
        if allowed_programmes is not None and resolve_programme(request).slug not in allowed_programmes:
            return RowResult(
                row, "rejected", transcript_id, code="programme_not_allowed", reason="Not one of your programmes."
            )
        existing = _existing(transcript_id)
        if existing is not None:
            return _duplicate(row, transcript_id, existing, allowed_programmes)
        if dry_run:
            resolve_programme(request)
            return RowResult(row, "would_create", transcript_id)
        result = submit(request)
    except ChannelError as exc:
        return RowResult(row, "rejected", transcript_id, code=exc.code, reason=exc.message, field=exc.field)
    except (IntakeUnavailable, SQLAlchemyError):
        db.session.rollback()
        return RowResult(row, "failed", transcript_id, code="unavailable", reason="The database is unavailable.")
    if not result.created:
        return _duplicate(row, transcript_id, result.case, allowed_programmes)
    return RowResult(row, "created", transcript_id, result.case.reference, queue=result.case.queue)


def _existing(transcript_id: str | None) -> Case | None:
    """The case a hotline transcript with this id was imported into, if any."""
    if not transcript_id:
        return None
    query = (
        select(Case)
        .join(Message, Message.case_id == Case.id)
        .where(Message.channel == "hotline", Message.provider_id == transcript_id)
    )
    return db.session.scalars(query).first()


def _duplicate(
    row: int, transcript_id: str | None, case: Case, allowed_programmes: Collection[str] | None
) -> RowResult:
    """A duplicate row; the earlier case's reference only when it belongs to one of the importer's programmes."""
    if allowed_programmes is not None and case.programme.slug not in allowed_programmes:
        return RowResult(row, "duplicate", transcript_id, None, "duplicate_hidden", "Already imported.")
    return RowResult(row, "duplicate", transcript_id, case.reference, "duplicate", "Already imported.")


def _audit(data: bytes, filename: str | None, report: ImportReport, actor: User | None = None) -> None:
    """One audit event per import: the file's digest, its name and the counts (never its content)."""
    try:
        audit.record(
            "transcripts.import",
            actor=actor,
            object_type="import",
            object_ref=hashlib.sha256(data).hexdigest()[:16],
            details={"file": os.path.basename(filename) if filename else None, **report.counts()},
        )
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("transcript import: the audit event could not be written")
