"""Console users: argon2 password hashes, roles, programme scope."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cfm.extensions import db
from cfm.models.types import Sealed, UTCDateTime, utcnow

if TYPE_CHECKING:
    from cfm.models.programme import Programme

ROLES = ("officer", "supervisor", "focal_point", "admin", "report_viewer")
_hasher = PasswordHasher()

user_programme = Table(
    "user_programme",
    db.metadata,
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    Column("programme_id", ForeignKey("programme.id", ondelete="CASCADE"), primary_key=True),
)


class User(db.Model):  # type: ignore[name-defined]
    """A staff member; no programmes means all programmes."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    totp_secret: Mapped[str | None] = mapped_column(Sealed, default=None)
    # The last TOTP time step accepted: a code is never accepted twice (ASVS V2.8.4 / V4.3.1, issue 8).
    totp_last_step: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    programmes: Mapped[list[Programme]] = relationship(secondary=user_programme)

    def set_password(self, password: str) -> None:
        """Hash with argon2id."""
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        """Verify against the stored argon2 hash (False on any mismatch or bad hash)."""
        try:
            return _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def has_role(self, role: str) -> bool:
        """True when the user holds the role."""
        return role in (self.roles or [])

    # Flask-Login's user protocol.
    @property
    def is_active(self) -> bool:
        """Deactivated users cannot log in."""
        return self.active

    @property
    def is_authenticated(self) -> bool:
        """Always true for a loaded user."""
        return True

    @property
    def is_anonymous(self) -> bool:
        """Never anonymous."""
        return False

    def get_id(self) -> str:
        """Session identifier."""
        return str(self.id)


class UserSession(db.Model):  # type: ignore[name-defined]
    """A console sign-in held server-side: the cookie carries a random id, the table its hash (issue 8, V3.3)."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
