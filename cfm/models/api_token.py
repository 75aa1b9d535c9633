"""API tokens for partner systems: hashed at rest, scoped to one programme, revocable."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cfm.extensions import db
from cfm.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from cfm.models.programme import Programme


class ApiToken(db.Model):  # type: ignore[name-defined]
    """One partner system's credential: only the SHA-256 of the token is stored; the token is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, so that an admin can tell tokens apart without the secret.
    token_prefix: Mapped[str] = mapped_column(String(16))
    # KoboToolbox field mapping for this partner's form ({"text": ["q1", ...], ...}); None: the configured default.
    field_map: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    programme: Mapped[Programme] = relationship()

    @property
    def active(self) -> bool:
        """True until revoked."""
        return self.revoked_at is None
