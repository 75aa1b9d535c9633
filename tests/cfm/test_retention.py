"""Retention (issue 8): `cfm purge` strips personal data from cases closed long ago; statistics survive."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import Text, func, select, type_coerce

from cfm.extensions import db
from cfm.models import AuditEvent, Case, CaseEvent, CaseNote, Message, Reporter, User
from cfm.models.types import utcnow
from cfm.services.access import visible_cases
from cfm.services.admin import create_programme
from cfm.services.classification import apply_prediction
from cfm.services.intake import submit
from cfm.services.retention import purge
from cfm.services.triage import add_note
from channels.base import Contact, IntakeRequest
from classifier.categories import is_restricted
from tests.cfm.helpers import user

MARKERS = {
    "old_general": "Zebrafinch-4412",
    "recent_closed": "Robin-3301",
    "open_old": "Sparrow-7781",
    "greece_40": "Gannet-6620",
    "kenya_40": "Plover-2290",
}
PURGED = ("old_general", "old_restricted", "greece_40")
KEPT = ("recent_closed", "open_old", "kenya_40")


def general(name: str) -> str:
    """A general case's text with its own marker."""
    return f"{MARKERS[name]} when is the bus to the transit centre leaving for our family please tell us"


RESTRICTED_TEXT = "Kestrel-9187 the escort said he would put us on the list if my sister went with him"
NAME = "Amani Purgetest"
PHONE = "+254733123987"
NOTE = "Heron-5521 the mother called back from the camp office"


def make(text: str, category: str, *, phone: str | None = None, closed_days: int | None = None, **fields: Any) -> Case:
    """A case through intake, routed as `category`, optionally closed `closed_days` ago."""
    contact = Contact(name=NAME, phone=phone) if phone else Contact()
    case = submit(IntakeRequest(channel="sms" if phone else "web", text=text, contact=contact,
                                provider_id=f"SM{phone}{text[:6]}" if phone else None, **fields)).case
    apply_prediction(
        case, category=category, confidence=0.9, restricted=is_restricted(category), reasons=[],
        top_terms=["bus", "escort"], model_version="test", safety_net_category=None,
    )
    if closed_days is not None:
        case.status, case.closure_method = "closed", "sms_reply"
        case.closed_at = utcnow() - timedelta(days=closed_days)
    db.session.commit()
    return case


@pytest.fixture
def cases(ctx: Flask, programme: Any) -> dict[str, str]:
    """Old and recent closed cases, an open old one, and a programme with a short retention period."""
    ctx.extensions["cfm_model"] = None
    create_programme("greece", "Greece relocation", ["+302100000001"], language="en").retention_days = 30
    focal = user("focal@example.org", "focal_point")
    made = {
        "old_general": make(general("old_general"), "service_complaint", phone=PHONE, closed_days=400),
        "old_restricted": make(RESTRICTED_TEXT, "fraud_corruption", phone="+254733000111", closed_days=400),
        "recent_closed": make(general("recent_closed"), "service_complaint", closed_days=10),
        "open_old": make(general("open_old"), "service_complaint", phone="+254733000222"),
        "greece_40": make(general("greece_40"), "suggestion", closed_days=40, programme="greece"),
        "kenya_40": make(general("kenya_40"), "suggestion", closed_days=40),
    }
    made["open_old"].received_at = utcnow() - timedelta(days=500)
    add_note(made["old_restricted"], NOTE, actor=focal)
    db.session.add(CaseEvent(case_id=made["old_restricted"].id, kind="status", reason=f"{NOTE} reason"))
    db.session.commit()
    return {name: case.reference for name, case in made.items()}


def case(reference: str) -> Case:
    """A fresh copy of a case."""
    db.session.expire_all()
    return db.session.scalars(select(Case).where(Case.reference == reference)).one()


def statistics() -> dict[tuple[str | None, str, str | None], int]:
    """Cases per (category, channel, language), as a report viewer's aggregates see them."""
    viewer = db.session.scalars(select(User).where(User.email == "viewer@example.org")).first()
    viewer = viewer or user("viewer@example.org", "report_viewer")
    query = visible_cases(viewer, purpose="aggregate").with_only_columns(
        Case.category, Case.channel, Case.language, func.count()
    ).group_by(Case.category, Case.channel, Case.language)
    return {(c, ch, lang): n for c, ch, lang, n in db.session.execute(query)}


def raw_database_bytes(app: Flask) -> bytes:
    """The SQLite file and its WAL as bytes on disk (after a checkpoint)."""
    with db.engine.connect() as connection:
        connection.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
    path = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def raw_rows() -> str:
    """Every row of the case tables, as the database returns them (no decryption)."""
    tables = ("case", "message", "reporter", "case_note", "case_event")
    rows = []
    for name in tables:
        rows += [repr(tuple(row)) for row in db.session.execute(sa.text(f'SELECT * FROM "{name}"'))]  # noqa: S608
    return "\n".join(rows)


def test_old_closed_cases_are_purged_and_the_rest_is_untouched(cases: dict[str, str]) -> None:
    old = case(cases["old_general"])
    reporter_id = old.reporter_id
    assert reporter_id is not None and old.reporter is not None and old.reporter.phone == PHONE
    report = purge()
    assert sorted(report.references) == sorted(cases[name] for name in PURGED)
    assert report.cases == 3 and report.notes == 1 and report.events == 1 and report.reporters == 2
    for name in PURGED:
        purged = case(cases[name])
        assert purged.purged_at is not None and purged.text == "" and purged.top_terms is None
        assert purged.text_plain is None and purged.text_sealed is None
        assert all(m.text == "" for m in purged.messages)
        # What anonymous statistics need stays.
        assert purged.category and purged.channel and purged.status == "closed" and purged.received_at
    reporter = db.session.get(Reporter, reporter_id)
    assert reporter is not None
    assert (reporter.name, reporter.phone, reporter.email, reporter.phone_hash) == (None, None, None, None)
    assert db.session.scalars(select(CaseNote.body)).one() == ""
    assert db.session.scalars(select(CaseEvent.reason).where(CaseEvent.reason.is_not(None))).all() == []
    for name in KEPT:
        kept = case(cases[name])
        assert kept.purged_at is None and kept.text == general(name)
    assert case(cases["open_old"]).reporter.phone == "+254733000222"  # type: ignore[union-attr]
    rows = raw_rows()
    assert MARKERS["old_general"] not in rows and MARKERS["greece_40"] not in rows
    assert all(MARKERS[name] in rows for name in KEPT)


def test_statistics_still_count_purged_cases(cases: dict[str, str]) -> None:
    before = statistics()
    totals = db.session.scalar(select(func.count()).select_from(Case))
    purge()
    assert statistics() == before
    assert db.session.scalar(select(func.count()).select_from(Case)) == totals
    assert db.session.scalar(select(func.count()).select_from(Message)) > 0


def test_purge_is_audited_once_and_a_second_run_does_nothing(cases: dict[str, str]) -> None:
    purge()
    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.purge")))
    assert len(events) == 1
    details = events[0].details or {}
    assert details["cases"] == 3 and cases["old_general"] in details["references"]
    assert MARKERS["old_general"] not in repr(details) and PHONE not in repr(details)
    again = purge()
    assert again.cases == 0 and again.references == []
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "retention.purge")) == 1


def test_a_dry_run_counts_and_changes_nothing(cases: dict[str, str]) -> None:
    report = purge(dry_run=True)
    assert report.cases == 3 and report.reporters == 2
    assert case(cases["old_general"]).purged_at is None and case(cases["old_general"]).text == general("old_general")
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "retention.purge")) == 0


def test_a_reporter_with_a_case_still_kept_keeps_its_contact(cases: dict[str, str]) -> None:
    shared = case(cases["open_old"]).reporter_id
    old = case(cases["old_general"])
    old.reporter_id = shared
    db.session.commit()
    purge()
    reporter = db.session.get(Reporter, shared)
    assert reporter is not None and reporter.phone == "+254733000222" and reporter.name == NAME


def test_an_opted_out_reporter_keeps_its_phone_hash_so_stop_still_holds(cases: dict[str, str]) -> None:
    reporter = case(cases["old_general"]).reporter
    assert reporter is not None
    reporter.opted_out = True
    db.session.commit()
    hashed = reporter.phone_hash
    purge()
    db.session.expire_all()
    assert reporter.phone is None and reporter.phone_hash == hashed and reporter.opted_out


def test_the_purge_command(app: Flask, cases: dict[str, str]) -> None:
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["purge", "--dry-run"])
    assert dry.exit_code == 0 and "Would purge: 3 cases" in dry.output
    done = runner.invoke(args=["purge", "--batch-size", "1"])
    assert done.exit_code == 0 and "Purged: 3 cases" in done.output
    assert "Purged: 0 cases" in runner.invoke(args=["purge"]).output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_secure_delete_is_on_and_the_file_forgets_purged_bytes(app: Flask, cases: dict[str, str]) -> None:
    assert db.session.execute(sa.text("PRAGMA secure_delete")).scalar() == 1
    old = case(cases["old_restricted"])
    sealed = [
        db.session.scalar(select(type_coerce(Case.text_sealed, Text)).where(Case.id == old.id)),
        db.session.scalar(select(type_coerce(Reporter.phone, Text)).where(Reporter.id == old.reporter_id)),
        db.session.scalar(select(type_coerce(Reporter.name, Text)).where(Reporter.id == old.reporter_id)),
        db.session.scalar(select(type_coerce(CaseNote.body, Text)).where(CaseNote.case_id == old.id)),
    ]
    reference = cases["old_general"]
    db.session.commit()
    before = raw_database_bytes(app)
    assert all(marker.encode() in before for marker in MARKERS.values())  # general text is in clear by design
    assert all(token and token.encode() in before for token in sealed)
    purge()
    db.session.remove()
    after = raw_database_bytes(app)
    for name in PURGED:
        assert MARKERS.get(name, "Kestrel-9187").encode() not in after
    assert all(MARKERS[name].encode() in after for name in KEPT)
    for token in sealed:
        assert token is not None and token.encode() not in after  # the ciphertext itself is gone
    assert reference.encode() in after  # the reference (not personal) stays
