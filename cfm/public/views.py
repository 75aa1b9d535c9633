"""Public routes, each also under a language prefix (/ar/feedback...); thin: the work is in services."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Collection
from typing import Any

from babel import Locale
from flask import (
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import ServiceUnavailable
from wtforms import SelectChoice

from cfm.extensions import db, limiter
from cfm.i18n import locale_for_language, locale_info, select_locale
from cfm.models import Programme
from cfm.public import bp, texts
from cfm.public.forms import FeedbackForm, StatusForm, survey_form_class
from cfm.services import feedback as feedback_service
from cfm.services import status as status_service
from cfm.services import surveys as survey_service
from cfm.services.intake import IntakeUnavailable
from channels import web
from channels.base import MAX_TEXT_LENGTH, ChannelError

log = logging.getLogger(__name__)

# Rate limits: generous per address (a camp or a transit centre may share one address), tighter per
# browser session; both configurable. Counters live in Redis when REDIS_URL is set (cfm/__init__.py).
DEFAULT_LIMITS = {
    "PUBLIC_SUBMIT_LIMIT_PER_ADDRESS": "60 per hour",
    "PUBLIC_SUBMIT_LIMIT_PER_SESSION": "10 per 10 minutes;30 per day",
    "PUBLIC_STATUS_LIMIT_PER_ADDRESS": "60 per minute;600 per hour",
    "PUBLIC_STATUS_LIMIT_PER_SESSION": "10 per minute;60 per hour",
}
RETRY_AFTER_SECONDS = 120


def _limit(key: str) -> Any:
    """A rate-limit string read from the config at request time (tests and operators may change it)."""
    return lambda: str(current_app.config.get(key, DEFAULT_LIMITS[key]))


def _session_key() -> str:
    """Rate-limit key of this browser session; a client without cookies is held by the per-address limit."""
    token = session.get("rl")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(12)
        session["rl"] = token
    return f"session:{token}"


def _submit_limits(view: Any) -> Any:
    """Per-address and per-session limits on submitting a form."""
    view = limiter.limit(_limit("PUBLIC_SUBMIT_LIMIT_PER_ADDRESS"), methods=["POST"])(view)
    return limiter.limit(_limit("PUBLIC_SUBMIT_LIMIT_PER_SESSION"), key_func=_session_key, methods=["POST"])(view)


# --- request set-up -------------------------------------------------------------------------------------


def canonical_locale(code: str) -> str | None:
    """The configured locale a URL prefix means: exact, any case, - or _, or its language (ar-SY -> ar)."""
    locales: list[str] = current_app.config["LOCALES"]
    wanted = code.replace("-", "_").lower()
    for locale in locales:
        if locale.lower() == wanted:
            return locale
    return locale_for_language(wanted)


@bp.url_value_preprocessor
def _prepare(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Before CSRF, rate limits and i18n run: locale, programme, and the raw body kept for the UTF-8 check."""
    values = values if values is not None else {}
    for name in ("csrf_failed", "programme", "programme_locale"):
        g.pop(name, None)  # an app context reused across requests (tests) must not carry them over
    g.localeinfo = locale_info(select_locale())
    code = values.get("lang_code")
    if code is not None and code not in current_app.config["LOCALES"]:
        known = canonical_locale(str(code))
        if known is None or endpoint is None:
            abort(404)
        target: dict[str, Any] = {**request.args.to_dict(), **values, "lang_code": known}
        abort(redirect(url_for(endpoint, **target)))
    slug = values.get("slug")
    if slug is not None:
        programme = feedback_service.programme_by_slug(str(slug))
        g.programme = programme
        if programme is not None:
            g.programme_locale = locale_for_language(programme.default_language)
            g.localeinfo = locale_info(select_locale())
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        # Keep the raw body (bounded by MAX_CONTENT_LENGTH: 413 here) to find values that are not UTF-8.
        request.get_data(cache=True)


@bp.url_defaults
def _keep_language(endpoint: str, values: dict[str, Any]) -> None:
    """Links between public pages stay in the language of the page."""
    if "lang_code" not in values and g.get("localeinfo") is not None:
        values["lang_code"] = g.localeinfo.code


@bp.after_request
def _headers(response: Response) -> Response:
    """No third party, no framing, no referrer; pages with codes or answers are never stored."""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # ASVS V8.2.1: the status page is never stored, even empty; answers (POST) never either.
    no_store = request.method == "POST" or request.endpoint == "public.status"
    response.headers["Cache-Control"] = "no-store" if no_store else "private, no-cache"
    response.vary.add("Cookie")
    return response


@bp.context_processor
def _layout() -> dict[str, Any]:
    """What public/layout.html needs: the language picker and the text-lookup helper for surveys."""
    current = g.localeinfo.code
    args = dict(request.view_args or {})
    endpoint = request.endpoint if request.endpoint and request.endpoint.startswith("public.") else "public.feedback"
    languages = []
    for code in current_app.config["LOCALES"]:
        url = url_for(endpoint, **{**args, "lang_code": code})
        languages.append({"code": code, "name": native_name(code), "tag": code.replace("_", "-"), "url": url})
    return {
        "languages": languages,
        "current_language": native_name(current),
        "localised": web.localised,
        "max_text_length": MAX_TEXT_LENGTH,
    }


@functools.cache
def native_name(code: str) -> str:
    """The language's name in itself, from Babel's locale data (fa_AF -> دری)."""
    locale = Locale.parse(code)
    name = locale.languages.get(code) or locale.get_display_name() or code
    return name[:1].upper() + name[1:]


# --- errors ---------------------------------------------------------------------------------------------


@bp.errorhandler(IntakeUnavailable)
@bp.errorhandler(SQLAlchemyError)
def _unavailable(error: Exception) -> ResponseReturnValue:
    """The database is gone: 503 (nothing was stored), try again later."""
    db.session.rollback()
    log.error("public %s: database unavailable (%s)", request.endpoint, type(error).__name__)
    response = make_response(current_app.handle_http_exception(ServiceUnavailable()))
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@bp.errorhandler(CSRFError)
def _csrf_failed(error: CSRFError) -> ResponseReturnValue:
    """An expired or forged form token: show the form again with what was typed, store nothing."""
    g.csrf_failed = True
    if request.endpoint not in current_app.view_functions:
        return current_app.handle_http_exception(error)
    view = current_app.view_functions[request.endpoint]
    result: ResponseReturnValue = current_app.ensure_sync(view)(**(request.view_args or {}))
    return result


# --- helpers --------------------------------------------------------------------------------------------


def _form_data(multiple: Collection[str] = ()) -> dict[str, web.FormValue]:
    """The submitted fields, with the raw bytes of any value that is not valid UTF-8 (the channel refuses it).

    A field sent several times gives its first value, except the `multiple` ones (checkbox groups): every value.
    """
    data: dict[str, web.FormValue] = {
        name: values if name in multiple else values[0] for name, values in request.form.lists()
    }
    if request.mimetype == "application/x-www-form-urlencoded":
        data.update(web.undecodable_fields(request.get_data(cache=True)))
    return data


def _show_errors(form: FlaskForm, errors: list[ChannelError]) -> None:
    """Put each message next to its field (form-level when the field is not on the form)."""
    for error in errors:
        message = texts.error_message(error)
        if error.field and error.field in form:
            form[error.field].errors = [message]
        else:
            form.form_errors.append(message)


def _csrf_check(form: FlaskForm) -> bool:
    """True when the CSRF check failed for this request; the form then says so."""
    if g.get("csrf_failed"):
        form.form_errors.append(str(texts.ERRORS["csrf"]))
        return True
    return False


def _submitted() -> bool:
    """A POST that passed the CSRF check."""
    return request.method == "POST" and not g.get("csrf_failed")


# --- feedback -------------------------------------------------------------------------------------------


@bp.get("/")
@bp.get("/<lang_code>/")
def home(lang_code: str | None = None) -> ResponseReturnValue:
    """The site's root: the feedback form."""
    return redirect(url_for("public.feedback"))


@bp.route("/feedback", methods=["GET", "POST"])
@bp.route("/<lang_code>/feedback", methods=["GET", "POST"])
@_submit_limits
def feedback(lang_code: str | None = None) -> ResponseReturnValue:
    """The feedback form of the default programme (or a choice of programmes when there is none)."""
    programme, choices = feedback_service.entry_programmes()
    if programme is None and not choices:
        abort(404)
    return _feedback_page(programme, choices)


@bp.route("/p/<slug>", methods=["GET", "POST"])
@bp.route("/<lang_code>/p/<slug>", methods=["GET", "POST"])
@_submit_limits
def programme(slug: str, lang_code: str | None = None) -> ResponseReturnValue:
    """A programme's own entry (the short URL on posters and QR codes): its form and its surveys."""
    found: Programme | None = g.get("programme")
    if found is None:
        abort(404)
    return _feedback_page(found, [])


def _feedback_page(programme: Programme | None, choices: list[Programme]) -> ResponseReturnValue:
    """Show the form; on POST validate and submit, then show the reference code."""
    form = FeedbackForm()
    form.programme.choices = [SelectChoice(p.slug, p.name) for p in choices]
    status = 200
    if _csrf_check(form):
        status = 400
    elif _submitted():
        try:
            outcome = feedback_service.submit_feedback(
                _form_data(), programme=programme, choices=choices, locale=g.localeinfo.code
            )
        except web.FormErrors as exc:
            _show_errors(form, exc.errors)
            status = 400
        except ChannelError as exc:
            _show_errors(form, [exc])
            status = 400
        else:
            shown = outcome.programme or programme
            return render_template("public/confirmation.html", reference=outcome.reference, programme=shown)
    form.with_token()
    surveys = survey_service.published_surveys(programme) if programme is not None else []
    action = (
        url_for("public.programme", slug=programme.slug)
        if request.endpoint == "public.programme" and programme is not None
        else url_for("public.feedback")
    )
    page = render_template(
        "public/feedback.html", form=form, programme=programme, choices=choices, surveys=surveys, action=action
    )
    return page, status


# --- surveys --------------------------------------------------------------------------------------------


@bp.route("/p/<slug>/survey/<survey_slug>", methods=["GET", "POST"])
@bp.route("/<lang_code>/p/<slug>/survey/<survey_slug>", methods=["GET", "POST"])
@_submit_limits
def survey(slug: str, survey_slug: str, lang_code: str | None = None) -> ResponseReturnValue:
    """One published survey of a programme."""
    programme: Programme | None = g.get("programme")
    found = survey_service.get_survey(programme, survey_slug) if programme is not None else None
    if programme is None or found is None:
        abort(404)
    definition = survey_service.definition_of(found)
    locale = g.localeinfo.code
    form = survey_form_class(definition, locale)()
    status = 200
    if _csrf_check(form):
        status = 400
    elif _submitted():
        try:
            outcome = survey_service.submit_survey(found, _form_data(definition.multiple_choice_fields), locale=locale)
        except web.FormErrors as exc:
            _show_errors(form, exc.errors)
            status = 400
        except ChannelError as exc:
            _show_errors(form, [exc])
            status = 400
        else:
            return render_template(
                "public/confirmation.html", reference=outcome.reference, programme=programme, survey=definition
            )
    form.with_token()
    return render_template("public/survey.html", form=form, programme=programme, definition=definition), status


# --- status ---------------------------------------------------------------------------------------------


@bp.route("/status", methods=["GET", "POST"])
@bp.route("/<lang_code>/status", methods=["GET", "POST"])
@limiter.limit(_limit("PUBLIC_STATUS_LIMIT_PER_ADDRESS"), methods=["POST"])
@limiter.limit(_limit("PUBLIC_STATUS_LIMIT_PER_SESSION"), key_func=_session_key, methods=["POST"])
def status(lang_code: str | None = None) -> ResponseReturnValue:
    """Look a reference code up: the status in plain words and staff replies, nothing else of the case."""
    form = StatusForm()
    result = None
    code = 200
    if _csrf_check(form):
        code = 400
    elif _submitted():
        value = _form_data().get("reference", "")
        result = status_service.lookup(value if isinstance(value, str) else "")
        if result is None:
            # One answer for a malformed code and for an unknown one (issue 4).
            form.reference.errors = [_("We found no message with this code. Please check the code and try again.")]
        else:
            form.reference.data = ""  # the form below the result is for another code
    stage = texts.STAGES[result.stage] if result is not None else None
    return render_template("public/status.html", form=form, result=result, stage=stage), code
