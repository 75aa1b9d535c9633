"""Realistic cases in bulk for the console-at-scale benchmark: programmes, languages, categories, statuses,
threads and first responses spread over two years, written with COPY on PostgreSQL and executemany on SQLite.

Texts come from the corpus (every language); restricted cases have their text sealed with the app's keys, as
intake would store them. Rows bypass intake (a million submissions through the classifier would take an hour)
but use the same columns, the same sealing and the same routing rule (restricted category -> restricted queue).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
PROGRAMMES = ("kenya", "jordan", "afghanistan", "ukraine")
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BATCH = 20_000


def _reference(rng: random.Random, used: set[str]) -> str:
    """A unique reference code in the product's format."""
    while True:
        symbols = "".join(rng.choice(ALPHABET) for _ in range(8))
        code = f"{symbols[:4]}-{symbols[4:]}"
        if code not in used:
            used.add(code)
            return code


def _rows(n: int, programme_ids: list[int], seed: int) -> Iterator[dict[str, Any]]:
    """n case rows (dicts of column values); sealed text is filled in by the caller's crypto."""
    from classifier.data import load_corpus

    rng = random.Random(seed)
    corpus = load_corpus()
    by_category: dict[str, list[Any]] = {}
    for example in corpus:
        by_category.setdefault(example.category, []).append(example)
    categories = list(CATEGORY_WEIGHTS)
    weights = [CATEGORY_WEIGHTS[c] for c in categories]
    statuses = list(STATUS_WEIGHTS)
    status_weights = [STATUS_WEIGHTS[s] for s in statuses]
    now = datetime.now(UTC)
    used: set[str] = set()
    for _ in range(n):
        category = rng.choices(categories, weights)[0]
        example = rng.choice(by_category[category])
        received = now - timedelta(seconds=rng.randint(0, 730 * 86_400))
        restricted = is_restricted(category)
        status = rng.choices(statuses, status_weights)[0]
        due = received + timedelta(hours=72 if restricted else 720)
        yield {
            "reference": _reference(rng, used),
            "programme_id": rng.choice(programme_ids),
            "channel": rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0],
            "received_at": received,
            "language": example.lang,
            "text": example.text,
            "restricted": restricted,
            "category": category,
            "confidence": round(rng.uniform(0.4, 0.99), 3),
            "category_source": "model",
            "predicted_category": category,
            "model_version": "bench",
            "classification_status": "done",
            "classification_attempts": 1,
            "queue": "restricted" if restricted else "general",
            "status": status,
            "priority": rng.choices(("low", "normal", "high", "urgent"), (10, 70, 15, 5))[0],
            "due_at": due,
            "closed_at": received + timedelta(hours=rng.randint(2, 2_000)) if status == "closed" else None,
            "created_at": received,
            "updated_at": received,
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


def generate(app: Any, n: int, *, seed: int = 1) -> dict[str, int]:
    """Create the programmes (if missing) and n cases with a first response on a third of them; return counts."""
    from cfm.extensions import db
    from cfm.models import Programme
    from cfm.services.admin import create_programme
    from cfm.services.crypto import get_crypto

    with app.app_context():
        ids = []
        for index, slug in enumerate(PROGRAMMES):
            programme = db.session.scalars(sa.select(Programme).where(Programme.slug == slug)).first()
            if programme is None:
                programme = create_programme(slug, slug.title(), [f"+25470000{index:04d}"])
            ids.append(programme.id)
        crypto = get_crypto()
        table = db.metadata.tables["case"]
        events = db.metadata.tables["case_event"]
        defaults = {k: v for k, v in _defaults(table).items() if k not in ("text_plain", "text_sealed")}
        engine = db.engine
        batch: list[dict[str, Any]] = []
        written = 0
        for row in _rows(n, ids, seed):
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
        with engine.begin() as conn:
            # A first response on a third of the cases: a status change some hours after receipt (for the medians).
            first = sa.select(
                table.c.id,
                sa.literal("status"),
                sa.literal("new"),
                sa.literal("under_review"),
                table.c.received_at,
            ).where(table.c.id % 3 == 0)
            conn.execute(
                events.insert().from_select(["case_id", "kind", "old_value", "new_value", "created_at"], first)
            )
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text('ANALYZE "case"'))
                conn.execute(sa.text("ANALYZE case_event"))
            else:
                conn.execute(sa.text("ANALYZE"))
        return {"cases": written, "programmes": len(ids)}


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
