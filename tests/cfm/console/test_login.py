"""Sign-in: argon2 passwords, no user enumeration, throttling, second factor, idle timeout, password change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from cfm import create_app
from cfm.extensions import db
from cfm.services.crypto import generate_keys
from tests.cfm.console.conftest import TOTP_SECRET, World, audit_events, sign_in
from tests.cfm.helpers import PASSWORD

HTML_TAG = {"ar": b'<html lang="ar" dir="rtl">', "en": b'<html lang="en" dir="ltr">'}
GENERIC = b"The email or password is not right."


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_login_page_follows_the_browser_language_and_direction(client: FlaskClient, world: World, lang: str) -> None:
    response = client.get("/console/login", headers={"Accept-Language": lang})
    assert response.status_code == 200
    assert HTML_TAG[lang] in response.data
    assert b'name="email"' in response.data and b'name="password"' in response.data
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_console_pages_require_sign_in(client: FlaskClient, world: World) -> None:
    for path in ("/console/", "/console/queue/general", f"/console/cases/{world.cases['kenya_general']}"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/console/login?next=")


def test_good_password_signs_in_and_is_audited(client: FlaskClient, world: World) -> None:
    response = sign_in(client, world.users["officer"])
    assert response.headers["Location"] == "/console/"
    assert client.get("/console/queue/general").status_code == 200
    events = audit_events("login.success", world.users["officer"])
    assert len(events) == 1 and events[0].actor == world.users["officer"]
    assert world.user("officer").last_login_at is not None


def test_bad_password_and_unknown_email_get_the_same_message(client: FlaskClient, world: World) -> None:
    wrong = client.post("/console/login", data={"email": world.users["officer"], "password": "not the password"})
    unknown = client.post("/console/login", data={"email": "nobody@example.org", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert GENERIC in wrong.data and GENERIC in unknown.data
    assert client.get("/console/queue/general").status_code == 302


def test_login_failure_audit_holds_no_password_and_no_unknown_email(client: FlaskClient, world: World) -> None:
    client.post("/console/login", data={"email": world.users["officer"], "password": "hunter2-secret"})
    client.post("/console/login", data={"email": "typo@example.org", "password": "hunter3-secret"})
    events = audit_events("login.failure")
    assert [e.details for e in events] == [{"reason": "bad_password"}, {"reason": "unknown_account"}]
    assert events[0].object_ref == world.users["officer"] and events[1].object_ref is None
    dump = repr([(e.object_ref, e.details, e.actor) for e in events])
    assert "hunter" not in dump and "typo@" not in dump


def test_inactive_user_cannot_sign_in(client: FlaskClient, world: World) -> None:
    world.user("officer").active = False
    db.session.commit()
    response = client.post("/console/login", data={"email": world.users["officer"], "password": PASSWORD})
    assert response.status_code == 401 and GENERIC in response.data
    assert audit_events("login.failure")[-1].details == {"reason": "inactive"}


def test_deactivated_user_loses_an_open_session(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    world.user("officer").active = False
    db.session.commit()
    assert client.get("/console/queue/general").status_code == 302


def test_login_is_throttled_per_account(client: FlaskClient, world: World) -> None:
    email = world.users["officer"]
    for _ in range(5):
        assert client.post("/console/login", data={"email": email, "password": "wrong password"}).status_code == 401
    throttled = client.post("/console/login", data={"email": email, "password": PASSWORD})
    assert throttled.status_code == 429
    assert b"Too many sign-in attempts" in throttled.data
    # Another account from the same address is not locked out by someone guessing this one.
    assert (
        client.post("/console/login", data={"email": world.users["officer2"], "password": PASSWORD}).status_code == 302
    )


def test_successful_sign_ins_do_not_count_against_the_account(client: FlaskClient, world: World) -> None:
    for _ in range(7):
        sign_in(client, world.users["officer"])
        client.post("/console/logout")


@pytest.mark.parametrize("app", [{"CONSOLE_LOGIN_LIMIT_PER_ADDRESS": "3 per minute"}], indirect=True)
def test_login_is_throttled_per_address(client: FlaskClient, world: World) -> None:
    for email in ("a@example.org", "b@example.org", "c@example.org"):
        client.post("/console/login", data={"email": email, "password": "guess"})
    assert (
        client.post("/console/login", data={"email": world.users["officer"], "password": PASSWORD}).status_code == 429
    )


def test_focal_point_needs_the_second_factor(client: FlaskClient, world: World) -> None:
    response = client.post("/console/login", data={"email": world.users["focal"], "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/console/login/verify"
    assert client.get("/console/queue/restricted").status_code == 302  # not signed in yet
    wrong = client.post("/console/login/verify", data={"code": "000000"})
    assert wrong.status_code == 401 and b"not right" in wrong.data
    right = client.post("/console/login/verify", data={"code": pyotp.TOTP(TOTP_SECRET).now()})
    assert right.status_code == 302
    assert client.get("/console/queue/restricted").status_code == 200
    assert audit_events("login.success")[-1].details == {"2fa": True}
    assert audit_events("login.failure")[-1].details == {"reason": "bad_totp"}


def test_second_factor_step_cannot_be_skipped_or_reused_without_password(client: FlaskClient, world: World) -> None:
    assert client.get("/console/login/verify").status_code == 302
    assert client.post("/console/login/verify", data={"code": pyotp.TOTP(TOTP_SECRET).now()}).status_code == 302
    assert client.get("/console/queue/restricted").status_code == 302


def test_admin_without_a_second_factor_must_enrol_with_a_qr_code(client: FlaskClient, world: World) -> None:
    admin = world.user("admin")
    admin.totp_secret = None
    db.session.commit()
    response = client.post("/console/login", data={"email": admin.email, "password": PASSWORD})
    assert response.headers["Location"] == "/console/login/enrol"
    page = client.get("/console/login/enrol")
    assert page.status_code == 200 and b"<svg" in page.data and b"otpauth://totp/" in page.data
    with client.session_transaction() as session:
        secret = session["enrol_secret"]
    assert client.post("/console/login/enrol", data={"code": "123456"}).status_code == 401
    assert client.post("/console/login/enrol", data={"code": pyotp.TOTP(secret).now()}).status_code == 302
    assert world.user("admin").totp_secret == secret
    assert client.get("/console/").headers["Location"] == "/console/admin/"  # signed in: the admin pages
    assert client.get("/console/admin/users").status_code == 200
    assert len(audit_events("user.totp_enrol", admin.email)) == 1


@pytest.mark.parametrize("app", [{"REQUIRE_2FA": False}], indirect=True)
def test_without_require_2fa_a_focal_point_without_totp_signs_in_with_password(
    client: FlaskClient, world: World
) -> None:
    focal = world.user("focal")
    focal.totp_secret = None
    db.session.commit()
    response = client.post("/console/login", data={"email": focal.email, "password": PASSWORD})
    assert response.headers["Location"] == "/console/"
    assert client.get("/console/queue/restricted").status_code == 200


def test_idle_session_ends(client: FlaskClient, world: World, app: Flask) -> None:
    sign_in(client, world.users["officer"])
    with client.session_transaction() as session:
        session["seen"] -= app.config["CONSOLE_IDLE_MINUTES"] * 60 + 1
    response = client.get("/console/queue/general")
    assert response.status_code == 302 and response.headers["Location"] == "/console/login"
    assert client.get("/console/queue/general").status_code == 302
    assert audit_events("logout")[-1].details == {"idle": True}


def test_logout_ends_the_session_and_is_audited(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    assert client.get("/console/logout").status_code == 405  # a link cannot sign anyone out
    assert client.post("/console/logout").status_code == 302
    assert client.get("/console/queue/general").status_code == 302
    assert audit_events("logout")[-1].details == {"idle": False}


def test_next_is_followed_only_within_the_console(client: FlaskClient, world: World) -> None:
    for target, expected in (
        ("/console/account", "/console/account"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console", "/console/"),
    ):
        response = client.post(
            "/console/login",
            query_string={"next": target},
            data={"email": world.users["officer"], "password": PASSWORD},
        )
        assert response.headers["Location"] == expected
        client.post("/console/logout")


def test_session_cookie_is_httponly_lax_and_secure_outside_tests(tmp_path: Path) -> None:
    config: dict[str, Any] = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}", **generate_keys()}
    production = create_app(config)
    assert production.config["SESSION_COOKIE_SECURE"] is True
    assert production.config["SESSION_COOKIE_HTTPONLY"] is True
    assert production.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_session_cookie_flags_on_sign_in(client: FlaskClient, world: World) -> None:
    response = sign_in(client, world.users["officer"])
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_password_change(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    cases = [
        (
            {"current": "wrong password!", "new": "a brand new passphrase", "confirm": "a brand new passphrase"},
            b"current password",
        ),
        ({"current": PASSWORD, "new": "a brand new passphrase", "confirm": "another passphrase!!"}, b"not the same"),
        ({"current": PASSWORD, "new": "short", "confirm": "short"}, b"at least 12"),
    ]
    for data, message in cases:
        response = client.post("/console/account", data=data)
        assert response.status_code == 400 and message in response.data
    ok = client.post(
        "/console/account",
        data={"current": PASSWORD, "new": "a brand new passphrase", "confirm": "a brand new passphrase"},
    )
    assert ok.status_code == 302
    assert world.user("officer").check_password("a brand new passphrase")
    events = audit_events("user.password_change")
    assert len(events) == 1 and "passphrase" not in repr(events[0].details)
