"""GET /console/cases/<reference>: what it shows, to whom; 404 (never 403) for anything not visible; audited views."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from cfm.extensions import db
from cfm.models import Reporter
from cfm.models.types import utcnow
from tests.cfm.console.conftest import GENERAL_TEXT, RESTRICTED_TEXT, World, audit_events, sign_in


def test_case_view_shows_text_classification_and_terms(client: FlaskClient, world: World) -> None:
    case = world.case("kenya_general")
    sign_in(client, world.users["officer"])
    page = client.get(f"/console/cases/{case.reference.lower().replace('-', '')}").data.decode()
    assert GENERAL_TEXT in page
    assert case.reference in page and "Kenya resettlement" in page
    assert "Classifier said" in page and "% sure" in page
    for term in case.top_terms or []:
        assert term in page
    assert "Anonymous: no contact details were given." in page
    assert 'lang="' in page and 'dir="auto"' in page


def test_officer_cannot_open_restricted_case_in_console(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["supervisor"])
    for name in ("kenya_restricted", "kenya_pending"):
        response = client.get(f"/console/cases/{world.cases[name]}")
        assert response.status_code == 404
        assert RESTRICTED_TEXT.encode() not in response.data


def test_focal_point_of_other_programme_gets_404(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["focal_jordan"])
    response = client.get(f"/console/cases/{world.cases['kenya_restricted']}")
    assert response.status_code == 404
    assert client.get(f"/console/cases/{world.cases['jordan_restricted']}").status_code == 200


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_admin_and_report_viewer_get_404_for_every_case(client: FlaskClient, world: World, role: str) -> None:
    sign_in(client, world.users[role])
    for ref in world.cases.values():
        assert client.get(f"/console/cases/{ref}").status_code == 404


def test_hidden_case_answers_exactly_like_a_missing_one(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    hidden = client.get(f"/console/cases/{world.cases['kenya_restricted']}")
    missing = client.get("/console/cases/ZZZZ-ZZZZ")
    garbage = client.get("/console/cases/not-a-code")
    assert hidden.status_code == missing.status_code == garbage.status_code == 404

    def scrub(body: bytes) -> bytes:
        return re.sub(rb'name="csrf_token" value="[^"]*"', b"", body)

    assert scrub(hidden.data) == scrub(missing.data)


def test_restricted_view_is_audited(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["focal"])
    ref = world.cases["kenya_restricted"]
    for _ in range(2):
        page = client.get(f"/console/cases/{ref}")
        assert page.status_code == 200 and RESTRICTED_TEXT.encode() in page.data
    client.get(f"/console/cases/{world.cases['kenya_pending']}")
    views = audit_events("case.view", ref)
    assert len(views) == 2 and all(v.actor == world.users["focal"] for v in views)
    assert len(audit_events("case.view", world.cases["kenya_pending"])) == 1
    assert b"your view was recorded in the audit log" in page.data


def test_general_view_is_not_a_restricted_audit_event(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    client.get(f"/console/cases/{world.cases['kenya_general']}")
    assert audit_events("case.view") == []


def test_contact_shown_only_when_consent_was_given(client: FlaskClient, world: World) -> None:
    case = world.case("kenya_general")
    case.reporter = Reporter(phone="+254711222333", name="Amina", consent_to_contact=False)
    db.session.commit()
    sign_in(client, world.users["officer"])
    page = client.get(f"/console/cases/{case.reference}").data
    assert b"+254711222333" not in page and b"Amina" not in page
    assert b"did not agree to be contacted" in page
    case = world.case("kenya_general")
    assert case.reporter is not None
    case.reporter.consent_to_contact = True
    db.session.commit()
    page = client.get(f"/console/cases/{case.reference}").data
    assert b"+254711222333" in page and b"Amina" in page


def test_overdue_case_shows_a_warning(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer"])
    ref = world.cases["kenya_general"]
    assert b"Overdue." not in client.get(f"/console/cases/{ref}").data
    case = world.case("kenya_general")
    case.due_at = utcnow() - timedelta(hours=5)
    db.session.commit()
    page = client.get(f"/console/cases/{ref}").data
    assert b"Overdue." in page and b"overdue</time>" in page
    assert b"is-late" in client.get("/console/queue/general").data
