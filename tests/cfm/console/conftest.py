"""Fixtures of the console tests: two programmes, a case in each queue, one user per role; a sign-in helper."""

from __future__ import annotations

import contextvars
import dataclasses
import time
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cfm.extensions import db
from cfm.models import AuditEvent, Case, User
from cfm.models import user as user_model
from cfm.services.admin import create_programme
from cfm.services.classification import apply_prediction
from classifier.categories import is_restricted
from tests.cfm.helpers import PASSWORD, send, user

GENERAL_TEXT = "When is the pre-departure briefing for our family?"
RESTRICTED_TEXT = "The interpreter touched me and said he would help my case if I came to his room at night."
TOTP_SECRET = pyotp.random_base32()


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for the many test accounts (the hash records its parameters; verify is unchanged)."""
    monkeypatch.setattr(user_model, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context, as in production.

    The `ctx` fixture keeps an app context pushed for the test's own queries; Flask would reuse it for requests,
    and with it `g` (Flask-Login caches the user there), hiding bugs such as a deactivated user keeping a session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        """Run the request in an empty contextvars context."""
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """HTTP test client with a fresh app context per request."""
    app.test_client_class = IsolatedClient
    return app.test_client()


@dataclasses.dataclass
class World:
    """References of the cases and emails of the users the tests work with."""

    cases: dict[str, str]
    users: dict[str, str]

    def case(self, name: str) -> Case:
        """A fresh copy of a case from the database."""
        db.session.expire_all()
        return db.session.scalars(select(Case).where(Case.reference == self.cases[name])).one()

    def user(self, name: str) -> User:
        """A fresh copy of a user."""
        db.session.expire_all()
        return db.session.scalars(select(User).where(User.email == self.users[name])).one()


def make_case(text: str, programme: str = "kenya", category: str = "information_request", **fields: Any) -> Case:
    """A case through intake, then routed as if the model said `category` (console tests must not hang on the model)."""
    case = send(text, programme=programme).case
    apply_prediction(
        case,
        category=category,
        confidence=0.87,
        restricted=is_restricted(category),
        reasons=["category"] if is_restricted(category) else [],
        top_terms=["briefing", "family"] if category == "information_request" else ["interpreter", "room"],
        model_version="test-1",
        safety_net_category=None,
    )
    for key, value in fields.items():
        setattr(case, key, value)
    db.session.commit()
    return case


@pytest.fixture
def world(ctx: Flask) -> World:
    """Kenya and Jordan, each with a general and a restricted case; a pending case; one user per role."""
    ctx.extensions["cfm_model"] = None  # no model: intake fails closed, make_case() routes (fast, deterministic)
    create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)
    create_programme("jordan", "Jordan family reunification", ["+962700000001"], language="ar")
    cases = {
        "kenya_general": make_case(GENERAL_TEXT, "kenya"),
        "kenya_restricted": make_case(RESTRICTED_TEXT, "kenya", "sexual_exploitation_abuse"),
        "jordan_general": make_case(GENERAL_TEXT, "jordan"),
        "jordan_restricted": make_case(RESTRICTED_TEXT, "jordan", "sexual_exploitation_abuse"),
    }
    pending = make_case("Where is the bus stop for the transit centre?", "kenya")
    pending.queue, pending.classification_status, pending.category = "pending", "pending", None
    pending.set_sealed(True)
    db.session.commit()
    cases["kenya_pending"] = pending
    assert cases["kenya_general"].queue == "general" and cases["kenya_restricted"].queue == "restricted"
    people = {
        "officer": user("officer@example.org", "officer", programmes=("kenya",)),
        "officer2": user("officer2@example.org", "officer", programmes=("kenya",)),
        "supervisor": user("supervisor@example.org", "officer", "supervisor", programmes=("kenya",)),
        "focal": user("focal@example.org", "focal_point", programmes=("kenya",)),
        "focal_jordan": user("focal.jordan@example.org", "focal_point", programmes=("jordan",)),
        "admin": user("admin@example.org", "admin"),
        "viewer": user("viewer@example.org", "report_viewer"),
        "officer_all": user("hq@example.org", "officer"),
    }
    for name in ("focal", "focal_jordan", "admin"):
        people[name].totp_secret = TOTP_SECRET
    db.session.commit()
    return World({k: c.reference for k, c in cases.items()}, {k: u.email for k, u in people.items()})


def unused_code(email: str, secret: str = TOTP_SECRET) -> str:
    """A TOTP code the server has not accepted yet: codes are single-use (issue 8), so a test that signs the same
    account in twice within 30 s takes the next step of the allowed window (valid_window=1) rather than reusing one.
    """
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // totp.interval
    db.session.expire_all()
    last = db.session.scalars(select(User.totp_last_step).where(User.email == email)).first()
    step = now if last is None else max(now, last + 1)
    if step > now + 1:  # the window is used up (a third sign-in within one step): wait for the next step
        time.sleep(totp.interval - time.time() % totp.interval + 0.05)
        return unused_code(email, secret)
    return totp.at(step * totp.interval)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    """Sign in through the form, with the TOTP code when the account asks for one; returns the last response."""
    response = client.post("/console/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.data[:400]
    if response.headers["Location"].endswith("/console/login/verify"):
        response = client.post("/console/login/verify", data={"code": unused_code(email)})
        assert response.status_code == 302
    assert response.headers["Location"].startswith("/console")
    return response


def audit_events(action: str, ref: str | None = None) -> list[AuditEvent]:
    """Audit events of an action, optionally about one object."""
    db.session.expire_all()
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if ref is not None:
        query = query.where(AuditEvent.object_ref == ref)
    return list(db.session.scalars(query))
