"""Language identification: accuracy per language on the corpus, and bad input that must never raise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
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


# ------------------------------------------------------------------ the compact py3langid model (issue 9)


@pytest.fixture(scope="module")
def py3langid_full() -> Any:
    """py3langid's own identifier with its full model."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@pytest.fixture(scope="module")
def py3langid_restricted() -> Any:
    """py3langid's own identifier restricted to our languages, as language.py built it before the compact model."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages([code for code in LANGUAGES if code in ident.nb_classes])
    return ident


def test_shipped_compact_model_is_derived_from_the_installed_py3langid() -> None:
    """models/langid.npz equals what compact_arrays() derives now (regenerate: python -m classifier.language)."""
    derived = language.compact_arrays()
    with np.load(language.COMPACT_MODEL, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(derived)
        for key, value in derived.items():
            assert npz[key].dtype == value.dtype, key
            assert np.array_equal(npz[key], value), key


def test_compact_automaton_is_py3langid_automaton(py3langid_full: Any) -> None:
    """Every state's next state for every byte, and every state's feature, are py3langid's own."""
    arrays = language.compact_arrays()
    dense = np.frombuffer(py3langid_full.tk_nextmove, dtype=f"u{py3langid_full.tk_nextmove.itemsize}")
    dense = dense.reshape(-1, 256)
    starts, keys, targets = arrays["starts"].astype(np.int64), arrays["keys"], arrays["targets"]
    rows = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    flat = rows * 256 + keys
    assert np.all(np.diff(flat) > 0)  # one exception per (row, byte), sorted: bytes.find() finds the right one
    rebuilt = np.tile(arrays["root"], (len(starts) - 1, 1))
    rebuilt[rows, keys] = targets
    assert np.array_equal(rebuilt, dense)
    assert np.array_equal(arrays["row"], np.frombuffer(py3langid_full.tk_row, dtype=arrays["row"].dtype))
    assert arrays["out"].tolist() == list(py3langid_full.tk_output)
    assert len(keys) < dense.size // 4  # the point of it: under a quarter of the dense table


def test_compact_identifier_scores_equal_py3langid_on_the_corpus(
    corpus: list[Example], py3langid_restricted: Any
) -> None:
    """Bit-identical rankings to py3langid's restricted identifier over every corpus line and odd input."""
    compact = language._compact_identifier(language.compact_arrays())
    assert compact.nb_classes == py3langid_restricted.nb_classes
    texts = [language.clean(e.text) for e in corpus]
    texts += ["", "   ", "😀😀", "ABC DEF", "x" * 5000, "mixed العربية and English и русский", "Ünïcödé ß"]
    different = [text for text in texts if compact.rank(text) != py3langid_restricted.rank(text)]
    assert not different, different[:3]
    assert compact.rank(b"bytes \xff\xfe input") == py3langid_restricted.rank(b"bytes \xff\xfe input")


def test_detect_over_the_corpus_is_unchanged_by_the_compact_model(
    corpus: list[Example], py3langid_restricted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """detect() gives the same code for every corpus line with py3langid's identifier and with the compact one."""
    texts = [e.text for e in corpus]
    calls = 0
    rank = language._langid_rank

    def counted(text: str, allowed: Any) -> tuple[str, float]:
        nonlocal calls
        calls += 1
        return rank(text, allowed)

    monkeypatch.setattr(language, "_langid_rank", counted)
    monkeypatch.setattr(language, "_langid", language._compact_identifier(language.compact_arrays()))
    with_compact = [language.detect(text) for text in texts]
    assert calls > 0  # the fallback was exercised
    monkeypatch.setattr(language, "_langid", py3langid_restricted)
    assert [language.detect(text) for text in texts] == with_compact


def test_compact_model_from_another_py3langid_or_broken_is_not_used(tmp_path: Path) -> None:
    """A file from another py3langid release, or an unreadable one, is refused (the model is then derived)."""
    arrays = language.compact_arrays()
    other = tmp_path / "other.npz"
    np.savez_compressed(other, **(arrays | {"source": np.array("py3langid 0.0.1")}))
    assert language._read_compact(other) is None
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not an npz")
    assert language._read_compact(broken) is None
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(language.COMPACT_MODEL.read_bytes()[:100_000])
    assert language._read_compact(truncated) is None
    plain_array = tmp_path / "plain.npz"
    with plain_array.open("wb") as f:
        np.save(f, arrays["keys"])
    assert language._read_compact(plain_array) is None
    assert language._read_compact(tmp_path / "missing.npz") is None
    good = tmp_path / "good.npz"
    language.write_compact_model(good)
    read = language._read_compact(good)
    assert read is not None
    assert np.array_equal(read["targets"], arrays["targets"])


def test_identifier_is_derived_when_the_compact_model_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, py3langid_restricted: Any
) -> None:
    """Without the shipped file the fallback still loads, with the same rankings."""
    monkeypatch.setattr(language, "COMPACT_MODEL", tmp_path / "missing.npz")
    monkeypatch.setattr(language, "_langid", None)
    monkeypatch.setattr(language, "_langid_failed", False)
    ident = language._identifier()
    assert ident is not None
    text = "hali ya hewa ni nzuri leo"
    assert ident.rank(text) == py3langid_restricted.rank(text)
