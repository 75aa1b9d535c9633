"""Prediction: the interface, bad input, the routing rule and clear examples per restricted category."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, dataclass

import pytest

from classifier import language
from classifier.categories import CATEGORIES, LANGUAGES, RESTRICTED_CATEGORIES
from classifier.features import normalise
from classifier.predict import REASONS, Model, Prediction, route

BAD_INPUTS = [
    "",
    "   \n\t  ",
    "😀🙏🏽👍🔥",
    "0123456789 555 12",
    "x" * 100_000,
    "help " * 20_000,
    "abc\x00def\x00",
    "\x00",
    "\ud800 lone \udfff surrogates \udc80",
    "mixed العربية and English и русский ትግርኛ",
    "!!!???...",
]


@dataclass(frozen=True)
class FakeHit:
    """Stands in for classifier.safety_net.SafetyNetHit (category, term)."""

    category: str
    term: str
    language: str = "en"


def _check(prediction: Prediction) -> None:
    """Every field has the documented type and range."""
    assert prediction.category in CATEGORIES
    assert 0.0 <= prediction.confidence <= 1.0
    assert set(prediction.probabilities) <= set(CATEGORIES)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert prediction.language in {*LANGUAGES, language.UNKNOWN}
    assert set(prediction.restricted_reasons) <= set(REASONS)
    assert prediction.restricted == bool(prediction.restricted_reasons)
    assert prediction.safety_net_category in {None, *RESTRICTED_CATEGORIES}
    assert all(isinstance(term, str) and term for term in prediction.top_terms)
    json.dumps(prediction.to_dict())


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_bad_input_gives_a_prediction(small_model: Model, text: str) -> None:
    """Bad input never raises and gives a well-formed prediction."""
    _check(small_model.predict_one(text))


def test_nothing_to_read_is_other(small_model: Model) -> None:
    """Empty, whitespace, emoji-only and digits-only texts are `other` in language `unknown`."""
    for text in ["", "   ", "😀🙏🏽", "12345 678", "\x00"]:
        prediction = small_model.predict_one(text)
        assert prediction.category == "other"
        assert prediction.language == language.UNKNOWN
        assert prediction.top_terms == ()


def test_batch_keeps_order_and_length(small_model: Model) -> None:
    """predict returns one prediction per text, in order, matching predict_one."""
    texts = ["when is our flight", "", "thank you for the wheelchair", "😀"]
    batch = small_model.predict(texts)
    assert [p.to_dict() for p in batch] == [small_model.predict_one(t).to_dict() for t in texts]
    assert small_model.predict([]) == []


def test_prediction_is_frozen_and_json_safe(small_model: Model) -> None:
    """Prediction is a frozen dataclass whose to_dict() survives json.dumps."""
    prediction = small_model.predict_one("the escort asked me for money to keep our seats")
    with pytest.raises(FrozenInstanceError):
        prediction.category = "other"  # type: ignore[misc]
    row = json.loads(json.dumps(prediction.to_dict()))
    assert set(row) == {
        "category",
        "confidence",
        "probabilities",
        "language",
        "restricted",
        "restricted_reasons",
        "safety_net_category",
        "top_terms",
        "model_version",
    }
    assert row["model_version"] == small_model.version


def test_top_terms_come_from_the_text(small_model: Model) -> None:
    """Top terms are words of the text itself, at most three."""
    text = "The driver demanded money for the seat on the bus to the airport"
    terms = small_model.predict_one(text).top_terms
    assert 1 <= len(terms) <= 3
    assert all(term in text for term in terms)


def test_model_attributes(small_model: Model) -> None:
    """threshold, version and metadata are there."""
    assert 0.0 < small_model.threshold < 1.0
    assert isinstance(small_model.version, str) and small_model.version
    assert isinstance(small_model.metadata, dict)


@pytest.mark.parametrize(
    ("category", "mass", "hit", "restricted", "reasons"),
    [
        ("appreciation", 0.0, False, False, ()),
        ("fraud_corruption", 0.9, False, True, ("category", "threshold")),
        ("fraud_corruption", 0.1, False, True, ("category",)),
        ("service_complaint", 0.3, False, True, ("threshold",)),
        ("service_complaint", 0.0, True, True, ("safety_net",)),
        ("staff_misconduct", 0.6, True, True, ("category", "threshold", "safety_net")),
    ],
)
def test_routing_rule(category: str, mass: float, hit: bool, restricted: bool, reasons: tuple[str, ...]) -> None:
    """Restricted if the category is, OR the restricted mass reaches the threshold, OR the safety net hits."""
    assert route(category, mass, 0.25, hit) == (restricted, reasons)


def test_safety_net_hit_adds_restriction(small_model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    """A safety-net hit sends a general-looking text to the restricted queue and names its category."""
    monkeypatch.setattr(small_model, "_scan", lambda text: FakeHit("safety_protection", "test-term"))
    prediction = small_model.predict_one("thank you very much for the help")
    assert prediction.restricted
    assert "safety_net" in prediction.restricted_reasons
    assert prediction.safety_net_category == "safety_protection"


def test_safety_net_cannot_remove_restriction(small_model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the safety net says, a case restricted without it stays restricted, and any hit restricts."""
    texts = [
        "the officer said I must sleep with him or he removes my name from the list",
        "thank you for the wheelchair at the airport",
        "when is our flight",
        "the guard hit my brother",
    ]
    monkeypatch.setattr(small_model, "_scan", lambda text: None)
    silent = small_model.predict(texts)
    assert all("safety_net" not in p.restricted_reasons for p in silent)
    for category in (*RESTRICTED_CATEGORIES, "appreciation"):
        monkeypatch.setattr(small_model, "_scan", lambda text, c=category: FakeHit(c, "term"))
        for before, after in zip(silent, small_model.predict(texts), strict=True):
            assert after.restricted and after.restricted >= before.restricted
            assert "safety_net" in after.restricted_reasons
            assert after.safety_net_category == (category if category in RESTRICTED_CATEGORIES else None)


def test_failing_safety_net_fails_closed(
    small_model: Model, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in the safety net restricts the case and logs no text."""

    def broken(text: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(small_model, "_scan", broken)
    with caplog.at_level("ERROR"):
        prediction = small_model.predict_one("secret words here")
    assert prediction.restricted and prediction.restricted_reasons[-1] == "safety_net"
    assert "secret" not in caplog.text


def test_real_safety_net_is_used(small_model: Model) -> None:
    """The model calls classifier.safety_net.scan on every text."""
    from classifier import safety_net

    text = "the driver touched me and asked me to spend the night with him"
    hit = safety_net.scan(text)
    prediction = small_model.predict_one(text)
    if hit is not None:
        assert "safety_net" in prediction.restricted_reasons
        assert prediction.safety_net_category == hit.category
    assert prediction.restricted


CLEAR_RESTRICTED = {
    "sexual_exploitation_abuse": [
        ("en", "The driver said he would give my daughter a seat on the bus if she spent the night with him."),
        ("fr", "L'interprète m'a dit qu'il accélérerait mon dossier si je couchais avec lui."),
        ("es", "El guardia del centro me pidió sexo a cambio de ponerme en la lista del vuelo."),
        ("ar", "السائق طلب مني أن أنام معه مقابل مقعد في الحافلة"),
        ("ru", "Сопровождающий сказал, что поможет с документами, если я проведу с ним ночь."),
        ("uk", "Охоронець чіпляється до дівчат і пропонує допомогу за інтим."),
    ],
    "fraud_corruption": [
        ("en", "The staff member asked us to pay 200 dollars to put our names on the departure list."),
        ("fr", "Un employé demande 100 euros pour avoir une place dans le bus de départ."),
        ("es", "Nos pidieron dinero para darnos una cita de entrevista más rápida."),
        ("ar", "الموظف طلب مني مئة دولار حتى يضع اسمي في قائمة السفر"),
        ("ru", "Сотрудник требует деньги за то, чтобы включить нас в список на вылет."),
        ("sw", "Afisa aliniambia nilipe pesa ili jina langu liwekwe kwenye orodha ya safari."),
    ],
    "staff_misconduct": [
        ("en", "The escort slapped my son and threatened to cancel our case if we complained."),
        ("fr", "Le garde a frappé mon mari et l'a insulté devant tout le monde."),
        ("es", "El funcionario nos gritó insultos racistas y confiscó nuestros pasaportes."),
        ("ar", "الموظف ضرب أخي وهدده بإلغاء ملفه إذا اشتكى"),
        ("uk", "Працівник центру вдарив мого батька і погрожував вигнати нас."),
        ("sw", "Mlinzi alimpiga mume wangu na kututishia kutufukuza kambini."),
    ],
    "safety_protection": [
        ("en", "Men in the transit centre beat my brother last night and say they will kill him."),
        ("fr", "Ma voisine veut se suicider, elle dit qu'elle ne veut plus vivre."),
        ("es", "Un niño de diez años está solo en el centro, sus padres desaparecieron."),
        ("ar", "أخاف من المهربين، يهددونني ويطلبون أن أعمل لهم"),
        ("ru", "Мой муж бьёт меня и детей каждый вечер, нам нужна защита."),
        ("uk", "Мою доньку хочуть силою видати заміж, їй лише п'ятнадцять."),
    ],
}


@pytest.mark.parametrize(
    ("category", "lang", "text"),
    [(category, lang, text) for category, items in CLEAR_RESTRICTED.items() for lang, text in items],
)
def test_clear_restricted_examples_reach_the_restricted_queue(
    default_model: Model, category: str, lang: str, text: str
) -> None:
    """Clear reports for each restricted category, in several languages, go to the restricted queue."""
    prediction = default_model.predict_one(text)
    assert prediction.restricted, f"{category}/{lang}: {prediction.category} {prediction.probabilities}"


@pytest.mark.parametrize("category", RESTRICTED_CATEGORIES)
def test_clear_restricted_examples_mostly_get_their_category(default_model: Model, category: str) -> None:
    """Most clear reports of a restricted category are also given that category (not just restricted)."""
    items = CLEAR_RESTRICTED[category]
    predicted = [default_model.predict_one(text).category for _, text in items]
    assert sum(p == category for p in predicted) >= len(items) - 2, predicted


UNSEEN_SCRIPTS = [
    "मुझे मदद चाहिए, बस देर से आई",
    "ჩვენი ავტობუსი ექვსი საათით დაგვიანდა",
    "我们的公共汽车晚了六个小时",
    "รถบัสของเรามาสายหกชั่วโมง ไม่มีใครบอกเรา",
    "Մեր ավտոբուսը վեց ժամ ուշացավ, ոչ ոք մեզ չասաց",
    "ہمیں مدد چاہیے",  # Urdu: Arabic script, a language the corpus does not have (not asserted unfamiliar)
]


@pytest.mark.parametrize("text", UNSEEN_SCRIPTS)
def test_unfamiliar_script_fails_closed(default_model: Model, text: str) -> None:
    """Text in a script (or language) the corpus never saw goes to the restricted queue for a focal point."""
    prediction = default_model.predict_one(text)
    assert prediction.restricted
    assert "threshold" in prediction.restricted_reasons


@pytest.mark.parametrize("text", UNSEEN_SCRIPTS[:5])
def test_unseen_scripts_are_unfamiliar(default_model: Model, text: str) -> None:
    """Georgian, Hindi, Chinese, Thai and Armenian lines share almost no n-gram with training (familiarity < 0.1)."""
    familiar = default_model.familiarity([normalise(text)])
    assert familiar is not None and familiar[0] < 0.1


@pytest.mark.parametrize(
    "text",
    [
        "The bus was six hours late and nobody told us why.",
        "Le bus avait six heures de retard et personne ne nous a prévenus.",
        "الحافلة تأخرت ست ساعات ولم يخبرنا أحد",
        "Автобус опоздал на шесть часов, и никто нам ничего не сказал.",
        "a",
    ],
)
def test_training_language_lines_are_familiar(default_model: Model, text: str) -> None:
    """A line in a language of the corpus (and a one-letter text) counts as familiar."""
    familiar = default_model.familiarity([normalise(text)])
    assert familiar is not None and familiar[0] > 0.7


def test_a_fully_unfamiliar_text_gets_other(small_model: Model) -> None:
    """Uniform probabilities (familiarity 0, gamma > 0) give the category "other", not the first class."""
    prediction = small_model.predict_one("ჩვენი ავტობუსი ექვსი საათით დაგვიანდა")
    assert small_model.metadata["unfamiliar_gamma"] > 0
    values = list(prediction.probabilities.values())
    assert max(values) - min(values) <= 1e-12
    assert small_model.classes[0] != "other"
    assert prediction.category == "other"
    assert prediction.confidence == pytest.approx(1.0 / len(small_model.classes))
