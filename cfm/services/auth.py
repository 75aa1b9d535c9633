"""Console sign-in: argon2 password check, TOTP second factor, password change; each outcome audited.

Messages never say whether an email exists (no user enumeration) and the audit log never holds a password or
what was typed into the email field for an unknown account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta

import pyotp
from flask import current_app, has_request_context, session
from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from cfm.extensions import db
from cfm.models import User, UserSession
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
    if not normalised or len(normalised) > 254 or "\x00" in normalised:
        return None  # PostgreSQL refuses NUL in text: such an address is unknown, not a server error (issue 8)
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


def _totp_step(secret: str | None, code: str) -> int | None:
    """The time step (now or one either side) whose code this is, or None."""
    digits = "".join(ch for ch in (code or "") if ch.isdigit())
    if not secret or len(digits) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // totp.interval
    found = None
    for step in (now - 1, now, now + 1):  # every step compared, in constant time: no timing hint
        if hmac.compare_digest(totp.generate_otp(step), digits):
            found = step
    return found


def _claim_step(user: User, step: int) -> bool:
    """Record the step as used unless it, or a later one, already was: atomic, so two requests cannot share a code."""
    result = db.session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    db.session.refresh(user)
    return bool(getattr(result, "rowcount", 0) == 1)


def accept_totp(user: User, code: str) -> bool:
    """True when the code is right and was not used before (issue 8: a code is accepted once, V2.8.4 / V4.3.1)."""
    step = _totp_step(user.totp_secret, code)
    return step is not None and _claim_step(user, step)


def second_factor_failed(user: User) -> None:
    """Audit a wrong TOTP code."""
    audit.record("login.failure", object_type="user", object_ref=user.email, details={"reason": "bad_totp"})
    db.session.commit()


def enrol_totp(user: User, secret: str, code: str) -> bool:
    """Store the secret once the user proves their app produces its codes."""
    step = _totp_step(secret, code)
    if step is None:
        second_factor_failed(user)
        return False
    user.totp_secret = secret
    user.totp_last_step = step
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
    # Other sign-ins of this account end with the old password (this browser stays signed in).
    revoke_sessions(user, keep=session.get("sid") if has_request_context() else None)


# --- server-side sessions (issue 8, ASVS V3.2.1, V3.3.1, V3.3.2) ----------------------------------------------
# The session cookie carries a random id; the table keeps its SHA-256 only. Sign-out, deactivation, a password
# change and the idle timeout revoke the row, so a copied cookie is worthless afterwards, in every process.

SESSION_TOUCH_SECONDS = 60  # last_seen_at is written at most this often (idle timeout precision)


def _token_hash(token: str) -> str:
    """SHA-256 of a session id."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(user: User) -> str:
    """A new server-side session for the user; returns the id to put in the cookie."""
    token = secrets.token_urlsafe(32)
    db.session.add(UserSession(token_hash=_token_hash(token), user_id=user.id))
    db.session.commit()
    return token


def live_session(token: object, user_id: int) -> UserSession | None:
    """The unrevoked session with this id for this user, or None."""
    if not isinstance(token, str) or not token:
        return None
    record = db.session.scalars(select(UserSession).where(UserSession.token_hash == _token_hash(token))).first()
    if record is None or record.user_id != user_id or record.revoked_at is not None:
        return None
    return record


def session_idle(record: UserSession) -> bool:
    """True when the session was not used for CONSOLE_IDLE_MINUTES; otherwise note that it is used now."""
    now = utcnow()
    idle = timedelta(minutes=int(current_app.config.get("CONSOLE_IDLE_MINUTES", 30)))
    if now - record.last_seen_at > idle:
        return True
    if (now - record.last_seen_at).total_seconds() >= SESSION_TOUCH_SECONDS:
        record.last_seen_at = now
        db.session.commit()
    return False


def revoke_session(token: object) -> None:
    """End one server-side session (sign-out, idle timeout)."""
    if isinstance(token, str) and token:
        db.session.execute(
            update(UserSession)
            .where(UserSession.token_hash == _token_hash(token), UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def revoke_sessions(user: User, *, keep: object = None) -> int:
    """End every session of a user (deactivation, password change), except `keep`; returns how many."""
    query = update(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    if isinstance(keep, str) and keep:
        query = query.where(UserSession.token_hash != _token_hash(keep))
    result = db.session.execute(query.values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
