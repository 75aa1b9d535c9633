"""POST /api/v1/feedback, GET /api/v1/cases/<reference>, GET /api/v1/openapi.json."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from flask import abort, current_app, jsonify, make_response, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from cfm.api import bp
from cfm.api.openapi import document
from cfm.api.payloads import KINDS, detect, parse_json, parse_kobo, parse_rapidpro
from cfm.api.tokens import authenticate, hash_token
from cfm.extensions import db, limiter
from cfm.models import ApiToken, Case
from cfm.services.intake import IntakeUnavailable, submit
from cfm.services.reference import normalise_reference
from cfm.services.status import lookup
from channels.base import ChannelError, IntakeRequest

log = logging.getLogger(__name__)


def _presented_token() -> str | None:
    """The token from `Authorization: Bearer <token>` (or `Token <token>`), or the password of Basic auth."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token"):
        return value.strip() or None
    if scheme.lower() == "basic":
        # KoboToolbox's REST Services offer Basic auth: the token is the password, the user name is ignored.
        auth = request.authorization
        return auth.password if auth is not None and auth.password else None
    return None


def _rate_key() -> str:
    """Rate limits count per token (its hash), or per address when none was given."""
    token = _presented_token()
    return "token:" + hash_token(token)[:16] if token else "addr:" + (request.remote_addr or "unknown")


def _rate_limit() -> str:
    """The configured per-token limit."""
    return str(current_app.config["API_RATE_LIMIT"])


def _error(status: int, code: str, message: str, field: str | None = None) -> NoReturn:
    """Stop with a JSON error body."""
    response = make_response(jsonify(error=code, message=message, field=field), status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="cfm"'
    if status == 503:
        response.headers["Retry-After"] = "30"
    abort(response)


def _token() -> ApiToken:
    """The caller's active token, or 401."""
    try:
        token = authenticate(_presented_token())
    except SQLAlchemyError:
        db.session.rollback()
        log.error("api: database unavailable")
        _error(503, "unavailable", "The service is unavailable. Please retry later.")
    if token is None:
        _error(401, "unauthorized", "A valid API token is required (Authorization: Bearer <token>).")
    return token


def _body() -> dict[str, Any]:
    """The JSON object sent, or 415 / 400."""
    if not request.is_json:
        _error(415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json).")
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    if body is None:
        _error(400, "invalid_json", "The body is not valid JSON.")
    if not isinstance(body, dict):
        _error(400, "invalid_json", "The body must be a JSON object.")
    return body


@bp.post("/feedback")
@limiter.limit(_rate_limit, key_func=_rate_key)
def feedback() -> ResponseReturnValue:
    """One piece of feedback from a partner system: plain JSON, a Kobo submission or a RapidPro webhook."""
    token = _token()
    body = _body()
    kind = request.args["format"] if "format" in request.args else detect(body)
    if kind not in KINDS:
        _error(400, "invalid_format", f"The format must be one of {', '.join(KINDS)}.", "format")
    programme = token.programme
    namespace = str(programme.id)
    ignored: list[str] = []
    try:
        intake_request: IntakeRequest
        if kind == "kobo":
            field_map = {**current_app.config["API_KOBO_FIELDS"], **(token.field_map or {})}
            intake_request, ignored = parse_kobo(body, field_map, programme=programme.slug, namespace=namespace)
        elif kind == "rapidpro":
            intake_request = parse_rapidpro(
                body,
                text_results=current_app.config["API_RAPIDPRO_TEXT_RESULTS"],
                consent_results=current_app.config["API_RAPIDPRO_CONSENT_RESULTS"],
                programme=programme.slug,
                namespace=namespace,
            )
        else:
            intake_request = parse_json(body, programme=programme.slug, namespace=namespace)
        result = submit(intake_request)
    except ChannelError as exc:
        log.info("api: token %s refused a %s payload (%s)", token.id, kind, exc.code)
        _error(422, exc.code, exc.message, exc.field)
    except (IntakeUnavailable, SQLAlchemyError):
        db.session.rollback()
        log.error("api: intake unavailable")
        _error(503, "unavailable", "The feedback could not be stored. Please retry later; nothing was lost.")
    log.info("case %s: api %s token=%s created=%s", result.case.reference, kind, token.id, result.created)
    payload = {
        "reference": result.case.reference,
        "created": result.created,
        "format": kind,
        "language": result.case.language,
        "acknowledgement": result.acknowledgement,
        "ignored_fields": ignored,
    }
    return jsonify(payload), 201 if result.created else 200


@bp.get("/cases/<reference>")
@limiter.limit(_rate_limit, key_func=_rate_key)
def case_status(reference: str) -> ResponseReturnValue:
    """The stage of a case of the token's programme (status only: no text, no category, no queue)."""
    token = _token()
    canonical = normalise_reference(reference)
    try:
        programme_id = (
            db.session.scalar(select(Case.programme_id).where(Case.reference == canonical)) if canonical else None
        )
        mine = canonical is not None and programme_id is not None and programme_id == token.programme_id
        status = lookup(canonical) if mine and canonical is not None else None
    except SQLAlchemyError:
        db.session.rollback()
        _error(503, "unavailable", "The service is unavailable. Please retry later.")
    if status is None:
        # Unknown, malformed and another programme's reference all answer the same.
        _error(404, "not_found", "No case with this reference.", "reference")
    return jsonify(reference=status.reference, stage=status.stage)


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of this API."""
    return jsonify(document())
