"""Programmes, users and the schema: the admin operations the CLI and the console share."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from cfm.extensions import db
from cfm.models import ROLES, ApiToken, AuditEvent, PhoneNumber, Programme, User
from cfm.services import audit
from classifier.categories import CATEGORIES, is_restricted

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MIN_PASSWORD_LENGTH = 12
MAX_DUE_HOURS = 365 * 24  # a service level of at most a year


class AdminError(ValueError):
    """An admin operation that cannot be done; the message says why (in English, for the CLI).

    `code` and `params` let the console show the reason in the officer's language (cfm/console/admin.py).
    """

    def __init__(self, message: str, code: str | None = None, **params: Any) -> None:
        """Keep the English message, a stable code and the values the translated message needs."""
        super().__init__(message)
        self.code = code
        self.params = params


def upgrade_schema() -> None:
    """Create or upgrade the schema with the Alembic migrations."""
    from flask_migrate import upgrade

    from cfm import MIGRATIONS_DIR

    upgrade(directory=MIGRATIONS_DIR)


def create_programme(
    slug: str,
    name: str,
    numbers: Iterable[str] = (),
    *,
    language: str = "en",
    timezone: str = "UTC",
    is_default: bool = False,
    actor: User | None = None,
) -> Programme:
    """Create a programme with its E.164 numbers."""
    if not SLUG.match(slug):
        raise AdminError("The slug must be lower-case letters, digits and hyphens.", "slug")
    numbers = list(numbers)
    bad = [n for n in numbers if not E164.match(n)]
    if bad:
        raise AdminError(
            f"Not an E.164 number: {', '.join(bad)} (write it like +254700000000).", "e164", numbers=", ".join(bad)
        )
    programme = Programme(slug=slug, name=name, default_language=language, timezone=timezone, is_default=is_default)
    programme.numbers = [PhoneNumber(number=n) for n in dict.fromkeys(numbers)]
    try:
        db.session.add(programme)
        db.session.flush()
        audit.record(
            "programme.create", actor=actor, object_type="programme", object_ref=slug, details={"numbers": len(numbers)}
        )
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise AdminError(
            "A programme with this slug or one of these numbers already exists.", "programme_exists"
        ) from exc
    return programme


def list_programmes() -> list[Programme]:
    """All programmes by slug."""
    return list(db.session.scalars(select(Programme).order_by(Programme.slug)))


def create_user(
    email: str,
    password: str,
    roles: Iterable[str],
    programme_slugs: Iterable[str] = (),
    *,
    actor: User | None = None,
    reason: str | None = None,
) -> User:
    """Create an active user; no programmes means all programmes."""
    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AdminError(f"Not a valid email address: {exc}", "email_invalid") from exc
    roles = _check_roles(roles)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AdminError(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
            "password_short",
            count=MIN_PASSWORD_LENGTH,
        )
    slugs = list(dict.fromkeys(programme_slugs))
    found = _programmes(slugs)
    user = User(email=email, roles=roles, programmes=found)
    user.set_password(password)
    try:
        db.session.add(user)
        db.session.flush()
        audit.record(
            "user.create",
            actor=actor,
            object_type="user",
            object_ref=email,
            details=with_reason({"roles": roles, "programmes": slugs}, reason),
        )
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise AdminError("A user with this email already exists.", "email_taken") from exc
    return user


# --- console administration (issue 6): every change names its actor and, when given, why ------------------------

LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
MAX_REASON = 500
AUDIT_PAGE = 50


def with_reason(details: dict[str, Any], reason: str | None) -> dict[str, Any]:
    """Audit details with the admin's reason, when one was given."""
    reason = (reason or "").strip()
    return {**details, "reason": reason[:MAX_REASON]} if reason else details


def _check_roles(roles: Iterable[str]) -> list[str]:
    """Known roles, at least one, without duplicates."""
    roles = list(dict.fromkeys(roles))
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise AdminError(f"Roles must be among: {', '.join(ROLES)}.", "roles")
    return roles


def _programmes(slugs: list[str]) -> list[Programme]:
    """The programmes with these slugs; AdminError naming any that does not exist."""
    found = list(db.session.scalars(select(Programme).where(Programme.slug.in_(slugs)))) if slugs else []
    missing = sorted(set(slugs) - {p.slug for p in found})
    if missing:
        raise AdminError(f"Unknown programme: {', '.join(missing)}.", "unknown_programme", slugs=", ".join(missing))
    return found


def generate_password() -> str:
    """A random initial password (20 URL-safe characters), shown once to the admin who creates the account."""
    return secrets.token_urlsafe(15)


def list_users() -> list[User]:
    """All users by email."""
    return list(db.session.scalars(select(User).order_by(User.email)))


def get_user(user_id: int) -> User | None:
    """One user by id."""
    return db.session.get(User, user_id)


def get_programme(slug: str) -> Programme | None:
    """One programme by slug."""
    return db.session.scalars(select(Programme).where(Programme.slug == slug)).first()


def update_user(
    user: User, roles: Iterable[str], programme_slugs: Iterable[str], *, actor: User, reason: str | None = None
) -> User:
    """Change a user's roles and programmes; an admin cannot take the admin role from themselves (lock-out)."""
    roles = _check_roles(roles)
    if user.id == actor.id and "admin" not in roles:
        raise AdminError("You cannot remove your own admin role.", "self_lockout")
    slugs = list(dict.fromkeys(programme_slugs))
    found = _programmes(slugs)
    old_roles, old_slugs = list(user.roles or []), sorted(p.slug for p in user.programmes)
    user.roles = roles
    user.programmes = found
    audit.record(
        "user.update",
        actor=actor,
        object_type="user",
        object_ref=user.email,
        details=with_reason(
            {"roles": {"old": old_roles, "new": roles}, "programmes": {"old": old_slugs, "new": sorted(slugs)}}, reason
        ),
    )
    db.session.commit()
    return user


def set_user_active(user: User, active: bool, *, actor: User, reason: str | None = None) -> User:
    """Deactivate or reactivate; a deactivated user's sessions end at their next request (the user_loader)."""
    if user.id == actor.id and not active:
        raise AdminError("You cannot deactivate your own account.", "self_lockout")
    if user.active != active:
        user.active = active
        action = "user.reactivate" if active else "user.deactivate"
        audit.record(action, actor=actor, object_type="user", object_ref=user.email, details=with_reason({}, reason))
        db.session.commit()
    return user


def reset_second_factor(user: User, *, actor: User, reason: str | None = None) -> User:
    """Forget the user's TOTP secret: they enrol a new authenticator at their next sign-in."""
    user.totp_secret = None
    details = with_reason({}, reason)
    audit.record("user.totp_reset", actor=actor, object_type="user", object_ref=user.email, details=details)
    db.session.commit()
    return user


def check_timezone(name: str) -> str:
    """An IANA time zone name."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AdminError(f"Unknown time zone: {name}.", "timezone", timezone=name) from exc
    return name


def _positive(value: int | None, field: str) -> int | None:
    """None (use the default) or a positive whole number."""
    if value is not None and value < 1:
        raise AdminError(f"{field} must be a positive number or empty.", "positive", field=field)
    return value


def _due_hours_by_category(
    hours: Mapping[str, int | None] | None, due_hours_restricted: int | None
) -> dict[str, int] | None:
    """A programme's per-category service levels: known categories, 1 hour to a year; None when none is set.

    A restricted category may not exceed the restricted queue's level, which caps it anyway (routing.due_hours).
    """
    unknown = sorted(set(hours or {}) - set(CATEGORIES))
    if unknown:
        raise AdminError(f"Unknown category: {', '.join(unknown)}.", "category", categories=", ".join(unknown)[:200])
    levels = {code: int(value) for code in CATEGORIES if (value := (hours or {}).get(code)) is not None}
    for code, value in levels.items():
        if not 1 <= value <= MAX_DUE_HOURS:
            raise AdminError(
                f"{code}: a service level is 1 to {MAX_DUE_HOURS} hours, or empty.", "due_hours", max=MAX_DUE_HOURS
            )
    cap = due_hours_restricted or int(current_app.config["DUE_HOURS_RESTRICTED"])
    over = [code for code, value in levels.items() if is_restricted(code) and value > cap]
    if over:
        raise AdminError(
            f"{', '.join(over)}: a restricted category is due within the restricted level ({cap} hours).",
            "due_hours_restricted",
            hours=cap,
        )
    return levels or None


def update_programme(
    programme: Programme,
    *,
    name: str,
    language: str,
    timezone: str,
    due_hours_general: int | None,
    due_hours_restricted: int | None,
    retention_days: int | None,
    due_hours_by_category: Mapping[str, int | None] | None = None,
    actor: User,
    reason: str | None = None,
) -> Programme:
    """Change a programme's settings; the audit event lists what changed, old and new.

    due_hours_by_category: hours per category code; a missing or None value takes the default (routing.due_hours).
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise AdminError("The name must have 1 to 200 characters.", "name")
    if not LANGUAGE.match(language):
        raise AdminError(f"Not a language code: {language}.", "language", language=language)
    restricted_hours = _positive(due_hours_restricted, "due_hours_restricted")
    new = {
        "name": name,
        "default_language": language,
        "timezone": check_timezone(timezone),
        "due_hours_general": _positive(due_hours_general, "due_hours_general"),
        "due_hours_restricted": restricted_hours,
        "due_hours_by_category": _due_hours_by_category(due_hours_by_category, restricted_hours),
        "retention_days": _positive(retention_days, "retention_days"),
    }
    changes = {k: {"old": getattr(programme, k), "new": v} for k, v in new.items() if getattr(programme, k) != v}
    for key, value in new.items():
        setattr(programme, key, value)
    if changes:
        audit.record(
            "programme.update",
            actor=actor,
            object_type="programme",
            object_ref=programme.slug,
            details=with_reason({"changes": changes}, reason),
        )
        db.session.commit()
    return programme


def add_number(programme: Programme, number: str, *, actor: User) -> PhoneNumber:
    """Add an E.164 number to a programme (a number belongs to one programme only)."""
    number = number.strip().replace(" ", "")
    if not E164.match(number):
        raise AdminError(f"Not an E.164 number: {number} (write it like +254700000000).", "e164", numbers=number)
    if db.session.scalars(select(PhoneNumber).where(PhoneNumber.number == number)).first() is not None:
        raise AdminError("This number already belongs to a programme.", "number_taken")
    row = PhoneNumber(programme=programme, number=number)
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise AdminError("This number already belongs to a programme.", "number_taken") from exc
    audit.record(
        "programme.number_add",
        actor=actor,
        object_type="programme",
        object_ref=programme.slug,
        details={"number": number},
    )
    db.session.commit()
    return row


def remove_number(programme: Programme, number_id: int, *, actor: User) -> None:
    """Remove one of the programme's numbers."""
    row = db.session.get(PhoneNumber, number_id)
    if row is None or row.programme_id != programme.id:
        raise AdminError("No such number on this programme.", "no_number")
    number = row.number
    programme.numbers.remove(row)
    audit.record(
        "programme.number_remove",
        actor=actor,
        object_type="programme",
        object_ref=programme.slug,
        details={"number": number},
    )
    db.session.commit()


def set_twilio_credentials(
    programme: Programme, *, account_sid: str | None, auth_token: str | None, clear: bool = False, actor: User
) -> Programme:
    """Set the programme's own Twilio account; the auth token is write-only (sealed, never shown, never audited)."""
    account_sid = (account_sid or "").strip() or None
    if account_sid is not None and not re.fullmatch(r"AC[0-9a-fA-F]{32}", account_sid):
        raise AdminError("A Twilio account SID is AC followed by 32 hexadecimal characters.", "twilio_sid")
    token_change = "unchanged"  # noqa: S105  (what happened to the token, not a token)
    if clear:
        programme.twilio_account_sid = None
        programme.twilio_auth_token = None
        token_change = "cleared"  # noqa: S105
    else:
        programme.twilio_account_sid = account_sid
        if auth_token:
            if not re.fullmatch(r"[0-9A-Za-z]{16,64}", auth_token.strip()):
                raise AdminError("This does not look like a Twilio auth token.", "twilio_token")
            programme.twilio_auth_token = auth_token.strip()
            token_change = "set"  # noqa: S105
    audit.record(
        "programme.twilio",
        actor=actor,
        object_type="programme",
        object_ref=programme.slug,
        details={"account_sid": programme.twilio_account_sid, "auth_token": token_change},
    )
    db.session.commit()
    return programme


def set_survey_published(programme: Programme, slug: str, published: bool, *, actor: User) -> None:
    """Publish or unpublish a shipped survey (cfm.services.surveys does the work and writes its own event)."""
    from cfm.services import surveys

    if slug not in surveys.library():
        raise AdminError(f"No survey definition {slug}.", "survey")
    # surveys.* audit without an actor: this event, committed in the same transaction, says who asked.
    audit.record(
        "admin.survey_publish" if published else "admin.survey_unpublish",
        actor=actor,
        object_type="survey",
        object_ref=f"{programme.slug}/{slug}",
    )
    if published:
        surveys.publish_survey(programme, slug)
    else:
        surveys.unpublish_survey(programme, slug)
    db.session.commit()


def parse_field_map(texts: Mapping[str, str | None]) -> dict[str, list[str]] | None:
    """Kobo field names typed per key, comma-separated ("group_a/complaint, complaint_text"), checked.

    cfm.api.tokens.check_field_map does the checking (one way for the CLI and the console); an empty box leaves
    the key to the configured API_KOBO_FIELDS.
    """
    from cfm.api import tokens

    try:
        return tokens.check_field_map({key: (text or "").split(",") for key, text in texts.items()})
    except tokens.TokenError as exc:
        raise AdminError(str(exc), exc.code, **exc.params) from exc


def create_api_token(
    programme_slug: str, name: str, *, actor: User, field_map: Mapping[str, list[str]] | None = None
) -> tuple[ApiToken, str]:
    """A new API token (cfm.api.tokens); returns the row and the token, which is shown once and never stored."""
    from cfm.api import tokens

    details: dict[str, Any] = {"name": name.strip()[:100]}
    if field_map:
        details["field_map"] = dict(field_map)
    audit.record(
        "admin.api_token_create", actor=actor, object_type="programme", object_ref=programme_slug, details=details
    )
    try:
        return tokens.create_token(programme_slug, name, field_map)
    except tokens.TokenError as exc:
        db.session.rollback()
        raise AdminError(str(exc), exc.code or "token", **exc.params) from exc


def get_api_token(token_id: int) -> ApiToken | None:
    """One token by id."""
    return db.session.get(ApiToken, token_id)


def set_token_field_map(
    row: ApiToken, field_map: Mapping[str, list[str]] | None, *, actor: User, reason: str | None = None
) -> ApiToken:
    """Change which Kobo form fields a token's submissions are read from (None: the configured default for all).

    A revoked token is read-only. The audit event records the old and the new map (field names, never answers).
    """
    from cfm.api import tokens

    if not row.active:
        raise AdminError("A revoked token cannot be changed.", "token_revoked")
    try:
        new = tokens.check_field_map(field_map)
    except tokens.TokenError as exc:
        raise AdminError(str(exc), exc.code, **exc.params) from exc
    old = row.field_map or None
    if new != old:
        row.field_map = new
        audit.record(
            "admin.api_token_fields",
            actor=actor,
            object_type="api_token",
            object_ref=str(row.id),
            details=with_reason({"field_map": {"old": old, "new": new}}, reason),
        )
        db.session.commit()
    return row


def revoke_api_token(token_id: int, *, actor: User, reason: str | None = None) -> ApiToken:
    """Revoke a token (cfm.api.tokens), saying who did it and why."""
    from cfm.api import tokens

    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise AdminError(f"No token with id {token_id}.", "no_token")
    if row.revoked_at is None:
        audit.record(
            "admin.api_token_revoke",
            actor=actor,
            object_type="api_token",
            object_ref=str(row.id),
            details=with_reason({}, reason),
        )
    return tokens.revoke_token(token_id)


def search_audit(
    *,
    actor: str | None = None,
    action: str | None = None,
    object_ref: str | None = None,
    since: date | None = None,
    until: date | None = None,
    before: int | None = None,
    limit: int = AUDIT_PAGE,
) -> tuple[list[AuditEvent], int | None]:
    """Audit events, newest first, keyset-paginated by id; returns the page and the cursor of the next one."""
    query = select(AuditEvent)
    if actor:
        query = query.where(func.lower(AuditEvent.actor).contains(actor.strip().lower(), autoescape=True))
    if action:
        action = action.strip()
        # "login" finds login.success and login.failure; "user.update" finds exactly that.
        prefix = AuditEvent.action.startswith(action + ".", autoescape=True)
        query = query.where(or_(AuditEvent.action == action, prefix))
    if object_ref:
        query = query.where(AuditEvent.object_ref == object_ref.strip())
    if since:
        query = query.where(AuditEvent.created_at >= datetime.combine(since, time.min, tzinfo=UTC))
    if until:
        query = query.where(AuditEvent.created_at < datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC))
    if before:
        query = query.where(AuditEvent.id < before)
    rows = list(db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def verify_audit(*, actor: User) -> tuple[int | None, int]:
    """Run `cfm audit verify`'s check: (id of the first broken event or None, number of events); the run is audited."""
    broken = audit.verify_chain()
    count = db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    details = {"intact": broken is None, "broken_at": broken}
    audit.record("audit.verify", actor=actor, object_type="audit", details=details)
    db.session.commit()
    return broken, count
