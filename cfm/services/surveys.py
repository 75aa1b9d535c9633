"""Surveys: definitions from cfm/surveys/*.yaml, publication per programme, and storing answers.

Decision (issue 4): structured answers (ratings, yes/no, choices) are kept in SurveyResponse.answers;
free-text answers are joined into one intake submission, so they are classified, routed and sealed like
any other feedback, and the response links to that case. A response without free text is stored alone
(no case, no reference code): there is nothing in it for anybody to follow up. The response and its case
are committed in one transaction, so structured answers are never lost while the case is kept, nor
the reverse.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cfm.extensions import db
from cfm.models import Case, Programme, Survey, SurveyResponse
from cfm.services import audit
from cfm.services.intake import IntakeUnavailable, submit
from cfm.services.reference import new_reference
from channels import web
from channels.web import DefinitionError, FormData, SurveyDefinition

log = logging.getLogger(__name__)
SURVEY_DIR = Path(__file__).resolve().parent.parent / "surveys"


@functools.cache
def library() -> dict[str, SurveyDefinition]:
    """Every definition shipped in cfm/surveys, by slug (parsed once per process)."""
    definitions: dict[str, SurveyDefinition] = {}
    for path in sorted(SURVEY_DIR.glob("*.yaml")):
        definition = load_definition(path)
        if definition.slug != path.stem:
            raise DefinitionError(f"{path.name}: the slug must be the file name ({path.stem})")
        definitions[definition.slug] = definition
    return definitions


def load_definition(path: Path) -> SurveyDefinition:
    """Read and check one YAML definition."""
    with path.open(encoding="utf-8") as handle:
        return SurveyDefinition.from_dict(yaml.safe_load(handle))


def _raw(slug: str) -> dict[str, object]:
    """The YAML content of one shipped definition, as stored with a published survey."""
    if slug not in library():
        raise DefinitionError(f"no survey definition {slug!r} in {SURVEY_DIR}")
    with (SURVEY_DIR / f"{slug}.yaml").open(encoding="utf-8") as handle:
        return dict(yaml.safe_load(handle))


def publish_survey(programme: Programme, slug: str) -> Survey:
    """Publish (or re-publish, taking the current definition) a shipped survey for a programme."""
    raw = _raw(slug)
    definition = SurveyDefinition.from_dict(raw)
    survey = db.session.scalars(select(Survey).where(Survey.programme_id == programme.id, Survey.slug == slug)).first()
    if survey is None:
        survey = Survey(programme=programme, slug=slug)
        db.session.add(survey)
    survey.definition = raw
    survey.version = definition.version
    survey.active = True
    db.session.flush()
    audit.record(
        "survey.publish",
        object_type="survey",
        object_ref=f"{programme.slug}/{slug}",
        details={"version": survey.version},
    )
    db.session.commit()
    return survey


def unpublish_survey(programme: Programme, slug: str) -> None:
    """Take a survey off the public pages; its responses stay."""
    survey = get_survey(programme, slug)
    if survey is None:
        return
    survey.active = False
    audit.record("survey.unpublish", object_type="survey", object_ref=f"{programme.slug}/{slug}")
    db.session.commit()


def published_surveys(programme: Programme) -> list[Survey]:
    """The programme's active surveys, by slug."""
    query = select(Survey).where(Survey.programme_id == programme.id, Survey.active.is_(True)).order_by(Survey.slug)
    return list(db.session.scalars(query))


def get_survey(programme: Programme, slug: str) -> Survey | None:
    """One active survey of the programme, or None."""
    query = select(Survey).where(Survey.programme_id == programme.id, Survey.slug == slug, Survey.active.is_(True))
    return db.session.scalars(query).first()


def definition_of(survey: Survey) -> SurveyDefinition:
    """The definition stored with the published survey."""
    return SurveyDefinition.from_dict(survey.definition)


@dataclasses.dataclass(frozen=True)
class SurveyOutcome:
    """What the person is told: a reference code when free text made a case; stored False for a bot."""

    reference: str | None
    stored: bool
    response: SurveyResponse | None = None
    case: Case | None = None


def submit_survey(survey: Survey, data: FormData, *, locale: str | None) -> SurveyOutcome:
    """Validate (web.FormErrors), store the answers and the case from the free text; IntakeUnavailable on DB loss."""
    definition = definition_of(survey)
    if web.honeypot_filled(data):
        log.info("survey %s: honeypot field filled; nothing stored", survey.slug)
        has_text = any(
            isinstance(value := data.get(q.field), str) and value.strip() for q in definition.free_text_questions
        )
        return SurveyOutcome(new_reference() if has_text else None, stored=False)
    answers = web.survey_answers(definition, data, programme=survey.programme.slug, locale=locale)
    token = web.submission_id(data)
    previous = _by_token(token)
    if previous is not None:
        return _outcome(previous)
    response = SurveyResponse(
        survey=survey,
        programme_id=survey.programme_id,
        survey_version=definition.version,
        answers=answers.structured,
        free_text_questions=list(answers.free_text_ids) or None,
        locale=locale,
        submission_id=token,
    )
    try:
        db.session.add(response)
        if answers.request is not None:
            # submit() commits the pending response together with the case (one transaction).
            result = submit(answers.request)
            if not result.created:
                db.session.rollback()
                previous = _by_token(token)
                return _outcome(previous) if previous else SurveyOutcome(result.case.reference, True, None, result.case)
            db.session.add(response)  # a retried reference collision inside submit() rolls back and expunges it
            response.case = result.case
        db.session.commit()
    except IntegrityError:
        # The same form sent twice at once: the other request stored it.
        db.session.rollback()
        previous = _by_token(token)
        if previous is None:
            raise IntakeUnavailable("survey response could not be stored") from None
        return _outcome(previous)
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("survey %s: database unavailable (%s)", survey.slug, type(exc).__name__)
        raise IntakeUnavailable("database unavailable") from exc
    except BaseException:
        db.session.rollback()
        raise
    log.info(
        "survey %s response %s stored case=%s",
        survey.slug,
        response.id,
        response.case.reference if response.case else "-",
    )
    return _outcome(response)


def _by_token(token: str | None) -> SurveyResponse | None:
    """The response already stored for this form token."""
    if not token:
        return None
    return db.session.scalars(select(SurveyResponse).where(SurveyResponse.submission_id == token)).first()


def _outcome(response: SurveyResponse) -> SurveyOutcome:
    """The outcome shown for a stored response."""
    case = response.case
    return SurveyOutcome(case.reference if case else None, True, response, case)
