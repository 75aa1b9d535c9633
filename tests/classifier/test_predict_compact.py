"""The model predicts from a few numpy arrays (issue 9: worker memory) exactly what the fitted pipeline gives.

Hashed features leave most of the (features x classes) weight matrix at zero: Model keeps the rows training gave
a weight (plus one zero row and an index map). The arrays round-trip through to_arrays()/from_arrays(), the
runtime .npz; the sparse product, the sigmoid and the two-class case are computed in numpy alone.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from classifier import persistence, predict
from classifier.data import Example
from classifier.pipeline import linear_estimator
from classifier.predict import Model, load_model
from classifier.train import fit_model


@pytest.fixture(scope="module")
def texts(corpus: list[Example]) -> list[str]:
    """Corpus texts in every language (more than 64: the batch path), and texts with nothing to read."""
    return [e.text for e in corpus[::37]] + ["", "😀", "a", "x" * 30_000, "ჩვენი ავტობუსი დაგვიანდა"]


@pytest.fixture(scope="module")
def loaded(small_model: Model, tmp_path_factory: pytest.TempPathFactory) -> Model:
    """The small model saved, then loaded as the app loads it (from its runtime arrays)."""
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
    assert loaded.pipeline is None  # read from the .npz: no scikit-learn objects
    assert np.array_equal(loaded.predict_proba(texts), small_model.predict_proba(texts))
    assert [p.to_dict() for p in loaded.predict(texts)] == [p.to_dict() for p in small_model.predict(texts)]
    for text in texts[:20]:
        assert loaded.predict_one(text) == small_model.predict_one(text)


def test_arrays_round_trip_in_memory(small_model: Model, texts: list[str]) -> None:
    arrays = small_model.to_arrays()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    again = Model.from_arrays(arrays)
    assert (again.classes, again.threshold, again.metadata) == (
        small_model.classes,
        small_model.threshold,
        small_model.metadata,
    )
    assert np.array_equal(again.predict_proba(texts), small_model.predict_proba(texts))


def test_a_model_built_on_sparse_weights_compacts_to_the_same_rows(small_model: Model) -> None:
    pipeline = copy.deepcopy(small_model.pipeline)
    linear_estimator(pipeline).sparsify()
    rebuilt = Model.from_pipeline(
        pipeline, small_model.threshold, small_model.metadata, familiar=small_model.familiar_bitmap()
    )
    assert np.array_equal(rebuilt._coef, small_model._coef)
    assert np.array_equal(rebuilt._rows, small_model._rows)


def test_the_shipped_model_is_compact(default_model: Model) -> None:
    assert default_model.pipeline is None
    used = np.flatnonzero(default_model._rows != default_model._coef.shape[0] - 1)
    assert default_model._coef.shape[0] == len(used) + 1
    assert default_model._coef.nbytes < len(default_model._rows) * len(default_model.classes) * 8 / 2


def test_batches_split_anywhere_give_the_same_scores(
    small_model: Model, texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunked product (a text's entries may fall in two chunks) sums to the one-chunk result."""
    whole = small_model.predict_proba(texts)
    monkeypatch.setattr(predict, "_CHUNK", 7)
    assert np.allclose(small_model.predict_proba(texts), whole, rtol=0, atol=1e-12)
    singles = np.vstack([small_model.predict_proba([t]) for t in texts[:30]])
    assert np.allclose(singles, whole[:30], rtol=0, atol=1e-12)


def test_sigmoid_is_expit_without_overflow() -> None:
    x = np.array([-1e4, -800.0, -30.0, -1.5, 0.0, 1e-9, 2.5, 40.0, 800.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.allclose(predict.sigmoid(x), expit(x), rtol=1e-15, atol=0)


def test_two_categories_predict_as_the_pipeline(corpus: list[Example]) -> None:
    """With two classes the estimator gives one score (for the second class): computed as sklearn does."""
    by_category: dict[str, list[Example]] = defaultdict(list)
    for example in corpus:
        if example.category in ("appreciation", "fraud_corruption") and example.lang in ("en", "fr"):
            by_category[example.category].append(example)
    sample = [e for items in by_category.values() for e in items[:40]]
    model = fit_model(sample, tune=False)
    assert model.classes == ("appreciation", "fraud_corruption") and model._binary
    texts = [e.text for e in corpus[::97]]
    model.metadata["unfamiliar_gamma"] = 0.0  # compare the calibrated probabilities alone
    assert np.allclose(model.predict_proba(texts), model.pipeline.predict_proba(texts), rtol=0, atol=1e-9)
    again = Model.from_arrays(model.to_arrays())
    assert [p.to_dict() for p in again.predict(texts)] == [p.to_dict() for p in model.predict(texts)]


@pytest.mark.parametrize(
    "damage",
    [
        "coef_shape",
        "used_out_of_range",
        "idf_length",
        "order_range",
        "bitmap_length",
        "bitmap_dtype",
        "layout_version",
        "missing_array",
    ],
)
def test_arrays_that_do_not_fit_together_are_refused(small_model: Model, damage: str) -> None:
    arrays = dict(small_model.to_arrays())
    if damage == "coef_shape":
        arrays["coef"] = arrays["coef"][:-5]
    elif damage == "used_out_of_range":
        arrays["used"] = arrays["used"].astype(np.int64) + len(small_model._rows)
    elif damage == "idf_length":
        arrays["idf_0"] = arrays["idf_0"][:100]
    elif damage == "order_range":
        arrays["order"] = arrays["order"] + 1
    elif damage == "bitmap_length":
        arrays["familiar"] = arrays["familiar"][:10]
    elif damage == "bitmap_dtype":
        arrays["familiar"] = arrays["familiar"].astype(np.int16)
    elif damage == "layout_version":
        arrays["layout"] = np.array(str(arrays["layout"]).replace('"runtime_layout": 2', '"runtime_layout": 99'))
        assert '"runtime_layout": 99' in str(arrays["layout"])
    else:
        del arrays["familiar"]
    with pytest.raises((ValueError, KeyError)):
        Model.from_arrays(arrays)


def test_saving_a_loaded_model_is_refused_and_the_trained_one_round_trips(
    small_model: Model, loaded: Model, texts: list[str], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="no pipeline"):
        persistence.save(loaded, tmp_path / "again.skops")
    again = load_model(persistence.save(small_model, tmp_path / "again.skops"))
    assert again is not None
    assert np.array_equal(again.predict_proba(texts), loaded.predict_proba(texts))
