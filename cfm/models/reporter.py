"""The person who wrote: every personal field sealed; phone found through a keyed hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from cfm.extensions import db
from cfm.models.types import Sealed, UTCDateTime, utcnow


class Reporter(db.Model):  # type: ignore[name-defined]
    """Contact details (encrypted), consent, preferred language and opt-out."""

    __tablename__ = "reporter"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(Sealed, default=None)
    phone: Mapped[str | None] = mapped_column(Sealed, default=None)
    email: Mapped[str | None] = mapped_column(Sealed, default=None)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    consent_to_contact: Mapped[bool] = mapped_column(default=False)
    preferred_language: Mapped[str | None] = mapped_column(String(16), default=None)
    opted_out: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
