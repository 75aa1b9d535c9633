"""The model holds its weights compactly (issue 9: worker memory) and predicts exactly what the full matrix gives.

Hashed features leave most of the (features x classes) weight matrix at zero: Model keeps the rows training gave
a weight (plus one zero row and an index map), and load_model() stores the pipeline's own copy sparse. Neither
may change a single prediction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from classifier import persistence
from classifier.data import Example
from classifier.pipeline import linear_estimator
from classifier.predict import Model, load_model


@pytest.fixture(scope="module")
def texts(corpus: list[Example]) -> list[str]:
    """Corpus texts in every language (more than 64: the batch path), and texts with nothing to read."""
    return [e.text for e in corpus[::37]] + ["", "😀", "a", "x" * 30_000, "ჩვენი ავტობუსი დაგვიანდა"]


@pytest.fixture(scope="module")
def loaded(small_model: Model, tmp_path_factory: pytest.TempPathFactory) -> Model:
    """The small model saved, then loaded as the app loads it."""
    model = load_model(persistence.save(small_model, tmp_path_factory.mktemp("compact") / "model.skops"))
    assert model is not None
    return model


def test_compact_weights_are_the_full_matrix_at_every_feature(small_model: Model) -> None:
    full = np.asarray(linear_estimator(small_model.pipeline).coef_).T  # (features x classes), trained: dense
    assert small_model._rows.shape == (full.shape[0],)
    assert np.array_equal(small_model._coef[small_model._rows], full)
    used = np.flatnonzero(np.any(full != 0, axis=1))
    assert small_model._coef.shape == (len(used) + 1, full.shape[1])  # only the used rows, and one zero row
    assert len(used) < full.shape[0] // 2


def test_a_loaded_model_predicts_exactly_what_the_trained_one_does(
    small_model: Model, loaded: Model, texts: list[str]
) -> None:
    assert np.array_equal(loaded.predict_proba(texts), small_model.predict_proba(texts))
    assert [p.to_dict() for p in loaded.predict(texts)] == [p.to_dict() for p in small_model.predict(texts)]
    for text in texts[:20]:
        assert loaded.predict_one(text) == small_model.predict_one(text)


def test_load_keeps_the_pipeline_working_with_sparse_weights(
    small_model: Model, loaded: Model, texts: list[str]
) -> None:
    estimator = linear_estimator(loaded.pipeline)
    assert sparse.issparse(estimator.coef_)
    assert estimator.coef_.nnz < np.prod(estimator.coef_.shape) // 2
    expected = small_model.pipeline.predict_proba(texts)
    assert np.allclose(loaded.pipeline.predict_proba(texts), expected, rtol=0, atol=1e-12)


def test_a_model_built_on_sparse_weights_compacts_to_the_same_rows(small_model: Model, loaded: Model) -> None:
    rebuilt = Model(loaded.pipeline, loaded.threshold, loaded.metadata)  # coef_ is sparse here
    assert np.array_equal(rebuilt._coef, small_model._coef)
    assert np.array_equal(rebuilt._rows, small_model._rows)
    assert rebuilt._fast is not None


def test_the_shipped_model_is_loaded_compact(default_model: Model) -> None:
    estimator = linear_estimator(default_model.pipeline)
    assert sparse.issparse(estimator.coef_)
    used = np.flatnonzero(np.diff(sparse.csc_matrix(estimator.coef_).indptr))
    assert default_model._coef.shape[0] == len(used) + 1
    assert default_model._coef.nbytes < np.prod(estimator.coef_.shape) * 8  # the dense matrix it replaces


def test_saving_a_loaded_model_round_trips(loaded: Model, texts: list[str], tmp_path: Path) -> None:
    again = persistence.load(persistence.save(loaded, tmp_path / "again.skops"))
    assert np.array_equal(again.predict_proba(texts), loaded.predict_proba(texts))
