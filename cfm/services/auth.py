"""Console sign-in: argon2 password check, TOTP second factor, password change; each outcome audited.

Messages never say whether an email exists (no user enumeration) and the audit log never holds a password or
what was typed into the email field for an unknown account.
"""

from __future__ import annotations

import hashlib
import secrets

import pyotp
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from cfm.extensions import db
from cfm.models import User
from cfm.models.types import utcnow
from cfm.services import audit
from cfm.services.admin import MIN_PASSWORD_LENGTH

# Roles whose accounts open restricted content or change who can: a second factor is required (REQUIRE_2FA).
SECOND_FACTOR_ROLES = ("focal_point", "admin")
ISSUER = "CFM"
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but an unbounded password is a cheap denial of service
_dummy_hash: dict[str, str] = {}


class AuthError(ValueError):
    """A password change that cannot be done; the message (translated) says why."""


def _find(email: str) -> User | None:
    """The user with this email, compared in lower case."""
    normalised = (email or "").strip().lower()
    if not normalised or len(normalised) > 254:
        return None
    return db.session.scalars(select(User).where(User.email == normalised)).first()


def _spend_like_a_check(password: str) -> None:
    """Verify against a throwaway hash so that an unknown email costs as long as a wrong password."""
    probe = User(password_hash="")
    if "hash" not in _dummy_hash:
        probe.set_password(secrets.token_urlsafe(16))
        _dummy_hash["hash"] = probe.password_hash
    probe.password_hash = _dummy_hash["hash"]
    probe.check_password(password)


def authenticate(email: str, password: str) -> User | None:
    """The active user whose password matches, or None; a failure is audited without the password."""
    password = (password or "")[:MAX_PASSWORD_LENGTH]
    user = _find(email)
    if user is None:
        _spend_like_a_check(password)
        reason = "unknown_account"
    elif not user.check_password(password):
        reason = "bad_password"
    elif not user.active:
        reason = "inactive"
    else:
        return user
    audit.record(
        "login.failure",
        actor=None,
        object_type="user",
        object_ref=user.email if user is not None else None,
        details={"reason": reason},
    )
    db.session.commit()
    return None


def account_key(email: str) -> str:
    """Rate-limit key of an account: a hash of the typed email, so that the limiter's store holds no address."""
    return "login:" + hashlib.sha256((email or "").strip().lower().encode("utf-8")).hexdigest()[:32]


def needs_second_factor(user: User) -> bool:
    """True for users who enrolled a TOTP, and for focal points and admins when REQUIRE_2FA is on."""
    if user.totp_secret:
        return True
    return bool(current_app.config.get("REQUIRE_2FA", True)) and bool(set(user.roles or []) & set(SECOND_FACTOR_ROLES))


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret."""
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str | None:
    """The URI as an inline SVG QR code (segno, pure Python), or None when segno is not installed."""
    try:
        import segno
    except ImportError:  # pragma: no cover - segno is a declared dependency; the page then shows the key only
        return None
    return str(segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#14213d", light="#ffffff"))


def verify_totp(secret: str | None, code: str) -> bool:
    """True when the 6-digit code matches now or one step either side (clock drift)."""
    digits = "".join(ch for ch in (code or "") if ch.isdigit())
    if not secret or len(digits) != 6:
        return False
    return bool(pyotp.TOTP(secret).verify(digits, valid_window=1))


def second_factor_failed(user: User) -> None:
    """Audit a wrong TOTP code."""
    audit.record("login.failure", object_type="user", object_ref=user.email, details={"reason": "bad_totp"})
    db.session.commit()


def enrol_totp(user: User, secret: str, code: str) -> bool:
    """Store the secret once the user proves their app produces its codes."""
    if not verify_totp(secret, code):
        second_factor_failed(user)
        return False
    user.totp_secret = secret
    audit.record("user.totp_enrol", actor=user, object_type="user", object_ref=user.email)
    db.session.commit()
    return True


def login_succeeded(user: User, *, second_factor: bool) -> None:
    """Record the sign-in."""
    user.last_login_at = utcnow()
    audit.record("login.success", actor=user, object_type="user", object_ref=user.email, details={"2fa": second_factor})
    db.session.commit()


def logged_out(user: User, *, idle: bool = False) -> None:
    """Record the sign-out (by the user, or after the idle timeout)."""
    audit.record("logout", actor=user, object_type="user", object_ref=user.email, details={"idle": idle})
    db.session.commit()


def change_password(user: User, current: str, new: str, confirm: str) -> None:
    """Check the current password, then store the new one (argon2id); audited without either password."""
    if not user.check_password((current or "")[:MAX_PASSWORD_LENGTH]):
        raise AuthError(_("The current password is not right."))
    if new != confirm:
        raise AuthError(_("The two new passwords are not the same."))
    if len(new) < MIN_PASSWORD_LENGTH:
        raise AuthError(_("The new password must have at least %(count)d characters.", count=MIN_PASSWORD_LENGTH))
    if len(new) > MAX_PASSWORD_LENGTH:
        raise AuthError(_("The new password is too long."))
    if new == current:
        raise AuthError(_("The new password must differ from the current one."))
    user.set_password(new)
    audit.record("user.password_change", actor=user, object_type="user", object_ref=user.email)
    db.session.commit()
