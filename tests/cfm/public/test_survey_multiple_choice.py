"""The arrival survey's multiple-choice question on the public page: checkboxes, answers as a list, errors in place."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_babel import force_locale, ngettext
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

import cfm
from cfm.config import DEFAULTS
from cfm.extensions import db
from cfm.models import Case, Survey, SurveyResponse
from cfm.services.surveys import library, publish_survey
from tests.cfm.public.conftest import NOTHING, reference_in, rows, words

URL = "/{lang}/p/kenya/survey/arrival"
RECEIVED = ["food", "hygiene_kit", "cash", "sim_card", "information", "nothing"]  # arrival.yaml's order
RTL = {"ar", "fa_AF", "ps"}


@pytest.fixture
def arrival(programme: Any) -> Survey:
    """The shipped arrival survey, published by the default programme."""
    return publish_survey(programme, "arrival")


def only_response() -> SurveyResponse:
    """The one stored survey response."""
    db.session.expire_all()
    return db.session.scalars(select(SurveyResponse)).one()


def checkbox_group(html: str) -> str:
    """The fieldset of the 'received' question."""
    match = re.search(r'<fieldset id="q_received".*?</fieldset>', html, re.S)
    assert match, "no checkbox group on the page"
    return match.group(0)


def ticked(html: str) -> list[str]:
    """The values of the ticked boxes of the 'received' question."""
    return re.findall(r'type="checkbox" id="q_received-\d+" name="q_received" value="([a-z_]+)" checked', html)


def limit_to(survey: Survey, limit: int) -> None:
    """Give the published 'received' question a max_choices (as a programme's own definition would)."""
    definition = dict(survey.definition)
    next(q for q in definition["questions"] if q["id"] == "received")["max_choices"] = limit
    survey.definition = definition
    flag_modified(survey, "definition")
    db.session.commit()


def test_the_shipped_arrival_survey_asks_what_people_received() -> None:
    definition = library()["arrival"]
    assert definition.version == 2
    question = next(q for q in definition.questions if q.id == "received")
    assert question.type == "multiple_choice" and question.max_choices is None
    assert [o.id for o in question.options] == RECEIVED
    for texts in [question.text, *(o.text for o in question.options)]:
        assert set(texts) == set(DEFAULTS["LOCALES"])  # like its other questions: all twelve locales
    assert [q.id for q in definition.questions] == ["welcome", "received", "has_housing", "biggest_need", "comment"]


def test_the_question_is_an_accessible_checkbox_group(client: FlaskClient, arrival: Survey, lang: str) -> None:
    response = client.get(URL.format(lang=lang))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    direction = "rtl" if lang in RTL else "ltr"
    assert f'<html dir="{direction}" lang="{lang}">' in html
    group = checkbox_group(html)
    expected = {"ar": ("ماذا استلمت عند وصولك؟", "شريحة هاتف"), "en": ("What did you receive on arrival?", "SIM card")}
    question, sim = expected[lang]
    assert f"<legend>{question}</legend>" in group
    assert 'aria-describedby="q_received-hint"' in group
    assert f'<p class="hint" id="q_received-hint">{words(lang, "Choose all that apply.").decode()}</p>' in group
    boxes = re.findall(r'<input type="checkbox" id="(q_received-\d)" name="q_received" value="([a-z_]+)">', group)
    assert [value for _, value in boxes] == RECEIVED
    labels = re.findall(r'<label for="(q_received-\d)">([^<]+)</label>', group)
    assert [for_ for for_, _ in labels] == [id_ for id_, _ in boxes]  # every box has its own label
    assert labels[3][1] == sim
    assert "<script" not in html  # works without JavaScript


def test_the_page_renders_in_all_twelve_locales(client: FlaskClient, arrival: Survey) -> None:
    question = next(q for q in library()["arrival"].questions if q.id == "received")
    for lang in DEFAULTS["LOCALES"]:
        response = client.get(URL.format(lang=lang))
        assert response.status_code == 200, lang
        html = response.get_data(as_text=True)
        direction = "rtl" if lang in RTL else "ltr"
        assert f'<html dir="{direction}" lang="{lang.replace("_", "-")}">' in html, lang
        group = checkbox_group(html)
        assert f"<legend>{escape(question.text[lang])}</legend>" in group, lang
        for option in question.options:
            assert f">{escape(option.text[lang])}</label>" in group, (lang, option.id)


def test_the_stylesheet_gives_checkboxes_the_radio_buttons_large_touch_targets() -> None:
    css = (Path(cfm.__file__).parent / "static" / "cfm.css").read_text(encoding="utf-8")
    assert ".radio input, .checkbox input {" in css and "width: 1.6rem; height: 1.6rem;" in css
    assert ".radio label, .checkbox label {" in css


def test_ticked_boxes_are_stored_as_a_list_of_option_ids(client: FlaskClient, arrival: Survey, lang: str) -> None:
    data = {"q_welcome": "4", "q_received": ["sim_card", "food", "information"], "q_has_housing": "yes"}
    response = client.post(URL.format(lang=lang), data=data)
    assert response.status_code == 200
    assert words(lang, "Thank you. Your answers were recorded.") in response.data
    stored = only_response()
    assert stored.answers == {
        "welcome": 4,
        "received": ["food", "sim_card", "information"],  # the definition's order
        "has_housing": True,
    }
    assert stored.survey_version == 2 and stored.case is None


def test_one_box_and_free_text_make_a_list_and_a_case(client: FlaskClient, arrival: Survey) -> None:
    data = {"q_received": "nothing", "q_comment": "Nobody met us at the airport."}
    reference = reference_in(client.post(URL.format(lang="en"), data=data).data)
    stored = only_response()
    assert stored.answers == {"received": ["nothing"]}
    assert stored.case is not None and stored.case.reference == reference
    assert stored.case.extra["survey_version"] == 2


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        (["food", "gold"], "Please choose one of the options."),
        (["food", "food"], "Please check this answer."),
    ],
    ids=["unknown", "twice"],
)
def test_wrong_choices_are_shown_next_to_the_question_and_nothing_is_stored(
    client: FlaskClient, arrival: Survey, lang: str, chosen: list[str], message: str
) -> None:
    response = client.post(URL.format(lang=lang), data={"q_welcome": "4", "q_received": chosen})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    group = checkbox_group(html)
    assert 'class="error" id="q_received-error"' in group and words(lang, message).decode() in group
    assert 'aria-describedby="q_received-hint q_received-error"' in group
    assert 'href="#q_received"' in html  # the error summary links to the group
    assert rows() == NOTHING


def test_more_boxes_than_allowed_are_refused_with_the_limit_in_the_persons_language(
    client: FlaskClient, arrival: Survey, lang: str
) -> None:
    limit_to(arrival, 2)
    page = client.get(URL.format(lang=lang)).get_data(as_text=True)
    with force_locale(lang):
        at_most = str(escape(ngettext("Choose at most %(num)d answer.", "Choose at most %(num)d answers.", 2)))
    assert f'id="q_received-hint">{at_most}</p>' in checkbox_group(page)
    response = client.post(URL.format(lang=lang), data={"q_received": ["food", "cash", "sim_card"]})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert '<p class="error" id="q_received-error"><span class="visually-hidden">' in html
    error = re.search(r'id="q_received-error">.*?</span>([^<]*)</p>', html)
    assert error is not None and error.group(1) == at_most
    assert ticked(html) == ["food", "cash", "sim_card"]  # what the person ticked is kept, to untick one
    assert rows() == NOTHING
    response = client.post(URL.format(lang=lang), data={"q_received": ["food", "cash"]})
    assert response.status_code == 200 and only_response().answers == {"received": ["food", "cash"]}


def test_a_checkbox_value_that_is_not_utf8_is_refused(client: FlaskClient, arrival: Survey) -> None:
    body = b"q_received=food&q_received=%C3%28&q_welcome=3"
    response = client.post(URL.format(lang="en"), data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and b'id="q_received-error"' in response.data
    assert rows() == NOTHING


def test_other_questions_still_take_one_value(client: FlaskClient, arrival: Survey) -> None:
    # Only checkbox groups keep repeated values; a rating sent twice counts once, as before.
    response = client.post(URL.format(lang="en"), data={"q_welcome": ["5", "1"], "q_received": ["cash"]})
    assert response.status_code == 200
    assert only_response().answers == {"welcome": 5, "received": ["cash"]}
    assert db.session.scalars(select(Case)).first() is None
