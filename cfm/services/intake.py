"""submit(): the one path every channel takes (shared/DESIGN.md, "One piece of feedback, end to end")."""

from __future__ import annotations

import dataclasses
import logging

from flask import current_app, g, has_request_context
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError

from cfm import jobs
from cfm.extensions import db
from cfm.models import Case, Message, PhoneNumber, Programme, Reporter
from cfm.models.case import QUEUE_PENDING, QUEUE_RESTRICTED
from cfm.models.types import utcnow
from cfm.services import classification, conversations, routing
from cfm.services.acknowledgement import acknowledgement
from cfm.services.crypto import get_crypto
from cfm.services.reference import new_reference
from channels.base import ChannelError, IntakeRequest
from classifier.language import UNKNOWN, detect
from classifier.predict import Prediction
from classifier.safety_net import scan

log = logging.getLogger(__name__)
_REFERENCE_ATTEMPTS = 5


# Attempts when the open case a follow-up joins changed underneath (optimistic locking, issue 8).
_STALE_ATTEMPTS = 3


class IntakeUnavailable(RuntimeError):
    """The submission could not be stored; the channel answers 5xx so that the sender retries."""


@dataclasses.dataclass(frozen=True)
class IntakeResult:
    """The stored case, the acknowledgement to send, and whether this call created it."""

    case: Case
    acknowledgement: str
    created: bool
    # True when the message joined the person's open case as a follow-up (cfm.services.conversations).
    threaded: bool = False


def submit(request: IntakeRequest) -> IntakeResult:
    """Validate, store (committed before anything else), safety-net, classify, route, acknowledge."""
    request = request.validated()
    for attempt in range(_STALE_ATTEMPTS):
        try:
            existing = _existing(request)
            if existing is not None:
                return IntakeResult(existing, acknowledgement(existing), created=False)
            programme = resolve_programme(request)
            thread = conversations.follow_up(request, programme)
            if thread is not None:
                return IntakeResult(thread, acknowledgement(thread), created=False, threaded=True)
            case = _store(request, programme)
            break
        except (IntegrityError, StaleDataError) as exc:
            # Another process stored the same provider message first (IntegrityError), or changed the open case
            # this message was joining (StaleDataError: optimistic locking): answer with its case, or try again.
            db.session.rollback()
            existing = _existing(request)
            if existing is not None:
                return IntakeResult(existing, acknowledgement(existing), created=False)
            if isinstance(exc, StaleDataError) and attempt < _STALE_ATTEMPTS - 1:
                continue
            # Names the constraint only (never values).
            constraint = (
                getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
                if isinstance(exc, IntegrityError)
                else "case version"
            )
            log.error("intake: conflicting submission not resolved (%s)", constraint or "unknown")
            raise IntakeUnavailable("conflicting submission could not be resolved") from None
        except OperationalError as exc:
            db.session.rollback()
            log.error("intake: database unavailable (%s)", type(exc).__name__)
            raise IntakeUnavailable("database unavailable") from exc
    log.info("case %s received channel=%s queue=%s", case.reference, case.channel, case.queue)
    if _queued(request):
        _classify(case)
    return IntakeResult(case, acknowledgement(case), created=True)


def _existing(request: IntakeRequest) -> Case | None:
    """The case already stored for this (channel, provider id), if any."""
    if not request.provider_id:
        return None
    query = select(Message.case_id).where(
        Message.channel == request.channel, Message.provider_id == request.provider_id
    )
    case_id = db.session.scalars(query).first()
    return db.session.get(Case, case_id) if case_id is not None else None


def resolve_programme(request: IntakeRequest) -> Programme:
    """The programme by slug, by the number written to, or the default one."""
    if request.programme:
        programme = db.session.scalars(select(Programme).where(Programme.slug == request.programme)).first()
    elif request.to_number:
        programme = programme_for_number(request.to_number.removeprefix("whatsapp:").strip())
    else:
        programme = default_programme()
    if programme is None:
        raise ChannelError("unknown_programme", "No programme receives this submission.")
    return programme


def programme_for_number(number: str) -> Programme | None:
    """The programme a number belongs to, looked up once per request (the webhook checked the signature with it)."""
    cache: dict[str, Programme | None] | None = (
        g.setdefault("cfm_programme_for_number", {}) if has_request_context() else None
    )
    if cache is not None and number in cache:
        return cache[number]
    programme = db.session.scalars(select(Programme).join(PhoneNumber).where(PhoneNumber.number == number)).first()
    if cache is not None:
        cache[number] = programme
    return programme


def default_programme() -> Programme | None:
    """The programme marked default, or the only one."""
    marked = db.session.scalars(select(Programme).where(Programme.is_default.is_(True))).first()
    if marked is not None:
        return marked
    programmes = db.session.scalars(select(Programme).limit(2)).all()
    return programmes[0] if len(programmes) == 1 else None


def _store(request: IntakeRequest, programme: Programme) -> Case:
    """Persist the submission and COMMIT, once: nothing is acknowledged before this, nothing acknowledged is lost after.

    Inline (no REDIS_URL) the case is classified and routed before that one commit (issue 9: one fsync per
    submission, not three); a classifier that fails, or no model, routes it to manual triage (fail closed), and the
    case is stored all the same. With REDIS_URL it is committed pending, sealed and out of the general queue, and a
    job classifies it. A voicemail without its transcription goes to manual triage at once.
    """
    received_at = request.received_at or utcnow()
    queued = _queued(request)
    untranscribed = bool(request.extra.get("transcription_missing"))
    prediction, attempts = None, 0
    if not untranscribed and not queued:
        prediction, attempts = classification.predict(request.text)
    language = request.language_hint or _language(request.text, prediction)
    hit = scan(request.text)
    flagged = request.category_hint == routing.SERIOUS_HINT
    reporter = _reporter(request, language)
    for attempt in range(_REFERENCE_ATTEMPTS):
        case = Case(
            reference=new_reference(),
            programme=programme,
            reporter=reporter,
            channel=request.channel,
            received_at=received_at,
            language=language,
            category_hint=request.category_hint,
            queue=QUEUE_RESTRICTED if hit or flagged else QUEUE_PENDING,
            priority="urgent" if hit and hit.category in routing.URGENT_CATEGORIES else "high" if hit else "normal",
            safety_net_category=hit.category if hit else None,
            restricted_reasons=(["safety_net"] if hit else []) + (["reporter_flagged"] if flagged else []) or None,
            due_at=routing.due_at(programme, received_at, restricted=True, category=hit.category if hit else None),
            extra=request.extra or None,
        )
        # Sealed until routed to the general queue (fail closed).
        case.store_text(request.text, sealed=True)
        message = Message(
            case=case,
            direction="inbound",
            channel=request.channel,
            provider_id=request.provider_id,
            media_count=conversations.media_count(request),
        )
        message.store_text(request.text, sealed=True)
        if not queued:
            classification.route_new(case, prediction, attempts)
        db.session.add_all([case, message])
        try:
            _commit_keeping_loaded()
            return case
        except IntegrityError:
            db.session.rollback()
            if _existing(request) is not None or attempt == _REFERENCE_ATTEMPTS - 1:
                raise
            reporter = _reporter(request, language)  # the rollback discarded it; a reference collided
    raise AssertionError("unreachable")


def _reporter(request: IntakeRequest, language: str | None) -> Reporter | None:
    """A reporter row when the person left contact details; None keeps the submission anonymous."""
    if request.contact.is_empty():
        return None
    phone = request.contact.phone
    return Reporter(
        name=request.contact.name,
        phone=phone,
        email=request.contact.email,
        phone_hash=get_crypto().lookup_hash(phone) if phone else None,
        consent_to_contact=request.consent_to_contact,
        preferred_language=language,
    )


def _language(text: str, prediction: Prediction | None = None) -> str | None:
    """Language id, None when unknown; the classifier's when it identified one (the same detect() on the same text).

    Issue 9: Model.predict() runs classifier.language.detect() on the text it classifies; running it again here
    cost every inline submission a second identification. "unknown" from the model is not reused: the model skips
    detection for texts without letters, so intake asks detect() itself then, as it always did.
    """
    known = getattr(prediction, "language", None) if prediction is not None else None
    if isinstance(known, str) and known and known != UNKNOWN:
        return known
    code = detect(text)
    return None if code == UNKNOWN else code


def _commit_keeping_loaded() -> None:
    """Commit, expiring everything but the rows this commit inserted (issue 9: nothing to read back after it).

    The new case, its message and reporter hold exactly what was written (the flush fetched the generated keys and
    the Python-side defaults), so the acknowledgement and the channel's answer read them from memory: no SELECT,
    and on PostgreSQL no second connection checkout (pre-ping) and rollback, after the commit. Everything the
    session had loaded before is expired as a plain commit does, so later reads still see other processes' changes.
    """
    session = db.session()
    inserted = set(session.new)
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        db.session.commit()
    finally:
        session.expire_on_commit = previous
    for instance in list(session.identity_map.values()):
        if instance not in inserted:
            session.expire(instance)


def _queued(request: IntakeRequest) -> bool:
    """True when a job classifies the case after the commit (REDIS_URL set, as cfm.jobs.enqueue decides)."""
    return bool(current_app.config.get("REDIS_URL")) and not request.extra.get("transcription_missing")


def _classify(case: Case) -> None:
    """Classify in a job (inline again when Redis is down); a failure here leaves the case stored and fails closed."""
    try:
        jobs.enqueue(jobs.classify_case, case.id, retries=current_app.config["CLASSIFY_RETRIES"])
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("case %s: classification could not run; it stays out of the general queue", case.reference)
    db.session.refresh(case)
