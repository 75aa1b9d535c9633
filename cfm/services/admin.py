"""Programmes, users and the schema: the admin operations the CLI and the console share."""

from __future__ import annotations

import re
from collections.abc import Iterable

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cfm.extensions import db
from cfm.models import ROLES, PhoneNumber, Programme, User
from cfm.services import audit

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MIN_PASSWORD_LENGTH = 12


class AdminError(ValueError):
    """An admin operation that cannot be done; the message says why."""


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
) -> Programme:
    """Create a programme with its E.164 numbers."""
    if not SLUG.match(slug):
        raise AdminError("The slug must be lower-case letters, digits and hyphens.")
    numbers = list(numbers)
    bad = [n for n in numbers if not E164.match(n)]
    if bad:
        raise AdminError(f"Not an E.164 number: {', '.join(bad)} (write it like +254700000000).")
    programme = Programme(slug=slug, name=name, default_language=language, timezone=timezone, is_default=is_default)
    programme.numbers = [PhoneNumber(number=n) for n in dict.fromkeys(numbers)]
    try:
        db.session.add(programme)
        db.session.flush()
        audit.record("programme.create", object_type="programme", object_ref=slug, details={"numbers": len(numbers)})
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise AdminError("A programme with this slug or one of these numbers already exists.") from exc
    return programme


def list_programmes() -> list[Programme]:
    """All programmes by slug."""
    return list(db.session.scalars(select(Programme).order_by(Programme.slug)))


def create_user(email: str, password: str, roles: Iterable[str], programme_slugs: Iterable[str] = ()) -> User:
    """Create an active user; no programmes means all programmes."""
    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AdminError(f"Not a valid email address: {exc}") from exc
    roles = list(dict.fromkeys(roles))
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise AdminError(f"Roles must be among: {', '.join(ROLES)}.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AdminError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    slugs = list(dict.fromkeys(programme_slugs))
    found = list(db.session.scalars(select(Programme).where(Programme.slug.in_(slugs)))) if slugs else []
    missing = sorted(set(slugs) - {p.slug for p in found})
    if missing:
        raise AdminError(f"Unknown programme: {', '.join(missing)}.")
    user = User(email=email, roles=roles, programmes=found)
    user.set_password(password)
    try:
        db.session.add(user)
        db.session.flush()
        audit.record("user.create", object_type="user", object_ref=email, details={"roles": roles, "programmes": slugs})
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise AdminError("A user with this email already exists.") from exc
    return user
