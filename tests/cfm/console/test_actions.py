"""Triage actions through the console and cfm.services.triage: each audited, each refused where it must be."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from cfm.extensions import db
from cfm.models import Message, Reporter
from cfm.services import triage
from cfm.services.audit import verify_chain
from tests.cfm.console.conftest import GENERAL_TEXT, RESTRICTED_TEXT, World, audit_events, sign_in

RAW_TEXT = {
    "case": text('SELECT text_plain, text_sealed FROM "case" WHERE id = :id'),
    "message": text("SELECT text_plain, text_sealed FROM message WHERE id = :id"),
}


def raw_text(table: str, ident: int) -> tuple[str | None, str | None]:
    """The stored (text_plain, text_sealed) of a case or message row, as the database holds them."""
    row = db.session.execute(RAW_TEXT[table], {"id": ident}).one()  # plain SQL: no Sealed type decrypting it
    return row[0], row[1]


def flashes(client: FlaskClient, path: str) -> bytes:
    """The page after an action, with its flash messages."""
    return client.get(path).data


# --- assignment ---------------------------------------------------------------------------------------------


def test_officer_takes_an_unassigned_case_and_hands_it_back(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    ref = world.cases["kenya_general"]
    response = client.post(f"/console/cases/{ref}/assign", data={"assign-assignee": "me"})
    assert response.status_code == 302 and response.headers["Location"] == f"/console/cases/{ref}"
    assert world.case("kenya_general").assignee_id == world.user("officer").id
    assert client.get("/console/queue/general", query_string={"assignee": "me"}).data.count(ref.encode()) >= 1
    client.post(f"/console/cases/{ref}/assign", data={"assign-assignee": ""})
    assert world.case("kenya_general").assignee_id is None
    events = audit_events("case.assign", ref)
    assert [e.details["to"] for e in events] == [world.user("officer").id, None]  # type: ignore[index]


def test_officer_cannot_reassign_a_colleagues_case(client: FlaskClient, world: World) -> None:
    case = world.case("kenya_general")
    triage.assign(case, world.user("officer2"), actor=world.user("officer2"))
    sign_in(client, world.users["officer"])
    officer_id = str(world.user("officer").id)
    client.post(f"/console/cases/{case.reference}/assign", data={"assign-assignee": officer_id})
    assert world.case("kenya_general").assignee_id == world.user("officer2").id
    assert b"Only a supervisor or a focal point can reassign" in flashes(client, f"/console/cases/{case.reference}")


def test_supervisor_reassigns_with_a_reason(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["supervisor"])
    ref = world.cases["kenya_general"]
    page = client.get(f"/console/cases/{ref}").data
    assert b'name="assign-assignee"' in page and world.users["officer2"].encode() in page
    assert world.users["focal"].encode() not in page  # a focal point without officer role cannot work general cases
    officer2 = str(world.user("officer2").id)
    client.post(f"/console/cases/{ref}/assign", data={"assign-assignee": officer2, "assign-reason": "speaks Swahili"})
    assert world.case("kenya_general").assignee_id == world.user("officer2").id
    event = audit_events("case.assign", ref)[-1]
    assert event.actor == world.users["supervisor"]
    assert event.details["reason_sha256"] == hashlib.sha256(b"speaks Swahili").hexdigest()  # type: ignore[index]
    assert "Swahili" not in repr(event.details)
    assert b"speaks Swahili" in client.get(f"/console/cases/{ref}").data  # the history shows the reason


def test_case_cannot_be_assigned_to_someone_who_cannot_open_it(world: World) -> None:
    case = world.case("kenya_general")
    for outsider in ("focal", "viewer", "admin"):
        with pytest.raises(triage.TriageError):
            triage.assign(case, world.user(outsider), actor=world.user("supervisor"))
    restricted = world.case("kenya_restricted")
    with pytest.raises(triage.TriageError):
        triage.assign(restricted, world.user("focal_jordan"), actor=world.user("focal"))
    triage.assign(restricted, world.user("focal"), actor=world.user("focal"))


# --- status workflow ------------------------------------------------------------------------------------------


def test_status_moves_through_the_workflow_and_closing_needs_the_loop(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    ref = world.cases["kenya_general"]
    url = f"/console/cases/{ref}/status"
    client.post(url, data={"status-status": "closed", "status-closure_method": "call"})
    assert world.case("kenya_general").status == "new"  # new -> closed is not in the workflow
    client.post(url, data={"status-status": "under_review", "status-reason": "reading it"})
    client.post(url, data={"status-status": "action_taken"})
    client.post(url, data={"status-status": "closed"})
    assert world.case("kenya_general").status == "action_taken"
    assert b"Say how the loop was closed" in flashes(client, f"/console/cases/{ref}")
    client.post(url, data={"status-status": "closed", "status-closure_method": "sms_reply"})
    case = world.case("kenya_general")
    assert case.status == "closed" and case.closure_method == "sms_reply" and case.closed_at is not None
    details = [e.details or {} for e in audit_events("case.status", ref)]
    assert details[-1] == {
        "from": "action_taken",
        "to": "closed",
        "closure_method": "sms_reply",
        "event": details[-1]["event"],
    }
    client.post(url, data={"status-status": "under_review", "status-reason": "the person wrote again"})
    case = world.case("kenya_general")
    assert case.status == "under_review" and case.closed_at is None and case.closure_method is None
    history = client.get(f"/console/cases/{ref}").data
    assert b"the person wrote again" in history and b"Loop closed" not in history


def test_unknown_status_is_refused(world: World) -> None:
    with pytest.raises(triage.TriageError):
        triage.change_status(world.case("kenya_general"), "archived", actor=world.user("officer"))


# --- category corrections -------------------------------------------------------------------------------------


def test_officer_corrects_the_category_within_the_general_queue(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    before = world.case("kenya_general")
    predicted = before.predicted_category
    ref = before.reference
    client.post(f"/console/cases/{ref}/category", data={"category-category": "suggestion"})
    assert world.case("kenya_general").category_source == "model"  # no reason, no change
    client.post(
        f"/console/cases/{ref}/category", data={"category-category": "suggestion", "category-reason": "an idea"}
    )
    case = world.case("kenya_general")
    assert (case.category, case.category_source, case.predicted_category, case.queue) == (
        "suggestion",
        "officer",
        predicted,
        "general",
    )
    assert audit_events("case.category", ref)[-1].details["to"] == "suggestion"  # type: ignore[index]


def test_officer_moves_a_case_into_restricted_and_it_is_sealed(client: FlaskClient, world: World) -> None:
    officer = world.user("officer")
    case = world.case("kenya_general")
    case.messages.append(Message(direction="inbound", channel="web", text_plain="He asked me for money for the seat"))
    db.session.commit()
    triage.assign(case, officer, actor=officer)
    sign_in(client, world.users["officer"])
    ref = case.reference
    response = client.post(
        f"/console/cases/{ref}/category", data={"category-category": "fraud_corruption", "category-reason": "a bribe"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/console/queue/general"
    assert b"is now in the restricted queue" in flashes(client, "/console/queue/general")
    moved = world.case("kenya_general")
    assert (moved.queue, moved.category, moved.priority, moved.assignee_id) == (
        "restricted",
        "fraud_corruption",
        "high",
        None,
    )
    assert "officer" in (moved.restricted_reasons or [])
    plain, sealed = raw_text("case", moved.id)
    assert plain is None and sealed and GENERAL_TEXT not in sealed
    for message in moved.messages:
        plain, sealed = raw_text("message", message.id)
        assert plain is None and sealed and "money" not in sealed
    assert moved.text == GENERAL_TEXT  # still readable through the keys
    assert client.get(f"/console/cases/{ref}").status_code == 404  # out of the officer's sight at once
    assert [e.details.get("queue") for e in audit_events("case.category", ref)] == [["general", "restricted"]]  # type: ignore[union-attr]
    client.post("/console/logout")
    sign_in(client, world.users["focal"])
    page = client.get(f"/console/cases/{ref}").data
    assert GENERAL_TEXT.encode() in page and b"money for the seat" in page


def test_only_a_focal_point_moves_a_case_out_of_restricted(client: FlaskClient, world: World) -> None:
    restricted = world.case("kenya_restricted")
    with pytest.raises(triage.CaseNotVisible):
        triage.reclassify(restricted, "other", actor=world.user("supervisor"), reason="not misconduct")
    sign_in(client, world.users["focal"])
    ref = restricted.reference
    page = client.get(f"/console/cases/{ref}").data
    assert b'value="information_request"' in page  # a focal point is offered general categories
    client.post(
        f"/console/cases/{ref}/category", data={"category-category": "other", "category-reason": "a test message"}
    )
    case = world.case("kenya_restricted")
    assert (case.queue, case.category, case.category_source, case.priority) == ("general", "other", "officer", "normal")
    plain, sealed = raw_text("case", case.id)
    assert plain == RESTRICTED_TEXT and sealed is None
    assert client.get(f"/console/cases/{ref}").status_code == 404  # now the officers' case


def test_focal_point_settles_a_pending_case(world: World) -> None:
    case = world.case("kenya_pending")
    triage.reclassify(case, "information_request", actor=world.user("focal"), reason="asks for directions")
    case = world.case("kenya_pending")
    assert case.queue == "general" and case.classification_status == "done"


def test_unknown_category_is_refused(world: World) -> None:
    with pytest.raises(triage.TriageError):
        triage.reclassify(world.case("kenya_general"), "gossip", actor=world.user("officer"), reason="x")


# --- notes ----------------------------------------------------------------------------------------------------


def test_notes_are_sealed_at_rest_and_not_in_the_audit_log(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    ref = world.cases["kenya_general"]
    client.post(f"/console/cases/{ref}/notes", data={"note-body": "Called the camp office about <b>dates</b>"})
    client.post(f"/console/cases/{ref}/notes", data={"note-body": "   "})
    page = client.get(f"/console/cases/{ref}").data
    assert b"Called the camp office about &lt;b&gt;dates&lt;/b&gt;" in page
    stored = db.session.execute(text("SELECT body FROM case_note")).scalars().all()
    assert len(stored) == 1 and "camp office" not in stored[0]
    events = audit_events("case.note", ref)
    assert len(events) == 1 and "camp" not in repr(events[0].details)


# --- referral -------------------------------------------------------------------------------------------------


def test_focal_point_records_a_referral(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["focal"])
    ref = world.cases["kenya_restricted"]
    assert b"Record referral" in client.get(f"/console/cases/{ref}").data
    today = date.today().isoformat()
    client.post(
        f"/console/cases/{ref}/referral", data={"referral-referral_id": "MRP-2024-0113", "referral-referred_on": today}
    )
    case = world.case("kenya_restricted")
    assert case.status == "referred_internally"
    [referral] = triage.referrals(case)
    assert (referral.referral_id, referral.referred_on.isoformat()) == ("MRP-2024-0113", today)
    event = audit_events("case.referral", ref)[-1]
    assert event.details["referral_id"] == "MRP-2024-0113"  # type: ignore[index]
    assert b"MRP-2024-0113" in client.get(f"/console/cases/{ref}").data


def test_referral_needs_an_id_and_a_past_date(world: World) -> None:
    case, focal = world.case("kenya_restricted"), world.user("focal")
    with pytest.raises(triage.TriageError):
        triage.refer(case, "  ", date.today(), actor=focal)
    with pytest.raises(triage.TriageError):
        triage.refer(case, "MRP-1", date.today() + timedelta(days=2), actor=focal)


def test_general_cases_are_not_referred_to_the_misconduct_platform(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    ref = world.cases["kenya_general"]
    assert b"Record referral" not in client.get(f"/console/cases/{ref}").data
    client.post(
        f"/console/cases/{ref}/referral", data={"referral-referral_id": "X-1", "referral-referred_on": "2024-01-01"}
    )
    assert triage.referrals(world.case("kenya_general")) == []


# --- every action refuses a case the actor cannot see -----------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("assign", {"assign-assignee": "me"}),
        ("status", {"status-status": "under_review"}),
        ("category", {"category-category": "other", "category-reason": "x"}),
        ("notes", {"note-body": "hello"}),
        ("referral", {"referral-referral_id": "X", "referral-referred_on": "2024-01-01"}),
    ],
)
def test_officer_cannot_act_on_restricted_case(
    client: FlaskClient, world: World, action: str, data: dict[str, str]
) -> None:
    sign_in(client, world.users["supervisor"])
    for name in ("kenya_restricted", "kenya_pending"):
        assert client.post(f"/console/cases/{world.cases[name]}/{action}", data=data).status_code == 404
    sign_in(client, world.users["focal_jordan"])
    assert client.post(f"/console/cases/{world.cases['kenya_restricted']}/{action}", data=data).status_code == 404
    case = world.case("kenya_restricted")
    assert (case.status, case.assignee_id, case.category_source) == ("new", None, "model")


def test_services_refuse_cases_the_actor_cannot_see(world: World) -> None:
    restricted, officer, admin = world.case("kenya_restricted"), world.user("supervisor"), world.user("admin")
    for actor in (officer, admin, world.user("viewer"), world.user("focal_jordan")):
        with pytest.raises(triage.CaseNotVisible):
            triage.add_note(restricted, "x", actor=actor)
        with pytest.raises(triage.CaseNotVisible):
            triage.change_status(restricted, "under_review", actor=actor)
    with pytest.raises(triage.CaseNotVisible):
        triage.assign(world.case("kenya_general"), admin, actor=admin)


def test_audit_chain_stays_intact_after_a_day_of_triage(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["supervisor"])
    ref = world.cases["kenya_general"]
    client.post(f"/console/cases/{ref}/assign", data={"assign-assignee": "me"})
    client.post(f"/console/cases/{ref}/status", data={"status-status": "under_review"})
    client.post(f"/console/cases/{ref}/notes", data={"note-body": "checked"})
    assert verify_chain() is None


@pytest.mark.parametrize("app", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_actions_need_the_csrf_token(client: FlaskClient, world: World) -> None:
    login = client.get("/console/login").data.decode()
    token = login.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert client.post("/console/login", data={"email": world.users["officer"], "password": "x"}).status_code == 400
    from tests.cfm.helpers import PASSWORD

    ok = client.post(
        "/console/login", data={"email": world.users["officer"], "password": PASSWORD, "csrf_token": token}
    )
    assert ok.status_code == 302
    ref = world.cases["kenya_general"]
    assert client.post(f"/console/cases/{ref}/notes", data={"note-body": "no token"}).status_code == 400
    page = client.get(f"/console/cases/{ref}").data.decode()
    note_token = page.split('name="note-csrf_token" type="hidden" value="')[1].split('"')[0]
    assert (
        client.post(f"/console/cases/{ref}/notes", data={"note-body": "ok", "note-csrf_token": note_token}).status_code
        == 302
    )
    assign_token = page.split('name="assign-csrf_token" value="')[1].split('"')[0]
    client.post(f"/console/cases/{ref}/assign", data={"assign-assignee": "me", "assign-csrf_token": assign_token})
    assert world.case("kenya_general").assignee_id == world.user("officer").id


# --- replies (cfm.services.outbound sends them) ------------------------------------------------------------------


def test_reply_is_queued_only_with_consent(client: FlaskClient, world: World) -> None:
    case = world.case("kenya_general")
    case.reporter = Reporter(phone="+254711222333", consent_to_contact=False, preferred_language="sw")
    db.session.commit()
    sign_in(client, world.users["officer"])
    ref = case.reference
    page = client.get(f"/console/cases/{ref}").data
    assert b'name="reply-body"' not in page and b"did not agree to be contacted" in page
    client.post(f"/console/cases/{ref}/reply", data={"reply-body": "Habari"})
    assert [m for m in world.case("kenya_general").messages if m.direction == "outbound"] == []
    reporter = world.case("kenya_general").reporter
    assert reporter is not None
    reporter.consent_to_contact = True
    db.session.commit()
    page = client.get(f"/console/cases/{ref}").data
    assert b'name="reply-body"' in page and b'lang="sw"' in page
    client.post(f"/console/cases/{ref}/reply", data={"reply-body": "Habari, the briefing is on Monday."})
    [reply] = [m for m in world.case("kenya_general").messages if m.direction == "outbound"]
    assert reply.text == "Habari, the briefing is on Monday." and reply.author_id == world.user("officer").id
    assert audit_events("case.reply", ref)
    page = client.get(f"/console/cases/{ref}").data
    assert b"the briefing is on Monday" in page and b"From staff" in page
