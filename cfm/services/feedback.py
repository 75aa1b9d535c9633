"""The public feedback form: which programme receives it, and submitting it through intake."""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import select

from cfm.extensions import db
from cfm.models import Programme
from cfm.services.intake import default_programme, submit
from cfm.services.reference import new_reference
from channels import web
from channels.web import FormData

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FeedbackOutcome:
    """What the confirmation page shows; `stored` is False when a bot filled the honeypot."""

    reference: str
    stored: bool
    created: bool = True
    programme: Programme | None = None


def programme_by_slug(slug: str) -> Programme | None:
    """The programme with this slug, or None."""
    return db.session.scalars(select(Programme).where(Programme.slug == slug)).first()


def entry_programmes() -> tuple[Programme | None, list[Programme]]:
    """For /feedback: the default programme, or (None, the programmes to choose from)."""
    programme = default_programme()
    if programme is not None:
        return programme, []
    return None, list(db.session.scalars(select(Programme).order_by(Programme.name)))


def submit_feedback(
    data: FormData, *, programme: Programme | None, choices: list[Programme], locale: str | None
) -> FeedbackOutcome:
    """Validate (web.FormErrors), then intake.submit(); a filled honeypot looks accepted but stores nothing."""
    if web.honeypot_filled(data):
        log.info("feedback: honeypot field filled; nothing stored")
        return FeedbackOutcome(new_reference(), stored=False, programme=programme)
    request = web.feedback_request(
        data,
        programme=programme.slug if programme is not None else None,
        programme_choices=[p.slug for p in choices],
        locale=locale,
    )
    result = submit(request)
    return FeedbackOutcome(result.case.reference, stored=True, created=result.created, programme=result.case.programme)
