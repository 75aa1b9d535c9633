"""Admin pages under /console/admin (issue 6): users, programmes, API tokens, reply templates, the audit log.

A blueprint nested in the console's, so the console's sign-in guard, second factor, idle timeout, headers, 404 page
and layout context apply first; its own guard then answers 404 to everyone but admins (like every console page a
role may not open). Views are thin: every change goes through cfm.services.admin / reply_templates, which audit it.
Admins see no case content here (segregation of duties); audit events carry none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from babel import Locale, UnknownLocaleError
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from cfm.console import bp as console_bp
from cfm.console import labels
from cfm.console.admin_forms import (
    KOBO_FIELD_LABELS,
    ActionForm,
    AuditSearchForm,
    NumberForm,
    ProgrammeCreateForm,
    ProgrammeEditForm,
    ReasonForm,
    TemplateForm,
    TokenFieldsForm,
    TokenForm,
    TwilioForm,
    UserCreateForm,
    UserEditForm,
)
from cfm.extensions import db
from cfm.models import ROLES, ApiToken, Programme, ReplyTemplate, User
from cfm.services import admin, reply_templates, routing
from cfm.services.admin import AdminError
from classifier.categories import GENERAL_CATEGORIES, RESTRICTED_CATEGORIES

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Reasons a change is refused, in the admin's language (the service's English message is for the CLI).
ERRORS: dict[str, Any] = {
    "slug": _l("The short name must be lower-case letters, digits and hyphens."),
    "e164": _l("Not an international phone number: %(numbers)s. Write it like +254700000000."),
    "programme_exists": _l("A programme with this short name or one of these numbers exists already."),
    "email_invalid": _l("This is not a valid email address."),
    "email_taken": _l("A user with this email exists already."),
    "roles": _l("Choose at least one role."),
    "password_short": _l("The password must have at least %(count)d characters."),
    "unknown_programme": _l("Unknown programme: %(slugs)s."),
    "self_lockout": _l("You cannot remove your own admin role or deactivate your own account."),
    "timezone": _l("Unknown time zone: %(timezone)s. Use an IANA name such as Africa/Nairobi."),
    "positive": _l("Hours and days must be positive whole numbers, or empty."),
    "name": _l("The name must have 1 to 200 characters."),
    "language": _l("Not a language code: %(language)s."),
    "number_taken": _l("This number belongs to a programme already."),
    "no_number": _l("This number is not on this programme."),
    "twilio_sid": _l("A Twilio account SID is AC followed by 32 letters and digits."),
    "twilio_token": _l("This does not look like a Twilio auth token."),
    "survey": _l("There is no such survey."),
    "token": _l("The token could not be created: give it a name of at most 100 characters."),
    "no_token": _l("There is no such token."),
    "template_name": _l("The name must have 1 to %(count)d characters."),
    "template_body": _l("The text must have 1 to %(count)d characters."),
    "placeholder": _l("Unknown placeholder: %(placeholders)s. Use {reference} and {programme} only."),
    "template_exists": _l("A template with this name and language exists already for these programmes."),
    "category": _l("Unknown category: %(categories)s."),
    "due_hours": _l("A service level is from 1 to %(max)d hours, or empty for the default."),
    "due_hours_restricted": _l(
        "A restricted category must be due within the restricted level (%(hours)d hours): shorten it, "
        "or raise the restricted level."
    ),
    "field_key": _l("Unknown field map key: %(keys)s."),
    "field_name": _l(
        "Not a Kobo field name: %(name)s. Use letters, digits, _ - . and / between a group and its field, "
        "at most 100 characters."
    ),
    "field_count": _l("At most %(count)d field names for one field."),
    "token_revoked": _l("This token is revoked: its field names can no longer change."),
}


def _message(exc: AdminError) -> str:
    """The refusal in the admin's language."""
    if exc.code in ERRORS:
        return str(ERRORS[exc.code]) % exc.params if exc.params else str(ERRORS[exc.code])
    return str(exc)


def _flash_outcome(action: Callable[[], object], success: str) -> None:
    """Run an admin operation: the success message, or the translated reason it was refused (nothing kept)."""
    try:
        action()
    except AdminError as exc:
        db.session.rollback()
        flash(_message(exc), "error")
    else:
        flash(success, "ok")


def _me() -> User:
    """The signed-in admin."""
    return cast(User, current_user._get_current_object())


@bp.before_request
def _admins_only() -> None:
    """Everyone but an admin gets the console's 404 (the console's guard has already required a sign-in)."""
    if not current_user.is_authenticated or not _me().has_role("admin"):
        abort(404)


@bp.context_processor
def _admin_context() -> dict[str, Any]:
    """Marks the admin section in the top bar."""
    return {"admin_section": True}


def _language_choices() -> list[tuple[str, str]]:
    """The configured languages, by their base code, named in the admin's language."""
    codes = dict.fromkeys(reply_templates.base_language(c) or c for c in current_app.config.get("LOCALES", ["en"]))
    choices = []
    for code in codes:
        try:
            name = Locale.parse(code).get_display_name(get_locale()) or code
        except (UnknownLocaleError, ValueError):
            name = code
        choices.append((code, f"{name} ({code})"))
    return choices


def _programme_choices(blank: Any = None) -> list[tuple[str, str]]:
    """Programmes by slug, optionally led by a blank choice."""
    choices = [(p.slug, p.name) for p in admin.list_programmes()]
    return ([("", str(blank))] if blank is not None else []) + choices


def _role_choices() -> list[tuple[str, str]]:
    """Roles with their labels."""
    return [(role, labels.label(labels.ROLE_LABELS, role)) for role in ROLES]


def _user_or_404(user_id: int) -> User:
    """A user by id, or 404."""
    user = admin.get_user(user_id)
    if user is None:
        abort(404)
    return user


def _programme_or_404(slug: str) -> Programme:
    """A programme by slug, or 404."""
    programme = admin.get_programme(slug)
    if programme is None:
        abort(404)
    return programme


# --- users ----------------------------------------------------------------------------------------------------


@bp.route("/")
def index() -> ResponseReturnValue:
    """The admin section starts with the users."""
    return redirect(url_for("console.admin.users"))


@bp.route("/users")
def users() -> ResponseReturnValue:
    """Every account with its roles, programmes, second factor and state."""
    return render_template("console/admin/users.html", users=admin.list_users(), action=ActionForm())


@bp.route("/users/new", methods=["GET", "POST"])
def user_new() -> ResponseReturnValue:
    """Create an account; a generated initial password is shown once, on the result page only."""
    form = UserCreateForm()
    form.roles.choices = _role_choices()
    form.programmes.choices = _programme_choices()
    error = None
    if form.validate_on_submit():
        generated = not form.password.data
        password = admin.generate_password() if generated else str(form.password.data)
        try:
            user = admin.create_user(
                form.email.data or "",
                password,
                form.roles.data or [],
                form.programmes.data or [],
                actor=_me(),
                reason=form.reason.data,
            )
        except AdminError as exc:
            error = _message(exc)
        else:
            return render_template(
                "console/admin/user_created.html", user=user, password=password if generated else None
            )
    return render_template("console/admin/user_new.html", form=form, error=error), 400 if error else 200


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id: int) -> ResponseReturnValue:
    """Roles and programmes of an account, with deactivation and second-factor reset."""
    user = _user_or_404(user_id)
    form = UserEditForm(
        data=None
        if request.method == "POST"
        else {"roles": list(user.roles or []), "programmes": [p.slug for p in user.programmes]}
    )
    form.roles.choices = _role_choices()
    form.programmes.choices = _programme_choices()
    error = None
    if form.validate_on_submit():
        try:
            admin.update_user(
                user, form.roles.data or [], form.programmes.data or [], actor=_me(), reason=form.reason.data
            )
        except AdminError as exc:
            db.session.rollback()
            error = _message(exc)
        else:
            flash(_("Roles and programmes of %(email)s saved.", email=user.email), "ok")
            return redirect(url_for("console.admin.user_edit", user_id=user.id))
    return render_template(
        "console/admin/user_edit.html",
        user=user,
        form=form,
        active_form=ReasonForm(prefix="active"),
        totp_form=ReasonForm(prefix="totp"),
        error=error,
    ), 400 if error else 200


@bp.route("/users/<int:user_id>/active", methods=["POST"])
def user_active(user_id: int) -> ResponseReturnValue:
    """Deactivate (their sessions end at their next request) or reactivate an account."""
    user = _user_or_404(user_id)
    form = ReasonForm(prefix="active")
    active = request.form.get("active") == "1"
    if form.validate_on_submit():
        try:
            admin.set_user_active(user, active, actor=_me(), reason=form.reason.data)
        except AdminError as exc:
            flash(_message(exc), "error")
        else:
            flash(
                _("%(email)s can sign in again.", email=user.email)
                if active
                else _("%(email)s is deactivated and signed out everywhere.", email=user.email),
                "ok",
            )
    else:
        flash(_("The reason is too long."), "error")
    return redirect(url_for("console.admin.user_edit", user_id=user.id))


@bp.route("/users/<int:user_id>/second-factor", methods=["POST"])
def user_reset_second_factor(user_id: int) -> ResponseReturnValue:
    """Forget the account's authenticator: they set up a new one at their next sign-in."""
    user = _user_or_404(user_id)
    form = ReasonForm(prefix="totp")
    if form.validate_on_submit():
        admin.reset_second_factor(user, actor=_me(), reason=form.reason.data)
        flash(
            _("Two-step sign-in of %(email)s is reset; they set it up again at their next sign-in.", email=user.email),
            "ok",
        )
    else:
        flash(_("The reason is too long."), "error")
    return redirect(url_for("console.admin.user_edit", user_id=user.id))


# --- programmes -----------------------------------------------------------------------------------------------


@bp.route("/programmes")
def programmes() -> ResponseReturnValue:
    """Every programme with its numbers and settings."""
    return render_template("console/admin/programmes.html", programmes=admin.list_programmes())


@bp.route("/programmes/new", methods=["GET", "POST"])
def programme_new() -> ResponseReturnValue:
    """Create a programme."""
    form = ProgrammeCreateForm()
    form.language.choices = _language_choices()
    error = None
    if form.validate_on_submit():
        numbers = [line.strip().replace(" ", "") for line in (form.numbers.data or "").splitlines() if line.strip()]
        try:
            admin.check_timezone((form.timezone.data or "").strip())
            programme = admin.create_programme(
                (form.slug.data or "").strip(),
                (form.name.data or "").strip(),
                numbers,
                language=form.language.data or "en",
                timezone=(form.timezone.data or "").strip(),
                actor=_me(),
            )
        except AdminError as exc:
            error = _message(exc)
        else:
            flash(_("Programme %(name)s created.", name=programme.name), "ok")
            return redirect(url_for("console.admin.programme_edit", slug=programme.slug))
    return render_template("console/admin/programme_new.html", form=form, error=error), 400 if error else 200


def _programme_page(programme: Programme, form: ProgrammeEditForm, error: str | None) -> ResponseReturnValue:
    """The programme page: settings, numbers, Twilio account, surveys."""
    from cfm.services.surveys import library, published_surveys

    published = {s.slug: s for s in published_surveys(programme)}
    return render_template(
        "console/admin/programme.html",
        programme=programme,
        form=form,
        number_form=NumberForm(),
        twilio_form=TwilioForm(formdata=None, data={"account_sid": programme.twilio_account_sid}),
        action=ActionForm(),
        surveys=[(slug, library()[slug], published.get(slug)) for slug in sorted(library())],
        has_token=programme.twilio_auth_token is not None,
        due_groups=[(_l("General queue"), GENERAL_CATEGORIES), (_l("Restricted queue"), RESTRICTED_CATEGORIES)],
        due_defaults={
            code: routing.default_due_hours(programme, code) for code in (*GENERAL_CATEGORIES, *RESTRICTED_CATEGORIES)
        },
        error=error,
    ), 400 if error or form.errors else 200


@bp.route("/programmes/<slug>", methods=["GET", "POST"])
def programme_edit(slug: str) -> ResponseReturnValue:
    """A programme's name, language, time zone, service levels (per queue and per category) and retention."""
    programme = _programme_or_404(slug)
    form = ProgrammeEditForm(obj=None if request.method == "POST" else programme)
    form.language.choices = _language_choices()
    if request.method == "GET":
        form.language.data = programme.default_language
        if programme.default_language not in dict(form.language.choices):
            form.language.choices.append((programme.default_language, programme.default_language))
    error = None
    if form.validate_on_submit():
        try:
            admin.update_programme(
                programme,
                name=form.name.data or "",
                language=form.language.data or "",
                timezone=(form.timezone.data or "").strip(),
                due_hours_general=form.due_hours_general.data,
                due_hours_restricted=form.due_hours_restricted.data,
                due_hours_by_category=form.due_hours_by_category.data,
                retention_days=form.retention_days.data,
                actor=_me(),
                reason=form.reason.data,
            )
        except AdminError as exc:
            db.session.rollback()
            error = _message(exc)
        else:
            flash(_("Settings of %(name)s saved.", name=programme.name), "ok")
            return redirect(url_for("console.admin.programme_edit", slug=programme.slug))
    return _programme_page(programme, form, error)


@bp.route("/programmes/<slug>/numbers", methods=["POST"])
def programme_number_add(slug: str) -> ResponseReturnValue:
    """Add a phone number to the programme."""
    programme = _programme_or_404(slug)
    form = NumberForm()
    if form.validate_on_submit():
        _flash_outcome(lambda: admin.add_number(programme, form.number.data or "", actor=_me()), _("Number added."))
    else:
        flash(_("Write the number first."), "error")
    return redirect(url_for("console.admin.programme_edit", slug=programme.slug) + "#numbers")


@bp.route("/programmes/<slug>/numbers/<int:number_id>/delete", methods=["POST"])
def programme_number_remove(slug: str, number_id: int) -> ResponseReturnValue:
    """Remove a phone number from the programme."""
    programme = _programme_or_404(slug)
    if ActionForm().validate_on_submit():
        _flash_outcome(lambda: admin.remove_number(programme, number_id, actor=_me()), _("Number removed."))
    return redirect(url_for("console.admin.programme_edit", slug=programme.slug) + "#numbers")


@bp.route("/programmes/<slug>/twilio", methods=["POST"])
def programme_twilio(slug: str) -> ResponseReturnValue:
    """Set or remove the programme's own Twilio account (the auth token is write-only)."""
    programme = _programme_or_404(slug)
    form = TwilioForm()
    if form.validate_on_submit():
        _flash_outcome(
            lambda: admin.set_twilio_credentials(
                programme,
                account_sid=form.account_sid.data,
                auth_token=form.auth_token.data,
                clear=bool(form.clear.data),
                actor=_me(),
            ),
            _("Twilio account saved."),
        )
    else:
        flash(_("The Twilio account SID or token is too long."), "error")
    return redirect(url_for("console.admin.programme_edit", slug=programme.slug) + "#twilio")


@bp.route("/programmes/<slug>/surveys/<survey>", methods=["POST"])
def programme_survey(slug: str, survey: str) -> ResponseReturnValue:
    """Publish or unpublish a shipped survey on the programme's pages (what `cfm surveys publish` does)."""
    programme = _programme_or_404(slug)
    publish = request.form.get("publish") == "1"
    if ActionForm().validate_on_submit():
        try:
            admin.set_survey_published(programme, survey, publish, actor=_me())
        except AdminError as exc:
            flash(_message(exc), "error")
        else:
            flash(_("Survey published.") if publish else _("Survey taken off the programme's pages."), "ok")
    return redirect(url_for("console.admin.programme_edit", slug=programme.slug) + "#surveys")


# --- API tokens -----------------------------------------------------------------------------------------------


@bp.route("/tokens", methods=["GET", "POST"])
def tokens() -> ResponseReturnValue:
    """Tokens of partner systems; a new token is shown once, on the page that answers its creation."""
    from cfm.api.tokens import list_tokens

    form = TokenForm()
    form.programme.choices = _programme_choices()
    error = None
    if form.validate_on_submit():
        try:
            row, token = admin.create_api_token(
                form.programme.data or "",
                form.name.data or "",
                actor=_me(),
                field_map=admin.parse_field_map(form.kobo.data),
            )
        except AdminError as exc:
            db.session.rollback()
            error = _message(exc)
        else:
            return render_template("console/admin/token_created.html", row=row, token=token)
    return render_template(
        "console/admin/tokens.html",
        tokens=list_tokens(),
        form=form,
        reason=ReasonForm(),
        kobo_defaults=current_app.config["API_KOBO_FIELDS"],
        kobo_labels=KOBO_FIELD_LABELS,
        error=error,
    ), 400 if error or form.errors else 200


def _token_or_404(token_id: int) -> ApiToken:
    """A token by id, or 404."""
    row = admin.get_api_token(token_id)
    if row is None:
        abort(404)
    return row


@bp.route("/tokens/<int:token_id>/fields", methods=["GET", "POST"])
def token_fields(token_id: int) -> ResponseReturnValue:
    """Which KoboToolbox form fields a token's submissions are read from; read-only once the token is revoked."""
    row = _token_or_404(token_id)
    saved = {"kobo": {key: ", ".join(names) for key, names in (row.field_map or {}).items()}}
    error = None
    if not row.active:  # read-only: the saved map, whatever was posted
        form = TokenFieldsForm(formdata=None, data=saved)
        if request.method == "POST":
            error = str(ERRORS["token_revoked"])
    else:
        form = TokenFieldsForm(data=None if request.method == "POST" else saved)
    if error is None and form.validate_on_submit():
        try:
            field_map = None if form.reset.data else admin.parse_field_map(form.kobo.data)
            admin.set_token_field_map(row, field_map, actor=_me(), reason=form.reason.data)
        except AdminError as exc:
            db.session.rollback()
            error = _message(exc)
        else:
            flash(_("Field names of token %(name)s saved.", name=row.name), "ok")
            return redirect(url_for("console.admin.tokens"))
    return render_template(
        "console/admin/token_fields.html",
        row=row,
        form=form,
        kobo_defaults=current_app.config["API_KOBO_FIELDS"],
        kobo_labels=KOBO_FIELD_LABELS,
        error=error,
    ), 400 if error or form.errors else 200


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
def token_revoke(token_id: int) -> ResponseReturnValue:
    """Revoke a token: the partner system is refused from its next request."""
    form = ReasonForm()
    if form.validate_on_submit():
        try:
            row = admin.revoke_api_token(token_id, actor=_me(), reason=form.reason.data)
        except AdminError as exc:
            flash(_message(exc), "error")
        else:
            flash(_("Token %(name)s revoked.", name=row.name), "ok")
    else:
        flash(_("The reason is too long."), "error")
    return redirect(url_for("console.admin.tokens"))


# --- audit log ------------------------------------------------------------------------------------------------


def _audit_page(verified: tuple[int | None, int] | None = None) -> ResponseReturnValue:
    """Search results, newest first, a page at a time; and the outcome of a chain check when one just ran."""
    form = AuditSearchForm(request.args)
    valid = form.validate()
    before = request.args.get("before", "")
    events, next_cursor = admin.search_audit(
        actor=form.actor.data if valid else None,
        action=form.action.data if valid else None,
        object_ref=form.object_ref.data if valid else None,
        since=form.since.data if valid else None,
        until=form.until.data if valid else None,
        before=int(before) if before.isdigit() else None,
    )
    query = {k: v for k, v in request.args.items() if k != "before" and v}
    return render_template(
        "console/admin/audit.html",
        form=form,
        events=events,
        next_url=url_for("console.admin.audit", before=next_cursor, **query) if next_cursor else None,
        first_url=url_for("console.admin.audit", **query) if before else None,
        action=ActionForm(),
        verified=verified,
    )


@bp.route("/audit")
def audit() -> ResponseReturnValue:
    """Search the audit log by who, action, object and dates."""
    return _audit_page()


@bp.route("/audit/verify", methods=["POST"])
def audit_verify() -> ResponseReturnValue:
    """Check the hash chain, as `cfm audit verify` does, and show the outcome."""
    if not ActionForm().validate_on_submit():
        abort(400)
    return _audit_page(verified=admin.verify_audit(actor=_me()))


# --- reply templates ------------------------------------------------------------------------------------------


@bp.route("/templates")
def templates() -> ResponseReturnValue:
    """Reply templates by name and language."""
    return render_template(
        "console/admin/templates.html",
        templates=reply_templates.list_templates(),
        languages=dict(_language_choices()),
        action=ActionForm(),
    )


def _template_form(template: ReplyTemplate | None) -> TemplateForm:
    """The template form with its choices, filled from the template on GET."""
    data = None
    if template is not None and request.method == "GET":
        data = {
            "name": template.name,
            "language": template.language,
            "programme": template.programme.slug if template.programme else "",
            "body": template.body,
        }
    form = TemplateForm(data=data)
    form.language.choices = _language_choices()
    form.programme.choices = _programme_choices(blank=_l("All programmes"))
    return form


@bp.route("/templates/new", methods=["GET", "POST"])
@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
def template_edit(template_id: int | None = None) -> ResponseReturnValue:
    """Create or change a reply template."""
    template = reply_templates.get_template(template_id) if template_id is not None else None
    if template_id is not None and template is None:
        abort(404)
    form = _template_form(template)
    error = None
    if form.validate_on_submit():
        programme = admin.get_programme(form.programme.data) if form.programme.data else None
        try:
            if template is None:
                template = reply_templates.create_template(
                    form.name.data or "", form.language.data or "", form.body.data or "", programme, actor=_me()
                )
            else:
                reply_templates.update_template(
                    template,
                    form.name.data or "",
                    form.language.data or "",
                    form.body.data or "",
                    programme,
                    actor=_me(),
                    reason=form.reason.data,
                )
        except AdminError as exc:
            db.session.rollback()
            error = _message(exc)
        else:
            flash(_("Template %(name)s saved.", name=template.name), "ok")
            return redirect(url_for("console.admin.templates"))
    status = 400 if error or form.errors else 200
    return render_template("console/admin/template_form.html", form=form, template=template, error=error), status


@bp.route("/templates/<int:template_id>/active", methods=["POST"])
def template_active(template_id: int) -> ResponseReturnValue:
    """Deactivate or reactivate a template."""
    template = reply_templates.get_template(template_id)
    if template is None:
        abort(404)
    active = request.form.get("active") == "1"
    if ActionForm().validate_on_submit():
        reply_templates.set_template_active(template, active, actor=_me())
        flash(
            _("Template %(name)s is offered to officers again.", name=template.name)
            if active
            else _("Template %(name)s is no longer offered to officers.", name=template.name),
            "ok",
        )
    return redirect(url_for("console.admin.templates"))


console_bp.register_blueprint(bp)
