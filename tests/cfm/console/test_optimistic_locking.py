"""Optimistic locking (issue 8): two officers on one case; the second save is refused, nothing overwritten silently."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cfm.extensions import db
from cfm.models import Case, CaseEvent, Message
from cfm.services import outbound, triage
from tests.cfm.console.conftest import World, audit_events, sign_in
from tests.cfm.webhooks.support import ACCOUNT_SID, AUTH_TOKEN, post

STALE = b"Someone else changed this case while you were reading it: reload to see their change."


def seen_version(page: bytes, form: str) -> str:
    """The version a form on the case page carries (what the officer saw)."""
    found = re.search(rb'name="' + form.encode() + rb'-version"[^>]*value="(\d+)"', page) or re.search(
        rb'value="(\d+)"[^>]*name="' + form.encode() + rb'-version"', page
    )
    assert found is not None, f"no {form}-version field on the page"
    return found.group(1).decode()


def status_events(ref: str) -> list[CaseEvent]:
    """The case's status history events."""
    db.session.expire_all()
    case_id = db.session.scalar(select(Case.id).where(Case.reference == ref))
    query = select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "status").order_by(CaseEvent.id)
    return list(db.session.scalars(query))


@contextmanager
def concurrent_write_before_flush(case_id: int, status: str) -> Iterator[list[int]]:
    """Commit another writer's change to the case on its own connection just before the next flush touching it.

    This is the race the form's version cannot catch: both writers read version N, the other commits first.
    """
    fired: list[int] = []

    def other_writer(session: Session, *_: Any) -> None:
        if fired or not any(isinstance(obj, Case) and obj.id == case_id for obj in session.dirty):
            return
        fired.append(case_id)
        with db.engine.begin() as conn:
            conn.execute(
                text('UPDATE "case" SET status = :status, version = version + 1 WHERE id = :id'),
                {"status": status, "id": case_id},
            )

    event.listen(Session, "before_flush", other_writer)
    try:
        yield fired
    finally:
        event.remove(Session, "before_flush", other_writer)


# --- two officers through the console ---------------------------------------------------------------------------


def test_second_officer_saving_a_stale_status_is_refused_and_the_first_change_stands(
    app: Flask, client: FlaskClient, world: World
) -> None:
    ref = world.cases["kenya_general"]
    other = app.test_client()
    sign_in(client, world.users["officer"])
    sign_in(other, world.users["officer2"])
    path = f"/console/cases/{ref}"
    first_version = seen_version(client.get(path).data, "status")
    second_version = seen_version(other.get(path).data, "status")
    assert first_version == second_version

    response = client.post(f"{path}/status", data={"status-status": "under_review", "status-version": first_version})
    assert response.status_code == 302
    response = other.post(
        f"{path}/status",
        data={"status-status": "no_action_required", "status-reason": "duplicate", "status-version": second_version},
    )
    assert response.status_code == 302 and response.headers["Location"] == path
    page = other.get(path).data
    assert STALE in page
    assert world.case("kenya_general").status == "under_review"
    assert [(e.old_value, e.new_value) for e in status_events(ref)] == [("new", "under_review")]
    assert [e.details["to"] for e in audit_events("case.status", ref)] == ["under_review"]  # type: ignore[index]
    # After reloading, the second officer works on the new version.
    fresh = seen_version(page, "status")
    assert int(fresh) == int(second_version) + 1
    other.post(f"{path}/status", data={"status-status": "no_action_required", "status-version": fresh})
    assert world.case("kenya_general").status == "no_action_required"


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("assign", {"assign-assignee": "me"}),
        ("category", {"category-category": "suggestion", "category-reason": "it proposes a change"}),
        ("status", {"status-status": "under_review"}),
    ],
)
def test_every_case_action_with_a_stale_version_changes_nothing(
    client: FlaskClient, world: World, action: str, data: dict[str, str]
) -> None:
    ref = world.cases["kenya_general"]
    sign_in(client, world.users["supervisor"])
    seen = seen_version(client.get(f"/console/cases/{ref}").data, action)
    triage.add_note(world.case("kenya_general"), "notes never make a form stale", actor=world.user("officer"))
    triage.change_status(world.case("kenya_general"), "under_review", actor=world.user("officer"))
    before = world.case("kenya_general")
    snapshot = (before.assignee_id, before.category, before.status, before.version)
    client.post(f"/console/cases/{ref}/{action}", data={**data, f"{action}-version": seen})
    after = world.case("kenya_general")
    assert (after.assignee_id, after.category, after.status, after.version) == snapshot
    assert STALE in client.get(f"/console/cases/{ref}").data


def test_a_stale_referral_is_refused(client: FlaskClient, world: World) -> None:
    ref = world.cases["kenya_restricted"]
    sign_in(client, world.users["focal"])
    seen = seen_version(client.get(f"/console/cases/{ref}").data, "referral")
    triage.change_status(world.case("kenya_restricted"), "under_review", actor=world.user("focal"))
    data = {"referral-referral_id": "MRP-1", "referral-referred_on": "2024-01-02", "referral-version": seen}
    client.post(f"/console/cases/{ref}/referral", data=data)
    assert triage.referrals(world.case("kenya_restricted")) == []
    assert STALE in client.get(f"/console/cases/{ref}").data


def test_every_action_form_carries_the_version_the_officer_saw(client: FlaskClient, world: World) -> None:
    ref = world.cases["kenya_restricted"]
    sign_in(client, world.users["focal"])
    page = client.get(f"/console/cases/{ref}").data
    version = str(world.case("kenya_restricted").version)
    for form in ("assign", "status", "category", "referral"):
        assert seen_version(page, form) == version
    # The one-click "Assign to me" form carries it too.
    assert page.count(b'name="assign-version"') >= 2


def test_a_version_that_is_not_a_number_is_refused_as_stale(client: FlaskClient, world: World) -> None:
    ref = world.cases["kenya_general"]
    sign_in(client, world.users["officer"])
    client.post(f"/console/cases/{ref}/status", data={"status-status": "under_review", "status-version": "1; DROP"})
    assert world.case("kenya_general").status == "new"
    assert STALE in client.get(f"/console/cases/{ref}").data


# --- what does and does not make a form stale -------------------------------------------------------------------


def test_notes_replies_views_and_delivery_callbacks_leave_the_version_alone(
    app: Flask, client: FlaskClient, world: World
) -> None:
    case = world.case("kenya_restricted")
    version = case.version
    triage.add_note(case, "called the person back", actor=world.user("focal"))
    triage.record_view(world.case("kenya_restricted"), world.user("focal"))
    reply = Message(case=world.case("kenya_restricted"), direction="outbound", channel="sms")
    reply.provider_id, reply.delivery_status = "SM" + "c" * 32, "queued"
    reply.store_text("We have your message.", sealed=True)
    db.session.add(reply)
    db.session.commit()
    outbound.record_status("SM" + "c" * 32, "delivered", None)
    app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    form = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "read", "AccountSid": ACCOUNT_SID}
    assert post(client, "/sms/twilio/status", form).status_code == 204
    assert world.case("kenya_restricted").version == version
    # A change to the case itself moves it on.
    triage.change_status(world.case("kenya_restricted"), "under_review", actor=world.user("focal"))
    assert world.case("kenya_restricted").version == version + 1


def test_a_form_without_a_version_is_not_checked(client: FlaskClient, world: World) -> None:
    """Scripts and older pages that send no version still work (the check guards forms, it is not an access rule)."""
    ref = world.cases["kenya_general"]
    triage.add_note(world.case("kenya_general"), "x", actor=world.user("officer"))
    sign_in(client, world.users["officer"])
    client.post(f"/console/cases/{ref}/status", data={"status-status": "under_review"})
    assert world.case("kenya_general").status == "under_review"


# --- the race the form cannot see: the ORM's version check ------------------------------------------------------


def test_the_orm_refuses_a_flush_over_a_concurrent_commit(world: World) -> None:
    case = world.case("kenya_general")
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE \"case\" SET priority = 'high', version = version + 1 WHERE id = :id"), {"id": case.id}
        )
    case.status = "under_review"
    with pytest.raises(StaleDataError):
        db.session.flush()
    db.session.rollback()
    fresh = world.case("kenya_general")
    assert (fresh.status, fresh.priority) == ("new", "high")


def test_a_concurrent_commit_between_check_and_flush_becomes_a_stale_case_error(world: World) -> None:
    case = world.case("kenya_general")
    officer = world.user("officer")
    with concurrent_write_before_flush(case.id, "no_action_required") as fired, pytest.raises(triage.StaleCase):
        triage.change_status(case, "under_review", actor=officer, expected_version=case.version)
    assert fired
    fresh = world.case("kenya_general")
    assert fresh.status == "no_action_required"  # the other writer's change stands
    assert status_events(fresh.reference) == []  # ours left no trace: no history event
    assert audit_events("case.status", fresh.reference) == []
    case_events = db.session.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == fresh.id))
    assert case_events == 0


def test_a_concurrent_commit_during_a_console_request_is_a_message_not_a_500(client: FlaskClient, world: World) -> None:
    ref = world.cases["kenya_general"]
    case_id = world.case("kenya_general").id
    sign_in(client, world.users["officer"])
    seen = seen_version(client.get(f"/console/cases/{ref}").data, "status")
    with concurrent_write_before_flush(case_id, "no_action_required") as fired:
        response = client.post(
            f"/console/cases/{ref}/status", data={"status-status": "under_review", "status-version": seen}
        )
    assert fired
    assert response.status_code == 302
    assert STALE in client.get(f"/console/cases/{ref}").data
    assert world.case("kenya_general").status == "no_action_required"
    assert status_events(ref) == []
