"""Hotline pages of the console (issue 5): a call transcript typed by the operator, and a transcript file upload.

Who may use them (segregation of duties, shared/DESIGN.md):
- /console/hotline/new: whoever takes calls, i.e. officers, supervisors and focal points (an admin only with one
  of those roles; never a report viewer), for their own programmes.
- /console/hotline/import: supervisors, focal points and admins (a batch of calls is a supervised job, and the
  report shows no case text, so an admin running it sees nothing of the content), for their own programmes.
Anyone else gets the console's 404. Both pages reach cases only through channels/hotline.py and
cfm.services.intake.submit() (the upload through cfm.services.imports, the same parser as `cfm import-transcripts`).

Both views check the CSRF token themselves, through the form, instead of in CSRFProtect's before-request hook: the
sign-in guard runs first, a long transcript typed before the token expired comes back with the error instead of
being lost on a bare 400 page, and an upload above MAX_CONTENT_LENGTH is answered on the page (the hook would
read the body first and fail with a bare 413).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Iterable
from typing import Any, cast

from babel import Locale
from flask import abort, current_app, g, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString, format_decimal, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from cfm.console import bp
from cfm.console.hotline_forms import CallForm, ImportForm
from cfm.extensions import csrf, db
from cfm.i18n import LANGUAGE_TO_LOCALE, locale_info, native_name
from cfm.models import Case, Programme, User
from cfm.models.case import QUEUE_GENERAL, QUEUE_RESTRICTED
from cfm.services.access import get_visible_case, visible_cases
from cfm.services.acknowledgement import acknowledgement_locale
from cfm.services.imports import ImportReport, RowResult, import_transcripts
from cfm.services.intake import IntakeResult, IntakeUnavailable, default_programme, submit
from channels import hotline as hotline_channel
from channels.base import MAX_TEXT_LENGTH, ChannelError
from channels.web import FormErrors
from classifier.categories import LANGUAGES

CALL_ROLES = ("officer", "supervisor", "focal_point")
IMPORT_ROLES = ("supervisor", "focal_point", "admin")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# Prefix of the idempotency token stored as the message's provider id (import rows use their transcript_id).
CALL_ID_PREFIX = "console-"

# Field errors of the call form, by ChannelError code (channels/hotline.py call_request).
CALL_ERRORS: dict[str, LazyString] = {
    "empty_text": _l("Write what the caller says."),
    "text_too_long": _l("This is too long: at most %(max)s characters."),
    "invalid_characters": _l("This contains characters that cannot be stored. Remove them."),
    "invalid_encoding": _l("This could not be read as text. Type it again."),
    "invalid_text": _l("This could not be read as text. Type it again."),
    "invalid_field": _l("This contains characters that cannot be stored. Remove them."),
    "field_too_long": _l("This is too long."),
    "choice_required": _l("Choose the programme."),
    "invalid_choice": _l("Choose one of your programmes."),
    "invalid_language": _l("Choose one of the languages."),
    "invalid_phone": _l("This is not an international number: + and the country code, for example %(example)s."),
    "phone_required": _l("Consent needs a number to call back on."),
    "consent_required": _l("The name and number are kept only with the caller's consent: tick it, or clear them."),
    "unknown_programme": _l("Choose one of your programmes."),
}
CSRF_EXPIRED = _l("This form had expired. Check what you typed and send it again.")
UNAVAILABLE = _l("The database is not answering; nothing was stored. Try again in a moment.")

# What the import page says for a refused file or row, by ChannelError / RowResult code (channels/hotline.py,
# cfm/services/imports.py); an unknown code falls back to the service's own (English) reason.
IMPORT_ERRORS: dict[str, LazyString] = {
    "invalid_encoding": _l(
        'The file is not UTF-8 (Latin-1 or Windows-1252?). Save it as "CSV UTF-8" and upload it again.'
    ),
    "missing_column": _l("The required column %(field)s is missing."),
    "duplicate_column": _l("The column %(field)s appears more than once."),
    "empty_file": _l("The file is empty."),
    "invalid_header": _l("The header row is not valid CSV."),
    "invalid_json": _l("This is not valid JSON."),
    "unsupported_format": _l("The file must be CSV or JSON lines."),
    "file_too_large": _l("The file is too large."),
    "invalid_file": _l("The file could not be read."),
    "unknown_programme": _l("Not one of the programmes."),
    "programme_not_allowed": _l("Not one of your programmes."),
    "missing_value": _l("The %(field)s is empty."),
    "invalid_field": _l("The %(field)s is not valid text."),
    "field_too_long": _l("The %(field)s is too long."),
    "empty_text": _l("The text is empty."),
    "invalid_text": _l("The text is not valid text."),
    "invalid_characters": _l("The text contains a NUL character."),
    "text_too_long": _l("The text is longer than %(max)s characters."),
    "invalid_phone": _l("The caller_phone is not an international number (+ and country code)."),
    "invalid_date": _l("The received_at is not an ISO 8601 date-time in the past (for example 2024-05-01T14:30:00)."),
    "invalid_language": _l("The language is not a language code such as ar or fa."),
    "invalid_consent": _l("The consent must be yes or no."),
    "not_an_object": _l("This line is not a JSON object."),
    "extra_fields": _l("The row has more fields than the header (a separator inside an unquoted text?)."),
    "unclosed_quote": _l("A quoted field starting on this row is never closed; the rows after it are lost."),
    "malformed_row": _l("The row is not valid CSV."),
    "unavailable": _l("The database was not answering; run the import again for this row."),
}
DUPLICATE_IN_FILE = _l("The same transcript_id appears on an earlier row.")
DUPLICATE_IMPORTED = _l("Already imported as %(reference)s.")
DUPLICATE_HIDDEN = _l("Already imported.")


def _user() -> User:
    """The signed-in user (the console guard guarantees one)."""
    return cast(User, current_user._get_current_object())


def _has_role(user: User, roles: Iterable[str]) -> bool:
    """True when the user holds one of the roles."""
    return bool(set(user.roles or []) & set(roles))


def can_take_calls(user: User | None) -> bool:
    """Officers, supervisors and focal points enter calls (admins and report viewers only with such a role too)."""
    return bool(user and user.active and _has_role(user, CALL_ROLES))


def can_import(user: User | None) -> bool:
    """Supervisors, focal points and admins upload transcript files."""
    return bool(user and user.active and _has_role(user, IMPORT_ROLES))


@bp.context_processor
def _hotline_nav() -> dict[str, Any]:
    """Whether the layout shows the hotline links to this user."""
    user = g.get("user")
    return {"hotline_call": can_take_calls(user), "hotline_import": can_import(user)}


def _programmes(user: User) -> list[Programme]:
    """The user's programmes by name (none on the account means all of them)."""
    if user.programmes:
        return sorted(user.programmes, key=lambda programme: programme.name.casefold())
    return list(db.session.scalars(select(Programme).order_by(Programme.name)))


def _preselected(programmes: list[Programme], wanted: str | None) -> Programme | None:
    """The programme asked for in the URL, else the user's only one, else the default one when it is theirs."""
    by_slug = {programme.slug: programme for programme in programmes}
    if wanted and wanted in by_slug:
        return by_slug[wanted]
    if len(programmes) == 1:
        return programmes[0]
    fallback = default_programme()
    return fallback if fallback is not None and fallback.slug in by_slug else None


def _language_code(language: str | None) -> str:
    """A programme's default language as one of the classifier's codes (fa_AF -> fa), or "" when it is none."""
    code = (language or "").replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else ""


def _language_choices() -> list[tuple[str, str]]:
    """Detect, then each language by its name in the console's language and in itself (Dari — دری)."""
    ui = Locale.parse(str(get_locale() or "en"))
    choices = [("", _("Detect from the text"))]
    for code in LANGUAGES:
        tag = LANGUAGE_TO_LOCALE.get(code, code)
        own = native_name(tag)
        name = ui.languages.get(tag) or ui.languages.get(code) or code
        name = name[:1].upper() + name[1:]
        choices.append((code, name if name == own else f"{name} — {own}"))
    return choices


def _call_form(programmes: list[Programme]) -> CallForm:
    """The call form with its choices; on GET with the defaults (programme, its language, a fresh token)."""
    form = CallForm()
    form.programme.choices = [("", _("Choose the programme"))] + [(p.slug, p.name) for p in programmes]
    form.language.choices = _language_choices()
    if not form.is_submitted():
        chosen = _preselected(programmes, request.args.get("programme"))
        form.programme.data = chosen.slug if chosen else ""
        form.language.data = _language_code(chosen.default_language) if chosen else ""
        form.submission.data = secrets.token_urlsafe(24)
    return form


def _show_call_errors(form: CallForm, errors: list[ChannelError]) -> None:
    """Each message next to its field (on the form when the field is not on it)."""
    variables = {"max": format_decimal(MAX_TEXT_LENGTH), "example": "+254 700 000 000"}
    for error in errors:
        template = CALL_ERRORS.get(error.code)
        message = str(template) % variables if template is not None else error.message
        if error.field and error.field in form:
            form[error.field].errors = [message]
        else:
            form.form_errors.append(message)


@bp.route("/hotline/new", methods=["GET", "POST"])
@csrf.exempt  # checked by form.validate() below, after the sign-in guard (see the module docstring)
def hotline_call() -> ResponseReturnValue:
    """Enter one call; on success the reference to read out, the acknowledgement, and the next call."""
    user = _user()
    if not can_take_calls(user):
        abort(404)
    programmes = _programmes(user)
    form = _call_form(programmes)
    status = 200
    if form.is_submitted():
        if not form.validate():  # the fields carry no validators of their own: this is the CSRF check
            form.form_errors.append(str(CSRF_EXPIRED))
            status = 400
        else:
            token = form.submission.data or ""
            try:
                intake = hotline_channel.call_request(
                    request.form.to_dict(),
                    programme_choices=[p.slug for p in programmes],
                    languages=LANGUAGES,
                    call_id=CALL_ID_PREFIX + token if _TOKEN.match(token) else None,
                    operator=str(user.id),
                )
                result = submit(intake)
            except FormErrors as exc:
                _show_call_errors(form, exc.errors)
                status = 400
            except ChannelError as exc:
                _show_call_errors(form, [exc])
                status = 400
            except (IntakeUnavailable, SQLAlchemyError):
                db.session.rollback()
                form.form_errors.append(str(UNAVAILABLE))
                status = 503
            else:
                return _call_done(user, result)
    return render_template("console/hotline_call.html", form=form), status


def _call_done(user: User, result: IntakeResult) -> ResponseReturnValue:
    """The confirmation: nothing of the case's content, only its reference, routing and the acknowledgement."""
    case = result.case
    ack_locale = locale_info(acknowledgement_locale(case))
    # get_visible_case() is the access rule: a restricted case gets a link only for those who may open it.
    visible = get_visible_case(user, case.reference) is not None
    return render_template(
        "console/hotline_done.html",
        reference=case.reference,
        restricted=case.queue == QUEUE_RESTRICTED,
        general=case.queue == QUEUE_GENERAL,
        visible=visible,
        created=result.created,
        acknowledgement=result.acknowledgement,
        ack_locale=ack_locale,
        next_url=url_for("console.hotline_call", programme=case.programme.slug),
    )


# --- transcript files ---------------------------------------------------------------------------------------------


def _max_upload() -> str:
    """The upload limit in MB, as the reader writes numbers."""
    limit = int(current_app.config.get("MAX_CONTENT_LENGTH") or 0)
    return format_decimal(round(limit / (1024 * 1024), 1))


def _import_form(programmes: list[Programme], *, formdata: bool = True, dry_run: bool = True) -> ImportForm:
    """The upload form with its programme choices (without formdata: a fresh one, dry run as asked)."""
    form = ImportForm() if formdata else ImportForm(formdata=None, data={"dry_run": dry_run})
    form.programme.choices = [("", _("As each row says, else the default programme"))] + [
        (p.slug, p.name) for p in programmes
    ]
    if not form.is_submitted() or not formdata:
        chosen = programmes[0] if len(programmes) == 1 else None
        form.programme.data = chosen.slug if chosen else (form.programme.data or "")
    return form


def file_error(error: ChannelError) -> str:
    """The page's words for a file the service refused whole."""
    template = IMPORT_ERRORS.get(error.code)
    if template is None:
        return error.message
    return str(template) % {"field": error.field or "", "max": format_decimal(MAX_TEXT_LENGTH)}


def row_reason(result: RowResult) -> str:
    """The page's words for one rejected or duplicate row."""
    if result.outcome == "duplicate":
        if result.reference:
            return str(DUPLICATE_IMPORTED) % {"reference": result.reference}
        if result.code == "duplicate_hidden":
            return str(DUPLICATE_HIDDEN)
        return str(DUPLICATE_IN_FILE)
    template = IMPORT_ERRORS.get(result.code or "")
    if template is None:
        return result.reason or ""
    return str(template) % {"field": result.field or "", "max": format_decimal(MAX_TEXT_LENGTH)}


def _visible_references(user: User, references: Collection[str]) -> set[str]:
    """Which of these cases the user may open (through visible_cases(), the access rule)."""
    if not references:
        return set()
    query = visible_cases(user).with_only_columns(Case.reference).where(Case.reference.in_(sorted(references)))
    return set(db.session.scalars(query))


@bp.route("/hotline/import", methods=["GET", "POST"])
@csrf.exempt  # checked by form.validate() below, after the sign-in guard (see the module docstring)
def hotline_import() -> ResponseReturnValue:
    """Upload a transcript file: dry run first by default; the per-row report as `cfm import-transcripts` prints."""
    user = _user()
    if not can_import(user):
        abort(404)
    programmes = _programmes(user)
    status, error, report, filename = 200, None, None, None
    try:
        form = _import_form(programmes)  # reads the body: above MAX_CONTENT_LENGTH this raises 413
    except RequestEntityTooLarge:
        form = _import_form(programmes, formdata=False)
        error = _("The file is larger than %(size)s MB. Split it into smaller files; nothing was imported.",
                  size=_max_upload())  # fmt: skip
        return render_template("console/hotline_import.html", form=form, error=error, report=None), 413
    if form.is_submitted():
        upload = form.file.data
        chosen = form.programme.data or None
        if not form.validate():
            error, status = str(CSRF_EXPIRED), 400
        elif upload is None or not getattr(upload, "filename", None):
            form.file.errors = [_("Choose a file.")]
            status = 400
        elif chosen is not None and chosen not in {p.slug for p in programmes}:
            form.programme.errors = [_("Choose one of your programmes.")]
            status = 400
        else:
            filename = str(upload.filename)
            try:
                report = import_transcripts(
                    upload.read(),
                    filename=filename,
                    programme=chosen,
                    dry_run=bool(form.dry_run.data),
                    actor=user,
                    allowed_programmes=[p.slug for p in programmes] if user.programmes else None,
                )
            except ChannelError as exc:
                error, status = _("%(reason)s Nothing was imported.", reason=file_error(exc)), 400
            except (IntakeUnavailable, SQLAlchemyError):
                db.session.rollback()
                error, status = str(UNAVAILABLE), 503
            else:
                # After a dry run the next upload is for real; after an import the switch is on again.
                form = _import_form(programmes, formdata=False, dry_run=not report.dry_run)
                form.programme.data = chosen or ""
    return render_template(
        "console/hotline_import.html",
        form=form,
        error=error,
        report=report,
        filename=filename,
        summary=_summary(report) if report is not None else None,
        visible=_visible_references(user, _references(report)) if report is not None else set(),
        row_reason=row_reason,
        max_upload=_max_upload(),
    ), status


def _references(report: ImportReport) -> set[str]:
    """References of the cases this import created."""
    return {row.reference for row in report.rows if row.outcome == "created" and row.reference}


def _summary(report: ImportReport) -> dict[str, int]:
    """Counts per outcome, and how many created cases went to the focal points or await classification."""
    counts = report.counts()
    created = [row for row in report.rows if row.outcome == "created"]
    return {
        "created": counts["would_create"] if report.dry_run else counts["created"],
        "duplicate": counts["duplicate"],
        "rejected": counts["rejected"],
        "failed": counts["failed"],
        "restricted": sum(1 for row in created if row.queue == QUEUE_RESTRICTED),
        "pending": sum(1 for row in created if row.queue not in (QUEUE_RESTRICTED, QUEUE_GENERAL)),
    }
