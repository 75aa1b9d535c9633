"""Console notices: what the system tells one staff member, such as an overdue case (issue 6)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cfm.extensions import db
from cfm.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from cfm.models.case import Case

NOTICE_KINDS = ("overdue",)


class Notice(db.Model):  # type: ignore[name-defined]
    """One notice for one user, optionally about one case; unread until read_at is set."""

    __tablename__ = "notice"
    __table_args__ = (Index("ix_notice_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    case: Mapped[Case | None] = relationship()
