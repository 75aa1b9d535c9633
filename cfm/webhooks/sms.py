"""POST /sms/twilio (SMS and WhatsApp in: TwiML acknowledgement, STATUS, STOP/START) and POST /sms/twilio/status."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from flask import abort
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, gettext
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from cfm.extensions import db
from cfm.i18n import isolate_plain, locale_for_language
from cfm.models import Case, Message, Programme
from cfm.services import outbound
from cfm.services.crypto import get_crypto
from cfm.services.intake import IntakeUnavailable, submit
from cfm.services.reference import normalise_reference
from cfm.webhooks import bp, channel_error, programme_by_number, twiml, verified
from channels.base import ChannelError, IntakeRequest
from channels.sms import Keyword, parse_keyword, parse_status_callback, parse_twilio, twiml_reply

log = logging.getLogger(__name__)


def _inbound_programme(form: Mapping[str, str]) -> Programme | None:
    """The programme of the number the person wrote to."""
    return programme_by_number(form, "To")


@bp.post("/sms/twilio")
def sms_inbound() -> ResponseReturnValue:
    """Twilio's messaging webhook: feedback gets the acknowledgement; STATUS, STOP and START are answered."""
    form, programme = verified(_inbound_programme)
    try:
        message = parse_twilio(form)
    except ChannelError as exc:
        return channel_error(exc)
    keyword = None if message.extra.get("media") else parse_keyword(message.text)
    try:
        if keyword is not None:
            return twiml(twiml_reply(_keyword_reply(keyword, message, programme)))
        if message.to_number:
            # Kept on the case so that replies leave from the number the person wrote to.
            message = dataclasses.replace(message, extra={**message.extra, "to_number": message.to_number})
        result = submit(message)
    except ChannelError as exc:
        return channel_error(exc)
    except (IntakeUnavailable, SQLAlchemyError) as exc:
        db.session.rollback()
        # No acknowledgement: a 5xx makes Twilio report (and, with retries configured, resend) the message.
        log.error("sms: intake unavailable (%s)", type(exc).__name__)
        abort(503)
    log.info("case %s: sms answered created=%s threaded=%s", result.case.reference, result.created, result.threaded)
    return twiml(twiml_reply(result.acknowledgement))


def _keyword_reply(keyword: Keyword, message: IntakeRequest, programme: Programme | None) -> str | None:
    """The answer to a command: the plain-words status, or nothing after STOP / START (Twilio answers those)."""
    if keyword.kind in ("opt_out", "opt_in"):
        phone = message.contact.phone
        if phone:
            changed = outbound.set_opt_out(get_crypto().lookup_hash(phone), keyword.kind == "opt_out")
            log.info("sms: %s recorded for %s reporter(s)", keyword.kind, changed)
        return None
    return status_reply(keyword, programme)


def status_reply(keyword: Keyword, programme: Programme | None) -> str:
    """The status of the case in plain words, in the keyword's language, else the case's, else the programme's."""
    from cfm.public.texts import STAGES
    from cfm.services.status import lookup

    reference = normalise_reference(keyword.reference) if keyword.reference else None
    case_language = db.session.scalar(select(Case.language).where(Case.reference == reference)) if reference else None
    locale = (
        locale_for_language(keyword.language)
        or locale_for_language(case_language)
        or locale_for_language(programme.default_language if programme else None)
        or "en"
    )
    with force_locale(locale):
        if keyword.reference is None:
            return gettext("To check your case, send STATUS and your reference code.")
        found = lookup(keyword.reference)
        if found is None:
            return gettext(
                "We could not find the reference %(reference)s. Please check the code and try again.",
                reference=isolate_plain(keyword.reference, locale),
            )
        return gettext(
            "Your case %(reference)s: %(stage)s",
            # Left-to-right marks keep the code in order inside a right-to-left message (issue 7).
            reference=isolate_plain(found.reference, locale),
            stage=str(STAGES.get(found.stage, STAGES["in_progress"])),
        )


def _status_programme(form: Mapping[str, str]) -> Programme | None:
    """The programme of the message the callback is about, else of our number (From on outbound messages)."""
    sid = str(form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if sid:
        case = db.session.scalars(
            select(Case).join(Message, Message.case_id == Case.id).where(Message.provider_id == sid)
        ).first()
        if case is not None:
            return case.programme
    return programme_by_number(form, "From", "To")


@bp.post("/sms/twilio/status")
def sms_status() -> ResponseReturnValue:
    """Twilio's delivery status callback for an outbound reply."""
    form, _programme = verified(_status_programme)
    try:
        update = parse_status_callback(form)
    except ChannelError as exc:
        return channel_error(exc)
    try:
        outbound.record_status(update.message_sid, update.status, update.error_code)
    except SQLAlchemyError:
        db.session.rollback()
        log.error("sms status: database unavailable")
        abort(503)
    return "", 204
