"""Flask-WTF forms of the admin pages (issue 6): CSRF on every change; the rules live in cfm.services.admin."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    Field,
    Form,
    FormField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from cfm.api.tokens import FIELD_MAP_KEYS, MAX_FIELD_NAME, MAX_FIELD_NAMES
from cfm.console.labels import CATEGORY_LABELS
from cfm.services.admin import MAX_DUE_HOURS, MAX_REASON, MIN_PASSWORD_LENGTH
from cfm.services.reply_templates import MAX_BODY, MAX_NAME, unknown_placeholders
from classifier.categories import CATEGORIES


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes (works without JavaScript, unlike a multiple select on a phone)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _reason() -> StringField:
    """The optional 'why' recorded in the audit log with the change."""
    return StringField(_l("Why (recorded in the audit log, optional)"), validators=[Optional(), Length(max=MAX_REASON)])


class ActionForm(FlaskForm):
    """A button that changes something: CSRF only."""


class ReasonForm(FlaskForm):
    """A change with an optional reason."""

    reason = _reason()


class UserCreateForm(FlaskForm):
    """A new staff account."""

    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    roles = MultiCheckboxField(_l("Roles"), choices=[], validators=[DataRequired()])
    programmes = MultiCheckboxField(_l("Programmes"), choices=[], description=_l("None ticked: all programmes."))
    password = PasswordField(
        _l("Initial password"),
        validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH, max=1024)],
        description=_l("At least 12 characters. Leave empty to have one generated and shown once."),
        render_kw={"autocomplete": "new-password"},
    )
    reason = _reason()


class UserEditForm(FlaskForm):
    """Roles and programmes of an account."""

    roles = MultiCheckboxField(_l("Roles"), choices=[], validators=[DataRequired()])
    programmes = MultiCheckboxField(_l("Programmes"), choices=[], description=_l("None ticked: all programmes."))
    reason = _reason()


class ProgrammeCreateForm(FlaskForm):
    """A new programme."""

    slug = StringField(
        _l("Short name in addresses"),
        validators=[DataRequired(), Length(max=64)],
        description=_l("Lower-case letters, digits and hyphens, e.g. kenya-resettlement. It cannot change later."),
    )
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    language = SelectField(_l("Default language"), choices=[])
    timezone = StringField(_l("Time zone"), default="UTC", validators=[DataRequired(), Length(max=64)])
    numbers = TextAreaField(
        _l("Phone numbers"),
        validators=[Optional(), Length(max=2000)],
        description=_l("One per line, in international form, e.g. +254700000000."),
    )


def _hours(label: Any, description: Any) -> IntegerField:
    """An optional positive whole number."""
    return IntegerField(label, validators=[Optional(), NumberRange(min=1, max=100_000)], description=description)


class CategoryHoursForm(Form):
    """One optional service level per category (issue 6); the fields are added below, one per category code."""


for _code in CATEGORIES:
    setattr(
        CategoryHoursForm,
        _code,
        IntegerField(
            CATEGORY_LABELS[_code],
            validators=[
                Optional(),
                NumberRange(
                    min=1,
                    max=MAX_DUE_HOURS,
                    message=_l("From 1 to %(max)d hours (a year), or empty for the default."),
                ),
            ],
        ),
    )


class ProgrammeEditForm(FlaskForm):
    """A programme's settings."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    language = SelectField(_l("Default language"), choices=[])
    timezone = StringField(
        _l("Time zone"),
        validators=[DataRequired(), Length(max=64)],
        description=_l("An IANA name such as Africa/Nairobi or Asia/Amman."),
    )
    due_hours_general = _hours(
        _l("Hours to deal with a general case"),
        _l("Empty: the default, 30 days. When set, no general category's default level is later than this."),
    )
    due_hours_restricted = _hours(
        _l("Hours to deal with a restricted case"),
        _l("Empty: the default, 72 hours. No restricted case is ever due later than this."),
    )
    due_hours_by_category = FormField(CategoryHoursForm)
    retention_days = _hours(
        _l("Keep personal data of closed cases for (days)"), _l("Empty: the server's RETENTION_DAYS setting.")
    )
    reason = _reason()


class NumberForm(FlaskForm):
    """A phone number to add to a programme."""

    number = StringField(
        _l("Add a number"),
        validators=[DataRequired(), Length(max=32)],
        render_kw={"inputmode": "tel", "placeholder": "+254700000000", "dir": "ltr"},
    )


class TwilioForm(FlaskForm):
    """The programme's own Twilio account; the auth token is write-only and never rendered back."""

    account_sid = StringField(
        _l("Twilio account SID"), validators=[Optional(), Length(max=64)], render_kw={"dir": "ltr"}
    )
    auth_token = PasswordField(
        _l("Twilio auth token"),
        validators=[Optional(), Length(max=128)],
        description=_l("Write-only: leave empty to keep the stored token. It is never shown again."),
        render_kw={"autocomplete": "off", "dir": "ltr"},
    )
    clear = BooleanField(_l("Remove this programme's own Twilio account (use the server's)"))


KOBO_FIELD_LABELS: dict[str, Any] = {
    "text": _l("Feedback text"),
    "language": _l("Language"),
    "consent": _l("Consent to be contacted"),
    "phone": _l("Phone number"),
    "name": _l("Name"),
    "email": _l("Email"),
}


class KoboFieldsForm(Form):
    """A token's KoboToolbox field map: comma-separated form field names per key (cfm.api.tokens checks them)."""


for _key in FIELD_MAP_KEYS:
    setattr(
        KoboFieldsForm,
        _key,
        StringField(
            KOBO_FIELD_LABELS[_key],
            validators=[Optional(), Length(max=MAX_FIELD_NAMES * (MAX_FIELD_NAME + 2))],
            render_kw={"dir": "ltr", "autocomplete": "off", "spellcheck": "false"},
        ),
    )


class TokenForm(FlaskForm):
    """A new API token for a partner system, optionally with its Kobo field map."""

    programme = SelectField(_l("Programme"), choices=[])
    name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=100)],
        description=_l("Who uses it, e.g. KoboToolbox household survey."),
    )
    kobo = FormField(KoboFieldsForm)


class TokenFieldsForm(FlaskForm):
    """Change a token's Kobo field map, or reset it to the configured default."""

    kobo = FormField(KoboFieldsForm)
    reset = BooleanField(_l("Use the server's default field names for every field"))
    reason = _reason()


class AuditSearchForm(FlaskForm):
    """Audit log search (a GET form: nothing changes, so no CSRF token in the address)."""

    class Meta:
        """No CSRF on a search."""

        csrf = False

    actor = StringField(_l("Who"), validators=[Optional(), Length(max=254)])
    action = StringField(
        _l("Action"), validators=[Optional(), Length(max=64)], render_kw={"placeholder": "login, user.update"}
    )
    object_ref = StringField(_l("Object"), validators=[Optional(), Length(max=64)])
    since = DateField(_l("From"), validators=[Optional()])
    until = DateField(_l("To"), validators=[Optional()])


def _placeholders(form: FlaskForm, field: Field) -> None:
    """Only {reference} and {programme} may appear in braces."""
    bad = unknown_placeholders(field.data or "")
    if bad:
        raise ValidationError(
            str(_l("Unknown placeholder: %(placeholders)s. Use {reference} and {programme} only."))
            % {"placeholders": ", ".join(bad)}
        )


class TemplateForm(FlaskForm):
    """A reply template in one language."""

    name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=MAX_NAME)],
        description=_l("The same name in several languages makes one template; officers pick it by name."),
    )
    language = SelectField(_l("Language"), choices=[])
    programme = SelectField(_l("Programme"), choices=[])
    body = TextAreaField(
        _l("Text"),
        validators=[DataRequired(), Length(max=MAX_BODY), _placeholders],
        description=_l(
            "At most 1,600 characters. {reference} becomes the case's reference code, {programme} the programme's name."
        ),
    )
    reason = _reason()
