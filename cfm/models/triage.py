"""What officers and focal points add to a case: history events, internal notes, referrals (issue 6)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cfm.extensions import db
from cfm.models.types import Sealed, UTCDateTime, utcnow

if TYPE_CHECKING:
    from cfm.models.case import Case
    from cfm.models.user import User

# Kinds of history event shown on the case page.
EVENT_KINDS = ("status", "category", "queue", "assignment", "referral", "closure")


class CaseEvent(db.Model):  # type: ignore[name-defined]
    """One change to a case: who, when, from what to what, and why (the reason is sealed: it may name people)."""

    __tablename__ = "case_event"
    # The dashboard's first-response median reads the first status change of a stretch of cases from this index
    # alone, skipping every other kind of event (cfm/services/dashboard.py, issue 9).
    __table_args__ = (Index("ix_case_event_kind_old_case", "kind", "old_value", "case_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), default=None)
    kind: Mapped[str] = mapped_column(String(16))
    old_value: Mapped[str | None] = mapped_column(String(64), default=None)
    new_value: Mapped[str | None] = mapped_column(String(64), default=None)
    reason: Mapped[str | None] = mapped_column(Sealed, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
    actor: Mapped[User | None] = relationship()


class CaseNote(db.Model):  # type: ignore[name-defined]
    """An internal note, never sent to the person; sealed at rest whatever the queue."""

    __tablename__ = "case_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), default=None)
    body: Mapped[str] = mapped_column(Sealed)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
    author: Mapped[User | None] = relationship()


class Referral(db.Model):  # type: ignore[name-defined]
    """A restricted case referred to the organisation's misconduct-reporting platform, with that platform's id."""

    __tablename__ = "referral"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(64))
    referral_id: Mapped[str] = mapped_column(String(128))
    referred_on: Mapped[date] = mapped_column(Date)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship()
    actor: Mapped[User | None] = relationship()
