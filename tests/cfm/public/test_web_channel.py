"""channels/web.py alone: form and survey answers -> IntakeRequest, every wrong field named."""

from __future__ import annotations

from typing import Any

import pytest

from channels.base import ChannelError
from channels.web import (
    CATEGORY_HINTS,
    DefinitionError,
    FormErrors,
    SurveyDefinition,
    feedback_request,
    honeypot_filled,
    localised,
    normalise_phone,
    submission_id,
    survey_answers,
    undecodable_fields,
)

TOKEN = "tok_0123456789abcdef"

DEFINITION: dict[str, Any] = {
    "slug": "travel",
    "version": 2,
    "title": {"en": "Your journey", "ar": "رحلتك"},
    "questions": [
        {"id": "overall", "type": "rating", "text": {"en": "How was it?"}, "required": True},
        {"id": "safe", "type": "yes_no", "text": {"en": "Did you feel safe?"}},
        {
            "id": "need",
            "type": "single_choice",
            "text": {"en": "Need?"},
            "options": [{"id": "food", "text": {"en": "Food"}}, {"id": "water", "text": {"en": "Water"}}],
        },
        {"id": "comment", "type": "free_text", "text": {"en": "Anything else?"}},
        {"id": "other", "type": "free_text", "text": {"en": "And?"}},
    ],
}


def fields(exc: pytest.ExceptionInfo[FormErrors]) -> dict[str | None, str]:
    """Field -> error code of a FormErrors."""
    return {e.field: e.code for e in exc.value.errors}


def test_valid_anonymous_feedback_becomes_a_web_intake_request() -> None:
    request = feedback_request(
        {"text": "  When is the bus?  ", "category": "question", "contact": "no", "submission": TOKEN},
        programme="kenya",
        locale="ar",
    )
    assert request.channel == "web"
    assert request.text == "When is the bus?"
    assert request.programme == "kenya"
    assert request.category_hint == "information_request"
    assert request.provider_id == TOKEN
    assert request.contact.is_empty() and not request.consent_to_contact
    assert request.extra == {"ui_locale": "ar"}


def test_contact_details_are_dropped_unless_the_person_asks_to_be_contacted() -> None:
    data = {"text": "hello", "contact": "no", "phone": "+254 711 111 111", "name": "Amina"}
    request = feedback_request(data, programme="kenya")
    assert request.contact.is_empty() and not request.consent_to_contact
    request = feedback_request({**data, "contact": "yes", "method": "sms"}, programme="kenya")
    assert request.contact.phone == "+254711111111"
    assert request.contact.name == "Amina"
    assert request.consent_to_contact
    assert request.extra["contact_method"] == "sms"


def test_asking_for_contact_without_a_number_is_an_error_on_the_phone_field() -> None:
    with pytest.raises(FormErrors) as exc:
        feedback_request({"text": "hello", "contact": "yes"}, programme="kenya")
    assert fields(exc) == {"phone": "phone_required"}


def test_every_wrong_field_is_reported_at_once() -> None:
    data = {"text": "", "category": "bribe", "contact": "yes", "phone": "call me", "method": "pigeon"}
    with pytest.raises(FormErrors) as exc:
        feedback_request(data, programme="kenya")
    assert fields(exc) == {
        "text": "empty_text",
        "category": "invalid_choice",
        "method": "invalid_choice",
        "phone": "invalid_phone",
    }
    assert isinstance(exc.value, ChannelError) and exc.value.field == "text"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty_text"),
        (" \n\t ", "empty_text"),
        ("x" * 6000, "text_too_long"),
        ("x" * 10_000, "text_too_long"),
        ("nul\x00byte", "invalid_characters"),
        (b"\xff\xfe not utf-8", "invalid_encoding"),
    ],
)
def test_bad_text_is_refused_with_an_error_on_the_text_field(text: Any, code: str) -> None:
    with pytest.raises(FormErrors) as exc:
        feedback_request({"text": text}, programme="kenya")
    assert fields(exc) == {"text": code}


@pytest.mark.parametrize("text", ["🙏🙏🙏", "<script>alert(1)</script>", "abc \u202e txet desrever", "x" * 5000])
def test_odd_but_valid_text_is_accepted_unchanged(text: str) -> None:
    assert feedback_request({"text": text}, programme="kenya").text == text


def test_every_plain_words_hint_maps_to_a_hint_code() -> None:
    for choice, code in CATEGORY_HINTS.items():
        assert feedback_request({"text": "x", "category": choice}, programme="p").category_hint == code
    assert CATEGORY_HINTS["serious"] == "serious"


def test_without_a_default_programme_the_person_must_choose_one_of_the_offered() -> None:
    with pytest.raises(FormErrors) as exc:
        feedback_request({"text": "x"}, programme=None, programme_choices=["a", "b"])
    assert fields(exc) == {"programme": "choice_required"}
    with pytest.raises(FormErrors):
        feedback_request({"text": "x", "programme": "c"}, programme=None, programme_choices=["a", "b"])
    request = feedback_request({"text": "x", "programme": "b"}, programme=None, programme_choices=["a", "b"])
    assert request.programme == "b"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+254 711-111.111", "+254711111111"),
        ("(0711) 111 111", "0711111111"),
        ("٠٧١١١١١١١١", "0711111111"),
        ("", None),
        ("   ", None),
    ],
)
def test_phone_numbers_are_normalised(typed: str, expected: str | None) -> None:
    assert normalise_phone(typed) == expected


@pytest.mark.parametrize("typed", ["12345", "call me", "+1" + "2" * 20, "0711\x00111111"])
def test_phone_numbers_that_are_not_numbers_are_refused(typed: str) -> None:
    with pytest.raises(ChannelError) as exc:
        normalise_phone(typed)
    assert exc.value.field == "phone"


def test_honeypot_and_submission_token() -> None:
    assert not honeypot_filled({"website": ""})
    assert not honeypot_filled({})
    assert honeypot_filled({"website": "http://spam.example"})
    assert submission_id({"submission": TOKEN}) == TOKEN
    assert submission_id({"submission": "short"}) is None
    assert submission_id({"submission": "bad token with spaces!!"}) is None


def test_undecodable_fields_finds_values_that_are_not_utf8() -> None:
    body = b"csrf_token=abc&text=caf%C3%A9&name=%FF%FE&phone=+254&text2=ok%E9"
    assert undecodable_fields(body) == {"name": b"\xff\xfe", "text2": b"ok\xe9"}
    assert undecodable_fields(b"") == {}


def test_localised_falls_back_from_variant_to_language_to_english() -> None:
    texts = {"en": "Hello", "fa": "سلام", "ar": "مرحبا"}
    assert localised(texts, "ar") == "مرحبا"
    assert localised(texts, "fa_AF") == "سلام"
    assert localised(texts, "uk") == "Hello"
    assert localised(texts, None) == "Hello"


def test_survey_definition_is_checked() -> None:
    definition = SurveyDefinition.from_dict(DEFINITION)
    assert [q.field for q in definition.questions] == ["q_overall", "q_safe", "q_need", "q_comment", "q_other"]
    assert [q.id for q in definition.free_text_questions] == ["comment", "other"]
    broken = [
        {**DEFINITION, "slug": "Bad Slug"},
        {**DEFINITION, "questions": []},
        {**DEFINITION, "title": {"ar": "no English"}},
        {**DEFINITION, "questions": [{"id": "x", "type": "essay", "text": "?"}]},
        {**DEFINITION, "questions": [{"id": "x", "type": "single_choice", "text": "?", "options": []}]},
        {
            **DEFINITION,
            "questions": [{"id": "x", "type": "rating", "text": "?"}, {"id": "x", "type": "rating", "text": "?"}],
        },
    ]
    for data in broken:
        with pytest.raises(DefinitionError):
            SurveyDefinition.from_dict(data)


def test_survey_answers_are_structured_and_free_text_is_joined_into_one_request() -> None:
    definition = SurveyDefinition.from_dict(DEFINITION)
    data = {
        "q_overall": "4",
        "q_safe": "no",
        "q_need": "water",
        "q_comment": "The escort shouted at us.",
        "q_other": "  Thanks for the food. ",
        "submission": TOKEN,
    }
    answers = survey_answers(definition, data, programme="kenya", locale="ar")
    assert answers.structured == {"overall": 4, "safe": False, "need": "water"}
    assert answers.free_text_ids == ("comment", "other")
    request = answers.request
    assert request is not None
    assert request.channel == "survey"
    assert request.text == "The escort shouted at us.\n\nThanks for the food."
    assert request.provider_id == TOKEN
    assert request.extra == {"survey": "travel", "survey_version": 2, "ui_locale": "ar"}


def test_survey_without_free_text_has_no_intake_request() -> None:
    definition = SurveyDefinition.from_dict(DEFINITION)
    answers = survey_answers(definition, {"q_overall": "5", "q_comment": "   "}, programme="kenya")
    assert answers.structured == {"overall": 5}
    assert answers.request is None


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({}, {"q_overall": "answer_required"}),
        ({"q_overall": "6"}, {"q_overall": "invalid_choice"}),
        ({"q_overall": "٣"}, {"q_overall": "invalid_choice"}),
        ({"q_overall": "3", "q_safe": "maybe"}, {"q_safe": "invalid_choice"}),
        ({"q_overall": "3", "q_need": "gold"}, {"q_need": "invalid_choice"}),
        ({"q_overall": "3", "q_comment": "x" * 6000}, {"q_comment": "text_too_long"}),
        ({"q_overall": "3", "q_comment": "x" * 3000, "q_other": "y" * 3000}, {"q_other": "text_too_long"}),
        ({"q_overall": "3", "q_comment": b"\xff"}, {"q_comment": "invalid_encoding"}),
        ({"q_overall": "3", "q_comment": "a\x00b"}, {"q_comment": "invalid_characters"}),
    ],
)
def test_survey_answers_are_validated_against_the_definition(data: dict[str, Any], errors: dict[str, str]) -> None:
    definition = SurveyDefinition.from_dict(DEFINITION)
    with pytest.raises(FormErrors) as exc:
        survey_answers(definition, data, programme="kenya")
    assert fields(exc) == errors


def test_an_empty_survey_is_refused_as_a_whole() -> None:
    optional = {**DEFINITION, "questions": [{**DEFINITION["questions"][0], "required": False}]}
    with pytest.raises(FormErrors) as exc:
        survey_answers(SurveyDefinition.from_dict(optional), {}, programme="kenya")
    assert fields(exc) == {None: "empty_survey"}
