"""A programme (an operation or mission) and the phone numbers that reach it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cfm.extensions import db
from cfm.models.types import Sealed, UTCDateTime, utcnow


class Programme(db.Model):  # type: ignore[name-defined]
    """An operation with its own numbers, language, time zone and service levels."""

    __tablename__ = "programme"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    default_language: Mapped[str] = mapped_column(String(16), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    is_default: Mapped[bool] = mapped_column(default=False)
    due_hours_restricted: Mapped[int | None] = mapped_column(default=None)
    due_hours_general: Mapped[int | None] = mapped_column(default=None)
    # Issue 6: the programme's own service level per category ({"safety_protection": 12, ...}, hours from receipt);
    # None or a missing category: the server's DUE_HOURS_BY_CATEGORY (cfm.services.routing.due_at).
    due_hours_by_category: Mapped[dict[str, int] | None] = mapped_column(JSON, default=None)
    retention_days: Mapped[int | None] = mapped_column(default=None)
    twilio_account_sid: Mapped[str | None] = mapped_column(String(64), default=None)
    twilio_auth_token: Mapped[str | None] = mapped_column(Sealed, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    numbers: Mapped[list[PhoneNumber]] = relationship(
        back_populates="programme", cascade="all, delete-orphan", order_by="PhoneNumber.number"
    )


class PhoneNumber(db.Model):  # type: ignore[name-defined]
    """An E.164 number (SMS, WhatsApp, voice) that belongs to one programme."""

    __tablename__ = "phone_number"

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)

    programme: Mapped[Programme] = relationship(back_populates="numbers")
