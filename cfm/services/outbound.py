"""Outbound replies from officers: stored first, sent by SMS/WhatsApp from a job, retried, delivery tracked.

queue_reply() stores the message (sealed like its case) and enqueues send_reply(); the job sends it with the twilio
REST client (the programme's credentials, else the configured ones), retries with backoff when Twilio may take it
later, and never writes to a person who opted out or gave no consent. Delivery status callbacks update the message
(cfm.webhooks). Tests inject a capturing twilio HttpClient as app.extensions["twilio_http_client"].
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from flask import current_app
from sqlalchemy import exists, select, update

from cfm import jobs
from cfm.extensions import db
from cfm.models import Case, Message, Reporter, User
from cfm.models.case import QUEUE_GENERAL
from cfm.models.types import utcnow
from cfm.services import audit, dashboard
from channels.base import ChannelError, clean_text
from channels.sms import WHATSAPP_PREFIX, SendError, make_client, send_sms

log = logging.getLogger(__name__)

# Twilio refuses bodies above 1600 characters.
MAX_REPLY_LENGTH: Final = 1600
# Our own delivery states; the others are Twilio's (queued, sending, sent, delivered, read, undelivered, failed).
PENDING: Final = "pending"  # stored, waiting for the job
RETRYING: Final = "retrying"  # Twilio could not take it yet; the job will try again
NOT_SENT: Final = "not_sent"  # refused before sending: opted out, no consent, no number
FAILED: Final = "failed"
# Later states never go back to earlier ones (Twilio's callbacks can arrive out of order, and are retried).
# Twilio's order: accepted/scheduled/queued -> sending -> sent -> delivered | undelivered | failed (-> read, WhatsApp).
# A late report never undoes a later one (`sent` after `delivered` is ignored). Among the final states, a delivery
# confirmation outranks a failure (issue 8): `failed` or `undelivered` after `delivered` is a stale or reordered
# callback (Twilio fails a message before it reaches the carrier, and a carrier receipt of delivery is positive
# evidence), while `delivered` after `undelivered` is a late receipt of a real delivery, and it wins.
_RANK: Final[dict[str, int]] = {
    PENDING: 0,
    RETRYING: 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    NOT_SENT: 4,
    "delivered": 5,
    "read": 6,
}


class OutboundRefused(ValueError):
    """A reply that cannot be sent; `code` is stable, the message is safe to show an officer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def queue_reply(case: Case, text: str, author: User | None) -> Message:
    """Store an outbound message on the case (sealed like it) and enqueue its sending; OutboundRefused if it can't."""
    try:
        body = clean_text(text)
    except ChannelError as exc:
        raise OutboundRefused(exc.code, exc.message) from None
    if len(body) > MAX_REPLY_LENGTH:
        raise OutboundRefused("text_too_long", f"A reply can have at most {MAX_REPLY_LENGTH} characters.")
    refusal = refusal_reason(case)
    if refusal is not None:
        raise OutboundRefused(*refusal)
    message = Message(
        case=case,
        direction="outbound",
        channel=reply_channel(case),
        author_id=author.id if author else None,
        delivery_status=PENDING,
    )
    message.store_text(body, sealed=case.queue != QUEUE_GENERAL)
    db.session.add(message)
    db.session.flush()
    dashboard.record_response(case, message.created_at)  # the case's first response, for the dashboard (issue 9)
    audit.record(
        "case.reply",
        actor=author,
        object_type="case",
        object_ref=case.reference,
        details={"message_id": message.id, "channel": message.channel},
    )
    db.session.commit()
    log.info("case %s: reply %s queued channel=%s", case.reference, message.id, message.channel)
    try:
        jobs.enqueue(send_reply, message.id, retries=int(current_app.config["OUTBOUND_RETRIES"]))
    except Exception:
        # The reply is stored; it stays "pending" and `cfm resend-replies` picks it up.
        db.session.rollback()
        log.exception("case %s: reply %s could not be handed to the job queue", case.reference, message.id)
    return message


def resend_pending(*, older_than_minutes: int = 15, limit: int = 500) -> int:
    """Enqueue replies left pending or retrying (a worker died, the queue was down); returns how many.

    Only replies older than the retry schedule, so that a reply RQ is still retrying is not sent twice.
    """
    cutoff = utcnow() - timedelta(minutes=older_than_minutes)
    ids = db.session.scalars(
        select(Message.id)
        .where(Message.direction == "outbound", Message.provider_id.is_(None), Message.created_at < cutoff)
        .where(Message.delivery_status.in_((PENDING, RETRYING)))
        .order_by(Message.id)
        .limit(limit)
    ).all()
    for message_id in ids:
        jobs.enqueue(send_reply, message_id, retries=int(current_app.config["OUTBOUND_RETRIES"]))
    return len(ids)


def refusal_reason(case: Case) -> tuple[str, str] | None:
    """Why no message may be sent to this case's reporter now, as (code, message); None when one may."""
    reporter = case.reporter
    if reporter is None or not reporter.phone:
        return "no_phone", "The person left no phone number."
    if not reporter.consent_to_contact:
        return "no_consent", "The person did not agree to be contacted."
    if is_opted_out(reporter):
        return "opted_out", "The person asked for no more messages (STOP)."
    return None


def is_opted_out(reporter: Reporter) -> bool:
    """True when this reporter, or anyone with the same phone, sent STOP and not START since."""
    if reporter.opted_out:
        return True
    if not reporter.phone_hash:
        return False
    query = select(Reporter.id).where(Reporter.phone_hash == reporter.phone_hash, Reporter.opted_out.is_(True))
    return bool(db.session.scalar(select(exists(query))))


def set_opt_out(phone_hash: str, opted_out: bool) -> int:
    """Opt every reporter with this phone hash out (STOP) or back in (START); returns how many rows changed.

    A STOP from a number we hold no reporter for is kept as a reporter row with the hash only, so that the
    opt-out holds when that number later leaves contact details.
    """
    result = db.session.execute(update(Reporter).where(Reporter.phone_hash == phone_hash).values(opted_out=opted_out))
    changed = int(getattr(result, "rowcount", 0) or 0)
    if opted_out and changed == 0:
        db.session.add(Reporter(phone_hash=phone_hash, opted_out=True))
        changed = 1
    audit.record(
        "reporter.opt_out" if opted_out else "reporter.opt_in",
        object_type="reporter",
        details={"reporters": changed},
    )
    db.session.commit()
    return changed


def reply_channel(case: Case) -> str:
    """WhatsApp when the person last wrote by WhatsApp, otherwise SMS."""
    inbound = [m for m in case.messages if m.direction == "inbound" and m.channel in ("sms", "whatsapp")]
    return inbound[-1].channel if inbound else "sms"


def sender_number(case: Case) -> str | None:
    """The programme number the person wrote to, else the programme's first number."""
    written_to = (case.extra or {}).get("to_number")
    if isinstance(written_to, str) and written_to:
        return written_to
    numbers = case.programme.numbers
    return numbers[0].number if numbers else None


def send_reply(message_id: int) -> None:
    """Job: send one stored reply; under RQ a retryable failure raises so that RQ retries with backoff."""
    from rq import get_current_job

    with jobs.app_context():
        job = get_current_job()
        if job is not None:
            deliver(message_id, last_attempt=not job.retries_left)
            return
        # Inline (no Redis): try the configured number of times now, never raising into the officer's request.
        retries = int(current_app.config["OUTBOUND_RETRIES"])
        for attempt in range(retries + 1):
            try:
                deliver(message_id, last_attempt=attempt == retries)
                return
            except SendError:
                continue


def deliver(message_id: int, *, last_attempt: bool) -> None:
    """Send the message unless it was sent or refused already; raise SendError when a retry may succeed."""
    message = db.session.get(Message, message_id)
    if message is None or message.direction != "outbound" or message.provider_id:
        return
    if message.delivery_status not in (PENDING, RETRYING):
        return
    case = message.case
    refusal = refusal_reason(case)
    if refusal is not None:
        # The person may have sent STOP after the officer wrote: the message stays unsent.
        message.delivery_status = NOT_SENT
        db.session.commit()
        log.info("case %s: reply %s not sent (%s)", case.reference, message.id, refusal[0])
        return
    reporter = case.reporter
    assert reporter is not None and reporter.phone  # refusal_reason() checked both
    try:
        sid = _send(case, message, reporter.phone)
    except SendError as exc:
        if exc.opted_out and reporter.phone_hash:
            set_opt_out(reporter.phone_hash, True)
        if exc.retryable and not last_attempt:
            message.delivery_status = RETRYING
            db.session.commit()
            log.warning("case %s: reply %s will be retried (%s)", case.reference, message.id, exc)
            raise
        message.delivery_status = NOT_SENT if exc.opted_out else FAILED
        db.session.commit()
        log.error("case %s: reply %s failed (%s)", case.reference, message.id, exc)
        return
    message.provider_id = sid
    message.delivery_status = "queued"
    db.session.commit()
    log.info("case %s: reply %s handed to Twilio", case.reference, message.id)


def _send(case: Case, message: Message, phone: str) -> str:
    """One call to Twilio's Messages API with the programme's credentials (or the configured ones)."""
    config = current_app.config
    programme = case.programme
    account_sid: str | None
    auth_token: str | None
    if programme.twilio_account_sid and programme.twilio_auth_token:
        account_sid, auth_token = programme.twilio_account_sid, programme.twilio_auth_token
    else:
        account_sid, auth_token = config.get("TWILIO_ACCOUNT_SID"), config.get("TWILIO_AUTH_TOKEN")
    if not account_sid or not auth_token:
        raise SendError("Twilio credentials are not configured.", retryable=False)
    sender = sender_number(case)
    if not sender:
        raise SendError("The programme has no phone number to send from.", retryable=False)
    to = phone
    if message.channel == "whatsapp":
        to, sender = WHATSAPP_PREFIX + phone, WHATSAPP_PREFIX + sender.removeprefix(WHATSAPP_PREFIX)
    client = make_client(account_sid, auth_token, http_client=current_app.extensions.get("twilio_http_client"))
    base = config.get("PUBLIC_BASE_URL")
    callback = f"{str(base).rstrip('/')}/sms/twilio/status" if base else None
    return send_sms(client, to=to, from_=sender, body=message.text, status_callback=callback)


def record_status(message_sid: str, status: str, error_code: int | None) -> Message | None:
    """Apply a delivery status callback to our outbound message; later states never go back to earlier ones."""
    message = db.session.scalars(
        select(Message).where(Message.provider_id == message_sid, Message.direction == "outbound")
    ).first()
    if message is None:
        return None
    current = _RANK.get(message.delivery_status or "", 0)
    if _RANK.get(status, 1) >= current:
        message.delivery_status = status
    if error_code is not None and error_code == 21610:
        reporter = message.case.reporter
        if reporter is not None and reporter.phone_hash:
            set_opt_out(reporter.phone_hash, True)
    db.session.commit()
    log.info("case %s: reply %s status %s", message.case.reference, message.id, message.delivery_status)
    return message
