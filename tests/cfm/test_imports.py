"""Hotline transcript import: per-row results, duplicates, dry run, bad files; the `cfm import-transcripts` command."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cfm.extensions import db
from cfm.models import AuditEvent, Case
from cfm.services.admin import create_programme
from cfm.services.imports import import_transcripts
from channels.base import ChannelError
from tests.cfm.helpers import counts

CSV = (
    "transcript_id;text;language;caller_phone;consent;received_at\n"
    "T-1;When is our flight to Canada? Nobody told us the date;en;+254 711 000 001;yes;2024-05-01T10:00:00\n"
    "T-2;Thank you for the blankets and the tea at the transit centre;en;;no;\n"
    "T-3;;en;;;\n"
    "T-4;The bus to the airport was four hours late;en;not a number;;\n"
    "T-1;The same transcript id again;en;;;\n"
    "T-5;متى موعد رحلتنا إلى كندا؟ لم يخبرنا أحد بالتاريخ;Arabic;;;\n"
)
NOTHING = {"case": 0, "message": 0, "reporter": 0}


def outcomes(report: Any) -> list[tuple[int, str]]:
    """(row, outcome) pairs."""
    return [(row.row, row.outcome) for row in report.rows]


def test_each_row_is_reported_and_one_bad_row_never_stops_the_others(programme: Any) -> None:
    report = import_transcripts(codecs.BOM_UTF8 + CSV.encode(), filename="calls.csv")
    assert outcomes(report) == [
        (2, "created"),
        (3, "created"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "duplicate"),
        (7, "created"),
    ]
    rejected = {row.row: (row.code, row.reason) for row in report.rows if row.outcome == "rejected"}
    assert rejected[4][0] == "missing_value" and "text" in str(rejected[4][1])
    assert rejected[5][0] == "invalid_phone"
    assert report.counts() == {"created": 3, "would_create": 0, "duplicate": 1, "rejected": 2, "failed": 0}
    assert not report.ok
    cases = db.session.scalars(select(Case).order_by(Case.id)).all()
    assert [case.channel for case in cases] == ["hotline"] * 3
    assert cases[0].reporter is not None and cases[0].reporter.phone == "+254711000001"
    assert cases[0].reporter.consent_to_contact is True
    assert cases[0].received_at.isoformat().startswith("2024-05-01T10:00:00")
    assert cases[2].language == "ar"
    assert [row.reference for row in report.rows if row.outcome == "created"] == [c.reference for c in cases]


def test_importing_the_same_file_again_creates_nothing_new(programme: Any) -> None:
    import_transcripts(CSV.encode(), filename="calls.csv")
    before = counts()
    again = import_transcripts(CSV.encode(), filename="calls.csv")
    assert counts() == before
    assert again.counts()["created"] == 0
    assert again.counts()["duplicate"] == 4  # three imported before, one repeated id
    assert all(row.reference for row in again.rows if row.outcome == "duplicate" and row.row != 6)


def test_a_dry_run_reports_what_would_be_created_and_stores_nothing(programme: Any) -> None:
    report = import_transcripts(CSV.encode(), filename="calls.csv", dry_run=True)
    assert report.counts()["would_create"] == 3 and report.counts()["created"] == 0
    assert counts() == NOTHING
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "transcripts.import")).all() == []


def test_an_import_is_audited_with_its_counts_but_not_its_content(programme: Any) -> None:
    import_transcripts(CSV.encode(), filename="uploads/2024/calls.csv")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "transcripts.import")).one()
    assert event.details is not None
    assert event.details["file"] == "calls.csv" and event.details["created"] == 3
    assert "blankets" not in json.dumps(event.details)


def test_json_lines_with_a_line_that_is_not_an_object(programme: Any) -> None:
    lines = [
        json.dumps({"transcript_id": "J-1", "text": "Where do I collect my hygiene kit?"}),
        json.dumps(["not", "an", "object"]),
        "{broken json",
        json.dumps({"transcript_id": 7, "text": "Thank you for the warm welcome", "consent": True}),
    ]
    report = import_transcripts("\n".join(lines).encode(), filename="calls.jsonl")
    assert outcomes(report) == [(1, "created"), (2, "rejected"), (3, "rejected"), (4, "created")]
    assert report.rows[1].code == "not_an_object"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("transcript_id,text\nT-1,Le bus était en retard à l'aéroport\n".encode("latin-1"), "invalid_encoding"),
        (b"transcript_id,language\nT-1,en\n", "missing_column"),
        (b"", "empty_file"),
    ],
    ids=["latin-1", "missing-column", "empty"],
)
def test_a_bad_file_is_refused_whole_and_nothing_is_stored(programme: Any, data: bytes, code: str) -> None:
    with pytest.raises(ChannelError) as info:
        import_transcripts(data, filename="calls.csv")
    assert info.value.code == code
    assert counts() == NOTHING


def test_the_programme_option_applies_to_rows_that_name_none(programme: Any) -> None:
    other = create_programme("greece", "Greece relocation", ["+302100000001"], language="ar")
    data = (
        b"transcript_id,text,programme\n"
        b"P-1,Where do we sleep tonight in the transit centre?,\n"
        b"P-2,Where do we sleep tonight in the hotel?,kenya\n"
        b"P-3,Where do we sleep tonight in the camp?,nowhere\n"
    )
    report = import_transcripts(data, filename="calls.csv", programme="greece")
    assert outcomes(report) == [(2, "created"), (3, "created"), (4, "rejected")]
    assert report.rows[2].code == "unknown_programme"
    by_reference = {case.reference: case for case in db.session.scalars(select(Case))}
    assert by_reference[str(report.rows[0].reference)].programme_id == other.id
    assert by_reference[str(report.rows[1].reference)].programme_id == programme.id
    with pytest.raises(ChannelError):
        import_transcripts(data, filename="calls.csv", programme="atlantis")


def test_the_import_command_prints_each_row_and_the_totals(app: Flask, programme: Any, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(codecs.BOM_UTF8 + CSV.encode())
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["import-transcripts", str(path), "--dry-run"])
    assert dry.exit_code == 1  # rows were rejected
    assert "row 2: would be created (transcript T-1)" in dry.output
    assert "3 would be created, 1 duplicate, 2 rejected (dry run: nothing was stored)." in dry.output
    assert counts() == NOTHING
    result = runner.invoke(args=["import-transcripts", str(path), "--programme", "kenya"])
    assert "row 5: rejected (transcript T-4): The caller_phone is not an international number" in result.output
    assert "3 created, 1 duplicate, 2 rejected." in result.output
    assert counts()["case"] == 3
    again = runner.invoke(args=["import-transcripts", str(path)])
    assert "0 created, 4 duplicate, 2 rejected." in again.output
    assert counts()["case"] == 3


def test_the_import_command_succeeds_on_a_clean_file(app: Flask, programme: Any, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps({"transcript_id": "OK-1", "text": "Thank you for the blankets"}) + "\n")
    result = app.test_cli_runner().invoke(args=["import-transcripts", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 created, 0 duplicate, 0 rejected." in result.output


def test_the_import_command_refuses_a_latin_1_file_clearly(app: Flask, programme: Any, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes("transcript_id,text\nT-1,Le bus était en retard\n".encode("latin-1"))
    result = app.test_cli_runner().invoke(args=["import-transcripts", str(path)])
    assert result.exit_code == 1
    assert "not UTF-8" in result.output and "Nothing was imported." in result.output
    assert counts() == NOTHING
