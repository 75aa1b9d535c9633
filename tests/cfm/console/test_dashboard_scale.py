"""The dashboard's case figures at scale (issue 9): one GROUPING SETS pass on PostgreSQL, the SQLite fallback, the
first-response median read from the case's first_response_at (kept wherever a response is recorded, backfilled by
its migration); same figures on both backends."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select

from cfm import MIGRATIONS_DIR, create_app
from cfm.extensions import db
from cfm.models import Case
from cfm.models.types import UTCDateTime
from cfm.services import dashboard, outbound, triage
from cfm.services.admin import create_programme
from cfm.services.dashboard import DashboardFilters
from cfm.services.intake import submit
from tests.cfm.console.conftest import RESTRICTED_TEXT, World, make_case
from tests.cfm.console.test_dashboard import event as status_change
from tests.cfm.console.test_dashboard import reply
from tests.cfm.helpers import sms
from tests.cfm.webhooks.support import ACCOUNT_SID, AUTH_TOKEN, CapturingHttpClient
from tests.conftest import POSTGRES_URL, make_config

MARCH = DashboardFilters(programme="", date_from=date(2025, 3, 3), date_to=date(2025, 3, 16))


def at(day: int, hour: int = 10) -> datetime:
    """A UTC time in March 2025."""
    return datetime(2025, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def march(world: World) -> dict[str, Case]:
    """Three Kenya general cases in range (one without a language), each answered; quick answers to cases that must
    not count."""
    cases = {
        "before": make_case("Before the range.", "kenya", received_at=at(2), channel="web", language="en"),
        "a": make_case("Which documents?", "kenya", received_at=at(3), channel="web", language="en"),
        # Between a and c by id: their responses lie in the id range the median reads, the scope must drop them.
        "jordan": make_case("Jordan case.", "jordan", received_at=at(5), channel="web", language="ar"),
        "restricted": make_case(RESTRICTED_TEXT, "kenya", "sexual_exploitation_abuse", received_at=at(6)),
        "b": make_case("The bus was late.", "kenya", "service_complaint", received_at=at(4), channel="sms"),
        "c": make_case("No answer yet.", "kenya", received_at=at(10), channel="sms", language=None),
        "after": make_case("After the range.", "kenya", received_at=at(20), channel="web", language="en"),
    }
    cases["b"].language = "ar"
    # The first and the last case counted (by id) have responses: the id range must take in both ends.
    status_change(cases["a"], at(3, 12))  # 2 hours
    reply(cases["b"], at(4, 14))  # 4 hours, before its status change
    status_change(cases["b"], at(4, 20))
    status_change(cases["b"], at(4, 11), old="under_review", new="closed")  # not a change away from "new"
    reply(cases["c"], at(10, 16))  # 6 hours
    for name in ("before", "jordan", "restricted", "after"):  # a minute each: they would pull the median down
        reply(cases[name], cases[name].received_at + timedelta(minutes=1))
    db.session.commit()
    return cases


def test_case_figures_count_the_range_and_scope_only(march: dict[str, Case], world: World) -> None:
    data = dashboard.build(world.user("officer"), MARCH)
    assert data.total.value == 3
    assert [(c.key, c.value) for c in data.weeks] == [("2025-03-03", 2), ("2025-03-10", 1)]
    counts = {name: {c.key: c.value for c in cells} for name, cells in data.breakdowns.items()}
    assert counts["language"] == {"ar": 1, "en": 1, dashboard.UNKNOWN: 1}  # a missing language is counted too
    assert counts["channel"] == {"sms": 2, "web": 1}
    assert counts["category"] == {"information_request": 2, "service_complaint": 1}
    assert counts["programme"] == {"kenya": 3} and counts["status"] == {"new": 3}
    # 2 h, 4 h, 6 h: the replies to cases outside the range, the programme or the queue are not read.
    assert data.first_response.n.value == 3
    assert data.first_response.seconds == pytest.approx(4 * 3600, abs=1)


def test_all_programmes_take_in_the_other_programme_and_its_responses(march: dict[str, Case], world: World) -> None:
    data = dashboard.build(world.user("officer_all"), MARCH)
    assert data.total.value == 4
    assert {c.key: c.value for c in data.breakdowns["programme"]} == {"kenya": 3, "jordan": 1}
    assert data.first_response.n.value == 4  # 1 min, 2 h, 4 h, 6 h
    assert data.first_response.seconds == pytest.approx(3 * 3600, abs=1)


def test_an_empty_range_has_no_figures(march: dict[str, Case], world: World) -> None:
    empty = DashboardFilters(programme="", date_from=date(2024, 1, 1), date_to=date(2024, 1, 31))
    data = dashboard.build(world.user("officer"), empty)
    assert data.total.value == 0 and sum(c.value or 0 for c in data.weeks) == 0
    assert all(not cells for cells in data.breakdowns.values())
    assert data.first_response.seconds is None and data.first_response.n.value == 0
    assert data.closure.seconds is None and data.closed.value == 0


# --- the case's first response, kept where responses are recorded (issue 9) --------------------------------------


def test_the_first_change_away_from_new_is_the_first_response_and_later_ones_do_not_move_it(world: World) -> None:
    officer = world.user("officer")
    event = triage.change_status(world.case("kenya_general"), "under_review", actor=officer)
    first = world.case("kenya_general").first_response_at
    assert first is not None and first == event.created_at
    triage.assign(world.case("kenya_general"), officer, actor=officer)  # not a status change: not a response
    triage.change_status(world.case("kenya_general"), "action_taken", actor=officer)  # not away from "new"
    assert world.case("kenya_general").first_response_at == first
    assert world.case("jordan_general").first_response_at is None  # no response yet


def test_a_referral_that_moves_a_new_case_on_is_a_first_response(world: World) -> None:
    triage.refer(world.case("kenya_restricted"), "PSEA-2025-001", date(2025, 3, 4), actor=world.user("focal"))
    case = world.case("kenya_restricted")
    assert case.status == "referred_internally" and case.first_response_at is not None


def test_an_earlier_response_recorded_later_becomes_the_first(world: World) -> None:
    case = world.case("kenya_general")
    dashboard.record_response(case, at(5, 12))
    dashboard.record_response(case, at(5, 18))  # later: ignored
    db.session.commit()
    assert world.case("kenya_general").first_response_at == at(5, 12)
    dashboard.record_response(world.case("kenya_general"), at(5, 11))  # earlier, recorded after (an import)
    db.session.commit()
    assert world.case("kenya_general").first_response_at == at(5, 11)


def test_a_reply_is_a_first_response_and_leaves_the_version_and_update_time_alone(app: Flask, world: World) -> None:
    app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    app.extensions["twilio_http_client"] = http = CapturingHttpClient()
    request = dataclasses.replace(
        sms("When is our flight?", "SM-first", phone="+254711111111"), consent_to_contact=True
    )
    reference = submit(request).case.reference
    case = db.session.scalars(select(Case).where(Case.reference == reference)).one()
    version, updated = case.version, case.updated_at
    message = outbound.queue_reply(case, "Your flight is on Monday.", world.user("focal"))
    assert len(http.calls) == 1
    db.session.expire_all()
    case = db.session.scalars(select(Case).where(Case.reference == reference)).one()
    assert case.first_response_at == message.created_at
    assert (case.version, case.updated_at) == (version, updated)  # an officer's open form is not made stale
    outbound.queue_reply(case, "A second reply.", world.user("focal"))
    db.session.expire_all()
    assert db.session.get(Case, case.id).first_response_at == message.created_at  # type: ignore[union-attr]


# --- the migration that added the column fills it from the threads already stored -------------------------------

BEFORE = "8858ac667731"  # the revision before case.first_response_at


@pytest.fixture
def old_schema(backend: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on an empty database (own schema on PostgreSQL) migrated up to the revision before the column."""
    schema = f"helper_d_{uuid.uuid4().hex[:8]}" if backend == "postgresql" else None
    engine = sa.create_engine(POSTGRES_URL)
    if schema:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    app = create_app(make_config(backend, tmp_path, schema))
    try:
        with app.app_context():
            upgrade(directory=MIGRATIONS_DIR, revision=BEFORE)
            yield app
            db.session.remove()
            db.engine.dispose()
    finally:
        if schema:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_the_migration_backfills_the_earliest_reply_or_change_away_from_new(old_schema: Flask) -> None:
    create_programme("kenya", "Kenya resettlement", ["+254700000001"])
    db.session.commit()
    stamp = sa.bindparam("at", type_=UTCDateTime)
    insert_case = sa.text(
        'INSERT INTO "case" (reference, programme_id, channel, received_at, classification_status, '
        "classification_attempts, queue, status, priority, created_at, updated_at, version) "
        "VALUES (:reference, (SELECT id FROM programme), 'sms', :at, 'done', 1, 'general', 'new', 'normal', :at, "
        ":at, 1)"
    ).bindparams(stamp)
    insert_message = sa.text(
        "INSERT INTO message (case_id, direction, channel, media_count, created_at) "
        "VALUES ((SELECT id FROM \"case\" WHERE reference = :reference), :direction, 'sms', 0, :at)"
    ).bindparams(stamp)
    insert_event = sa.text(
        "INSERT INTO case_event (case_id, kind, old_value, new_value, created_at) "
        'VALUES ((SELECT id FROM "case" WHERE reference = :reference), :kind, :old, :new, :at)'
    ).bindparams(stamp)
    for reference in ("AAAA-0001", "AAAA-0002", "AAAA-0003", "AAAA-0004"):
        db.session.execute(insert_case, {"reference": reference, "at": at(3)})
    # 1: a reply after its first status change; 2: a reply only; 3: no change away from "new", an inbound message;
    # 4: nothing at all.
    db.session.execute(insert_message, {"reference": "AAAA-0001", "direction": "outbound", "at": at(3, 14)})
    db.session.execute(
        insert_event, {"reference": "AAAA-0001", "kind": "status", "old": "new", "new": "under_review", "at": at(3, 12)}
    )
    db.session.execute(
        insert_event, {"reference": "AAAA-0001", "kind": "status", "old": "new", "new": "closed", "at": at(3, 13)}
    )
    db.session.execute(insert_message, {"reference": "AAAA-0002", "direction": "outbound", "at": at(3, 11)})
    db.session.execute(insert_message, {"reference": "AAAA-0003", "direction": "inbound", "at": at(3, 11)})
    db.session.execute(
        insert_event,
        {"reference": "AAAA-0003", "kind": "status", "old": "under_review", "new": "closed", "at": at(3, 15)},
    )
    db.session.execute(
        insert_event, {"reference": "AAAA-0003", "kind": "category", "old": "new", "new": "other", "at": at(3, 15)}
    )
    db.session.commit()
    upgrade(directory=MIGRATIONS_DIR)
    found = dict(db.session.execute(select(Case.reference, Case.first_response_at)).all())
    assert found == {"AAAA-0001": at(3, 12), "AAAA-0002": at(3, 11), "AAAA-0003": None, "AAAA-0004": None}
    indexes = {index["name"]: index["column_names"] for index in sa.inspect(db.engine).get_indexes("case")}
    assert "first_response_at" in indexes["ix_case_queue_programme_received_counts"]
