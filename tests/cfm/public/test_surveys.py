"""Surveys: definitions in data, the public survey page, structured answers stored, free text through intake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask_babel import force_locale, ngettext
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from cfm.config import DEFAULTS
from cfm.extensions import db
from cfm.models import Case, Survey, SurveyResponse
from cfm.services.admin import create_programme
from cfm.services.surveys import SURVEY_DIR, library, load_definition, publish_survey, unpublish_survey
from channels.web import SurveyDefinition
from tests.cfm.public.conftest import NOTHING, reference_in, rows, token_in, words

HTML_TAG = {"ar": b'<html dir="rtl" lang="ar">', "en": b'<html dir="ltr" lang="en">'}
URL = "/{lang}/p/kenya/survey/travel"
ABUSE = "The driver said I must sleep with him or he will remove my name from the bus list."


def only_response() -> SurveyResponse:
    """The one stored survey response."""
    db.session.expire_all()
    return db.session.scalars(select(SurveyResponse)).one()


def test_every_shipped_definition_is_valid_and_translated() -> None:
    definitions = library()
    assert {"pre-departure-briefing", "travel", "arrival"} <= set(definitions)
    for path in SURVEY_DIR.glob("*.yaml"):
        definition = load_definition(path)
        assert definition.slug == path.stem
        for question in definition.questions:
            assert {"en", "ar", "fr"} <= set(question.text), f"{path.name}: {question.id}"
            for option in question.options:
                assert {"en", "ar", "fr"} <= set(option.text)
        assert any(q.type == "free_text" for q in definition.questions), path.name


def test_publishing_copies_the_definition_and_can_be_repeated(programme: Any) -> None:
    first = publish_survey(programme, "arrival")
    again = publish_survey(programme, "arrival")
    assert first.id == again.id
    assert SurveyDefinition.from_dict(again.definition) == library()["arrival"]


def test_survey_page_is_rendered_in_the_persons_language(client: FlaskClient, survey: Survey, lang: str) -> None:
    response = client.get(URL.format(lang=lang))
    assert response.status_code == 200
    assert HTML_TAG[lang] in response.data
    page = response.data.decode()
    expected = {"ar": "هل شعرت بالأمان أثناء الرحلة؟", "en": "Did you feel safe during the journey?"}[lang]
    assert expected in page
    assert '<fieldset id="q_overall"' in page and 'name="q_overall" value="5"' in page
    assert '<label for="q_comment">' in page
    assert 'name="website"' in page


# The shipped surveys are written in all twelve locales (issue 7): a locale added by configuration shows English.
@pytest.mark.parametrize("app", [{"LOCALES": [*DEFAULTS["LOCALES"], "de"]}], indirect=True)
def test_a_locale_without_translation_falls_back_to_english(client: FlaskClient, survey: Survey) -> None:
    response = client.get(URL.format(lang="de"))
    assert response.status_code == 200
    assert b"Did you feel safe during the journey?" in response.data
    assert b'<html dir="ltr" lang="de">' in response.data


def test_the_shipped_surveys_are_written_in_every_locale(client: FlaskClient, survey: Survey) -> None:
    for lang in DEFAULTS["LOCALES"]:
        if lang != "en":
            assert b"Did you feel safe during the journey?" not in client.get(URL.format(lang=lang)).data, lang


def test_programme_page_lists_its_surveys(client: FlaskClient, survey: Survey, lang: str) -> None:
    page = client.get(f"/{lang}/p/kenya").data.decode()
    assert f'href="/{lang}/p/kenya/survey/travel"' in page
    with force_locale(lang):
        assert ngettext("%(num)d question", "%(num)d questions", 5) in page


def test_structured_answers_alone_are_stored_without_a_case(client: FlaskClient, survey: Survey, lang: str) -> None:
    data = {"q_overall": "4", "q_felt_safe": "yes", "q_needs_met": "no", "q_comment": "  "}
    response = client.post(URL.format(lang=lang), data=data)
    assert response.status_code == 200
    assert HTML_TAG[lang] in response.data
    assert (
        words(lang, "Thank you. Your answers were recorded.") in response.data
        and b'id="reference"' not in response.data
    )
    stored = only_response()
    assert stored.answers == {"overall": 4, "felt_safe": True, "needs_met": False}
    assert stored.case is None and stored.survey_id == survey.id and stored.programme_id == survey.programme_id
    assert stored.locale == lang and stored.survey_version == 1
    assert rows()["case"] == 0


def test_free_text_goes_through_intake_and_is_linked(client: FlaskClient, survey: Survey) -> None:
    data = {"q_overall": "2", "q_comment": "The bus had no water for six hours."}
    response = client.post(URL.format(lang="en"), data=data)
    reference = reference_in(response.data)
    stored = only_response()
    assert stored.answers == {"overall": 2}
    assert "water" not in str(stored.answers)  # free text lives in the case only
    assert stored.free_text_questions == ["comment"]
    case = stored.case
    assert case is not None and case.reference == reference
    assert case.channel == "survey"
    assert case.text == "The bus had no water for six hours."
    assert case.extra == {"survey": "travel", "survey_version": 1, "ui_locale": "en"}


def test_a_survey_comment_about_abuse_reaches_the_restricted_queue(client: FlaskClient, survey: Survey) -> None:
    client.post(URL.format(lang="ar"), data={"q_staff_respect": "1", "q_comment": ABUSE})
    case = db.session.scalars(select(Case)).one()
    assert case.queue == "restricted"
    assert case.text_plain is None and case.text_sealed == ABUSE
    assert only_response().answers == {"staff_respect": 1}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"q_overall": "9"}, "q_overall"),
        ({"q_felt_safe": "perhaps"}, "q_felt_safe"),
        ({"q_comment": "x" * 6000}, "q_comment"),
        ({"q_comment": "nul\x00"}, "q_comment"),
        ({"q_overall": "3", "contact": "yes"}, "phone"),
    ],
)
def test_bad_answers_are_shown_next_to_the_question_and_nothing_is_stored(
    client: FlaskClient, survey: Survey, lang: str, data: dict[str, str], field: str
) -> None:
    response = client.post(URL.format(lang=lang), data=data)
    assert response.status_code == 400
    assert HTML_TAG[lang] in response.data
    assert f'id="{field}-error"'.encode() in response.data
    assert f'href="#{field}"'.encode() in response.data
    assert rows() == NOTHING


def test_an_empty_survey_is_refused(client: FlaskClient, survey: Survey) -> None:
    response = client.post(URL.format(lang="en"), data={})
    assert response.status_code == 400 and b"Please answer at least one question." in response.data
    assert rows() == NOTHING


def test_invalid_utf8_in_a_survey_answer_is_refused(client: FlaskClient, survey: Survey) -> None:
    body = b"q_overall=3&q_comment=%C3%28broken"
    response = client.post(URL.format(lang="en"), data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and b'id="q_comment-error"' in response.data
    assert rows() == NOTHING


def test_a_filled_honeypot_looks_accepted_but_stores_nothing(client: FlaskClient, survey: Survey) -> None:
    response = client.post(URL.format(lang="en"), data={"q_comment": "buy now", "website": "x"})
    assert response.status_code == 200
    reference_in(response.data)
    assert rows() == NOTHING


def test_sending_the_survey_twice_stores_it_once(client: FlaskClient, survey: Survey) -> None:
    references = []
    for answers in ({"q_overall": "5"}, {"q_overall": "5", "q_comment": "Thanks for the water."}):
        data = {**answers, "submission": token_in(client.get(URL.format(lang="en")).data)}
        pages = [client.post(URL.format(lang="en"), data=data) for _ in range(2)]
        assert [page.status_code for page in pages] == [200, 200]
        references.append([b'id="reference"' in page.data and reference_in(page.data) for page in pages])
    assert references[0] == [False, False]
    assert references[1][0] == references[1][1]
    assert rows()["survey_response"] == 2
    assert rows()["case"] == 1


@pytest.mark.parametrize(
    "path",
    ["/en/p/kenya/survey/no-such-survey", "/en/p/jordan/survey/travel", "/en/p/nowhere/survey/travel"],
)
def test_unknown_or_unpublished_surveys_are_not_found(client: FlaskClient, survey: Survey, path: str) -> None:
    create_programme("jordan", "Jordan transit")
    assert client.get(path).status_code == 404
    assert client.post(path, data={"q_overall": "3"}).status_code == 404


def test_an_unpublished_survey_disappears_but_its_answers_stay(client: FlaskClient, survey: Survey) -> None:
    client.post(URL.format(lang="en"), data={"q_overall": "3"})
    unpublish_survey(survey.programme, "travel")
    assert client.get(URL.format(lang="en")).status_code == 404
    assert b"survey/travel" not in client.get("/en/p/kenya").data
    assert rows()["survey_response"] == 1


@pytest.mark.parametrize("with_text", [False, True])
def test_database_loss_answers_503_and_stores_nothing(
    client: FlaskClient, survey: Survey, monkeypatch: pytest.MonkeyPatch, with_text: bool
) -> None:
    def gone() -> None:
        raise OperationalError("COMMIT", {}, Exception("the database is gone"))

    monkeypatch.setattr(db.session, "commit", gone)
    data = {"q_overall": "3", **({"q_comment": "the bus was late"} if with_text else {})}
    response = client.post(URL.format(lang="ar"), data=data)
    monkeypatch.undo()
    assert response.status_code == 503
    assert HTML_TAG["ar"] in response.data
    assert rows() == NOTHING


def test_the_survey_files_are_packaged_with_the_templates() -> None:
    setup = (Path(__file__).resolve().parents[3] / "setup.cfg").read_text()
    assert "surveys/*.yaml" in setup
