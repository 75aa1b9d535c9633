"""Realistic cases in bulk for the console-at-scale benchmark: programmes, languages, categories, statuses,
threads and first responses spread over two years, written with COPY on PostgreSQL and executemany on SQLite.

Texts come from the corpus (every language); restricted cases have their text sealed with the app's keys, as
intake would store them. Rows bypass intake (a million submissions through the classifier would take an hour)
but use the same columns, the same sealing and the same routing rule (restricted category -> restricted queue).
Cases arrive over the two years in id order, as they do in a live database (ids follow arrival); statuses are
drawn independently of age, which leaves far more old cases open than a real programme has (a harder queue).

Loading is a bulk load: the secondary indexes of the case, message and event tables (and on SQLite the full-text
triggers) are dropped, the cases written in batches generated column by column, their threads made by the
database from the cases (INSERT ... SELECT), then the indexes built once, SQLite's full-text tables filled in one
statement each, and the tables vacuumed and analysed, as an operator would after a bulk import.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

import sqlalchemy as sa

from classifier.categories import is_restricted

CHANNELS = ("web", "sms", "whatsapp", "hotline", "voice", "api")
CHANNEL_WEIGHTS = (30, 35, 15, 12, 3, 5)
STATUS_WEIGHTS = {
    "new": 10,
    "under_review": 10,
    "referred_internally": 4,
    "referred_externally": 3,
    "no_action_required": 5,
    "action_taken": 8,
    "closed": 60,
}
CATEGORY_WEIGHTS = {
    "information_request": 22,
    "assistance_request": 20,
    "service_complaint": 18,
    "suggestion": 6,
    "appreciation": 8,
    "other": 8,
    "sexual_exploitation_abuse": 3,
    "fraud_corruption": 6,
    "staff_misconduct": 5,
    "safety_protection": 4,
}
PRIORITY_WEIGHTS = {"low": 10, "normal": 70, "high": 15, "urgent": 5}
PROGRAMMES = ("kenya", "jordan", "afghanistan", "ukraine")
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PAIRS = [a + b for a in ALPHABET for b in ALPHABET]  # 10 random bits -> two symbols
SPAN = timedelta(days=730)
BATCH = 20_000


def _reference(bits: int) -> str:
    """A reference code in the product's format from 40 random bits."""
    return f"{PAIRS[bits >> 30]}{PAIRS[(bits >> 20) & 1023]}-{PAIRS[(bits >> 10) & 1023]}{PAIRS[bits & 1023]}"


def _rows(n: int, programme_ids: list[int], seed: int, now: datetime | None = None) -> Iterator[dict[str, Any]]:
    """n case rows (dicts of column values) in arrival order; the caller seals restricted text."""
    from classifier.data import load_corpus

    rng = random.Random(seed)
    by_category: dict[str, list[Any]] = {}
    for example in load_corpus():
        by_category.setdefault(example.category, []).append(example)

    def draw(weights: dict[str, int], k: int) -> list[str]:
        return rng.choices(list(weights), cum_weights=list(accumulate(weights.values())), k=k)

    now = now or datetime.now(UTC)
    start = now - SPAN
    step = SPAN / max(n, 1)
    used: set[str] = set()
    for first in range(0, n, BATCH):
        k = min(BATCH, n - first)
        categories = draw(CATEGORY_WEIGHTS, k)
        statuses = draw(STATUS_WEIGHTS, k)
        priorities = draw(PRIORITY_WEIGHTS, k)
        channels = rng.choices(CHANNELS, cum_weights=list(accumulate(CHANNEL_WEIGHTS)), k=k)
        programmes = rng.choices(programme_ids, k=k)
        for i in range(k):
            category, status = categories[i], statuses[i]
            examples = by_category[category]
            example = examples[int(rng.random() * len(examples))]
            restricted = is_restricted(category)
            received = start + step * (first + i + rng.random())
            reference = _reference(rng.getrandbits(40))
            while reference in used:
                reference = _reference(rng.getrandbits(40))
            used.add(reference)
            yield {
                "reference": reference,
                "programme_id": programmes[i],
                "channel": channels[i],
                "received_at": received,
                "language": example.lang,
                "text": example.text,
                "restricted": restricted,
                "category": category,
                "confidence": round(0.4 + 0.59 * rng.random(), 3),
                "category_source": "model",
                "predicted_category": category,
                "model_version": "bench",
                "classification_status": "done",
                "classification_attempts": 1,
                "queue": "restricted" if restricted else "general",
                "status": status,
                "priority": priorities[i],
                "due_at": received + timedelta(hours=72 if restricted else 720),
                "closed_at": received + timedelta(hours=rng.randint(2, 2_000)) if status == "closed" else None,
                "created_at": received,
                "updated_at": received + timedelta(minutes=rng.randint(10, 5_000)),  # first response, reply
            }


def _defaults(table: sa.Table) -> dict[str, Any]:
    """Scalar Python-side defaults of the table's other columns (version counters, flags)."""
    values: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if default is not None and getattr(default, "is_scalar", False):
            values[column.name] = default.arg
        elif not column.nullable and not column.primary_key and default is None and column.server_default is None:
            values[column.name] = None
    return values


def _secondary_ddl(conn: sa.Connection, table: str) -> list[tuple[str, str, str]]:
    """(kind, name, CREATE statement) of the table's indexes and triggers that no constraint needs."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            sa.text(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = CAST(:table AS regclass) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
            ),
            {"table": f'"{table}"'},
        )
        return [("INDEX", name, sql) for name, sql in rows]
    rows = conn.execute(
        sa.text("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = :table AND type IN ('index', 'trigger')"),
        {"table": table},
    )
    return [(kind.upper(), name, sql) for kind, name, sql in rows if sql]  # autoindexes (constraints) have no sql


FTS_FILL = (
    'INSERT INTO case_fts(rowid, text_plain) SELECT id, text_plain FROM "case" '
    "WHERE id > :before AND text_plain IS NOT NULL",
    "INSERT INTO message_fts(rowid, text_plain) SELECT id, text_plain FROM message "
    "WHERE case_id > :before AND text_plain IS NOT NULL",
)
LOADED = ("case", "message", "case_event")  # the tables the generator fills (their secondary indexes rebuilt once)
EVENT_COLUMNS = ["case_id", "kind", "old_value", "new_value", "created_at"]
MESSAGE_COLUMNS = ["case_id", "direction", "channel", "text_plain", "text_sealed", "media_count", "created_at"]
REPLY = "Thank you for your message. We are looking into it and will contact you again within seven days."


def generate(app: Any, n: int, *, seed: int = 1) -> dict[str, int]:
    """Create the programmes (if missing) and n cases with their threads; return counts.

    Every case has its inbound message (the same text, sealed like the case's); a third of the cases got a first
    response (a status change away from 'new', kept in first_response_at), a sixth an outbound reply, both at the
    case's updated_at; every closed case has the status change that closed it.
    """
    from cfm.extensions import db
    from cfm.models import Programme
    from cfm.services.admin import create_programme

    with app.app_context():
        ids = []
        for index, slug in enumerate(PROGRAMMES):
            programme = db.session.scalars(sa.select(Programme).where(Programme.slug == slug)).first()
            if programme is None:
                programme = create_programme(slug, slug.title(), [f"+25470000{index:04d}"])
            ids.append(programme.id)
        db.session.commit()
        engine = db.engine
        cases = db.metadata.tables["case"]
        with engine.begin() as conn:
            before = int(conn.scalar(sa.select(sa.func.coalesce(sa.func.max(cases.c.id), 0))) or 0)
            secondary = [ddl for table in LOADED for ddl in _secondary_ddl(conn, table)]
            for kind, name, _sql in secondary:
                conn.execute(sa.text(f'DROP {kind} "{name}"'))
        try:
            written = _load_cases(engine, n, ids, seed)
            with engine.begin() as conn:
                _threads(conn, before)
        finally:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
                for _kind, _name, sql in secondary:
                    conn.execute(sa.text(sql))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if engine.dialect.name == "postgresql":
                for table in LOADED:
                    conn.execute(sa.text(f'VACUUM ANALYZE "{table}"'))
            else:
                for statement in FTS_FILL:  # what the dropped triggers would have indexed, one statement each
                    conn.execute(sa.text(statement), {"before": before})
                conn.execute(sa.text("ANALYZE"))
        return {"cases": written, "programmes": len(ids)}


def _load_cases(engine: sa.Engine, n: int, programme_ids: list[int], seed: int) -> int:
    """Write n generated cases in batches, restricted text sealed with the app's keys; return how many."""
    from cfm.services.crypto import get_crypto

    crypto = get_crypto()
    table = _table("case")
    defaults = {k: v for k, v in _defaults(table).items() if k not in ("text_plain", "text_sealed")}
    written = 0
    batch: list[dict[str, Any]] = []
    for row in _rows(n, programme_ids, seed):
        text = row.pop("text")
        restricted = row.pop("restricted")
        row["text_plain"] = None if restricted else text
        row["text_sealed"] = crypto.encrypt(text) if restricted else None
        batch.append({**defaults, **row})
        if len(batch) >= BATCH:
            written += _write(engine, table, batch)
            batch = []
    if batch:
        written += _write(engine, table, batch)
    return written


def _threads(conn: sa.Connection, before: int) -> None:
    """Messages and status changes of the cases written after id `before`, made by the database from the cases."""
    c = _table("case").c
    new = c.id > before
    answered = c.id % 3 == 0  # the cases with a first response; replied to: every other one of them
    thread = [
        ("inbound", c.text_plain, c.text_sealed, c.received_at, sa.true()),
        ("outbound", sa.literal(REPLY), sa.null(), c.updated_at, c.id % 6 == 0),
    ]
    for direction, plain, sealed, at, which in thread:
        rows = sa.select(c.id, sa.literal(direction), c.channel, plain, sealed, sa.literal(0), at)
        conn.execute(_table("message").insert().from_select(MESSAGE_COLUMNS, rows.where(new, which)))
    status_changes = [  # a first response on a third of the cases; every closed case's closure
        ("new", "under_review", c.updated_at, answered),
        ("action_taken", "closed", c.closed_at, c.closed_at.is_not(None)),
    ]
    for old, new_value, at, which in status_changes:
        rows = sa.select(c.id, sa.literal("status"), sa.literal(old), sa.literal(new_value), at)
        conn.execute(_table("case_event").insert().from_select(EVENT_COLUMNS, rows.where(new, which)))
    # The cases' first responses, as cfm.services.dashboard.record_response() keeps them: the earliest outbound
    # reply or change away from "new", both at updated_at on every third case (an UPDATE while the indexes are off).
    first_response = {"first_response_at": c.updated_at, "updated_at": c.updated_at}  # updated_at: not "now"
    conn.execute(_table("case").update().where(new, answered).values(first_response))


def _table(name: str) -> sa.Table:
    """One of the app's tables."""
    from cfm.extensions import db

    return db.metadata.tables[name]


def _write(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]]) -> int:
    """Insert rows: COPY on PostgreSQL, executemany elsewhere."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
        return len(rows)
    columns = list(rows[0])
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row([_copy_value(row[c]) for c in columns])
        raw.commit()
    finally:
        raw.close()
    return len(rows)


def _copy_value(value: Any) -> Any:
    """A value COPY can take (JSON columns as text)."""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def rows_for_tests(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """A few generated rows without a database (for the generator's own test)."""
    return list(_rows(n, [1, 2], seed))
