"""Officers' category corrections, as training examples for `cfm train --include-corrections`."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from cfm.extensions import db
from cfm.models import Case
from classifier.data import Example


def corrections() -> Iterator[Example]:
    """Every case whose category an officer set, with the officer's category as the label."""
    query = select(Case).where(Case.category_source == "officer", Case.category.is_not(None)).order_by(Case.id)
    for case in db.session.scalars(query).yield_per(500):
        if not case.text:
            continue  # purged: personal data and text were removed
        yield Example(
            text=case.text,
            lang=case.language or "unknown",
            category=str(case.category),
            channel=case.channel,
            source="officer_correction",
            scenario=f"case-{case.reference}",
            tags=(),
        )
