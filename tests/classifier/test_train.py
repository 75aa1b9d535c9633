"""Training: typed error without data, threshold tuning, corrections, code fingerprint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifier import data, persistence
from classifier.categories import RESTRICTED_CATEGORIES
from classifier.data import Example
from classifier.train import NoTrainingDataError, code_fingerprint, fit_model, train, tune_threshold


def test_no_examples_raise_typed_error() -> None:
    """Nothing to train on raises NoTrainingDataError."""
    with pytest.raises(NoTrainingDataError):
        train(corpus=[])


def test_one_category_raises_typed_error() -> None:
    """Fewer than two categories raise NoTrainingDataError."""
    examples = [Example(f"thanks number {i}", "en", "appreciation") for i in range(5)]
    with pytest.raises(NoTrainingDataError):
        train(corpus=examples)


def test_blank_texts_do_not_count() -> None:
    """Whitespace-only lines are dropped before counting categories."""
    examples = [Example("thanks", "en", "appreciation"), Example("  ", "en", "other")]
    with pytest.raises(NoTrainingDataError):
        fit_model(examples)


def test_no_training_data_is_a_value_error() -> None:
    """Callers catching ValueError also catch it."""
    assert issubclass(NoTrainingDataError, ValueError)


CLASSES = ["appreciation", "fraud_corruption", "other"]


def _proba(rows: list[list[float]]) -> np.ndarray:
    """Probability rows over CLASSES."""
    return np.array(rows, dtype=float)


def test_threshold_reaches_target_recall_with_lowest_false_rate() -> None:
    """The tuned threshold is the highest that still catches the target share of restricted lines."""
    probabilities = _proba(
        [
            [0.2, 0.7, 0.1],  # restricted, top category restricted
            [0.6, 0.3, 0.1],  # restricted, needs threshold <= 0.3
            [0.8, 0.1, 0.1],  # restricted, needs threshold <= 0.1
            [0.75, 0.25, 0.0],  # general
            [0.9, 0.05, 0.05],  # general
        ]
    )
    labels = ["fraud_corruption", "fraud_corruption", "fraud_corruption", "appreciation", "other"]
    choice = tune_threshold(probabilities, CLASSES, labels, [False] * 5, target_recall=0.6)
    assert choice.threshold == pytest.approx(0.3)
    assert choice.restricted_recall == pytest.approx(2 / 3)
    assert choice.false_restricted_rate == 0.0
    full = tune_threshold(probabilities, CLASSES, labels, [False] * 5, target_recall=1.0)
    assert full.threshold == pytest.approx(0.1)
    assert full.restricted_recall == 1.0
    assert full.false_restricted_rate == 0.5


def test_safety_net_hits_allow_a_higher_threshold() -> None:
    """Lines the safety net catches need no threshold, so the threshold can rise."""
    probabilities = _proba([[0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [0.75, 0.25, 0.0]])
    labels = ["fraud_corruption", "fraud_corruption", "appreciation"]
    without = tune_threshold(probabilities, CLASSES, labels, [False, False, False], target_recall=1.0)
    with_net = tune_threshold(probabilities, CLASSES, labels, [False, True, False], target_recall=1.0)
    assert with_net.threshold > without.threshold
    assert with_net.restricted_recall == 1.0
    assert with_net.false_restricted_rate == 0.0


def test_train_with_corrections(corpus_split: data.Split, tmp_path: Path) -> None:
    """Officer corrections join the given examples; the artifact records them and loads back."""
    sample = [e for e in corpus_split.train if e.lang == "en"][::6]
    extra = [
        Example("the guard wants 50 dollars to put us on the bus list", "en", "fraud_corruption", source="correction")
    ]
    output = tmp_path / "corrected.skops"
    model = train(corpus=sample, extra=extra, output=output)
    assert model.metadata["n_extra"] == 1
    assert model.metadata["n_examples"] == len(sample) + 1
    assert model.metadata["corpus_source"] == "given"
    assert model.version.endswith("+1c")
    assert 0.0 < model.threshold < 1.0
    loaded = persistence.load(output)
    assert loaded.metadata == model.metadata
    assert len(loaded.metadata["code_fingerprint"]) == 64
    assert set(loaded.classes) <= set(RESTRICTED_CATEGORIES) | {
        "information_request",
        "assistance_request",
        "service_complaint",
        "suggestion",
        "appreciation",
        "other",
    }


def test_code_fingerprint_follows_the_files(tmp_path: Path) -> None:
    """The fingerprint changes when a fingerprinted file or a lexicon file changes."""
    (tmp_path / "lexicon").mkdir()
    (tmp_path / "pipeline.py").write_text("a", encoding="utf-8")
    first = code_fingerprint(tmp_path)
    (tmp_path / "pipeline.py").write_text("b", encoding="utf-8")
    second = code_fingerprint(tmp_path)
    (tmp_path / "lexicon" / "en.json").write_text("{}", encoding="utf-8")
    third = code_fingerprint(tmp_path)
    assert len({first, second, third}) == 3
