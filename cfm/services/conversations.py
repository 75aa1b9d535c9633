"""Conversations: a follow-up SMS/WhatsApp joins the person's open case; a late transcription completes a voicemail.

A second message from the same phone (found by its keyed hash) within CONVERSATION_WINDOW_HOURS of the last
message of that person's latest messaging case, while that case is open, is added to the case's thread instead
of opening a new case - unless the new text would be routed restricted (safety net or classifier), which always
opens a new restricted case (issue 5). Called from cfm.services.intake.submit(), so idempotency on the
provider's message id and the "store before anything else" rule hold for follow-ups as well.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from cfm import jobs
from cfm.extensions import db
from cfm.models import Case, Message, Programme, Reporter
from cfm.models.case import QUEUE_GENERAL, QUEUE_PENDING, QUEUE_RESTRICTED
from cfm.models.types import utcnow
from cfm.services import routing
from cfm.services.classification import get_model
from cfm.services.crypto import get_crypto
from channels.base import IntakeRequest
from classifier.language import detect
from classifier.safety_net import scan

log = logging.getLogger(__name__)

MESSAGING_CHANNELS = ("sms", "whatsapp")


def follow_up(request: IntakeRequest, programme: Programme) -> Case | None:
    """Add the message to the person's open thread and return that case (committed); None opens a new case.

    May raise IntegrityError (the same provider message stored concurrently): submit() answers with that case.
    """
    case = open_thread(request, programme)
    if case is None:
        return None
    if would_be_restricted(request.text):
        # A restricted follow-up never lands in a thread that officers read; it opens its own restricted case.
        log.info("case %s: follow-up routed to a new restricted case", case.reference)
        return None
    message = Message(
        case=case,
        direction="inbound",
        channel=request.channel,
        provider_id=request.provider_id,
        media_count=media_count(request),
    )
    message.store_text(request.text, sealed=case.queue != QUEUE_GENERAL)
    media = request.extra.get("media")
    if media:
        # Media stay references on the case (never fetched); each names the message it came with.
        extra = dict(case.extra or {})
        extra["media"] = [*extra.get("media", []), *({**item, "message": request.provider_id} for item in media)]
        extra["media_count"] = len(extra["media"])
        case.extra = extra
    case.updated_at = utcnow()
    db.session.add(message)
    db.session.commit()
    log.info("case %s: follow-up message added channel=%s", case.reference, request.channel)
    return case


def open_thread(request: IntakeRequest, programme: Programme) -> Case | None:
    """The person's latest messaging case in this programme when it is open and its last message is recent."""
    hours = int(current_app.config.get("CONVERSATION_WINDOW_HOURS") or 0)
    phone = request.contact.phone
    if hours <= 0 or request.channel not in MESSAGING_CHANNELS or not phone:
        return None
    phone_hash = get_crypto().lookup_hash(phone)
    # Led by the person's own rows (ix_reporter_phone_hash, then ix_case_reporter_id): a few rows however large the
    # case table. The programme is picked here, not in SQL: with it in the WHERE clause, SQLite (no statistics)
    # scanned every case of the programme instead, on each message (issue 9).
    people = select(Reporter.id).where(Reporter.phone_hash == phone_hash)
    theirs = db.session.execute(
        select(Case.id, Case.programme_id)
        .where(Case.reporter_id.in_(people), Case.channel.in_(MESSAGING_CHANNELS))
        .order_by(Case.received_at.desc(), Case.id.desc())
    ).all()
    case_id = next((row.id for row in theirs if row.programme_id == programme.id), None)
    latest = db.session.get(Case, case_id) if case_id is not None else None
    if latest is None or latest.status == "closed":
        return None
    last = db.session.scalar(select(func.max(Message.created_at)).where(Message.case_id == latest.id))
    last = max(last, latest.received_at) if last is not None else latest.received_at
    now = request.received_at or utcnow()
    if now - last > timedelta(hours=hours):
        return None
    return latest


def would_be_restricted(text: str) -> bool:
    """True when the safety net flags the text or the classifier would route it restricted; True when unsure."""
    if scan(text) is not None:
        return True
    try:
        model = get_model()
        if model is None:
            return True  # no model: we cannot tell, so never add to a thread officers read (fail closed)
        return bool(model.predict_one(text).restricted)
    except Exception:
        log.exception("follow-up could not be classified; it opens a new case")
        return True


def media_count(request: IntakeRequest) -> int:
    """The number of media items the channel noted on the request."""
    value: Any = request.extra.get("media_count") or 0
    return int(value) if isinstance(value, int) else 0


# ---------------------------------------------------------------------------------------------------------------
# Voicemail (IVR): the recording callback and the transcription callback name the same case (RecordingSid).


def complete_voicemail(case: Case, request: IntakeRequest) -> bool:
    """Replace a voicemail's placeholder by its late transcription, then safety-net and classify it again.

    True when the case changed. Retries of the callback, and a transcription that failed, change nothing.
    """
    extra = dict(case.extra or {})
    if case.channel != "ivr" or not extra.get("transcription_missing"):
        return False
    if request.extra.get("transcription_missing"):
        return False
    hit = scan(request.text)
    extra.update({key: value for key, value in request.extra.items() if key != "transcription_missing"})
    extra["transcription_missing"] = False
    case.extra = extra
    # The placeholder's language said nothing about the caller's.
    case.language = request.language_hint or _language(request.text) or case.language
    if hit is not None:
        case.safety_net_category = hit.category
        case.priority = "urgent" if hit.category in routing.URGENT_CATEGORIES else "high"
        case.restricted_reasons = sorted(set(case.restricted_reasons or []) | {"safety_net"})
    if case.category_source == "officer":
        # An officer already categorised the voicemail (having listened to it): keep that, unless the safety net
        # now flags the text.
        if hit is not None:
            case.queue = QUEUE_RESTRICTED
        reclassify = False
    else:
        # Sealed and out of the general queue until classified again (fail closed).
        case.queue = QUEUE_RESTRICTED if hit is not None else QUEUE_PENDING
        case.restricted_reasons = ["safety_net"] if hit is not None else None
        case.classification_status = "pending"
        case.classification_attempts = 0
        reclassify = True
    sealed = case.queue != QUEUE_GENERAL
    case.store_text(request.text, sealed=sealed)
    for message in case.messages:
        if message.direction == "inbound" and message.provider_id == request.provider_id:
            message.store_text(request.text, sealed=sealed)
    db.session.commit()
    log.info("case %s: voicemail transcription received", case.reference)
    if reclassify:
        try:
            jobs.enqueue(jobs.classify_case, case.id, retries=current_app.config["CLASSIFY_RETRIES"])
        except Exception:
            db.session.rollback()
            log.exception("case %s: classification could not run; it stays out of the general queue", case.reference)
        db.session.refresh(case)
    return True


def _language(text: str) -> str | None:
    """Language id, None when unknown."""
    code = detect(text)
    return None if code == "unknown" else code
