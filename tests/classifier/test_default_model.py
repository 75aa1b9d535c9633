"""The committed default artifact matches the corpus and the code, and is small enough to ship."""

from __future__ import annotations

import sklearn

from classifier import data, persistence
from classifier.categories import CATEGORIES
from classifier.predict import DEFAULT_MODEL_PATH
from classifier.train import code_fingerprint

STALE = "run: python -m classifier.train"


def test_default_artifact_exists_and_is_small() -> None:
    """classifier/models/default.skops ships with the package and stays under 25 MB."""
    assert DEFAULT_MODEL_PATH.is_file(), STALE
    assert DEFAULT_MODEL_PATH.stat().st_size < 25_000_000


def test_default_artifact_matches_corpus_and_code() -> None:
    """The artifact was trained on this corpus with this code (recomputed checksums)."""
    metadata = persistence.read_metadata(DEFAULT_MODEL_PATH)
    assert metadata.get("corpus_sha256") == data.corpus_sha256(), f"corpus changed since training: {STALE}"
    assert metadata.get("code_fingerprint") == code_fingerprint(), f"classifier code changed since training: {STALE}"
    assert metadata.get("corpus_source") == "corpus-train-split", STALE
    assert metadata.get("n_extra") == 0, f"the shipped model must not include officer corrections: {STALE}"
    assert metadata.get("format_version") == persistence.FORMAT_VERSION, STALE
    assert metadata.get("sklearn_version", "").split(".")[:2] == sklearn.__version__.split(".")[:2], STALE


def test_default_artifact_loads_with_every_category(default_model: persistence.Model) -> None:
    """The shipped model loads, knows all 10 categories and has a tuned threshold."""
    assert set(default_model.classes) == set(CATEGORIES)
    assert default_model.metadata["threshold_tuning"]["tuned"] is True
    assert 0.0 < default_model.threshold < 1.0
