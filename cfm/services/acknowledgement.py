"""The acknowledgement sent back at once, in the person's language, with the reference code."""

from __future__ import annotations

from flask_babel import force_locale, gettext

from cfm.i18n import locale_for_language
from cfm.models import Case


def acknowledgement_locale(case: Case) -> str:
    """The case's language when we have that locale, otherwise the programme's default."""
    return locale_for_language(case.language) or locale_for_language(case.programme.default_language) or "en"


def acknowledgement(case: Case) -> str:
    """Short enough for two SMS segments in every locale (tests count them)."""
    with force_locale(acknowledgement_locale(case)):
        return gettext(
            "Thank you, we received your message. Your reference is %(reference)s. "
            "To check it, send STATUS %(reference)s.",
            reference=case.reference,
        )
