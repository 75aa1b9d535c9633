"""Admin pages (issue 6): admins only (404 for everyone else), every change CSRF-protected and audited."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from cfm.api.tokens import authenticate
from cfm.extensions import db
from cfm.models import ApiToken, AuditEvent, Case, PhoneNumber, Programme, User
from cfm.services import audit, routing
from cfm.services.surveys import published_surveys
from tests.cfm.console.conftest import RESTRICTED_TEXT, World, audit_events, sign_in
from tests.cfm.helpers import PASSWORD

PAGES = (
    "/console/admin/users",
    "/console/admin/users/new",
    "/console/admin/programmes",
    "/console/admin/programmes/new",
    "/console/admin/programmes/kenya",
    "/console/admin/tokens",
    "/console/admin/audit",
    "/console/admin/templates",
    "/console/admin/templates/new",
)
TWILIO_TOKEN = "f3b1c2d4e5f60718293a4b5c6d7e8f90"  # noqa: S105  (a made-up test value)
TWILIO_SID = "AC" + "0123456789abcdef" * 2


def programme(slug: str) -> Programme:
    """A fresh copy of a programme."""
    db.session.expire_all()
    return db.session.scalars(select(Programme).where(Programme.slug == slug)).one()


def flashes(client: FlaskClient, response: object) -> str:
    """The page a redirect leads to, as text (with its flashed messages)."""
    location = response.headers["Location"]  # type: ignore[attr-defined]
    return client.get(location).get_data(as_text=True)


def user_pages(world: World) -> list[str]:
    """The pages of one user, to check they are refused too."""
    return [f"/console/admin/users/{world.user('officer').id}"]


@pytest.mark.parametrize("role", ["officer", "supervisor", "focal", "viewer"])
def test_admin_pages_answer_404_to_every_other_role(client: FlaskClient, world: World, role: str) -> None:
    sign_in(client, world.users[role])
    for path in (*PAGES, "/console/admin/", *user_pages(world)):
        assert client.get(path).status_code == 404, path
    response = client.post(
        "/console/admin/users/new", data={"email": "intruder@example.org", "roles": ["admin"], "password": PASSWORD}
    )
    assert response.status_code == 404
    officer = world.user("officer")
    assert client.post(f"/console/admin/users/{officer.id}/active", data={"active": "0"}).status_code == 404
    assert client.post("/console/admin/audit/verify").status_code == 404
    assert db.session.scalars(select(User).where(User.email == "intruder@example.org")).first() is None
    assert world.user("officer").active


def test_admin_pages_need_a_sign_in(client: FlaskClient, world: World) -> None:
    response = client.get("/console/admin/users")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_admin_pages_work_for_an_admin(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    for path in (*PAGES, *user_pages(world)):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Administration" in response.get_data(as_text=True)
    assert client.get("/console/admin/programmes/nowhere").status_code == 404
    assert client.get("/console/admin/users/99999").status_code == 404
    # The admin nav link shows for admins only.
    assert b"/console/admin/users" in client.get("/console/admin/tokens").data


def test_admin_link_is_not_shown_to_an_officer(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    page = client.get("/console/account").get_data(as_text=True)
    assert "/console/admin" not in page


# --- users ------------------------------------------------------------------------------------------------------


def test_new_user_with_a_generated_password_shown_once(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    response = client.post(
        "/console/admin/users/new",
        data={"email": "New.Officer@Example.org", "roles": ["officer"], "programmes": ["kenya"], "reason": "hired"},
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    password = re.search(r'<code class="secret-key once" dir="ltr">([^<]+)</code>', page)
    assert password is not None and len(password.group(1)) >= 12
    created = db.session.scalars(select(User).where(User.email == "new.officer@example.org")).one()
    assert created.roles == ["officer"] and [p.slug for p in created.programmes] == ["kenya"]
    assert created.check_password(password.group(1))
    [event] = audit_events("user.create", "new.officer@example.org")
    assert event.actor == world.users["admin"] and event.details is not None
    assert event.details["reason"] == "hired" and password.group(1) not in str(event.details)
    # Shown once: the list and the user's page do not carry it.
    assert password.group(1) not in client.get("/console/admin/users").get_data(as_text=True)
    assert password.group(1) not in client.get(f"/console/admin/users/{created.id}").get_data(as_text=True)
    other = client.application.test_client()
    sign_in(other, "new.officer@example.org", password.group(1))


def test_new_user_with_a_chosen_password_and_refusals(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    short = client.post(
        "/console/admin/users/new", data={"email": "a@example.org", "roles": ["officer"], "password": "short"}
    )
    assert short.status_code == 200 and b"secret-key once" not in short.data
    assert db.session.scalars(select(User).where(User.email == "a@example.org")).first() is None
    taken = client.post(
        "/console/admin/users/new", data={"email": world.users["officer"], "roles": ["officer"], "password": PASSWORD}
    )
    assert taken.status_code == 400 and b"exists already" in taken.data
    chosen = client.post(
        "/console/admin/users/new", data={"email": "b@example.org", "roles": ["report_viewer"], "password": PASSWORD}
    )
    assert chosen.status_code == 200 and PASSWORD.encode() not in chosen.data
    assert db.session.scalars(select(User).where(User.email == "b@example.org")).one().check_password(PASSWORD)


def test_admin_changes_roles_and_programmes_with_a_reason(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    officer = world.user("officer")
    response = client.post(
        f"/console/admin/users/{officer.id}",
        data={"roles": ["officer", "supervisor"], "programmes": ["kenya", "jordan"], "reason": "covers Jordan"},
    )
    assert response.status_code == 302
    officer = world.user("officer")
    assert officer.roles == ["officer", "supervisor"]
    assert sorted(p.slug for p in officer.programmes) == ["jordan", "kenya"]
    [event] = audit_events("user.update", officer.email)
    assert event.actor == world.users["admin"] and event.details is not None
    assert event.details["roles"] == {"old": ["officer"], "new": ["officer", "supervisor"]}
    assert event.details["reason"] == "covers Jordan"
    refused = client.post(f"/console/admin/users/{officer.id}", data={"roles": ["wizard"]})
    assert refused.status_code == 200 and world.user("officer").roles == ["officer", "supervisor"]


def test_deactivated_user_session_is_rejected_on_the_next_request(client: FlaskClient, world: World) -> None:
    officer_client = client.application.test_client()
    sign_in(officer_client, world.users["officer"])
    assert officer_client.get("/console/queue/general").status_code == 200
    sign_in(client, world.users["admin"])
    officer = world.user("officer")
    response = client.post(f"/console/admin/users/{officer.id}/active", data={"active-reason": "left", "active": "0"})
    assert "is deactivated" in flashes(client, response)
    assert not world.user("officer").active
    after = officer_client.get("/console/queue/general")
    assert after.status_code == 302 and "/console/login" in after.headers["Location"]
    [event] = audit_events("user.deactivate", officer.email)
    assert event.actor == world.users["admin"] and event.details == {"reason": "left"}
    client.post(f"/console/admin/users/{officer.id}/active", data={"active": "1"})
    assert world.user("officer").active and audit_events("user.reactivate", officer.email)
    sign_in(officer_client, world.users["officer"])


def test_admin_cannot_lock_themselves_out(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    me = world.user("admin")
    response = client.post(f"/console/admin/users/{me.id}", data={"roles": ["officer"]})
    assert response.status_code == 400 and b"cannot remove your own admin role" in response.data
    assert world.user("admin").roles == ["admin"]
    response = client.post(f"/console/admin/users/{me.id}/active", data={"active": "0"})
    assert "cannot remove your own admin role or deactivate" in flashes(client, response)
    assert world.user("admin").active
    assert client.get("/console/admin/users").status_code == 200
    assert audit_events("user.update", me.email) == [] and audit_events("user.deactivate", me.email) == []


def test_admin_resets_a_second_factor(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    focal = world.user("focal")
    assert focal.totp_secret
    response = client.post(f"/console/admin/users/{focal.id}/second-factor", data={"totp-reason": "lost phone"})
    assert response.status_code == 302
    assert world.user("focal").totp_secret is None
    [event] = audit_events("user.totp_reset", focal.email)
    assert event.actor == world.users["admin"] and event.details == {"reason": "lost phone"}
    login = client.application.test_client().post(
        "/console/login", data={"email": world.users["focal"], "password": PASSWORD}
    )
    assert login.headers["Location"].endswith("/console/login/enrol")


# --- programmes -------------------------------------------------------------------------------------------------


def test_admin_creates_and_edits_a_programme(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    response = client.post(
        "/console/admin/programmes/new",
        data={
            "slug": "greece",
            "name": "Greece relocation",
            "language": "ar",
            "timezone": "Europe/Athens",
            "numbers": "+302100000001\n+30 210 000 0002",
        },
    )
    assert response.status_code == 302
    greece = programme("greece")
    assert greece.default_language == "ar" and {n.number for n in greece.numbers} == {"+302100000001", "+302100000002"}
    assert audit_events("programme.create", "greece")[0].actor == world.users["admin"]
    bad_zone = client.post(
        "/console/admin/programmes/new", data={"slug": "x", "name": "X", "language": "en", "timezone": "Mars/Olympus"}
    )
    assert bad_zone.status_code == 400 and b"Unknown time zone" in bad_zone.data
    response = client.post(
        "/console/admin/programmes/greece",
        data={
            "name": "Greece relocation 2026",
            "language": "fr",
            "timezone": "Europe/Athens",
            "due_hours_general": "240",
            "due_hours_restricted": "24",
            "retention_days": "365",
            "reason": "new SOP",
        },
    )
    assert response.status_code == 302
    greece = programme("greece")
    assert (
        greece.name,
        greece.default_language,
        greece.due_hours_general,
        greece.due_hours_restricted,
        greece.retention_days,
    ) == ("Greece relocation 2026", "fr", 240, 24, 365)
    [event] = audit_events("programme.update", "greece")
    assert event.details is not None and event.details["changes"]["due_hours_restricted"] == {"old": None, "new": 24}
    assert event.details["reason"] == "new SOP"
    refused = client.post(
        "/console/admin/programmes/greece", data={"name": "G", "language": "fr", "timezone": "Nowhere/City"}
    )
    assert refused.status_code == 400 and programme("greece").name == "Greece relocation 2026"


def test_phone_numbers_are_e164_validated(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    bad = client.post("/console/admin/programmes/kenya/numbers", data={"number": "0700 000 000"})
    assert "Not an international phone number" in flashes(client, bad)
    taken = client.post("/console/admin/programmes/kenya/numbers", data={"number": "+962700000001"})
    assert "belongs to a programme already" in flashes(client, taken)
    client.post("/console/admin/programmes/kenya/numbers", data={"number": "+254 700 000 009"})
    assert {n.number for n in programme("kenya").numbers} == {"+254700000001", "+254700000009"}
    added = db.session.scalars(select(PhoneNumber).where(PhoneNumber.number == "+254700000009")).one()
    jordan_number = db.session.scalars(select(PhoneNumber).where(PhoneNumber.number == "+962700000001")).one()
    wrong = client.post(f"/console/admin/programmes/kenya/numbers/{jordan_number.id}/delete")
    assert "not on this programme" in flashes(client, wrong)
    client.post(f"/console/admin/programmes/kenya/numbers/{added.id}/delete")
    assert {n.number for n in programme("kenya").numbers} == {"+254700000001"}
    assert [e.action for e in audit_events("programme.number_add", "kenya")] == ["programme.number_add"]
    assert audit_events("programme.number_remove", "kenya")[0].actor == world.users["admin"]


def test_twilio_auth_token_is_write_only_and_never_shown(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    response = client.post(
        "/console/admin/programmes/kenya/twilio", data={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}
    )
    assert "Twilio account saved" in flashes(client, response)
    kenya = programme("kenya")
    assert kenya.twilio_auth_token == TWILIO_TOKEN and kenya.twilio_account_sid == TWILIO_SID
    raw = db.session.execute(text("SELECT twilio_auth_token FROM programme WHERE slug = 'kenya'")).scalar_one()
    assert TWILIO_TOKEN not in raw  # sealed at rest
    # Saving without a token keeps the stored one.
    client.post("/console/admin/programmes/kenya/twilio", data={"account_sid": TWILIO_SID, "auth_token": ""})
    assert programme("kenya").twilio_auth_token == TWILIO_TOKEN
    for path in (*PAGES, "/console/admin/audit?action=programme.twilio"):
        page = client.get(path).get_data(as_text=True)
        assert TWILIO_TOKEN not in page and TWILIO_TOKEN[:12] not in page, path
    assert "An auth token is stored" in client.get("/console/admin/programmes/kenya").get_data(as_text=True)
    events = audit_events("programme.twilio", "kenya")
    assert [e.details["auth_token"] for e in events if e.details] == ["set", "unchanged"]
    assert all(TWILIO_TOKEN not in str(e.details) for e in events)
    client.post("/console/admin/programmes/kenya/twilio", data={"clear": "y"})
    assert programme("kenya").twilio_auth_token is None and programme("kenya").twilio_account_sid is None


def test_admin_publishes_and_unpublishes_a_survey(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    client.post("/console/admin/programmes/kenya/surveys/arrival", data={"publish": "1"})
    assert [s.slug for s in published_surveys(programme("kenya"))] == ["arrival"]
    assert audit_events("admin.survey_publish", "kenya/arrival")[0].actor == world.users["admin"]
    assert "/p/kenya/survey/arrival" in client.get("/console/admin/programmes/kenya").get_data(as_text=True)
    client.post("/console/admin/programmes/kenya/surveys/arrival", data={"publish": "0"})
    assert published_surveys(programme("kenya")) == []
    unknown = client.post("/console/admin/programmes/kenya/surveys/nonsense", data={"publish": "1"})
    assert "no such survey" in flashes(client, unknown)


# --- API tokens -------------------------------------------------------------------------------------------------


def test_api_token_is_shown_once_and_stored_hashed(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    response = client.post("/console/admin/tokens", data={"programme": "kenya", "name": "Kobo household survey"})
    assert response.status_code == 200
    match = re.search(r'<code class="secret-key once" dir="ltr">(cfm_[^<]+)</code>', response.get_data(as_text=True))
    assert match is not None
    token = match.group(1)
    db.session.expire_all()
    row = db.session.scalars(select(ApiToken)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in (row.token_prefix or "")
    assert row.programme.slug == "kenya" and row.name == "Kobo household survey"
    listing = client.get("/console/admin/tokens").get_data(as_text=True)
    assert token not in listing and "Kobo household survey" in listing and row.token_prefix in listing
    assert token not in client.get("/console/admin/audit").get_data(as_text=True)
    assert authenticate(token) is not None
    assert audit_events("admin.api_token_create", "kenya")[0].actor == world.users["admin"]
    client.post(f"/console/admin/tokens/{row.id}/revoke", data={"reason": "partner left"})
    db.session.expire_all()
    assert authenticate(token) is None
    [event] = audit_events("admin.api_token_revoke", str(row.id))
    assert event.actor == world.users["admin"] and event.details == {"reason": "partner left"}
    assert "Revoked" in client.get("/console/admin/tokens").get_data(as_text=True)


# --- audit log --------------------------------------------------------------------------------------------------


def test_audit_search_by_actor_and_action_and_keyset_pages(client: FlaskClient, world: World) -> None:
    officer = world.user("officer")
    for n in range(55):
        audit.record("test.bulk", actor=officer, object_type="thing", object_ref=f"T-{n}")
    audit.record("test.other", actor=world.user("supervisor"), object_ref="T-X")
    db.session.commit()
    sign_in(client, world.users["admin"])
    first = client.get("/console/admin/audit", query_string={"action": "test"}).get_data(as_text=True)
    assert first.count('<td class="lang">test.') == 50 and "T-X" in first and "T-54" in first
    older = re.search(r'href="([^"]*before=\d+[^"]*)" rel="next"', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('<td class="lang">test.') == 6 and "T-0<" in second and 'rel="next"' not in second
    by_actor = client.get("/console/admin/audit", query_string={"actor": "supervisor@", "action": "test"})
    page = by_actor.get_data(as_text=True)
    assert "T-X" in page and "T-54" not in page
    by_object = client.get("/console/admin/audit", query_string={"object_ref": "T-7"}).get_data(as_text=True)
    assert by_object.count('<td class="lang">test.') == 1
    empty = client.get("/console/admin/audit", query_string={"action": "test", "until": "2000-01-01"})
    assert "No event matches" in empty.get_data(as_text=True)
    today = client.get("/console/admin/audit", query_string={"action": "test.other", "since": "2000-01-01"})
    assert "T-X" in today.get_data(as_text=True)


def test_verify_button_reports_a_tampered_audit_row(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    intact = client.post("/console/admin/audit/verify").get_data(as_text=True)
    assert "The audit chain is intact." in intact
    victim = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.create").order_by(AuditEvent.id)
    ).first()
    assert victim is not None
    db.session.execute(text("UPDATE audit_event SET object_ref = 'someone-else' WHERE id = :id"), {"id": victim.id})
    db.session.commit()
    broken = client.post("/console/admin/audit/verify").get_data(as_text=True)
    assert f"The audit chain is broken at event {victim.id}." in broken
    assert [e.details for e in audit_events("audit.verify")][0] == {"intact": True, "broken_at": None}
    assert audit_events("audit.verify")[-1].details == {"intact": False, "broken_at": victim.id}


# --- CSRF -------------------------------------------------------------------------------------------------------


def _token(page: str, name: str = "csrf_token") -> str:
    """The CSRF token of a form on the page."""
    match = re.search(rf'name="{name}" (?:type="hidden" )?value="([^"]+)"', page)
    assert match is not None, name
    return match.group(1)


@pytest.mark.parametrize("app", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_admin_changes_need_the_csrf_token(client: FlaskClient, world: World) -> None:
    import pyotp

    from tests.cfm.console.conftest import TOTP_SECRET

    login = client.get("/console/login").get_data(as_text=True)
    client.post(
        "/console/login", data={"email": world.users["admin"], "password": PASSWORD, "csrf_token": _token(login)}
    )
    verify = client.get("/console/login/verify").get_data(as_text=True)
    done = client.post(
        "/console/login/verify", data={"code": pyotp.TOTP(TOTP_SECRET).now(), "csrf_token": _token(verify)}
    )
    assert done.status_code == 302
    officer = world.user("officer")
    data = {"email": "csrf@example.org", "roles": ["officer"], "password": PASSWORD}
    assert client.post("/console/admin/users/new", data=data).status_code == 400
    assert client.post(f"/console/admin/users/{officer.id}/active", data={"active": "0"}).status_code == 400
    assert client.post("/console/admin/tokens", data={"programme": "kenya", "name": "x"}).status_code == 400
    assert client.post("/console/admin/audit/verify").status_code == 400
    assert db.session.scalars(select(User).where(User.email == "csrf@example.org")).first() is None
    assert world.user("officer").active and db.session.scalars(select(ApiToken)).first() is None
    page = client.get("/console/admin/users/new").get_data(as_text=True)
    created = client.post("/console/admin/users/new", data={**data, "csrf_token": _token(page)})
    assert created.status_code == 200
    assert db.session.scalars(select(User).where(User.email == "csrf@example.org")).one()
    edit = client.get(f"/console/admin/users/{officer.id}").get_data(as_text=True)
    response = client.post(
        f"/console/admin/users/{officer.id}/active",
        data={"active": "0", "active-csrf_token": _token(edit, "active-csrf_token")},
    )
    assert response.status_code == 302 and not world.user("officer").active


def test_audit_log_page_shows_no_restricted_content(client: FlaskClient, world: World) -> None:
    focal = client.application.test_client()
    sign_in(focal, world.users["focal"])
    ref = world.cases["kenya_restricted"]
    assert RESTRICTED_TEXT in focal.get(f"/console/cases/{ref}").get_data(as_text=True)
    focal.post(f"/console/cases/{ref}/notes", data={"note-body": "Survivor met the PSEA focal point in Kakuma."})
    focal.post(f"/console/cases/{ref}/status", data={"status-status": "under_review", "status-reason": "Kakuma visit"})
    sign_in(client, world.users["admin"])
    page = client.get("/console/admin/audit", query_string={"object_ref": ref}).get_data(as_text=True)
    assert "case.view" in page and "case.note" in page  # the admin sees that it happened...
    for secret in (RESTRICTED_TEXT, "interpreter", "Survivor met", "Kakuma"):  # ...never what was written
        assert secret not in page
    assert client.get(f"/console/cases/{ref}").status_code == 404  # and still cannot open the case


# --- service levels per category (issue 6) ----------------------------------------------------------------------

HOUR = timedelta(hours=1)


def due_for(case: Case, category: str) -> datetime:
    """The due date routing gives the case's programme for a general category, counted from the case's receipt."""
    return routing.due_at(case.programme, case.received_at, restricted=False, category=category)


def _settings(**extra: str) -> dict[str, str]:
    """The programme form of Kenya as the page would post it, plus per-category hours."""
    return {"name": "Kenya resettlement", "language": "sw", "timezone": "Africa/Nairobi", **extra}


def test_admin_sets_service_levels_per_category(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    page = client.get("/console/admin/programmes/kenya").get_data(as_text=True)
    assert "Service levels per category" in page and "Safety and protection" in page
    assert 'name="due_hours_by_category-safety_protection"' in page
    assert 'placeholder="24 h (default)"' in page and 'placeholder="168 h (default)"' in page
    response = client.post(
        "/console/admin/programmes/kenya",
        data=_settings(
            **{
                "due_hours_by_category-safety_protection": "12",
                "due_hours_by_category-information_request": "48",
                "due_hours_by_category-other": "",
                "reason": "PSEA SOP 2026",
            }
        ),
    )
    assert response.status_code == 302
    assert programme("kenya").due_hours_by_category == {"information_request": 48, "safety_protection": 12}
    [event] = audit_events("programme.update", "kenya")
    assert event.details is not None and event.details["reason"] == "PSEA SOP 2026"
    assert event.details["changes"]["due_hours_by_category"] == {
        "old": None,
        "new": {"information_request": 48, "safety_protection": 12},
    }
    page = client.get("/console/admin/programmes/kenya").get_data(as_text=True)
    assert re.search(r'name="due_hours_by_category-safety_protection"[^>]*value="12"', page)
    # A case of that category now gets the programme's level.
    case = world.case("kenya_general")
    assert due_for(case, "information_request") == case.received_at + 48 * HOUR
    # Emptying every box returns to the defaults.
    client.post("/console/admin/programmes/kenya", data=_settings(reason="back to the defaults"))
    assert programme("kenya").due_hours_by_category is None
    assert audit_events("programme.update", "kenya")[-1].details["changes"]["due_hours_by_category"] == {  # type: ignore[index]
        "old": {"information_request": 48, "safety_protection": 12},
        "new": None,
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"due_hours_by_category-information_request": "0"}, "From 1 to 8760 hours"),
        ({"due_hours_by_category-suggestion": "9000"}, "From 1 to 8760 hours"),
        ({"due_hours_by_category-other": "two days"}, ""),
        ({"due_hours_by_category-fraud_corruption": "100"}, "within the restricted level (72 hours)"),
        (
            {"due_hours_restricted": "48", "due_hours_by_category-staff_misconduct": "60"},
            "within the restricted level (48 hours)",
        ),
    ],
)
def test_service_levels_per_category_are_validated(
    client: FlaskClient, world: World, fields: dict[str, str], message: str
) -> None:
    sign_in(client, world.users["admin"])
    response = client.post("/console/admin/programmes/kenya", data=_settings(**fields))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    kenya = programme("kenya")
    assert kenya.due_hours_by_category is None and kenya.due_hours_restricted is None
    assert audit_events("programme.update", "kenya") == []


def test_service_levels_are_checked_by_the_service_too(world: World) -> None:
    from cfm.services.admin import AdminError, update_programme

    kenya = programme("kenya")
    settings: dict[str, Any] = {"name": kenya.name, "language": "sw", "timezone": "UTC"}
    settings.update(due_hours_general=None, due_hours_restricted=None, retention_days=None)
    with pytest.raises(AdminError) as unknown:
        update_programme(kenya, **settings, due_hours_by_category={"urgent": 5}, actor=world.user("admin"))
    assert unknown.value.code == "category"
    with pytest.raises(AdminError) as too_long:
        update_programme(kenya, **settings, due_hours_by_category={"other": 10_000}, actor=world.user("admin"))
    assert too_long.value.code == "due_hours"


def test_officers_cannot_change_service_levels(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["supervisor"])
    response = client.post(
        "/console/admin/programmes/kenya", data=_settings(**{"due_hours_by_category-safety_protection": "200"})
    )
    assert response.status_code == 404 and programme("kenya").due_hours_by_category is None


# --- KoboToolbox field maps of API tokens (issue 6) -------------------------------------------------------------

KOBO_SUBMISSION = {
    "_uuid": "4b6f1d1e-0000-4000-8000-00000000a001",
    "_xform_id_string": "aArrival2026",
    "_submission_time": "2026-01-10T09:00:00",
    "group_a/grievance": "The water at the transit centre ran out on Tuesday and nobody came.",
    "q_mobile": "+254711000777",
    "q_ok": "yes",
}


def _create_token(client: FlaskClient, **fields: str) -> tuple[ApiToken, str]:
    """A token created on the admin page: (the row, the secret shown once)."""
    response = client.post("/console/admin/tokens", data={"programme": "kenya", "name": "Kobo arrival", **fields})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    match = re.search(r'<code class="secret-key once" dir="ltr">(cfm_[^<]+)</code>', response.get_data(as_text=True))
    assert match is not None
    db.session.expire_all()
    return db.session.scalars(select(ApiToken).order_by(ApiToken.id.desc())).first(), match.group(1)  # type: ignore[return-value]


def _kobo(client: FlaskClient, secret: str, body: dict[str, Any]) -> Any:
    """POST a Kobo REST Service submission to the partner API."""
    return client.post("/api/v1/feedback", json=body, headers={"Authorization": f"Bearer {secret}"})


def test_tokens_page_shows_each_tokens_field_map_or_the_default(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    row, _secret = _create_token(client)
    assert row.field_map is None
    page = client.get("/console/admin/tokens").get_data(as_text=True)
    assert "Default KoboToolbox field names" in page
    assert "feedback, text, complaint, comment, message, description" in page  # API_KOBO_FIELDS["text"]
    assert f'href="/console/admin/tokens/{row.id}/fields"' in page


def test_admin_edits_a_tokens_field_map_and_the_kobo_endpoint_uses_it(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    row, secret = _create_token(client, **{"kobo-phone": "q_mobile"})
    assert row.field_map == {"phone": ["q_mobile"]}
    created = audit_events("admin.api_token_create", "kenya")[-1]
    assert created.details is not None and created.details["field_map"] == {"phone": ["q_mobile"]}
    # None of the default names matches this form's questions: the token names them.
    form = client.get(f"/console/admin/tokens/{row.id}/fields").get_data(as_text=True)
    assert re.search(r'name="kobo-phone"[^>]*value="q_mobile"', form)
    assert 'placeholder="feedback, text, complaint, comment, message, description"' in form
    response = client.post(
        f"/console/admin/tokens/{row.id}/fields",
        data={
            "kobo-text": " group_a/grievance,  complaint_text, group_a/grievance ",
            "kobo-consent": "q_ok",
            "kobo-phone": "q_mobile",
            "reason": "arrival form v2",
        },
    )
    assert response.status_code == 302
    assert "Field names of token Kobo arrival saved" in flashes(client, response)
    db.session.expire_all()
    new_map = {"text": ["group_a/grievance", "complaint_text"], "consent": ["q_ok"], "phone": ["q_mobile"]}
    assert db.session.get(ApiToken, row.id).field_map == new_map  # type: ignore[union-attr]
    [event] = audit_events("admin.api_token_fields", str(row.id))
    assert event.actor == world.users["admin"] and event.details == {
        "field_map": {"old": {"phone": ["q_mobile"]}, "new": new_map},
        "reason": "arrival form v2",
    }
    listing = client.get("/console/admin/tokens").get_data(as_text=True)
    assert "group_a/grievance, complaint_text" in listing
    # The partner API reads the submission through the new map: text, consent and phone.
    api = client.application.test_client()
    accepted = _kobo(api, secret, KOBO_SUBMISSION)
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["ignored_fields"] == []
    case = db.session.scalars(select(Case).where(Case.channel == "api")).one()
    assert case.text == KOBO_SUBMISSION["group_a/grievance"]
    assert case.reporter is not None and case.reporter.phone == "+254711000777" and case.reporter.consent_to_contact
    # Reset to the default: the form's text is no longer found, and the partner is told which fields it sent.
    reset = client.post(f"/console/admin/tokens/{row.id}/fields", data={"reset": "y", "reason": "form retired"})
    assert reset.status_code == 302
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).field_map is None  # type: ignore[union-attr]
    assert audit_events("admin.api_token_fields", str(row.id))[-1].details == {
        "field_map": {"old": new_map, "new": None},
        "reason": "form retired",
    }
    again = _kobo(api, secret, {**KOBO_SUBMISSION, "_uuid": "4b6f1d1e-0000-4000-8000-00000000a002"})
    assert again.status_code == 422 and again.get_json()["error"] == "no_text_field"
    assert "group_a/grievance" in again.get_json()["message"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kobo-text": "complaint text"}, "Not a Kobo field name: complaint text."),
        ({"kobo-text": "<script>"}, "Not a Kobo field name: &lt;script&gt;."),
        ({"kobo-text": "group_a//complaint"}, "Not a Kobo field name"),
        ({"kobo-text": "a" * 101}, "at most 100 characters"),
        ({"kobo-phone": ", ".join(f"q{n}" for n in range(11))}, "At most 10 field names for one field."),
    ],
)
def test_a_bad_field_map_is_refused_clearly(
    client: FlaskClient, world: World, fields: dict[str, str], message: str
) -> None:
    sign_in(client, world.users["admin"])
    row, _secret = _create_token(client, **{"kobo-text": "q_story"})
    response = client.post(f"/console/admin/tokens/{row.id}/fields", data={**fields, "reason": "x"})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).field_map == {"text": ["q_story"]}  # type: ignore[union-attr]
    assert audit_events("admin.api_token_fields", str(row.id)) == []
    # The same rules apply when the token is created.
    refused = client.post("/console/admin/tokens", data={"programme": "kenya", "name": "bad", **fields})
    assert refused.status_code == 400 and message in refused.get_data(as_text=True)
    assert db.session.scalars(select(ApiToken).where(ApiToken.name == "bad")).first() is None


def test_field_map_keys_are_checked_in_one_place(world: World) -> None:
    from cfm.api.tokens import TokenError, create_token
    from cfm.services.admin import AdminError, parse_field_map

    with pytest.raises(AdminError) as unknown:
        parse_field_map({"colour": "q_colour"})
    assert unknown.value.code == "field_key"
    with pytest.raises(TokenError, match="Not a Kobo field name"):
        create_token("kenya", "cli", {"text": ["has space"]})
    assert parse_field_map({"text": " , ", "phone": ""}) is None


def test_a_revoked_tokens_field_map_is_read_only(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    row, _secret = _create_token(client, **{"kobo-text": "q_story"})
    client.post(f"/console/admin/tokens/{row.id}/revoke", data={"reason": "partner left"})
    page = client.get(f"/console/admin/tokens/{row.id}/fields").get_data(as_text=True)
    assert "can no longer change" in page and "Save field names" not in page
    assert re.search(r'name="kobo-text"[^>]*disabled', page) or re.search(r'disabled[^>]*name="kobo-text"', page)
    refused = client.post(f"/console/admin/tokens/{row.id}/fields", data={"kobo-text": "q_other", "reset": "y"})
    assert refused.status_code == 400 and "This token is revoked" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).field_map == {"text": ["q_story"]}  # type: ignore[union-attr]
    assert audit_events("admin.api_token_fields", str(row.id)) == []
    assert client.get("/console/admin/tokens/99999/fields").status_code == 404


@pytest.mark.parametrize("role", ["officer", "supervisor", "focal", "viewer"])
def test_only_admins_see_or_change_a_tokens_field_map(client: FlaskClient, world: World, role: str) -> None:
    from cfm.api.tokens import create_token

    row, _secret = create_token("kenya", "kobo", {"text": ["q_story"]})
    sign_in(client, world.users[role])
    assert client.get(f"/console/admin/tokens/{row.id}/fields").status_code == 404
    response = client.post(f"/console/admin/tokens/{row.id}/fields", data={"kobo-text": "q_other"})
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).field_map == {"text": ["q_story"]}  # type: ignore[union-attr]


@pytest.mark.parametrize("app", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_field_map_and_service_level_changes_need_the_csrf_token(client: FlaskClient, world: World) -> None:
    import pyotp

    from cfm.api.tokens import create_token
    from tests.cfm.console.conftest import TOTP_SECRET

    row, _secret = create_token("kenya", "kobo", {"text": ["q_story"]})
    login = client.get("/console/login").get_data(as_text=True)
    client.post(
        "/console/login", data={"email": world.users["admin"], "password": PASSWORD, "csrf_token": _token(login)}
    )
    verify = client.get("/console/login/verify").get_data(as_text=True)
    client.post("/console/login/verify", data={"code": pyotp.TOTP(TOTP_SECRET).now(), "csrf_token": _token(verify)})
    forged = client.post(f"/console/admin/tokens/{row.id}/fields", data={"kobo-text": "q_other"})
    assert forged.status_code == 400
    levels = {"due_hours_by_category-safety_protection": "6"}
    assert client.post("/console/admin/programmes/kenya", data=_settings(**levels)).status_code == 400
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).field_map == {"text": ["q_story"]}  # type: ignore[union-attr]
    assert programme("kenya").due_hours_by_category is None
    page = client.get(f"/console/admin/tokens/{row.id}/fields").get_data(as_text=True)
    saved = client.post(
        f"/console/admin/tokens/{row.id}/fields", data={"kobo-text": "q_other", "csrf_token": _token(page)}
    )
    assert saved.status_code == 302
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).field_map == {"text": ["q_other"]}  # type: ignore[union-attr]
