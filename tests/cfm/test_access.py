"""visible_cases(): the restricted queue is a security boundary; each test names the property it guards."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cfm.extensions import db
from cfm.models import Case
from cfm.services.access import can_see_restricted, get_visible_case, visible_cases
from cfm.services.admin import create_programme
from tests.cfm.helpers import send, user

GENERAL_TEXT = "When is the pre-departure briefing for our family?"
RESTRICTED_TEXT = "The interpreter touched me and said he would help my case if I came to his room at night."


@pytest.fixture
def cases(ctx: Flask) -> dict[str, Case]:
    """A general and a restricted case in each of two programmes, and one still pending."""
    create_programme("kenya", "Kenya", ["+254700000001"])
    create_programme("jordan", "Jordan", ["+962700000001"])
    made = {
        "kenya_general": send(GENERAL_TEXT, programme="kenya").case,
        "kenya_restricted": send(RESTRICTED_TEXT, programme="kenya").case,
        "jordan_general": send(GENERAL_TEXT, programme="jordan").case,
        "jordan_restricted": send(RESTRICTED_TEXT, programme="jordan").case,
    }
    pending = send("Where is the bus stop for the transit centre?", programme="kenya").case
    pending.queue, pending.classification_status = "pending", "pending"
    db.session.commit()
    made["kenya_pending"] = pending
    assert made["kenya_general"].queue == "general" and made["kenya_restricted"].queue == "restricted"
    return made


def refs(query: Any) -> set[str]:
    """References a query returns."""
    return {case.reference for case in db.session.scalars(query)}


def test_officer_sees_only_the_general_queue_of_their_programmes(cases: dict[str, Case]) -> None:
    officer = user("officer@example.org", "officer", programmes=("kenya",))
    assert refs(visible_cases(officer)) == {cases["kenya_general"].reference}


def test_officer_cannot_open_restricted_case(cases: dict[str, Case]) -> None:
    officer = user("officer@example.org", "officer", "supervisor")
    assert get_visible_case(officer, cases["kenya_restricted"].reference) is None
    assert get_visible_case(officer, cases["kenya_pending"].reference) is None
    assert get_visible_case(officer, cases["kenya_general"].reference.lower().replace("-", "")) is not None


def test_officer_count_does_not_include_restricted_cases(cases: dict[str, Case]) -> None:
    officer = user("officer@example.org", "officer")
    count = db.session.scalar(select(func.count()).select_from(visible_cases(officer).subquery()))
    assert count == 2


def test_focal_point_sees_restricted_and_pending_of_their_programme_only(cases: dict[str, Case]) -> None:
    focal = user("focal@example.org", "focal_point", programmes=("kenya",))
    assert refs(visible_cases(focal)) == {cases["kenya_restricted"].reference, cases["kenya_pending"].reference}
    assert get_visible_case(focal, cases["jordan_restricted"].reference) is None
    assert can_see_restricted(focal)


def test_admin_without_focal_role_sees_no_case(cases: dict[str, Case]) -> None:
    admin = user("admin@example.org", "admin")
    assert refs(visible_cases(admin)) == set()
    assert refs(visible_cases(admin, purpose="aggregate")) == set()
    assert not can_see_restricted(admin)


def test_report_viewer_gets_general_aggregates_and_no_case_to_read(cases: dict[str, Case]) -> None:
    viewer = user("viewer@example.org", "report_viewer")
    assert refs(visible_cases(viewer)) == set()
    assert refs(visible_cases(viewer, purpose="aggregate")) == {
        cases["kenya_general"].reference,
        cases["jordan_general"].reference,
    }


def test_deactivated_user_sees_nothing(cases: dict[str, Case]) -> None:
    focal = user("focal@example.org", "focal_point", "officer")
    assert len(refs(visible_cases(focal))) == 5
    focal.active = False
    db.session.commit()
    assert refs(visible_cases(focal)) == set()
    assert get_visible_case(focal, cases["kenya_general"].reference) is None


def test_anonymous_sees_nothing(cases: dict[str, Case]) -> None:
    assert refs(visible_cases(None)) == set()
    assert get_visible_case(None, cases["kenya_general"].reference) is None


def test_unknown_or_malformed_reference_is_simply_not_found(cases: dict[str, Case]) -> None:
    officer = user("officer@example.org", "officer")
    assert get_visible_case(officer, "ZZZZ-ZZZZ") is None
    assert get_visible_case(officer, "' OR 1=1 --") is None
