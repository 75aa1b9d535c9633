"""The SMS acknowledgement in each of the 12 locales: in that language, at most 2 segments, a STATUS that works."""

from __future__ import annotations

import pytest
from flask import Flask

from cfm.i18n import LRM
from cfm.models import Case, Programme
from cfm.services.acknowledgement import acknowledgement
from cfm.services.reference import normalise_reference
from channels.sms import STATUS_KEYWORDS, fold_word, parse_keyword, segments
from tests.cfm.i18n.conftest import ALL_LOCALES, RTL, catalog

MSGID = "Thank you, we received your message. Your reference is %(reference)s. To check it, send STATUS %(reference)s."
# The language code the classifier gives a case, per locale (Dari is "fa"; cfm.i18n maps it to fa_AF).
CASE_LANGUAGE = {locale: locale.split("_")[0] for locale in ALL_LOCALES}
# Codes that stress the layout: all letters, all digits, digits first (the one that flips in Arabic without marks).
REFERENCES = ("7QK2-M9XD", "ZZZZ-WWWW", "1234-5678", "1234-ABCD")


def case_in(language: str | None, reference: str = "7QK2-M9XD", programme_language: str = "en") -> Case:
    """An unsaved case: the acknowledgement needs only its code, its language and its programme's language."""
    return Case(reference=reference, language=language, programme=Programme(default_language=programme_language))


def advertised_keyword(text: str, reference: str) -> str:
    """The word just before the last reference code: the keyword the message tells people to send."""
    before = text.rsplit(reference, 1)[0].replace(LRM, " ")
    return before.split()[-1].rstrip(":：፦")


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("locale", ALL_LOCALES)
def test_acknowledgement_is_in_the_case_language_and_fits_two_sms(app: Flask, locale: str, reference: str) -> None:
    with app.app_context():
        text = acknowledgement(case_in(CASE_LANGUAGE[locale], reference))
        english = acknowledgement(case_in("en", reference))
    assert reference in text
    encoding, count = segments(text)
    assert count <= 2, f"{locale}: {count} {encoding} segments ({len(text)} characters): shorten the msgstr"
    if locale == "en":
        assert text == MSGID % {"reference": reference}
        return
    assert text != english, f"{locale}: the acknowledgement is in English; translate it in {locale}/messages.po"
    shown = f"{LRM}{reference}{LRM}" if locale in RTL else reference
    assert text == catalog(locale)[MSGID].string % {"reference": shown}


@pytest.mark.parametrize("locale", ALL_LOCALES)
def test_the_advertised_status_keyword_is_accepted_for_that_language(app: Flask, locale: str) -> None:
    reference = "7QK2-M9XD"
    with app.app_context():
        text = acknowledgement(case_in(CASE_LANGUAGE[locale], reference))
    keyword = advertised_keyword(text, reference)
    language = CASE_LANGUAGE[locale]
    assert fold_word(keyword) in {fold_word(word) for word in STATUS_KEYWORDS[language]}, (
        f"{locale}: '{keyword}' is not one of channels.sms.STATUS_KEYWORDS[{language!r}]"
    )
    # As typed back: the keyword and code, in small letters, or copied from the keyword to the end of the SMS.
    for reply in (f"{keyword} {reference}", f"{keyword} {reference.lower()}", keyword + text.rsplit(keyword, 1)[1]):
        parsed = parse_keyword(reply)
        assert parsed is not None and parsed.kind == "status", f"{locale}: {reply!r} is not read as a STATUS request"
        assert normalise_reference(parsed.reference or "") == reference, reply


@pytest.mark.parametrize("locale", RTL)
def test_codes_in_right_to_left_acknowledgements_are_marked_left_to_right(app: Flask, locale: str) -> None:
    with app.app_context():
        text = acknowledgement(case_in(CASE_LANGUAGE[locale], "1234-ABCD"))
    # Without the marks an Arabic-script phone shows ABCD-1234 (issue 7); they are invisible and cost 2 characters.
    assert text.count(f"{LRM}1234-ABCD{LRM}") == 2


def test_dari_cases_get_the_dari_acknowledgement_under_either_code(app: Flask) -> None:
    with app.app_context():
        assert acknowledgement(case_in("fa")) == acknowledgement(case_in("fa_AF")) == acknowledgement(case_in("fa-AF"))


def test_unknown_language_falls_back_to_the_programme_language_then_english(app: Flask) -> None:
    with app.app_context():
        swahili = acknowledgement(case_in("sw"))
        assert acknowledgement(case_in("xx", programme_language="sw")) == swahili
        assert acknowledgement(case_in(None, programme_language="sw")) == swahili
        assert acknowledgement(case_in("xx", programme_language="xx")) == MSGID % {"reference": "7QK2-M9XD"}
