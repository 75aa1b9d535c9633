"""Shared fixtures for the classifier tests: the corpus, its split, a small fresh model, the shipped model."""

from __future__ import annotations

from collections import defaultdict

import pytest

from classifier import data
from classifier.data import Example
from classifier.predict import DEFAULT_MODEL_PATH, Model, load_model
from classifier.train import fit_model

SMALL_PER_CATEGORY = 60


@pytest.fixture(scope="session")
def corpus() -> list[Example]:
    """Every line of classifier/data/corpus (fails, never skips, when there is none)."""
    examples = data.load_corpus()
    assert examples, f"no corpus lines in {data.CORPUS_DIR}"
    return examples


@pytest.fixture(scope="session")
def corpus_split(corpus: list[Example]) -> data.Split:
    """The held-out split of the corpus."""
    return data.split(corpus)


@pytest.fixture(scope="session")
def small_model(corpus_split: data.Split) -> Model:
    """A model trained on a small, language-balanced sample of the training split (fast)."""
    by_category: dict[str, list[int]] = defaultdict(list)
    for i, example in enumerate(corpus_split.train):
        by_category[example.category].append(i)
    chosen: list[int] = []
    for indices in by_category.values():
        step = max(1, len(indices) // SMALL_PER_CATEGORY)
        chosen += indices[::step][:SMALL_PER_CATEGORY]
    chosen.sort()
    return fit_model(
        [corpus_split.train[i] for i in chosen], [corpus_split.train_groups[i] for i in chosen], folds=3
    )


@pytest.fixture(scope="session")
def default_model() -> Model:
    """The shipped model (classifier/models/default.skops)."""
    model = load_model(DEFAULT_MODEL_PATH)
    assert model is not None, "no usable default model: run: python -m classifier.train"
    return model
