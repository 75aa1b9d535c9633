"""Flask-WTF forms of the console: CSRF on every POST, translated labels; the rules live in the services."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from cfm.services.triage import MAX_NOTE, MAX_REASON, MAX_REFERRAL_ID


class VersionField(HiddenField):
    """The case version the form was filled in on (optimistic locking, issue 8); rendered by hidden_tag()."""

    def seen(self) -> int | None:
        """The version sent back: None when absent (no check), -1 when not a number (always stale)."""
        raw = str(self.data or "").strip()
        if not raw:
            return None
        return int(raw) if raw.isdigit() and len(raw) < 10 else -1


class LoginForm(FlaskForm):
    """Email and password (field names fixed by shared/DESIGN.md)."""

    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class TotpForm(FlaskForm):
    """The 6-digit code from an authenticator app."""

    code = StringField(
        _l("6-digit code"),
        validators=[DataRequired(), Length(min=6, max=12)],
        render_kw={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*"},
    )


class PasswordChangeForm(FlaskForm):
    """Current password, new password twice."""

    current = PasswordField(
        _l("Current password"), validators=[DataRequired()], render_kw={"autocomplete": "current-password"}
    )
    new = PasswordField(
        _l("New password"),
        validators=[DataRequired()],
        description=_l("At least 12 characters. A sentence of four or five words is easy to remember."),
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("New password again"), validators=[DataRequired()], render_kw={"autocomplete": "new-password"}
    )


class AssignForm(FlaskForm):
    """Who works on the case."""

    assignee = SelectField(_l("Assign to"), choices=[], validate_choice=False)
    version = VersionField()
    reason = StringField(_l("Reason (optional)"), validators=[Optional(), Length(max=MAX_REASON)])


class StatusForm(FlaskForm):
    """The next status in the workflow; closing asks how the loop was closed."""

    status = SelectField(_l("New status"), choices=[], validate_choice=False)
    version = VersionField()
    closure_method = SelectField(_l("How was the person answered?"), choices=[], validate_choice=False)
    reason = StringField(_l("Why (optional)"), validators=[Optional(), Length(max=MAX_REASON)])


class CategoryForm(FlaskForm):
    """A corrected category and why."""

    category = SelectField(_l("Correct category"), choices=[], validate_choice=False)
    version = VersionField()
    reason = StringField(_l("Why"), validators=[DataRequired(), Length(max=MAX_REASON)])


class NoteForm(FlaskForm):
    """An internal note."""

    body = TextAreaField(
        _l("Internal note"),
        validators=[DataRequired(), Length(max=MAX_NOTE)],
        description=_l("Seen by staff who can open this case; never sent to the person."),
    )


class ReferralForm(FlaskForm):
    """The misconduct-reporting platform's referral id and date."""

    referral_id = StringField(
        _l("Referral id on the platform"), validators=[DataRequired(), Length(max=MAX_REFERRAL_ID)]
    )
    referred_on = DateField(_l("Date referred"), validators=[DataRequired()])
    version = VersionField()


class ReplyForm(FlaskForm):
    """A message to the person, sent by SMS or WhatsApp."""

    body = TextAreaField(
        _l("Reply to the person"),
        validators=[DataRequired(), Length(max=1600)],
        description=_l("Sent by SMS (or WhatsApp if they wrote that way). Write in their language; plain words."),
    )
    # Issue 6: an admin-edited template fills the textarea; "use template" re-renders the case (works without JS).
    template = SelectField(_l("Start from a template"), choices=[], validate_choice=False)
    use_template = SubmitField(_l("Use template"))
