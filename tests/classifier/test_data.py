"""Corpus loading and the group-aware held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier import data
from classifier.categories import CATEGORIES, LANGUAGES
from classifier.data import Example


def _ex(text: str, scenario: str, lang: str = "en", category: str = "information_request") -> Example:
    """A hand-made example."""
    return Example(text=text, lang=lang, category=category, channel="sms", scenario=scenario)


def test_corpus_lines_are_valid(corpus: list[Example]) -> None:
    """Every corpus line loaded has a known language and category and non-empty text."""
    assert all(e.lang in LANGUAGES and e.category in CATEGORIES and e.text.strip() for e in corpus)


def test_no_group_straddles_the_split(corpus_split: data.Split) -> None:
    """No group key, hence no (lang, scenario) and no near-duplicate, is on both sides."""
    assert not set(corpus_split.train_groups) & set(corpus_split.held_out_groups)
    train_scenarios = {(e.lang, e.scenario) for e in corpus_split.train}
    held_scenarios = {(e.lang, e.scenario) for e in corpus_split.held_out}
    assert not train_scenarios & held_scenarios
    train_texts = {data.normalise(e.text) for e in corpus_split.train}
    assert not train_texts & {data.normalise(e.text) for e in corpus_split.held_out}


def test_held_out_share_is_about_a_fifth(corpus_split: data.Split) -> None:
    """The held-out split holds roughly 20% of the lines."""
    total = len(corpus_split.train) + len(corpus_split.held_out)
    assert 0.1 <= len(corpus_split.held_out) / total <= 0.3


def test_near_duplicates_share_a_group() -> None:
    """Lines with another scenario but (almost) the same text are merged into one group."""
    examples = [
        _ex("When is our flight to Canada? Nobody told us the date.", "a"),
        _ex("when is our flight to canada?? nobody told us the date", "b"),
        _ex("When is our flight to Canada? Nobody told us the date yet.", "c"),
        _ex("Thank you for the help with the wheelchair at the airport", "d", category="appreciation"),
    ]
    groups = data.assign_groups(examples)
    assert groups[0] == groups[1] == groups[2]
    assert groups[3] != groups[0]
    assert groups[0] == "en:a"  # the smallest key names a merged group


def test_same_scenario_other_language_is_another_group() -> None:
    """A scenario slug groups lines within one language only."""
    groups = data.assign_groups([_ex("bus late", "bus_late"), _ex("le bus est en retard", "bus_late", lang="fr")])
    assert groups == ["en:bus_late", "fr:bus_late"]


def test_split_is_deterministic_and_stable(corpus: list[Example]) -> None:
    """The same lines always split the same way, and adding unrelated lines moves no existing line."""
    sample = corpus[::7]
    first = data.split(sample)
    again = data.split(list(sample))
    assert first.held_out == again.held_out
    added = [*sample, _ex("zzz completely new message about a cat", "new_unrelated_scenario_xyz", category="other")]
    grown = data.split(added)
    assert set(first.held_out) <= set(grown.held_out)
    assert set(first.train) <= set(grown.train)


def test_loader_skips_bad_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Invalid JSON, unknown codes or empty text are skipped and logged by line number, without text."""
    good = _ex("where do we go on arrival", "arrival_where").to_dict()
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "category": "complaint"}),
        json.dumps({**good, "lang": "xx"}),
        json.dumps({**good, "text": "   "}),
        json.dumps(["a", "list"]),
        "",
    ]
    (tmp_path / "en.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        loaded = data.load_corpus(tmp_path)
    assert loaded == [Example.from_dict(good)]
    assert "en.jsonl:2" in caplog.text and "en.jsonl:6" in caplog.text
    assert "where do we go" not in caplog.text


def test_corpus_sha_changes_with_content(tmp_path: Path) -> None:
    """The corpus checksum covers file names and bytes."""
    (tmp_path / "en.jsonl").write_text("{}\n", encoding="utf-8")
    before = data.corpus_sha256(tmp_path)
    (tmp_path / "en.jsonl").write_text("{} \n", encoding="utf-8")
    assert data.corpus_sha256(tmp_path) != before
    assert data.corpus_sha256(tmp_path / "missing") == data.corpus_sha256(tmp_path / "also-missing")


def test_example_round_trip() -> None:
    """to_dict and from_dict agree, keys in corpus order."""
    example = Example("hi", "en", "other", "sms", "authored", "greeting", ("sms_style",))
    row = example.to_dict()
    assert list(row) == ["text", "lang", "category", "channel", "source", "scenario", "tags"]
    assert Example.from_dict(row) == example
