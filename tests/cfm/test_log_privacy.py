"""Logs carry reference codes, never phone numbers or message text (DESIGN.md, data protection)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from cfm.services.intake import submit
from channels.base import Contact, IntakeRequest

PHONE = "+254733999888"
TEXT = "Unique-marker-7731 the guard at gate two asked me for money to enter the list"


def test_intake_logs_the_reference_but_no_phone_or_text(
    app: Flask, programme: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for channel, sid in (("sms", "SMlog1"), ("whatsapp", "WAlog1"), ("web", None), ("hotline", "T-1")):
        result = submit(
            IntakeRequest(channel=channel, text=TEXT, provider_id=sid, contact=Contact(phone=PHONE, name="Halima"))
        )
        assert result.case.reference in caplog.text
    assert "254733999888" not in caplog.text
    assert "Unique-marker-7731" not in caplog.text
    assert "Halima" not in caplog.text


def test_a_database_error_does_not_log_the_parameters(
    app: Flask, programme: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy.exc import StatementError

    from cfm.extensions import db
    from cfm.models import Case

    caplog.set_level(logging.DEBUG)
    first = submit(IntakeRequest(channel="web", text=TEXT)).case
    duplicate = Case(reference=first.reference, programme_id=first.programme_id, channel="web")
    duplicate.store_text("Unique-marker-9999 in a failing insert", sealed=False)
    db.session.add(duplicate)
    with pytest.raises(StatementError) as info:
        db.session.commit()
    db.session.rollback()
    assert "Unique-marker-9999" not in str(info.value)
