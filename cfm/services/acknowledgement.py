"""The acknowledgement sent back at once, in the person's language, with the reference code."""

from __future__ import annotations

from flask_babel import force_locale, gettext

from cfm.i18n import isolate_plain, locale_for_language
from cfm.models import Case


def acknowledgement_locale(case: Case) -> str:
    """The case's language when we have that locale, otherwise the programme's default."""
    return locale_for_language(case.language) or locale_for_language(case.programme.default_language) or "en"


def acknowledgement(case: Case) -> str:
    """Short enough for two SMS segments in every locale (tests/cfm/i18n/test_acknowledgement.py counts them)."""
    locale = acknowledgement_locale(case)
    # In right-to-left locales the code is wrapped in left-to-right marks so that it reads in order (issue 7).
    reference = isolate_plain(case.reference, locale)
    with force_locale(locale):
        # TRANSLATORS: an SMS: at most 2 segments (about 120 letters in non-Latin scripts, with the two codes).
        # Write STATUS as the keyword of your language (channels/sms.py STATUS_KEYWORDS: STATUT, ESTADO, حالة...).
        return gettext(
            "Thank you, we received your message. Your reference is %(reference)s. "
            "To check it, send STATUS %(reference)s.",
            reference=reference,
        )
