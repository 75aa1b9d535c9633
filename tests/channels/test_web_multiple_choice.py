"""channels/web.py alone: multiple-choice survey questions (issue 6 follow-up), from the definition to the answer."""

from __future__ import annotations

from typing import Any

import pytest

from channels.base import ChannelError
from channels.web import (
    QUESTION_TYPES,
    DefinitionError,
    FormErrors,
    SurveyDefinition,
    TooManyChoices,
    chosen_options,
    survey_answers,
    undecodable_fields,
)

OPTIONS = [
    {"id": "food", "text": {"en": "Food", "ar": "طعام"}},
    {"id": "hygiene_kit", "text": {"en": "Hygiene kit"}},
    {"id": "cash", "text": {"en": "Cash"}},
    {"id": "nothing", "text": {"en": "Nothing"}},
]


def definition(**question: Any) -> SurveyDefinition:
    """A survey with a rating and one multiple-choice question, changed by `question` (None removes a key)."""
    received = {
        "id": "received",
        "type": "multiple_choice",
        "text": {"en": "What did you receive?"},
        "options": OPTIONS,
    }
    changed = {key: value for key, value in {**received, **question}.items() if value is not None}
    return SurveyDefinition.from_dict(
        {
            "slug": "arrival",
            "version": 2,
            "title": {"en": "Your arrival"},
            "questions": [{"id": "welcome", "type": "rating", "text": {"en": "How was it?"}}, changed],
        }
    )


def errors_of(data: dict[str, Any], **question: Any) -> dict[str | None, str]:
    """Field -> error code when these answers are refused."""
    with pytest.raises(FormErrors) as exc:
        survey_answers(definition(**question), data, programme="kenya")
    return {e.field: e.code for e in exc.value.errors}


def test_multiple_choice_is_a_question_type_with_options_and_an_optional_limit() -> None:
    assert "multiple_choice" in QUESTION_TYPES
    question = definition().questions[1]
    assert question.type == "multiple_choice" and question.max_choices is None
    assert [o.id for o in question.options] == ["food", "hygiene_kit", "cash", "nothing"]
    assert question.options[0].text == {"en": "Food", "ar": "طعام"}
    assert definition(max_choices=2).questions[1].max_choices == 2
    assert definition(max_choices=4).questions[1].max_choices == 4
    assert definition().multiple_choice_fields == frozenset({"q_received"})


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ({"options": None}, "at least two options"),
        ({"options": []}, "at least two options"),
        ({"options": OPTIONS[:1]}, "at least two options"),
        ({"options": [*OPTIONS, OPTIONS[0]]}, "option ids must be unique"),
        ({"options": [*OPTIONS, {"id": "Bad Id", "text": "x"}]}, "each option needs an id"),
        ({"options": [*OPTIONS, {"text": "no id"}]}, "each option needs an id"),
        ({"options": [*OPTIONS, {"id": "water", "text": {"fr": "Eau"}}]}, "English text is required"),
        ({"max_choices": 0}, "max_choices must be a whole number from 1 to 4"),
        ({"max_choices": 5}, "max_choices must be a whole number from 1 to 4"),
        ({"max_choices": "2"}, "max_choices must be a whole number from 1 to 4"),
        ({"max_choices": True}, "max_choices must be a whole number from 1 to 4"),
        ({"max_choices": 1.5}, "max_choices must be a whole number from 1 to 4"),
        ({"type": "single_choice", "max_choices": 2}, "only multiple-choice questions have max_choices"),
        ({"type": "rating", "options": None, "max_choices": 1}, "only multiple-choice questions have max_choices"),
        ({"type": "yes_no"}, "only single- and multiple-choice questions have options"),
    ],
)
def test_a_broken_multiple_choice_definition_is_refused_saying_where(question: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as exc:
        definition(**question)
    assert "arrival.received" in str(exc.value)


def test_ticked_boxes_are_stored_as_a_list_of_ids_in_the_definitions_order() -> None:
    answers = survey_answers(definition(), {"q_received": ["cash", "food"], "q_welcome": "4"}, programme="kenya")
    assert answers.structured == {"welcome": 4, "received": ["food", "cash"]}
    assert answers.request is None  # no free text, no case


def test_one_ticked_box_arrives_as_one_value_and_is_still_a_list() -> None:
    answers = survey_answers(definition(), {"q_received": "hygiene_kit"}, programme="kenya")
    assert answers.structured == {"received": ["hygiene_kit"]}


def test_a_kobo_select_multiple_string_is_accepted() -> None:
    # KoboToolbox sends a select_multiple answer as one string of option names separated by spaces.
    answers = survey_answers(definition(), {"q_received": " cash  food\thygiene_kit "}, programme="kenya")
    assert answers.structured == {"received": ["food", "hygiene_kit", "cash"]}


@pytest.mark.parametrize("nothing", [[], [""], ["  "], "", None])
def test_no_box_ticked_is_no_answer(nothing: Any) -> None:
    answers = survey_answers(definition(), {"q_welcome": "3", "q_received": nothing}, programme="kenya")
    assert answers.structured == {"welcome": 3}
    assert errors_of({"q_received": nothing}, required=True) == {"q_received": "answer_required"}


@pytest.mark.parametrize(
    ("chosen", "code"),
    [
        (["food", "gold"], "invalid_choice"),
        (["Food"], "invalid_choice"),
        ("food gold", "invalid_choice"),
        (["food", "food"], "duplicate_choice"),
        (["food cash", "cash"], "duplicate_choice"),
        (["food", b"\xff"], "invalid_encoding"),
        (b"food", "invalid_encoding"),
        ([7], "invalid_choice"),
        (7, "invalid_choice"),
        ({"food": True}, "invalid_choice"),
    ],
)
def test_wrong_choices_are_refused_on_the_questions_field(chosen: Any, code: str) -> None:
    assert errors_of({"q_welcome": "3", "q_received": chosen}) == {"q_received": code}


def test_more_boxes_than_max_choices_are_refused_with_the_limit() -> None:
    assert survey_answers(definition(max_choices=2), {"q_received": ["food", "cash"]}, programme="k").structured == {
        "received": ["food", "cash"]
    }
    with pytest.raises(FormErrors) as exc:
        survey_answers(definition(max_choices=2), {"q_received": ["food", "cash", "nothing"]}, programme="k")
    [error] = exc.value.errors
    assert isinstance(error, TooManyChoices)
    assert (error.code, error.field, error.limit) == ("too_many_choices", "q_received", 2)


def test_errors_on_other_questions_are_reported_together() -> None:
    assert errors_of({"q_welcome": "9", "q_received": ["gold"]}) == {
        "q_welcome": "invalid_choice",
        "q_received": "invalid_choice",
    }


def test_a_question_that_takes_one_value_refuses_several() -> None:
    assert errors_of({"q_welcome": ["3", "4"], "q_received": ["food"]}) == {"q_welcome": "invalid_choice"}


def test_chosen_options_alone() -> None:
    question = definition(max_choices=3).questions[1]
    assert chosen_options(question, ("nothing", "food")) == ["food", "nothing"]
    assert chosen_options(question, [None, ""]) is None
    with pytest.raises(ChannelError) as exc:
        chosen_options(question, "food cash hygiene_kit nothing")
    assert exc.value.code == "too_many_choices" and exc.value.field == "q_received"


def test_an_undecodable_checkbox_value_is_found_in_the_raw_body() -> None:
    assert undecodable_fields(b"q_received=food&q_received=%C3%28") == {"q_received": b"\xc3("}
