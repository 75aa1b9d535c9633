"""OWASP ASVS 4.0.3 level 2 items the console promises (issue 8), one test each, named after the item."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import argon2
import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from cfm import create_app
from cfm.extensions import db
from cfm.models import AuditEvent, Case, CaseEvent, CaseNote, Message, User, UserSession
from cfm.models import user as user_model
from cfm.models.types import utcnow
from cfm.services import access
from cfm.services.admin import AdminError, create_user
from tests.cfm.console.conftest import (
    GENERAL_TEXT,
    RESTRICTED_TEXT,
    TOTP_SECRET,
    World,
    audit_events,
    sign_in,
    unused_code,
)
from tests.cfm.helpers import PASSWORD
from tests.conftest import make_config, reset_database

CONSOLE = "/console/queue/general"


def cookie(client: FlaskClient) -> str:
    """The session cookie's value."""
    found = client.get_cookie("session")
    assert found is not None
    return found.value


def replay(app: Flask, value: str) -> FlaskClient:
    """A new browser holding a copy of a session cookie."""
    other = app.test_client()
    other.set_cookie("session", value)
    return other


def signed_in(client: FlaskClient) -> bool:
    """True when the console answers this client as signed in."""
    return client.get(CONSOLE).status_code == 200


# --- V2 authentication ------------------------------------------------------------------------------------------


def test_v2_1_1_passwords_have_at_least_12_characters(client: FlaskClient, world: World) -> None:
    with pytest.raises(AdminError):
        create_user("short@example.org", "elevenchars", ["officer"])
    assert create_user("twelve@example.org", "twelve chars", ["officer"]).id
    sign_in(client, world.users["officer"])
    short = client.post("/console/account", data={"current": PASSWORD, "new": "eleven char", "confirm": "eleven char"})
    assert short.status_code == 400 and b"at least 12" in short.data
    assert world.user("officer").check_password(PASSWORD)


@pytest.mark.parametrize("app", [{"CONSOLE_LOGIN_LIMIT_PER_ADDRESS": "4 per minute"}], indirect=True)
def test_v2_2_1_sign_in_is_throttled_per_account_and_per_address(app: Flask, world: World) -> None:
    def from_address(address: str) -> FlaskClient:
        browser = app.test_client()
        browser.environ_base["REMOTE_ADDR"] = address
        return browser

    target = world.users["officer"]
    for number in range(5):  # per account: 5 failures, each from another address, lock the account
        guess = from_address(f"10.0.1.{number}").post("/console/login", data={"email": target, "password": "wrong!"})
        assert guess.status_code == 401
    locked = from_address("10.0.1.9").post("/console/login", data={"email": target, "password": PASSWORD})
    assert locked.status_code == 429
    spray = from_address("10.0.2.1")  # per address: one address trying many accounts
    for email in ("a@example.org", "b@example.org", "c@example.org", "d@example.org"):
        assert spray.post("/console/login", data={"email": email, "password": "guess guess"}).status_code == 401
    right = {"email": world.users["officer2"], "password": PASSWORD}
    assert spray.post("/console/login", data=right).status_code == 429
    assert from_address("10.0.2.2").post("/console/login", data=right).status_code == 302


def test_v2_4_1_passwords_are_hashed_with_argon2id_at_owasp_strength(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the console tests use cheap parameters; this test checks the shipped ones
    probe = User(email="probe@example.org", password_hash="")
    probe.set_password("a long enough passphrase")
    parameters = argon2.extract_parameters(probe.password_hash)
    assert parameters.type is argon2.Type.ID
    # OWASP password storage cheat sheet minimum for argon2id: m=19 MiB, t=2, p=1.
    assert parameters.memory_cost >= 19 * 1024 and parameters.time_cost >= 2 and parameters.parallelism >= 1
    assert user_model._hasher.type is argon2.Type.ID


# --- V3 sessions --------------------------------------------------------------------------------------------------


def test_v3_2_1_every_sign_in_starts_a_new_server_side_session(app: Flask, client: FlaskClient, world: World) -> None:
    client.get("/console/login")
    anonymous = client.get_cookie("session")
    sign_in(client, world.users["officer"])
    first = cookie(client)
    assert anonymous is None or anonymous.value != first
    sign_in(client, world.users["officer"])  # signing in again replaces the session, it does not extend it
    second = cookie(client)
    assert second != first
    assert signed_in(replay(app, second)) and not signed_in(replay(app, first))
    sessions = list(db.session.scalars(select(UserSession).order_by(UserSession.id)))
    assert len(sessions) == 2 and sessions[0].revoked_at is not None and sessions[1].revoked_at is None
    assert len({s.token_hash for s in sessions}) == 2


def test_v3_3_1_sign_out_invalidates_the_session_on_the_server(app: Flask, client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    copied = cookie(client)
    assert signed_in(replay(app, copied))
    assert client.post("/console/logout").status_code == 302
    stolen = replay(app, copied)  # the cookie as it was before sign-out, e.g. copied from the browser
    response = stolen.get(CONSOLE)
    assert response.status_code == 302 and response.headers["Location"].startswith("/console/login")
    assert db.session.scalar(select(func.count()).select_from(UserSession).where(UserSession.revoked_at.is_(None))) == 0


def test_v3_3_1_password_change_and_deactivation_end_other_sessions(app: Flask, world: World) -> None:
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, world.users["officer"])
    sign_in(phone, world.users["officer"])
    new = "another long passphrase"
    assert laptop.post("/console/account", data={"current": PASSWORD, "new": new, "confirm": new}).status_code == 302
    assert signed_in(laptop) and not signed_in(phone)
    officer = world.user("officer")
    officer.active = False
    db.session.commit()
    assert not signed_in(laptop)


def test_v3_3_2_idle_timeout_is_enforced_on_the_server(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    assert signed_in(client)
    # The cookie still looks fresh; only the server-side record says the session was idle for 31 minutes.
    db.session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    db.session.commit()
    response = client.get(CONSOLE)
    assert response.status_code == 302 and response.headers["Location"] == "/console/login"
    assert audit_events("logout")[-1].details == {"idle": True}
    assert db.session.scalars(select(UserSession.revoked_at)).one() is not None


def test_v3_4_session_cookie_is_secure_httponly_and_samesite(tmp_path: Path) -> None:
    production = create_app({**make_config("sqlite", tmp_path, None), "TESTING": False})
    reset_database(production, "sqlite")
    with production.app_context():
        create_user("officer@example.org", PASSWORD, ["officer"])
    response = production.test_client().post(
        "/console/login", data={"email": "officer@example.org", "password": PASSWORD}
    )
    assert response.status_code == 302
    flags = response.headers["Set-Cookie"]
    assert "Secure" in flags and "HttpOnly" in flags and "SameSite=Lax" in flags
    config = {**make_config("sqlite", tmp_path, None), "TESTING": False, "CONSOLE_COOKIE_SECURE": "false"}
    plain_http = create_app(config)
    assert plain_http.config["SESSION_COOKIE_SECURE"] is False  # the documented override for a plain-HTTP demo host


# --- V4 access control -----------------------------------------------------------------------------------------


def test_v4_1_5_an_error_inside_the_access_check_fails_closed(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client, world.users["focal"])
    assert client.get(f"/console/cases/{world.cases['kenya_restricted']}").status_code == 200

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("access check failed")

    monkeypatch.setattr(access, "visible_cases", broken)
    monkeypatch.setattr("cfm.console.queues.visible_cases", broken)
    for path in (f"/console/cases/{world.cases['kenya_restricted']}", "/console/queue/restricted"):
        response = client.get(path)
        assert response.status_code == 500
        body = response.get_data(as_text=True)
        assert RESTRICTED_TEXT not in body and world.cases["kenya_restricted"] not in body


def test_v4_2_1_another_programmes_case_answers_404_like_a_missing_one(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])  # officer of Kenya
    own = client.get(f"/console/cases/{world.cases['kenya_general']}")
    assert own.status_code == 200 and GENERAL_TEXT.encode() in own.data
    foreign = client.get(f"/console/cases/{world.cases['jordan_general']}")
    missing = client.get("/console/cases/ZZZZ-ZZZZ")
    assert foreign.status_code == missing.status_code == 404 and foreign.data == missing.data
    notes = db.session.scalar(select(func.count()).select_from(CaseNote))
    note = client.post(f"/console/cases/{world.cases['jordan_general']}/notes", data={"note-body": "x"})
    assert note.status_code == 404
    assert db.session.scalar(select(func.count()).select_from(CaseNote)) == notes
    client.post("/console/logout")
    sign_in(client, world.users["focal"])  # focal point of Kenya
    assert client.get(f"/console/cases/{world.cases['jordan_restricted']}").status_code == 404


def _csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _state() -> tuple[int, ...]:
    """Row counts that a state change would move."""
    db.session.expire_all()
    models = (Case, CaseNote, CaseEvent, Message, User, AuditEvent)
    return tuple(db.session.scalar(select(func.count()).select_from(m)) or 0 for m in models)


@pytest.mark.parametrize("app", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_v4_2_2_every_state_changing_console_route_refuses_a_request_without_csrf_token(
    app: Flask, client: FlaskClient, world: World
) -> None:
    admin = world.user("admin")
    admin.roles = ["admin", "supervisor"]  # one account that may use every console route (hotline, cases, admin)
    db.session.commit()
    assert client.post("/console/login", data={"email": world.users["admin"], "password": PASSWORD}).status_code == 400
    token = _csrf_token(client.get("/console/login").get_data(as_text=True))
    form = {"email": world.users["admin"], "password": PASSWORD, "csrf_token": token}
    login = client.post("/console/login", data=form)
    assert login.status_code == 302
    token = _csrf_token(client.get("/console/login/verify").get_data(as_text=True))
    form = {"code": unused_code(world.users["admin"]), "csrf_token": token}
    verified = client.post("/console/login/verify", data=form)
    assert verified.status_code == 302 and client.get("/console/").status_code in (200, 302)
    values = {"reference": world.cases["kenya_general"], "tab": "general"}
    routes = [
        rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/console") and "POST" in (rule.methods or ())
    ]
    assert len(routes) >= 8
    refused = []
    for rule in routes:
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:[^:>]+:)?{name}>", str(values.get(name, "1")), path)
        before = _state()
        response = client.post(path, data={"reason": "x", "note-body": "x", "email": "x@example.org"})
        if response.status_code == 400 and _state() == before:
            refused.append(rule.rule)
    assert refused == [rule.rule for rule in routes]
    assert signed_in(client) or client.get("/console/").status_code == 200  # still signed in: nothing was undone


def test_v4_3_1_second_factor_for_admins_and_focal_points_and_each_code_works_once(
    client: FlaskClient, world: World
) -> None:
    for name in ("admin", "focal"):
        response = client.post("/console/login", data={"email": world.users[name], "password": PASSWORD})
        assert response.headers["Location"] == "/console/login/verify"
        client.get("/console/logout")
    code = unused_code(world.users["focal"])
    client.post("/console/login", data={"email": world.users["focal"], "password": PASSWORD})
    assert client.post("/console/login/verify", data={"code": code}).status_code == 302
    client.post("/console/logout")
    client.post("/console/login", data={"email": world.users["focal"], "password": PASSWORD})
    replayed = client.post("/console/login/verify", data={"code": code})
    assert replayed.status_code == 401 and not signed_in(client)
    assert audit_events("login.failure")[-1].details == {"reason": "bad_totp"}
    assert client.post("/console/login/verify", data={"code": unused_code(world.users["focal"])}).status_code == 302
    # An older code of the window is refused too once a newer one was used.
    step = int(time.time()) // 30
    older = pyotp.TOTP(TOTP_SECRET).at((step - 1) * 30)
    client.post("/console/logout")
    client.post("/console/login", data={"email": world.users["focal"], "password": PASSWORD})
    assert client.post("/console/login/verify", data={"code": older}).status_code == 401


# --- V8 data protection --------------------------------------------------------------------------------------


def test_v8_2_1_console_and_status_answers_are_never_cached(client: FlaskClient, world: World) -> None:
    assert client.get("/console/login").headers["Cache-Control"] == "no-store"
    sign_in(client, world.users["officer"])
    for path in (CONSOLE, f"/console/cases/{world.cases['kenya_general']}", "/console/account"):
        assert client.get(path).headers["Cache-Control"] == "no-store"
    answer = client.post("/status", data={"reference": world.cases["kenya_general"]})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    for path in ("/status", "/ar/status"):
        assert client.get(path).headers["Cache-Control"] == "no-store"


def test_v8_3_1_personal_data_and_codes_travel_in_post_bodies_not_urls(client: FlaskClient, world: World) -> None:
    for path in ("/feedback", "/status", "/console/login"):
        html = client.get(path).get_data(as_text=True)
        forms = re.findall(r"<form[^>]*>", html)
        assert forms and all('method="post"' in form.lower() for form in forms if "lang" not in form.lower()), path
    sent = client.post("/feedback", data={"text": GENERAL_TEXT, "contact": "yes", "phone": "+254711999000"})
    assert sent.status_code in (200, 201, 302)
    location = sent.headers.get("Location", "")
    assert "254711999000" not in location and not re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}", location)
