"""Language identification: accuracy per language on the corpus, and bad input that must never raise."""

from __future__ import annotations

import pytest

from classifier import language
from classifier.categories import LANGUAGES
from classifier.data import Example

NATIVE_FLOOR = 0.9


def _native(corpus: list[Example], lang: str) -> list[Example]:
    """Native-script lines of one language."""
    return [e for e in corpus if e.lang == lang and e.variant == "native"]


def test_corpus_covers_every_language(corpus: list[Example]) -> None:
    """Every one of the 12 languages has native lines to measure language identification on."""
    missing = [lang for lang in LANGUAGES if not _native(corpus, lang)]
    assert not missing, f"no native corpus lines for {missing}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_native_lines_identified(corpus: list[Example], lang: str) -> None:
    """At least 90% of a language's native-script corpus lines are identified as that language."""
    lines = _native(corpus, lang)
    if not lines:
        pytest.skip(f"no {lang} corpus lines yet (test_corpus_covers_every_language fails for it)")
    found = [language.detect(e.text) for e in lines]
    accuracy = sum(f == lang for f in found) / len(lines)
    assert accuracy >= NATIVE_FLOOR, f"{lang}: {accuracy:.3f} of {len(lines)} lines"


def test_transliterated_lines_give_a_known_code(corpus: list[Example]) -> None:
    """Transliterated and code-mixed lines come back as one of our codes or unknown, never anything else."""
    lines = [e for e in corpus if e.variant != "native"]
    allowed = {*LANGUAGES, language.UNKNOWN}
    assert all(language.detect(e.text) in allowed for e in lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("when is our flight to Toronto, nobody told us the date", "en"),
        ("Bonjour, à quelle heure part le bus pour l'aéroport demain ?", "fr"),
        ("¿Cuántos kilos de equipaje podemos llevar en el vuelo?", "es"),
        ("متى موعد الرحلة؟ لم يخبرنا أحد بأي شيء", "ar"),
        ("لطفاً بگویید پرواز ما چه وقت است، هیچ کس به ما چیزی نگفته", "fa"),
        ("زموږ الوتکه کله ده؟ هیچا موږ ته څه ندي ویلي", "ps"),
        ("Коли наш рейс? Нам ніхто нічого не сказав", "uk"),
        ("Когда наш рейс? Нам никто ничего не сказал", "ru"),
        ("Goorma ayay diyaaradeenu duulaysaa? Qofna nooma sheegin", "so"),
        ("Ndege yetu itaondoka lini? Hakuna aliyetuambia chochote", "sw"),
        ("በረራችን መቼ ነው? ማንም ምንም አልነገረንም", "am"),
        ("ነፋሪትና መዓስ እያ? ዋላ ሓደ ሰብ ዝነገረና የለን", "ti"),
    ],
)
def test_clear_sentences(text: str, expected: str) -> None:
    """A plain sentence in each language is identified."""
    assert language.detect(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "\x00\x00abc\x00",
        "\ud800\udfff lone surrogates \udc80",
        "😀🙏🏽👍",
        "123 456 7890",
        "x" * 100_000,
        "bus late " * 12_000,
        "\ufdd0\uffff\U0010ffff noncharacters",
        "mixed العربية and English и русский",
        "ana 3ayez a3raf mawe3d el re7la",
    ],
)
def test_bad_input_never_raises(text: str) -> None:
    """Malformed or odd text gives a code or unknown, never an exception."""
    assert language.detect(text) in {*LANGUAGES, language.UNKNOWN}


def test_non_string_is_unknown() -> None:
    """None or a number (a caller's bug) is unknown rather than a crash."""
    assert language.detect(None) == language.UNKNOWN  # type: ignore[arg-type]
    assert language.detect(42) == language.UNKNOWN  # type: ignore[arg-type]


def test_empty_and_symbols_are_unknown() -> None:
    """Nothing to read: unknown."""
    assert language.detect("") == language.UNKNOWN
    assert language.detect("?!") == language.UNKNOWN
    assert language.detect("😀😀") == language.UNKNOWN
