"""Exports (issue 6): the queue's rows as CSV and XLSX, the access rule, consent, formula injection, IFRC form,
the audit event and flat memory; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
import time
import tracemalloc
from datetime import timedelta
from typing import Any

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from cfm.extensions import db
from cfm.models import Case, Programme, Reporter
from cfm.models.types import utcnow
from cfm.services import exports
from cfm.services.ifrc import IFRC_CODES
from classifier.categories import GENERAL_CATEGORIES, RESTRICTED_CATEGORIES
from tests.cfm.console.conftest import GENERAL_TEXT, World, audit_events, make_case, sign_in

FORMATS = ("csv", "xlsx")
REFERENCE = re.compile(rb'class="ref"><a href="/console/cases/([0-9A-Z]{4}-[0-9A-Z]{4})"')
INJECTIONS = ('=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "\t=1", "  =1+1", "\uff1dSUM(A1)", "\r=2")


def export(client: FlaskClient, tab: str, fmt: str, **params: str) -> Any:
    """GET an export."""
    # buffered: the isolated test client runs each request in a context of its own, so the stream is read there too
    return client.get(f"/console/queue/{tab}/export.{fmt}", query_string=params, buffered=True)


def table(response: Any, fmt: str) -> list[dict[str, str]]:
    """The rows of a CSV or XLSX export as dicts keyed by header (CSV through csv, XLSX through openpyxl)."""
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    if fmt == "csv":
        assert response.data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads Arabic right
        reader = csv.reader(io.StringIO(response.data.decode("utf-8-sig"), newline=""))
        header, *body = list(reader)
        return [dict(zip(header, row, strict=True)) for row in body]
    sheet = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True).active
    assert sheet is not None
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    header = [str(v) for v in values[0]]
    return [{h: ("" if v is None else str(v)) for h, v in zip(header, row, strict=True)} for row in values[1:]]


def references(response: Any, fmt: str) -> list[str]:
    """The reference column of an export."""
    return [row["Reference"] for row in table(response, fmt)]


def listed(client: FlaskClient, tab: str, **params: str) -> set[str]:
    """References on every page of the queue (the pages are small enough here)."""
    response = client.get(f"/console/queue/{tab}", query_string=params)
    assert response.status_code == 200
    return {m.decode() for m in REFERENCE.findall(response.data)}


# --- rows and filters match the queue -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_rows_and_filters_match_the_queue(client: FlaskClient, world: World, fmt: str) -> None:
    sign_in(client, world.users["officer_all"])
    jordan = world.case("jordan_general")
    jordan.channel, jordan.priority, jordan.language, jordan.status = "sms", "high", "ar", "under_review"
    jordan.received_at = utcnow() - timedelta(days=40)
    closed = make_case(f"{GENERAL_TEXT} (closed)", "kenya", status="closed")
    db.session.commit()
    for params in (
        {},
        {"programme": "jordan"},
        {"channel": "sms"},
        {"language": "ar"},
        {"priority": "high"},
        {"status": "under_review"},
        {"status": "all"},
        {"status": "closed"},
        {"to": (utcnow().date() - timedelta(days=30)).isoformat()},
        {"q": "briefing"},
        {"q": world.cases["kenya_general"]},
    ):
        exported = references(export(client, "general", fmt, **params), fmt)
        assert len(exported) == len(set(exported))
        assert set(exported) == listed(client, "general", **params), params
    assert closed.reference in references(export(client, "general", fmt, status="all"), fmt)
    assert closed.reference not in references(export(client, "general", fmt), fmt)


def test_export_columns_and_values(client: FlaskClient, world: World) -> None:
    officer = world.user("officer")
    case = world.case("kenya_general")  # (world.* expire everything: change nothing before them)
    programme = db.session.scalars(select(Programme).where(Programme.slug == "kenya")).one()
    programme.timezone = "Africa/Nairobi"
    case.assignee = officer
    case.status, case.closure_method = "closed", "call"
    db.session.commit()
    sign_in(client, world.users["officer"])
    response = export(client, "general", "csv", status="all")
    (row,) = table(response, "csv")
    assert list(row) == [
        "Reference",
        "Received",
        "Programme",
        "Channel",
        "Language",
        "Category",
        "Status",
        "Priority",
        "Due",
        "Assignee",
        "How the loop was closed",
        "Feedback",
    ]
    assert row["Reference"] == case.reference
    assert row["Received"].endswith("+03:00")  # the programme's time zone, ISO 8601
    assert row["Received"][:19] == case.received_at.astimezone(exports._zone("Africa/Nairobi")).isoformat()[:19]
    assert row["Programme"] == "Kenya resettlement"
    assert (row["Channel"], row["Category"], row["Status"]) == ("Web form", "Information request", "Closed")
    assert (row["Assignee"], row["How the loop was closed"]) == ("officer@example.org", "Answered by phone call")
    assert row["Feedback"] == GENERAL_TEXT
    filename = re.search(r'filename="([^"]+)"', response.headers["Content-Disposition"])
    assert filename and re.fullmatch(r"cfm-general-cases-\d{8}-\d{4}\.csv", filename.group(1))
    assert case.reference not in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"


def test_headers_follow_the_console_locale(client: FlaskClient, world: World) -> None:
    officer = world.user("officer")
    officer.locale = "fr"
    db.session.commit()
    sign_in(client, world.users["officer"])
    (row,) = table(export(client, "general", "csv"), "csv")
    assert "Reference" not in row and len(row) == len(exports.BASE_COLUMNS)


def test_menu_on_the_queue_page_posts_the_filters(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["officer_all"])
    page = client.get("/console/queue/general?programme=jordan").data
    assert b'formaction="/console/queue/general/export.xlsx"' in page
    assert b'name="programme" value="jordan"' in page
    response = client.post(
        "/console/queue/general/export.csv", data={"programme": "jordan", "ifrc": "1"}, buffered=True
    )
    rows = table(response, "csv")
    assert [r["Reference"] for r in rows] == [world.cases["jordan_general"]]
    assert rows[0]["Feedback type (IFRC)"] == "Question"


# --- the access rule ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["officer", "supervisor", "officer_all"])
def test_officer_never_exports_a_restricted_case(client: FlaskClient, world: World, name: str, fmt: str) -> None:
    sign_in(client, world.users[name])
    response = export(client, "general", fmt, status="all")
    exported = set(references(response, fmt))
    assert world.cases["kenya_general"] in exported
    assert not exported & {world.cases[k] for k in ("kenya_restricted", "jordan_restricted", "kenya_pending")}
    assert "interpreter" not in response.data.decode("utf-8", "replace")
    assert export(client, "restricted", fmt).status_code == 404


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["viewer", "admin"])
def test_report_viewer_and_admin_get_no_case_export(client: FlaskClient, world: World, name: str, fmt: str) -> None:
    sign_in(client, world.users[name])
    for tab in ("general", "restricted", "pending"):
        assert export(client, tab, fmt).status_code == 404
        assert client.post(f"/console/queue/{tab}/export.{fmt}").status_code == 404
    assert audit_events("cases.export") == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_focal_point_exports_restricted_cases_of_their_programme_only(
    client: FlaskClient, world: World, fmt: str
) -> None:
    sign_in(client, world.users["focal"])
    rows = table(export(client, "restricted", fmt), fmt)
    assert {r["Reference"] for r in rows} == {world.cases["kenya_restricted"], world.cases["kenya_pending"]}
    texts = {r["Reference"]: r["Feedback"] for r in rows}
    assert texts[world.cases["kenya_restricted"]].startswith("The interpreter touched me")  # decrypted for them
    assert {r["Queue"] for r in rows} == {"Restricted", "Awaiting classification"}
    assert "Name" not in rows[0] and "Phone" not in rows[0]  # never contact in a restricted export
    assert export(client, "general", fmt).status_code == 404


@pytest.mark.parametrize("fmt", FORMATS)
def test_focal_point_of_other_programme_does_not_export_the_case(client: FlaskClient, world: World, fmt: str) -> None:
    sign_in(client, world.users["focal_jordan"])
    exported = set(references(export(client, "restricted", fmt, status="all"), fmt))
    assert exported == {world.cases["jordan_restricted"]}


def test_service_refuses_roles_without_a_queue(world: World) -> None:
    query = select(Case)  # even a query that is not narrowed: the service checks the role itself
    for name in ("viewer", "admin"):
        assert list(exports.rows(query, "general", exports.ExportOptions(), world.user(name))) == []
        with pytest.raises(PermissionError):
            exports.export_cases(world.user(name), "general", query, {}, exports.ExportOptions())
    assert not exports.may_export(world.user("officer"), "restricted")
    assert not exports.may_export(world.user("focal"), "general")


# --- personal data: contact only with consent and for the right role -------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_contact_only_with_consent_and_when_asked(client: FlaskClient, world: World, fmt: str) -> None:
    agreed = make_case(
        f"{GENERAL_TEXT} (agreed)",
        reporter=Reporter(name="Amina", phone="+254711000001", email="amina@example.org", consent_to_contact=True),
    )
    refused = make_case(
        f"{GENERAL_TEXT} (refused)", reporter=Reporter(name="Juma", phone="+254711000002", consent_to_contact=False)
    )
    restricted = world.case("kenya_restricted")
    restricted.reporter = Reporter(name="Survivor", phone="+254711000003", consent_to_contact=True)
    db.session.commit()

    sign_in(client, world.users["officer"])
    plain = table(export(client, "general", fmt), fmt)
    assert "Phone" not in plain[0]  # not asked for: data minimisation by default
    response = export(client, "general", fmt, contact="1")
    by_ref = {r["Reference"]: r for r in table(response, fmt)}
    # In CSV a leading + is quoted like any formula trigger (Excel would otherwise turn the number into a formula).
    phone = "'+254711000001" if fmt == "csv" else "+254711000001"
    assert (by_ref[agreed.reference]["Name"], by_ref[agreed.reference]["Phone"]) == ("Amina", phone)
    assert by_ref[agreed.reference]["Email"] == "amina@example.org"
    assert by_ref[refused.reference]["Name"] == by_ref[refused.reference]["Phone"] == ""
    body = response.data.decode("utf-8", "replace")
    assert "Juma" not in body and "+254711000002" not in body and "Survivor" not in body
    assert (audit_events("cases.export")[-1].details or {})["contact"] is True

    client.post("/console/logout")
    sign_in(client, world.users["focal"])
    response = export(client, "restricted", fmt, contact="1")
    assert "Survivor" not in response.data.decode("utf-8", "replace") and "Phone" not in table(response, fmt)[0]
    assert (audit_events("cases.export")[-1].details or {})["contact"] is False


# --- cell hygiene ---------------------------------------------------------------------------------------------


def test_formula_injection_is_inert_in_csv(client: FlaskClient, world: World) -> None:
    made = {make_case(GENERAL_TEXT, text_plain=text).reference: text for text in INJECTIONS}  # as stored, unstripped
    sign_in(client, world.users["officer"])
    rows = {r["Reference"]: r["Feedback"] for r in table(export(client, "general", "csv"), "csv")}
    for reference, text in made.items():
        assert rows[reference] == "'" + text.replace("\r", "\n"), text  # quoted: a spreadsheet shows it as text


def test_formula_injection_is_inert_in_xlsx(client: FlaskClient, world: World) -> None:
    made = {make_case(GENERAL_TEXT, text_plain=text).reference: text for text in INJECTIONS}  # as stored, unstripped
    sign_in(client, world.users["officer"])
    response = export(client, "general", "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    ref_col, text_col = header.index("Reference"), header.index("Feedback")
    found = {}
    for row in sheet.iter_rows(min_row=2):
        found[row[ref_col].value] = row[text_col]
    for reference, text in made.items():
        cell = found[reference]
        assert cell.data_type == "s", text  # a string cell, never a formula ("f")
        assert cell.value == text.replace("\r", "\n")
    assert b"<f>" not in _sheet_xml(response.data)


def _sheet_xml(data: bytes) -> bytes:
    """The worksheet XML inside an XLSX file."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("xl/worksheets/sheet1.xml")


def test_cell_hygiene_rules() -> None:
    for text in (*INJECTIONS, "\u200f=1", "\u3000+1", " \n@x", "\uff0b1", "\uff20x", "\uff0d1"):
        assert exports.csv_cell(text).startswith("'"), repr(text)
    for text in ("Hello", "1+1=2", "e-mail", "", "مرحبا =1", "a@b"):
        assert exports.csv_cell(text) == text
    assert exports.clean("a\x00b\x07c\x1bd\x7fe\tf\ng") == "abcde\tf\ng"
    assert exports.csv_cell("\x00=1") == "'=1"  # a NUL cannot hide a formula
    assert len(exports.xlsx_cell("x" * 40_000)) == exports.XLSX_CELL_LIMIT


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_and_html_come_out_as_plain_text(
    client: FlaskClient, world: World, fmt: str, backend: str
) -> None:
    html = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes", commas\nand a second line'
    tagged = make_case(html)
    # Intake refuses NUL and PostgreSQL cannot store it in text: a NUL reaches an export from SQLite only.
    control = "\x00" if backend == "sqlite" else "\x01"
    nul = make_case(GENERAL_TEXT, text_plain=f"before{control}after\x1b[31m red")
    sign_in(client, world.users["officer"])
    rows = {r["Reference"]: r["Feedback"] for r in table(export(client, "general", fmt), fmt)}
    assert rows[tagged.reference] == html  # verbatim, not HTML-escaped: a file is not a web page
    assert rows[nul.reference] == "beforeafter[31m red"


@pytest.mark.parametrize("fmt", FORMATS)
def test_arabic_round_trips(client: FlaskClient, world: World, fmt: str) -> None:
    text = "متى موعد جلسة الإحاطة قبل السفر لعائلتنا؟ شكراً"
    case = make_case(text, "jordan", language="ar")
    sign_in(client, world.users["officer_all"])
    rows = {r["Reference"]: r for r in table(export(client, "general", fmt, programme="jordan"), fmt)}
    assert rows[case.reference]["Feedback"] == text
    assert rows[case.reference]["Language"] == "ar"


def test_xlsx_sheet_reads_right_to_left_for_an_arabic_console(client: FlaskClient, world: World) -> None:
    officer = world.user("officer")
    officer.locale = "ar"
    db.session.commit()
    sign_in(client, world.users["officer"])
    response = export(client, "general", "xlsx")
    assert response.status_code == 200
    assert b'rightToLeft="1"' in _sheet_xml(response.data)


# --- audit ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_is_audited_without_content(client: FlaskClient, world: World, fmt: str) -> None:
    sign_in(client, world.users["officer_all"])
    export(client, "general", fmt, programme="kenya", q="briefing", ifrc="1")
    (event,) = audit_events("cases.export")
    assert event.actor == world.users["officer_all"] and event.object_ref == "general"
    assert event.details == {
        "format": fmt,
        "filters": {"programme": "kenya"},
        "search": True,
        "rows": 1,
        "ifrc": True,
        "contact": False,
    }
    assert "briefing" not in str(event.details) and world.cases["kenya_general"] not in str(event.details)


# --- IFRC coding framework ------------------------------------------------------------------------------------


def test_every_category_has_an_ifrc_type_and_category() -> None:
    assert set(IFRC_CODES) == set(GENERAL_CATEGORIES + RESTRICTED_CATEGORIES)
    assert all(code.type and code.category for code in IFRC_CODES.values())
    sensitive = {IFRC_CODES[c].category for c in RESTRICTED_CATEGORIES}
    assert sensitive == {
        "Sexual exploitation and abuse",
        "Fraud and corruption",
        "Staff misconduct",
        "Safety and security",
    }
    assert {IFRC_CODES[c].type for c in RESTRICTED_CATEGORIES} == {"Sensitive feedback"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_ifrc_option_gives_type_and_category_for_every_category(client: FlaskClient, world: World, fmt: str) -> None:
    general = {make_case(f"{GENERAL_TEXT} {c}", category=c).reference: c for c in GENERAL_CATEGORIES}
    restricted = {make_case(f"Report {c}", category=c).reference: c for c in RESTRICTED_CATEGORIES}
    sign_in(client, world.users["officer"])
    rows = {r["Reference"]: r for r in table(export(client, "general", fmt, ifrc="1"), fmt)}
    header = list(next(iter(rows.values())))
    assert header[header.index("Category") + 1 : header.index("Category") + 3] == [
        "Feedback type (IFRC)",
        "Category (IFRC)",
    ]
    for reference, category in general.items():
        assert (rows[reference]["Feedback type (IFRC)"], rows[reference]["Category (IFRC)"]) == IFRC_CODES[category]
    client.post("/console/logout")
    sign_in(client, world.users["focal"])
    rows = {r["Reference"]: r for r in table(export(client, "restricted", fmt, ifrc="1"), fmt)}
    for reference, category in restricted.items():
        assert (rows[reference]["Feedback type (IFRC)"], rows[reference]["Category (IFRC)"]) == IFRC_CODES[category]
    assert rows[world.cases["kenya_pending"]]["Feedback type (IFRC)"] == ""  # not classified yet: not coded
    without = table(export(client, "restricted", fmt), fmt)
    assert "Feedback type (IFRC)" not in without[0]


# --- streaming: flat memory -----------------------------------------------------------------------------------


def bulk_cases(n: int, programme_id: int, text: str = GENERAL_TEXT * 3) -> None:
    """n general cases inserted in one executemany (not through intake: this is about the export)."""
    now = utcnow()
    rows = [
        {
            "reference": f"T{i // 10000:03d}-{i % 10000:04d}",
            "programme_id": programme_id,
            "channel": "sms",
            "received_at": now - timedelta(minutes=i),
            "language": "en",
            "text_plain": f"{text} #{i}",
            "category": "information_request",
            "classification_status": "done",
            "queue": "general",
            "status": "new",
            "priority": "normal",
            "due_at": now + timedelta(days=30),
        }
        for i in range(n)
    ]
    db.session.execute(insert(Case), rows)
    db.session.commit()


def test_csv_export_streams_in_flat_memory(app: Flask, world: World) -> None:
    n = 20_000
    programme = db.session.scalars(select(Programme).where(Programme.slug == "kenya")).one()
    bulk_cases(n, programme.id)
    # A plain test client: the body is read chunk by chunk here, as a WSGI server reads it.
    client = FlaskClient(app, app.response_class, use_cookies=True)
    sign_in(client, world.users["officer"])
    started = time.perf_counter()
    tracemalloc.start()
    try:
        response = client.get("/console/queue/general/export.csv", buffered=False)
        assert response.status_code == 200
        size = lines = 0
        for chunk in response.iter_encoded():
            size += len(chunk)
            lines += chunk.count(b"\n")
        response.close()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    assert lines == n + 2  # header, the world's kenya case, the bulk
    assert size > 5_000_000
    # The whole file held in memory would need at least `size` bytes (and several times that as Python objects);
    # streaming holds one batch of rows and one chunk of output at a time.
    assert peak < size / 2, (peak, size)
    assert peak < 4_000_000, peak
    assert elapsed < 60, elapsed
