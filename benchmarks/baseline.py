"""The baseline endpoint: insert one row and commit, in metadata of its own (never in CFM's schema or migrations)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint

from cfm.extensions import csrf, db
from cfm.models.types import utcnow

baseline_metadata = sa.MetaData()
bench_row = sa.Table(
    "bench_row",
    baseline_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("payload", sa.String(64)),
)

baseline = Blueprint("bench", __name__)
csrf.exempt(baseline)


@baseline.route("/_bench/minimal", methods=["POST"])
def minimal() -> tuple[str, int]:
    """Insert one row and commit: the floor under any endpoint that stores something."""
    db.session.execute(bench_row.insert().values(created_at=utcnow(), payload="x"))
    db.session.commit()
    return "ok", 200


def create_baseline_table(engine: sa.Engine) -> None:
    """Create the baseline table (before the server starts: workers must not race to create it)."""
    baseline_metadata.create_all(engine, checkfirst=True)
