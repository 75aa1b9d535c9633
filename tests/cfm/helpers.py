"""Small builders shared by the cfm tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from cfm.extensions import db
from cfm.models import Case, Message, Reporter, User
from cfm.services.admin import create_user
from cfm.services.intake import IntakeResult, submit
from channels.base import Contact, IntakeRequest

PASSWORD = "correct horse battery"


def web(text: str, **kwargs: Any) -> IntakeRequest:
    """A web-form submission."""
    return IntakeRequest(channel="web", text=text, **kwargs)


def sms(text: str, sid: str, phone: str = "+254711111111", to: str = "+254700000001") -> IntakeRequest:
    """An SMS submission as the Twilio adapter would build it."""
    return IntakeRequest(channel="sms", text=text, provider_id=sid, to_number=to, contact=Contact(phone=phone))


def send(text: str, **kwargs: Any) -> IntakeResult:
    """Submit a web feedback."""
    return submit(web(text, **kwargs))


def counts() -> dict[str, int]:
    """Rows per table that intake writes."""
    return {
        "case": db.session.scalar(select(func.count()).select_from(Case)) or 0,
        "message": db.session.scalar(select(func.count()).select_from(Message)) or 0,
        "reporter": db.session.scalar(select(func.count()).select_from(Reporter)) or 0,
    }


def user(email: str, *roles: str, programmes: tuple[str, ...] = ()) -> User:
    """Create a user with roles, optionally scoped to programmes."""
    return create_user(email, PASSWORD, roles, programmes)
