"""Service levels per category (issue 6): precedence, the restricted cap, intake and recategorisation set due dates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cfm import create_app
from cfm.extensions import db
from cfm.models import AuditEvent, Case, Programme
from cfm.models.types import utcnow
from cfm.services import routing, triage
from cfm.services.classification import apply_prediction
from cfm.services.crypto import generate_keys
from classifier.categories import CATEGORIES, is_restricted
from tests.cfm.helpers import send, user
from tests.cfm.webhooks.support import ACCOUNT_SID, AUTH_TOKEN, inbound, post

QUESTION = "When is our flight to Canada? Nobody told us the date of the departure."
HOUR = timedelta(hours=1)


def hours(programme: Programme, category: str | None, *, restricted: bool | None = None) -> int:
    """The service level routing gives a case of this category (its own queue unless told)."""
    queue_restricted = is_restricted(category) if restricted is None and category else bool(restricted)
    return routing.due_hours(programme, restricted=queue_restricted, category=category)


def only_case() -> Case:
    """The one stored case, fresh."""
    db.session.expire_all()
    return db.session.scalars(select(Case)).one()


# --- precedence -------------------------------------------------------------------------------------------------


def test_server_defaults_per_category(programme: Programme) -> None:
    assert {code: hours(programme, code) for code in CATEGORIES} == {
        "information_request": 7 * 24,
        "assistance_request": 72,
        "service_complaint": 14 * 24,
        "suggestion": 30 * 24,
        "appreciation": 30 * 24,
        "other": 30 * 24,
        "sexual_exploitation_abuse": 72,
        "fraud_corruption": 72,
        "staff_misconduct": 72,
        "safety_protection": 24,
    }
    # No category (manual triage) takes the queue's level.
    assert hours(programme, None, restricted=True) == 72
    assert hours(programme, None, restricted=False) == 30 * 24


def test_programme_per_category_beats_server_per_category_beats_queue_levels(ctx: Flask, programme: Programme) -> None:
    ctx.config["DUE_HOURS_BY_CATEGORY"] = {"information_request": 100, "suggestion": 2000}
    ctx.config["DUE_HOURS_GENERAL"] = 500
    assert hours(programme, "information_request") == 100  # server per category
    assert hours(programme, "suggestion") == 2000  # a server level may be longer than the queue's
    assert hours(programme, "other") == 500  # not in the map: server queue level
    programme.due_hours_general = 400
    assert hours(programme, "other") == 400  # programme queue level beats the server's
    assert hours(programme, "information_request") == 100  # server per category beats the programme's queue level...
    assert hours(programme, "suggestion") == 400  # ...but never makes the date later than the programme asked for
    programme.due_hours_by_category = {"information_request": 30, "suggestion": 900}
    assert hours(programme, "information_request") == 30  # programme per category beats everything
    assert hours(programme, "suggestion") == 900  # even past its own general level (an explicit choice)
    assert hours(programme, "other") == 400


def test_a_restricted_case_is_never_due_later_than_the_restricted_level(ctx: Flask, programme: Programme) -> None:
    ctx.config["DUE_HOURS_BY_CATEGORY"] = {**ctx.config["DUE_HOURS_BY_CATEGORY"], "fraud_corruption": 200}
    assert hours(programme, "fraud_corruption") == 72  # server per category, capped by the server restricted level
    programme.due_hours_restricted = 48
    programme.due_hours_by_category = {"staff_misconduct": 96}
    assert hours(programme, "staff_misconduct") == 48  # even the programme's own category level is capped
    assert hours(programme, "sexual_exploitation_abuse") == 48
    assert hours(programme, "safety_protection") == 24  # shorter levels stay
    # A general category in the restricted queue (threshold, safety net, the person's own flag) takes the minimum.
    assert hours(programme, "information_request", restricted=True) == 48
    assert hours(programme, "information_request", restricted=False) == 7 * 24


def test_route_takes_the_sooner_of_the_models_and_the_safety_nets_levels(programme: Programme) -> None:
    now = utcnow()
    decision = routing.route(
        programme, now, category="fraud_corruption", model_restricted=True, safety_net_category="safety_protection"
    )
    assert (decision.queue, decision.due_at - now) == ("restricted", 24 * HOUR)
    general = routing.route(
        programme, now, category="service_complaint", model_restricted=False, safety_net_category=None
    )
    assert (general.queue, general.due_at - now) == ("general", 14 * 24 * HOUR)
    unclassified = routing.route(programme, now, category=None, model_restricted=None, safety_net_category=None)
    assert (unclassified.queue, unclassified.due_at - now) == ("restricted", 72 * HOUR)


def test_the_map_is_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    base = {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}", **generate_keys()}
    monkeypatch.setenv("CFM_DUE_HOURS_BY_CATEGORY", '{"safety_protection": 12, "other": "48"}')
    assert create_app(base).config["DUE_HOURS_BY_CATEGORY"] == {"safety_protection": 12, "other": 48}
    monkeypatch.setenv("CFM_DUE_HOURS_BY_CATEGORY", '{"safety": 12}')
    with pytest.raises(ValueError, match="unknown categories safety"):
        create_app(base)
    monkeypatch.setenv("CFM_DUE_HOURS_BY_CATEGORY", '{"other": 0}')
    with pytest.raises(ValueError, match="positive"):
        create_app(base)
    monkeypatch.delenv("CFM_DUE_HOURS_BY_CATEGORY")
    fresh = create_app(base).config["DUE_HOURS_BY_CATEGORY"]
    assert fresh["safety_protection"] == 24 and fresh is not create_app(base).config["DUE_HOURS_BY_CATEGORY"]


# --- intake -----------------------------------------------------------------------------------------------------


def test_an_sms_through_the_twilio_webhook_gets_its_categorys_due_date(
    app: Flask, client: FlaskClient, programme: Programme
) -> None:
    app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    programme.due_hours_by_category = {"information_request": 36}
    db.session.commit()
    assert post(client, "/sms/twilio", inbound(QUESTION, "SM" + "7" * 32)).status_code == 200
    case = only_case()
    assert (case.channel, case.category, case.queue) == ("sms", "information_request", "general")
    assert case.due_at is not None and case.due_at - case.received_at == 36 * HOUR


def test_a_web_submission_uses_the_server_level_of_its_category(programme: Programme) -> None:
    case = send(QUESTION).case
    assert case.category == "information_request"
    assert case.due_at is not None and case.due_at - case.received_at == 7 * 24 * HOUR


def test_a_safety_net_hit_that_fails_closed_is_due_at_its_categorys_level(app: Flask, programme: Programme) -> None:
    app.config["MODEL_PATH"] = "/nonexistent/model.skops"
    app.extensions.pop("cfm_model", None)
    case = send("A man is selling children at the camp, it is trafficking").case
    assert (case.queue, case.safety_net_category, case.classification_status) == (
        "restricted",
        "safety_protection",
        "failed",
    )
    assert case.due_at is not None and case.due_at - case.received_at == 24 * HOUR
    # Without a hit, the unclassified case takes the restricted queue's level.
    other = send("Thank you for the blankets and the tea at the transit centre").case
    assert other.due_at is not None and other.due_at - other.received_at == 72 * HOUR


# --- recategorisation -------------------------------------------------------------------------------------------


def routed(category: str, *, received_hours_ago: int = 0) -> Case:
    """A case through intake (no model), routed as if the model said `category`, received some hours ago."""
    case = send("Text that does not matter for service levels", received_at=utcnow() - received_hours_ago * HOUR).case
    apply_prediction(
        case,
        category=category,
        confidence=0.9,
        restricted=is_restricted(category),
        reasons=["category"] if is_restricted(category) else [],
        top_terms=[],
        model_version="test-1",
        safety_net_category=None,
    )
    db.session.commit()
    return case


def category_event(case: Case) -> dict[str, Any]:
    """Details of the case's latest case.category audit event."""
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "case.category", AuditEvent.object_ref == case.reference)
    ).all()
    assert events and events[-1].details is not None
    return events[-1].details


@pytest.fixture
def no_model(ctx: Flask, programme: Programme) -> Programme:
    """The default programme; intake without the classifier (routed() routes the cases)."""
    ctx.extensions["cfm_model"] = None
    return programme


def test_recategorising_recomputes_the_due_date_from_receipt(no_model: Programme) -> None:
    officer = user("officer@example.org", "officer")
    case = routed("information_request", received_hours_ago=5)
    assert case.due_at == case.received_at + 7 * 24 * HOUR
    triage.reclassify(case, "assistance_request", actor=officer, reason="needs a wheelchair")
    assert case.due_at == case.received_at + 72 * HOUR
    old, new = category_event(case)["due_at"]
    assert (old, new) == ((case.received_at + 7 * 24 * HOUR).isoformat(), case.due_at.isoformat())
    # A category with the same level: the date stays, and the audit event has no due-date change.
    thanks = routed("suggestion")
    due = thanks.due_at
    triage.reclassify(thanks, "appreciation", actor=officer, reason="a thank-you")
    assert thanks.due_at == due and "due_at" not in category_event(thanks)


def test_moving_into_the_restricted_queue_counts_from_receipt_and_never_later(no_model: Programme) -> None:
    officer = user("officer@example.org", "officer")
    case = routed("service_complaint", received_hours_ago=100)
    triage.reclassify(case, "safety_protection", actor=officer, reason="a threat")
    assert case.queue == "restricted"
    assert case.due_at == case.received_at + 24 * HOUR  # already overdue: the reminders flag it at once
    assert case.due_at < utcnow()
    details = category_event(case)
    assert details["queue"] == ["general", "restricted"] and details["due_at"][1] == case.due_at.isoformat()
    # A general level shorter than the restricted one is kept: moving in never makes a case later.
    no_model.due_hours_by_category = {"assistance_request": 12}
    quick = routed("assistance_request")
    triage.reclassify(quick, "fraud_corruption", actor=officer, reason="a bribe")
    assert quick.due_at == quick.received_at + 12 * HOUR


def test_an_overdue_restricted_case_pushed_later_shows_it_in_the_audit(no_model: Programme) -> None:
    focal = user("focal@example.org", "focal_point")
    case = routed("safety_protection", received_hours_ago=30)
    overdue = case.due_at
    assert overdue is not None and overdue < utcnow()
    triage.reclassify(case, "fraud_corruption", actor=focal, reason="a bribe, no threat")
    assert case.due_at == case.received_at + 72 * HOUR and case.due_at > overdue
    assert category_event(case)["due_at"] == [overdue.isoformat(), case.due_at.isoformat()]
    # Out of the restricted queue (a focal point only): the new category's general level, also on record.
    triage.reclassify(case, "service_complaint", actor=focal, reason="a late bus")
    assert (case.queue, case.due_at) == ("general", case.received_at + 14 * 24 * HOUR)
    details = category_event(case)
    assert details["queue"] == ["restricted", "general"] and details["due_at"][1] == case.due_at.isoformat()
