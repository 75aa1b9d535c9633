"""Surveys a programme publishes, and the answers people send."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cfm.extensions import db
from cfm.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from cfm.models.case import Case
    from cfm.models.programme import Programme


class Survey(db.Model):  # type: ignore[name-defined]
    """A survey definition (from cfm/surveys/*.yaml) published by one programme; the definition is copied."""

    __tablename__ = "survey"
    __table_args__ = (UniqueConstraint("programme_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    programme: Mapped[Programme] = relationship()


class SurveyResponse(db.Model):  # type: ignore[name-defined]
    """One person's answers: structured ones here (JSON); free text only in the linked case (sealed if restricted)."""

    __tablename__ = "survey_response"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id", ondelete="SET NULL"), index=True, default=None)
    survey_version: Mapped[int] = mapped_column(default=1)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    free_text_questions: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    submission_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    survey: Mapped[Survey] = relationship()
    case: Mapped[Case | None] = relationship()
