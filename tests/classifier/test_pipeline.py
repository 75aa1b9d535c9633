"""Pipeline pieces: normalisation, the vectorised hashers, the unfamiliar-text rule, the numpy prediction path."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC

from classifier import features
from classifier.data import Example
from classifier.pipeline import (
    SvmNbClassifier,
    build_pipeline,
    char_ngram_counts,
    familiar_bitmap,
    familiarity,
    normalise,
    shrink_unfamiliar,
    word_ngram_counts,
)
from classifier.predict import Model, safe_scan
from classifier.predict import shrink_unfamiliar as runtime_shrink
from classifier.train import fit_model, out_of_fold_probabilities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Café  RÉSUMÉ", "cafe resume"),
        ("مُسَاعَدَة أحمد", "مساعده احمد"),
        ("ـــمرحبـــا", "مرحبا"),
        ("كيف ی ى", "كيف ي ي"),
        ("heeeeelp   me!!!!!", "heelp me!!"),
        ("case 44712, tel +000123", "case 000, tel +000"),
        ("٤٥٢ ۱۲۳", "000 000"),
        ("\ud800x\x00y\u200b", "x y"),
        ("ሰላም ነው", "ሰላም ነው"),
        ("", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    """Case, diacritics, Arabic variants, tatweel, elongation, numbers, controls and surrogates are normalised."""
    assert normalise(text) == expected


def test_normalise_caps_length() -> None:
    """100 KB of text is cut for the model."""
    assert len(normalise("a" * 100_000 + " b" * 50_000)) <= 20_000


def test_char_hashes_are_stable() -> None:
    """The hash columns never change silently (a change would need a retrained model)."""
    assert char_ngram_counts(["ab"], (1, 4), 2**18).indices.tolist() == [
        21856,
        26939,
        32021,
        41098,
        47604,
        73578,
        171441,
        173715,
    ]
    assert word_ngram_counts(["ab cd"], 2**17).indices.tolist() == [14814, 42575, 68064]


def test_char_ngrams_stay_inside_words() -> None:
    """Like char_wb: 1-4-grams of space-padded words, never across two words or two texts."""
    counts = char_ngram_counts(["ab cd", "", "x"], (1, 4), 2**18)
    # " ab " gives a, b | " a", "ab", "b " | " ab", "ab " | " ab " = 8 per two-letter word.
    assert counts.sum(axis=1).A1.tolist() == [16.0, 0.0, 4.0]  # x | " x", "x " | " x "
    alone = char_ngram_counts(["ab"], (1, 4), 2**18)
    assert (counts[0] - alone).min() >= 0


def test_word_ngrams_count_unigrams_and_bigrams() -> None:
    """Words are runs of \\w characters; bigrams stay within one text."""
    counts = word_ngram_counts(["bus late bus", "", "late"], 2**17)
    assert counts.sum(axis=1).A1.tolist() == [5.0, 0.0, 1.0]
    assert counts[2].indices[0] in counts[0].indices


def test_shrink_keeps_argmax_and_sums_to_one() -> None:
    """The unfamiliar-text rule keeps the category and pulls the restricted mass towards uniform."""
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(10), size=50)
    familiar = rng.random(50)
    shrunk = shrink_unfamiliar(proba, familiar, 0.5)
    assert (shrunk.argmax(axis=1) == proba.argmax(axis=1)).all()
    assert np.allclose(shrunk.sum(axis=1), 1.0)
    assert np.allclose(shrink_unfamiliar(proba, np.ones(50), 0.5), proba)
    assert np.allclose(shrink_unfamiliar(proba, np.zeros(50), 0.5), 0.1)


def test_familiarity() -> None:
    """Texts whose n-grams training saw are familiar, others are not; an empty text counts as familiar."""
    bitmap = familiar_bitmap(["the bus was late"])
    assert bitmap.dtype == np.uint8 and bitmap.shape == (features.FAMILIAR_BITS // 8,)
    texts = ["the bus was late", "ავტობუსი დაგვიანდა", "a", "", "bus late", "the train was late"]
    for min_order in (3, 4):
        values = familiarity(texts, bitmap, min_order)
        assert values[:5].tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]
        assert 0.3 < values[5] < 0.9  # "the", "was", "late" seen, "train" not


def test_short_texts_fall_back_to_their_longest_ngrams() -> None:
    """A text without n-grams of the min order is judged on its longest ones: "a" is familiar, "ა" is not."""
    bitmap = familiar_bitmap(["a bus was late", "ok"])
    values = familiarity(["a", "ok", "ა", "ი", "x"], bitmap, 4)  # " a " has no 4-gram, only a 3-gram
    assert values.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert familiarity(["a"], familiar_bitmap(["the bus"]), 4).tolist() == [0.0]


def test_familiarity_bitmap_has_few_collisions() -> None:
    """The bitmap of the training texts' n-grams leaves unseen n-grams almost never familiar (Bloom filter)."""
    rng = np.random.default_rng(3)
    latin = [" ".join("".join(chr(c) for c in rng.integers(97, 123, 6)) for _ in range(8)) for _ in range(3000)]
    bitmap = familiar_bitmap(latin)
    assert np.unpackbits(bitmap).mean() < 0.1
    words = ["".join(chr(c) for c in rng.integers(0x10D0, 0x10F0, 6)) for _ in range(2400)]
    georgian = [" ".join(words[i : i + 8]) for i in range(0, 2400, 8)]
    assert familiarity(georgian, bitmap, 3).mean() < 0.01


def test_numpy_path_equals_the_pipeline(small_model: Model, corpus: list[Example]) -> None:
    """The model's own feature computation (numpy only) gives the pipeline's probabilities exactly (to rounding)."""
    texts = [e.text for e in corpus[::25]] + ["", "😀", "a", "x" * 30_000]
    scan = small_model._scanner()
    hits = [safe_scan(scan, t)[1] for t in texts]
    fast = small_model._calibrated([normalise(t) for t in texts], hits)
    assert np.allclose(fast, small_model.pipeline.predict_proba(texts), rtol=0, atol=1e-9)
    one = small_model._calibrated([normalise(texts[0])], hits[:1])
    assert np.allclose(one, fast[:1], rtol=0, atol=1e-9)


def test_build_pipeline_is_deterministic(corpus: list[Example]) -> None:
    """Two fits on the same data give the same probabilities (fixed random state)."""
    sample = [e for e in corpus if e.lang == "en"][::4]
    texts, labels = [e.text for e in sample], [e.category for e in sample]
    first = build_pipeline(3).fit(texts, labels).predict_proba(texts[:20])
    second = build_pipeline(3).fit(texts, labels).predict_proba(texts[:20])
    assert np.array_equal(first, second)


def test_model_probabilities_are_pipeline_plus_unfamiliar_rule(small_model: Model, corpus: list[Example]) -> None:
    """Model.predict_proba is the pipeline's probabilities with the unfamiliar-text rule applied, nothing else."""
    texts = [e.text for e in corpus[::40]] + ["ჩვენი ავტობუსი დაგვიანდა", "a"]
    bitmap = small_model.familiar_bitmap()
    assert bitmap is not None
    min_order = small_model.metadata["unfamiliar_min_order"]
    familiar = familiarity([normalise(t) for t in texts], bitmap, min_order)
    expected = shrink_unfamiliar(
        small_model.pipeline.predict_proba(texts), familiar, small_model.metadata["unfamiliar_gamma"]
    )
    assert np.allclose(small_model.predict_proba(texts), expected, rtol=0, atol=1e-9)
    assert np.array_equal(small_model.familiarity([normalise(t) for t in texts]), familiar)
    assert familiar[-2] == 0.0 and familiar[-1] == 1.0


def test_training_pipeline_path_and_runtime_agree_on_familiarity(corpus: list[Example]) -> None:
    """The model's bitmap is features.familiar_bitmap of its normalised training texts; the model built from the
    pipeline and the one rebuilt from the runtime arrays give features.familiarity's values."""
    sample = [e for e in corpus if e.lang in ("en", "fr")][::8]
    model = fit_model(sample, tune=False)
    bitmap = familiar_bitmap([normalise(e.text) for e in sample])
    assert np.array_equal(model.familiar_bitmap(), bitmap)
    texts = [normalise(e.text) for e in corpus[::50]] + ["ჩვენი ავტობუსი", "a", "ok", ""]
    reference = familiarity(texts, bitmap, model.metadata["unfamiliar_min_order"])
    runtime = Model.from_arrays(model.to_arrays())
    assert runtime.pipeline is None
    assert np.array_equal(model.familiarity(texts), reference)
    assert np.array_equal(runtime.familiarity(texts), reference)
    english = [i for i, e in enumerate(corpus[::50]) if e.lang == "en"]
    arabic = [i for i, e in enumerate(corpus[::50]) if e.lang == "ar"]
    assert english and arabic
    assert np.median(reference[english]) > 0.8 > 0.1 > np.median(reference[arabic])  # some ar lines are Latin


def test_out_of_fold_familiarity_comes_from_the_training_folds(corpus: list[Example]) -> None:
    """Out of fold, a language only one fold has is unfamiliar: its probabilities are uniform (gamma 1)."""
    amharic_lines = [e for e in corpus if e.lang == "am" and not any(c.isascii() and c.isalnum() for c in e.text)]
    sample = [e for e in corpus if e.lang in ("en", "fr")][::6] + amharic_lines[::10]
    groups = [e.lang for e in sample]  # three groups, three folds: each language is out of fold once
    probabilities, classes = out_of_fold_probabilities(
        [e.text for e in sample], [e.category for e in sample], groups, folds=3, gamma=1.0, min_order=4
    )
    amharic = np.array([e.lang == "am" for e in sample])
    assert np.allclose(probabilities[amharic], 1.0 / len(classes), rtol=0, atol=1e-12)
    assert (probabilities[~amharic].max(axis=1) > 1.0 / len(classes) + 1e-6).mean() > 0.9


def test_the_runtime_rule_is_the_pipelines_rule() -> None:
    """predict.py's numpy copy of the unfamiliar-text rule gives pipeline.shrink_unfamiliar's numbers."""
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(10), size=40)
    familiar = rng.random(40)
    for gamma in (0.0, 0.5, 1.0):
        assert np.array_equal(runtime_shrink(proba, familiar, gamma), shrink_unfamiliar(proba, familiar, gamma))


def test_moved_names_still_import_from_pipeline() -> None:
    """normalise and the hash functions live in features.py (numpy only) and pipeline.py re-exports them."""
    from classifier import features, pipeline

    names = ("normalise", "char_ngram_hashes", "char_ngram_hashes_with_order", "word_ngram_hashes", "familiarity")
    for name in names:
        assert getattr(pipeline, name) is getattr(features, name)
    assert (pipeline.MAX_MODEL_CHARS, pipeline.CHAR_FEATURES, pipeline.WORD_FEATURES) == (20_000, 2**18, 2**17)


def _toy_features(
    corpus: list[Example], languages: tuple[str, ...] = ("en", "fr")
) -> tuple[sparse.csr_matrix, list[str]]:
    """Hashed character counts of a few languages' lines (columns no line hashed to stay empty)."""
    sample = [e for e in corpus if e.lang in languages][::3]
    matrix = char_ngram_counts([normalise(e.text) for e in sample], (1, 3), 2**14)
    return matrix, [e.category for e in sample]


def test_svm_nb_weights_are_the_svm_plus_centred_nb(corpus: list[Example]) -> None:
    """coef_ = LinearSVC's + nb_weight x NB log-probabilities centred over classes, zero on unseen columns."""
    X, y = _toy_features(corpus)
    blended = SvmNbClassifier(nb_weight=0.5).fit(X, y)
    svm = LinearSVC(C=1.0, class_weight="balanced", random_state=blended.random_state).fit(X, y)
    nb = ComplementNB(alpha=blended.nb_alpha).fit(X, y)
    centred = nb.feature_log_prob_ - nb.feature_log_prob_.mean(axis=0)
    unseen = np.asarray(X.sum(axis=0)).ravel() == 0
    assert unseen.any()
    assert np.allclose(blended.coef_[:, ~unseen], svm.coef_[:, ~unseen] + 0.5 * centred[:, ~unseen])
    assert not blended.coef_[:, unseen].any()  # compact weights (predict.py) keep only trained columns
    assert np.array_equal(blended.intercept_, svm.intercept_)
    without_nb = SvmNbClassifier(nb_weight=0.0).fit(X, y)
    assert np.array_equal(without_nb.coef_, svm.coef_)
    assert np.array_equal(without_nb.predict(X), svm.predict(X))
    # NB's ranking of classes is shifted only by a per-text constant: centring does not change what it predicts
    jll = np.asarray(X @ centred.T)
    assert np.array_equal(nb.classes_[jll.argmax(axis=1)], nb.predict(X))


def test_svm_nb_sparse_weights_and_two_classes(corpus: list[Example]) -> None:
    """sparsify() keeps every score; with two classes the scores are one column, as LinearSVC's."""
    X, y = _toy_features(corpus)
    model = SvmNbClassifier().fit(X, y)
    dense_scores = model.decision_function(X)
    assert np.allclose(model.sparsify().decision_function(X), dense_scores)
    assert sparse.issparse(model.coef_)
    labels = np.array(y)
    keep = np.isin(labels, ["appreciation", "fraud_corruption"])
    pair = SvmNbClassifier().fit(X[keep], labels[keep])
    scores = pair.decision_function(X[keep])
    assert pair.coef_.shape == (1, X.shape[1]) and scores.ndim == 1
    assert np.mean(pair.predict(X[keep]) == labels[keep]) > 0.9
