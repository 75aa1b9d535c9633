"""Machine-to-machine routes for Twilio (messaging, delivery status, voice): CSRF-exempt, every one signature-checked.

The signature is checked with twilio's RequestValidator against the URL Twilio called: PUBLIC_BASE_URL + path
when the app sits behind a proxy, else the request URL; with the auth token of the programme the number belongs
to, else TWILIO_AUTH_TOKEN. A missing or wrong signature gets 403 and nothing is read further or stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, abort, current_app, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from cfm.extensions import csrf, db
from cfm.models import Programme
from cfm.services.intake import programme_for_number
from channels.base import ChannelError
from channels.sms import WHATSAPP_PREFIX, validate_signature

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)
# Twilio cannot send a CSRF token; the signature is what authenticates these requests.
csrf.exempt(bp)

ProgrammeFinder = Callable[[Mapping[str, str]], Programme | None]


def signed_url() -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL + path (+ query) behind a proxy, else the request URL."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return request.url
    query = request.query_string.decode("latin-1")
    return str(base).rstrip("/") + request.path + (f"?{query}" if query else "")


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute URL for TwiML (action, callbacks), on PUBLIC_BASE_URL when it is set."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return url_for(endpoint, _external=True, **values)
    path = url_for(endpoint, **values).removeprefix(request.script_root)
    return str(base).rstrip("/") + path


def programme_by_number(form: Mapping[str, str], *fields: str) -> Programme | None:
    """The programme owning the first of these fields' numbers (whatsapp: prefix ignored), or None."""
    for field in fields:
        value = str(form.get(field) or "").strip()
        number = value[len(WHATSAPP_PREFIX) :] if value.lower().startswith(WHATSAPP_PREFIX) else value
        if not number:
            continue
        programme = programme_for_number(number)  # submit() finds it again without a query
        if programme is not None:
            return programme
    return None


def verified(find_programme: ProgrammeFinder) -> tuple[Mapping[str, str], Programme | None]:
    """The form and its programme once the Twilio signature holds; 413 / 403 / 503 otherwise (nothing stored)."""
    form = request.form  # a body above MAX_CONTENT_LENGTH stops here with 413
    try:
        programme = find_programme(form)
    except SQLAlchemyError:
        db.session.rollback()
        log.error("webhook %s: database unavailable", request.path)
        abort(503)
    token: str | None
    account_sid: str | None
    if programme is not None and programme.twilio_auth_token:
        token, account_sid = programme.twilio_auth_token, programme.twilio_account_sid
    else:
        token = current_app.config.get("TWILIO_AUTH_TOKEN")
        account_sid = current_app.config.get("TWILIO_ACCOUNT_SID")
    valid = validate_signature(
        signed_url(),
        form,
        request.headers.get("X-Twilio-Signature"),
        str(token or ""),
        signature_settings=request.headers.get("X-Twilio-Webhooks-Signature-Settings"),
    )
    if not valid:
        log.warning("webhook %s: missing or invalid Twilio signature", request.path)
        abort(403)
    sent_for = str(form.get("AccountSid") or "").strip()
    if account_sid and sent_for and sent_for != account_sid:
        # Signed with a token we know but for another account: not ours to accept.
        log.warning("webhook %s: request for another Twilio account", request.path)
        abort(403)
    return form, programme


def channel_error(error: ChannelError) -> tuple[dict[str, str | None], int]:
    """A clear 400 answer for input a channel refused (its message never quotes the text or the number)."""
    log.info("webhook %s: refused (%s)", request.path, error.code)
    return {"error": error.code, "message": error.message, "field": error.field}, 400


def twiml(document: str) -> Response:
    """A TwiML response."""
    return Response(document, mimetype="text/xml")


from cfm.webhooks import sms, voice  # noqa: E402,F401  (registers the routes on bp)
