"""Words the public pages show for codes: field errors (by ChannelError code) and case stages."""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import LazyString, format_number, gettext, ngettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from cfm.i18n import isolate
from channels.base import MAX_TEXT_LENGTH, ChannelError
from channels.web import TooManyChoices

EXAMPLE_PHONE = "+254 700 000 000"

ERRORS: dict[str, LazyString] = {
    "empty_text": _l("Please write your message."),
    "text_too_long": _l("This is too long. Please shorten it to %(max)s characters or fewer."),
    "invalid_characters": _l("This contains characters that cannot be accepted. Please remove them."),
    "invalid_encoding": _l("This could not be read as text. Please type it again."),
    "invalid_text": _l("This could not be read as text. Please type it again."),
    "invalid_field": _l("This contains characters that cannot be accepted. Please remove them."),
    "field_too_long": _l("This is too long. Please shorten it."),
    "invalid_choice": _l("Please choose one of the options."),
    "choice_required": _l("Please choose one of the options."),
    "phone_required": _l("Give a phone number so that we can contact you, or choose to stay anonymous."),
    "invalid_phone": _l("This does not look like a phone number. Use digits, for example %(example)s."),
    "answer_required": _l("Please answer this question."),
    "empty_survey": _l("Please answer at least one question."),
    "unknown_programme": _l("This form is not open at the moment. Please try again later."),
    "csrf": _l("This form had expired. Please check what you wrote and send it again."),
}
GENERIC_ERROR = _l("Please check this answer.")

STAGES: dict[str, LazyString] = {
    "received": _l("Received. It is waiting for our team to look at it."),
    "in_progress": _l("Our team is working on it."),
    "action_taken": _l("Our team has acted on it."),
    "no_action": _l("Our team has looked at it. No further action was needed."),
    "closed": _l("Closed. Thank you for telling us."),
}


# Filled in when the message is shown: numbers in the reader's locale (Babel), and the example phone number
# bidi-isolated so that it reads left to right inside Arabic, Dari or Pashto (issue 7).
_VARIABLES: dict[str, Callable[[], dict[str, str | Markup]]] = {
    "text_too_long": lambda: {"max": format_number(MAX_TEXT_LENGTH)},
    "invalid_phone": lambda: {"example": isolate(EXAMPLE_PHONE)},
}


def choose_hint(limit: int | None) -> str:
    """What a checkbox group says about how many boxes may be ticked (None: any number)."""
    if limit is None:
        return gettext("Choose all that apply.")
    return ngettext("Choose at most %(num)d answer.", "Choose at most %(num)d answers.", limit)


def error_message(error: ChannelError) -> Markup:
    """The translated message for a ChannelError, escaped, with its values filled in."""
    if isinstance(error, TooManyChoices):
        return escape(choose_hint(error.limit))  # the hint's own words, now shown as the error
    message = escape(str(ERRORS.get(error.code, GENERIC_ERROR)))
    variables = _VARIABLES.get(error.code)
    return message % variables() if variables is not None else message
