"""The audit log is append-only and tamper-evident."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select, update

from cfm.extensions import db
from cfm.models import AuditEvent
from cfm.services import audit
from tests.cfm.helpers import user


def test_events_chain_and_verify(ctx: Flask) -> None:
    actor = user("admin@example.org", "admin")
    for n in range(5):
        audit.record("case.view", actor=actor, object_type="case", object_ref=f"AAAA-000{n}")
    db.session.commit()
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert audit.verify_chain() is None


def test_editing_an_event_breaks_the_chain_at_that_event(ctx: Flask) -> None:
    for n in range(4):
        audit.record("case.view", object_type="case", object_ref=f"AAAA-000{n}")
    db.session.commit()
    target = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id).offset(2)).first()
    db.session.execute(update(AuditEvent).where(AuditEvent.id == target).values(object_ref="BBBB-0000"))
    db.session.commit()
    assert audit.verify_chain() == target


def test_deleting_an_event_breaks_the_chain(ctx: Flask) -> None:
    for n in range(4):
        audit.record("login", object_ref=str(n))
    db.session.commit()
    second = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id).offset(1)).first()
    db.session.delete(second)
    db.session.commit()
    assert audit.verify_chain() is not None


def test_cfm_audit_verify_reports_intact_and_broken_chains(app: Flask) -> None:
    runner = app.test_cli_runner()
    with app.app_context():
        for n in range(3):
            audit.record("login", object_ref=str(n))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact (3 events)" in result.output
    with app.app_context():
        first = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).first()
        db.session.execute(update(AuditEvent).where(AuditEvent.id == first).values(action="logout"))
        db.session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"broken at event {first}" in result.output
