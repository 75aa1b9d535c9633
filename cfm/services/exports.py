"""Case exports: CSV streamed in batches, XLSX through a constant-memory temporary file; audited (issue 6).

The cases come from a select() the caller builds on access.visible_cases() (the console passes the queue's
filtered() query), so an export never shows more than the queue does; this module only narrows it further:

- general tab: officers and supervisors get the general cases of their programmes with the text. The reporter's
  name, phone and email come only when the officer asks for them AND the person agreed to be contacted; the
  database hands out no contact ciphertext for anyone else, so nothing without consent is even decrypted.
- restricted tab: focal points get the restricted and pending cases of their programmes with the sealed text,
  decrypted row by row. Never the reporter's contact: a survivor's phone number does not travel in a spreadsheet;
  the focal point opens the case (an audited view) to reach them.
- report viewers and admins: no case-level export at all (the console answers 404). Report viewers export the
  dashboard's aggregates; an admin reads cases only when also holding a reading role (segregation of duties).

Memory stays flat: one query in id order is read 1,000 rows at a time (yield_per: a server-side cursor on
PostgreSQL, the sqlite3 cursor's own stepping on SQLite) and each row is written out before the next is read; the
CSV goes to the client chunk by chunk, the XLSX row by row to a temporary file (xlsxwriter's constant_memory mode).
Every export writes one audit event: who, which tab and filters, format, row count, IFRC form or not, contact or
not; never the content.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import functools
import io
import logging
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import xlsxwriter
from sqlalchemy import Select, func, select
from sqlalchemy import case as when
from sqlalchemy.orm import aliased

from cfm.extensions import db
from cfm.models import Case, Programme, Reporter, User
from cfm.services import audit
from cfm.services.access import GENERAL_READERS, RESTRICTED_READERS
from cfm.services.ifrc import ifrc_code

log = logging.getLogger(__name__)

FORMATS = ("csv", "xlsx")
TABS = ("general", "restricted")
BATCH_SIZE = 1000
CSV_CHUNK_CHARS = 64 * 1024
CSV_MIMETYPE = "text/csv; charset=utf-8"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_CELL_LIMIT = 32_767  # characters Excel keeps in one cell

BASE_COLUMNS = (
    "reference",
    "received",
    "programme",
    "channel",
    "language",
    "category",
    "status",
    "priority",
    "due",
    "assignee",
    "closure_method",
    "text",
)
IFRC_COLUMNS = ("ifrc_type", "ifrc_category")
CONTACT_COLUMNS = ("contact_name", "contact_phone", "contact_email")
QUEUE_COLUMN = "queue"
XLSX_WIDTHS = {"reference": 12, "received": 22, "due": 22, "language": 9, "text": 70, "ifrc_category": 32}

# Spreadsheet formula injection (OWASP "CSV injection"): a cell whose first visible character starts a formula,
# in ASCII or full-width form, also behind whitespace, zero-width or bidirectional marks; or a leading tab.
FORMULA_TRIGGERS = "=+-@\uff1d\uff0b\uff0d\uff20"
_FORMULA = re.compile(
    r"\t|[\s\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]*[" + re.escape(FORMULA_TRIGGERS) + "]"
)
# Control characters a spreadsheet (and XML) cannot hold; tab and line feed stay (the text has lines).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
# What needs a closer look: a first character that may begin a formula (a trigger, or whitespace or an invisible
# mark a trigger could hide behind); anywhere, a character str.isprintable() refuses (controls, line breaks...).
_SUSPECT_START = frozenset(
    FORMULA_TRIGGERS
    + "".join(c for c in map(chr, range(0x3001)) if c.isspace())
    + "".join(
        map(chr, [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x206A)])
    )
    + "\ufeff"
)


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What the user asked for besides the filters."""

    fmt: str = "csv"
    ifrc: bool = False
    contact: bool = False


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Column headers and code labels in the reader's language (the console builds it; codes by default)."""

    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)

    def header(self, column: str) -> str:
        """The header of a column."""
        return self.headers.get(column, column)


@dataclasses.dataclass
class Export:
    """A finished export ready to send: a stream of bytes (CSV) or an open temporary file (XLSX)."""

    filename: str
    mimetype: str
    rows: int
    stream: Iterator[bytes] | None = None  # CSV
    file: IO[bytes] | None = None  # XLSX


# --- who may export what ---------------------------------------------------------------------------------------


def may_export(user: User | None, tab: str) -> bool:
    """True when the user's roles open this queue: officers/supervisors the general, focal points the restricted."""
    if user is None or not user.active or tab not in TABS:
        return False
    readers = GENERAL_READERS if tab == "general" else RESTRICTED_READERS
    return bool(set(user.roles or []) & set(readers))


def contact_allowed(user: User | None, tab: str) -> bool:
    """Reporter contact (with consent) goes only to officers of the programme, for general cases."""
    return tab == "general" and may_export(user, tab)


def columns(tab: str, options: ExportOptions, user: User | None) -> list[str]:
    """The columns of this export, in order."""
    cols = list(BASE_COLUMNS)
    if options.ifrc:
        at = cols.index("category") + 1
        cols[at:at] = IFRC_COLUMNS
    if tab == "restricted":
        cols.insert(cols.index("status"), QUEUE_COLUMN)
    if options.contact and contact_allowed(user, tab):
        cols.extend(CONTACT_COLUMNS)
    return cols


# --- cell hygiene ---------------------------------------------------------------------------------------------


def clean(value: str) -> str:
    """Drop NUL and the other control characters a spreadsheet cannot hold; line breaks become line feeds."""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", value)


def is_formula_like(value: str) -> bool:
    """True when a spreadsheet could read the cell as a formula (also behind whitespace or invisible marks)."""
    return _FORMULA.match(value) is not None


def csv_cell(value: str) -> str:
    """A CSV cell that no spreadsheet evaluates: control characters dropped, formula-like text quoted with '."""
    if value.isprintable() and value[:1] not in _SUSPECT_START:  # the common case, one scan in C
        return value
    value = clean(value)
    return "'" + value if _FORMULA.match(value) else value


def xlsx_cell(value: str) -> str:
    """An XLSX string cell: control characters dropped, cut to what one cell holds (written as a string)."""
    value = clean(value)
    return value if len(value) <= XLSX_CELL_LIMIT else value[: XLSX_CELL_LIMIT - 1] + "…"


# --- reading rows ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _zone(name: str | None) -> tzinfo:
    """A programme's time zone (UTC when unknown)."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _stamp(value: datetime | None, zone: tzinfo) -> str:
    """ISO 8601 in the programme's time zone, to the second."""
    return value.astimezone(zone).isoformat(timespec="seconds") if value else ""


def _statement(query: Select[Any], *, sealed: bool, contact: bool) -> Select[Any]:
    """The caller's select() reduced to the columns an export needs (sealed ones only when allowed)."""
    programme, assignee, reporter = aliased(Programme), aliased(User), aliased(Reporter)
    cols: list[Any] = [
        Case.id,
        Case.reference,
        Case.received_at,
        programme.name.label("programme"),
        programme.timezone.label("timezone"),
        Case.channel,
        Case.language,
        Case.category,
        Case.status,
        Case.priority,
        Case.due_at,
        assignee.email.label("assignee"),
        Case.closure_method,
        Case.queue,
        Case.text_plain,
    ]
    if sealed:
        cols.append(Case.text_sealed)
    statement = (
        query.with_only_columns(*cols)
        .join_from(Case, programme, Case.programme_id == programme.id)
        .outerjoin_from(Case, assignee, Case.assignee_id == assignee.id)
    )
    if contact:
        # CASE in SQL: without consent the ciphertext never leaves the database and nothing is decrypted.
        consent = reporter.consent_to_contact.is_(True)
        statement = statement.add_columns(
            when((consent, reporter.name)).label("contact_name"),
            when((consent, reporter.phone)).label("contact_phone"),
            when((consent, reporter.email)).label("contact_email"),
        ).outerjoin_from(Case, reporter, Case.reporter_id == reporter.id)
    return statement


def _stream(statement: Select[Any]) -> Iterator[Sequence[Any]]:
    """Rows in id order from one query, fetched BATCH_SIZE at a time (a server-side cursor on PostgreSQL)."""
    # Core, not ORM, execution: these are plain columns, and the ORM's row loading would double the cost per row.
    result = db.session.connection().execute(statement.order_by(Case.id).execution_options(yield_per=BATCH_SIZE))
    try:
        yield from result
    finally:
        result.close()


# Every column an export can have, in the order rows() builds them; columns() picks from these.
ALL_COLUMNS = (*BASE_COLUMNS, *IFRC_COLUMNS, QUEUE_COLUMN, *CONTACT_COLUMNS)


def rows(
    query: Select[Any], tab: str, options: ExportOptions, user: User | None, vocabulary: Vocabulary | None = None
) -> Iterator[list[str]]:
    """The export's data rows as lists of text, in the order of columns()."""
    if not may_export(user, tab):
        return
    vocabulary = vocabulary or Vocabulary()
    cols = columns(tab, options, user)
    pick = [ALL_COLUMNS.index(c) for c in cols]
    sealed = tab == "restricted"  # focal points only (may_export); officers' general cases hold clear text
    contact = CONTACT_COLUMNS[0] in cols
    channel, category, status, priority, closure, queue = (
        {**vocabulary.values.get(kind, {})}
        for kind in ("channel", "category", "status", "priority", "closure_method", "queue")
    )
    blank = ("", "", "")
    for row in _stream(_statement(query, sealed=sealed, contact=contact)):
        # Positional unpacking (the order of _statement's columns): much cheaper than attribute access per field.
        (_id, reference, received, programme, timezone, chan, language, cat, stat, prio, due, assignee, closure_method,
         queue_code, text_plain, *rest) = row  # fmt: skip
        zone = _zone(timezone)
        code = ifrc_code(cat)
        text_sealed = rest.pop(0) if sealed else None
        values = (
            reference,
            _stamp(received, zone),
            programme,
            channel.get(chan, chan),
            language or "",
            category.get(cat, cat or ""),
            status.get(stat, stat),
            priority.get(prio, prio),
            _stamp(due, zone),
            assignee or "",
            closure.get(closure_method, closure_method or ""),
            (text_sealed if text_sealed is not None else text_plain) or "",
            code.type,
            code.category,
            queue.get(queue_code, queue_code),
            *((value or "" for value in rest) if contact else blank),
        )
        yield [values[i] for i in pick]


def count(query: Select[Any]) -> int:
    """Rows the export will hold."""
    return int(db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


# --- writing --------------------------------------------------------------------------------------------------


def csv_chunks(header: list[str], data: Iterable[list[str]]) -> Iterator[bytes]:
    """UTF-8 CSV with a byte-order mark (Excel then reads Arabic right), a chunk at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(h) for h in header])
    yield codecs.BOM_UTF8
    for row in data:
        writer.writerow(map(csv_cell, row))
        if buffer.tell() >= CSV_CHUNK_CHARS:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_xlsx(
    target: IO[bytes],
    header: list[str],
    data: Iterable[list[str]],
    *,
    widths: list[int] | None = None,
    rtl: bool = False,
) -> int:
    """One sheet, every cell written as a string (never a formula), row by row to disk; returns the row count."""
    workbook = xlsxwriter.Workbook(
        target,
        {
            "constant_memory": True,
            "tmpdir": tempfile.gettempdir(),
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    sheet = workbook.add_worksheet("Cases")
    if rtl:
        sheet.right_to_left()
    bold = workbook.add_format({"bold": True, "bg_color": "#EEF2F7", "bottom": 1})
    for index, name in enumerate(header):
        sheet.set_column(index, index, widths[index] if widths else 16)
        sheet.write_string(0, index, xlsx_cell(name), bold)
    sheet.freeze_panes(1, 0)
    written = 0
    for written, row in enumerate(data, start=1):
        for index, value in enumerate(row):
            if value:
                sheet.write_string(written, index, xlsx_cell(value))
    sheet.autofilter(0, 0, max(written, 1), len(header) - 1)
    workbook.close()
    return written


def filename(tab: str, fmt: str, now: datetime | None = None) -> str:
    """cfm-general-cases-20250301-1405.csv: the queue and the time, no personal data, no reference code."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"cfm-{tab}-cases-{moment:%Y%m%d-%H%M}.{fmt}"


def _record(user: User, tab: str, filters: Mapping[str, str], options: ExportOptions, count: int) -> None:
    """The export's audit event (committed before any byte leaves): who, what, how many; never the content."""
    described = {k: v for k, v in filters.items() if k != "q"}
    audit.record(
        "cases.export",
        actor=user,
        object_type="queue",
        object_ref=tab,
        details={
            "format": options.fmt,
            "filters": described,
            "search": bool(filters.get("q")),  # the words searched are case content: not in the log
            "rows": count,
            "ifrc": options.ifrc,
            "contact": options.contact and contact_allowed(user, tab),
        },
    )
    db.session.commit()
    log.info("export user=%s tab=%s format=%s rows=%d", user.id, tab, options.fmt, count)


def export_cases(
    user: User,
    tab: str,
    query: Select[Any],
    filters: Mapping[str, str],
    options: ExportOptions,
    vocabulary: Vocabulary | None = None,
    *,
    rtl: bool = False,
) -> Export:
    """Audit and build an export of `query` (already limited by access.visible_cases) for this user.

    CSV: the row count is taken and audited first, then the rows stream. XLSX: the file is written to an unnamed
    temporary file, audited with the exact count, and handed back rewound.
    """
    if not may_export(user, tab) or options.fmt not in FORMATS:
        raise PermissionError("no case-level export for this user and queue")
    vocabulary = vocabulary or Vocabulary()
    cols = columns(tab, options, user)
    header = [vocabulary.header(c) for c in cols]
    data = rows(query, tab, options, user, vocabulary)
    name = filename(tab, options.fmt)
    if options.fmt == "csv":
        total = count(query)
        _record(user, tab, filters, options, total)
        return Export(name, CSV_MIMETYPE, total, stream=csv_chunks(header, data))
    handle = tempfile.TemporaryFile(suffix=".xlsx")  # sent, then closed, by the response
    try:
        total = write_xlsx(handle, header, data, widths=[XLSX_WIDTHS.get(c, 16) for c in cols], rtl=rtl)
    except BaseException:
        handle.close()
        raise
    _record(user, tab, filters, options, total)
    handle.seek(0)
    return Export(name, XLSX_MIMETYPE, total, file=handle)
