"""Flask-WTF forms of the public pages: CSRF, labels and choices; the checks live in channels/web.py."""

from __future__ import annotations

import secrets

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    Field,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
)

from cfm.i18n import isolate
from cfm.public.texts import choose_hint
from channels.base import MAX_TEXT_LENGTH
from channels.web import HONEYPOT_FIELD, RATING_VALUES, SUBMISSION_FIELD, SurveyDefinition, localised

EXAMPLE_REFERENCE = "7QK2-M9XD"


class ContactForm(FlaskForm):
    """Fields every public submission form has: contact choice, honeypot, idempotency token."""

    contact = RadioField(
        _l("Do you want us to contact you?"),
        choices=[SelectChoice("no", _l("No, I want to stay anonymous")), SelectChoice("yes", _l("Yes, contact me"))],
        default="no",
        validate_choice=False,
    )
    phone = TelField(
        _l("Phone number"),
        description=_l("Only if you want us to contact you. Include the country code if you can."),
    )
    method = RadioField(
        _l("How should we contact you?"),
        choices=[
            SelectChoice("call", _l("Phone call")),
            SelectChoice("sms", _l("SMS")),
            SelectChoice("whatsapp", _l("WhatsApp")),
        ],
        validate_choice=False,
    )
    name = StringField(_l("Your name (optional)"))
    website = StringField(_l("Leave this field empty"), name=HONEYPOT_FIELD)
    submission = HiddenField(name=SUBMISSION_FIELD)

    def with_token(self) -> ContactForm:
        """Give the form a fresh idempotency token when it has none (first display)."""
        if not self.submission.data:
            self.submission.data = secrets.token_urlsafe(24)
        return self


class FeedbackForm(ContactForm):
    """The feedback form: free text (the only required field) and an optional hint in plain words."""

    text = TextAreaField(_l("What do you want to tell us?"), render_kw={"maxlength": MAX_TEXT_LENGTH})
    category = RadioField(
        _l("What is it about? (optional)"),
        choices=[
            SelectChoice("question", _l("A question")),
            SelectChoice("request", _l("A request for help")),
            SelectChoice("complaint", _l("A complaint")),
            SelectChoice("suggestion", _l("An idea or suggestion")),
            SelectChoice("thanks", _l("Thanks")),
            SelectChoice("serious", _l("Something serious: abuse, exploitation, fraud, threats or danger")),
        ],
        validate_choice=False,
    )
    programme = RadioField(_l("Which operation is this about?"), choices=[], validate_choice=False)


class StatusForm(FlaskForm):
    """The status lookup: one reference code."""

    reference = StringField(
        _l("Your reference code"),
        # The example code is bidi-isolated: inside Arabic, Dari or Pashto it still reads left to right (issue 7).
        description=_l(
            "It looks like %(example)s. Small letters and no dash also work.", example=isolate(EXAMPLE_REFERENCE)
        ),
    )


class SurveyForm(ContactForm):
    """Base of the forms built from a survey definition."""


def survey_form_class(definition: SurveyDefinition, locale: str | None) -> type[SurveyForm]:
    """A form class with one field per question, labelled in the locale (English fallback)."""
    fields: dict[str, Field] = {}
    for question in definition.questions:
        label = localised(question.text, locale)
        hint = localised(question.hint, locale) if question.hint else ""
        if question.type == "rating":
            field: Field = RadioField(
                label,
                choices=[SelectChoice(str(v), str(v)) for v in RATING_VALUES],
                description=hint,
                validate_choice=False,
            )
        elif question.type == "yes_no":
            field = RadioField(
                label,
                choices=[SelectChoice("yes", _l("Yes")), SelectChoice("no", _l("No"))],
                description=hint,
                validate_choice=False,
            )
        elif question.type == "single_choice":
            choices = [SelectChoice(o.id, localised(o.text, locale)) for o in question.options]
            field = RadioField(label, choices=choices, description=hint, validate_choice=False)
        elif question.type == "multiple_choice":
            # A checkbox group (the template renders it): the hint says how many boxes may be ticked.
            choices = [SelectChoice(o.id, localised(o.text, locale)) for o in question.options]
            limit = question.max_choices if question.max_choices and question.max_choices < len(choices) else None
            description = " ".join(part for part in (hint, str(choose_hint(limit))) if part)
            field = SelectMultipleField(label, choices=choices, description=description, validate_choice=False)
        else:
            field = TextAreaField(label, description=hint)
        fields[question.field] = field
    return type(f"SurveyForm_{definition.slug.replace('-', '_')}", (SurveyForm,), fields)
