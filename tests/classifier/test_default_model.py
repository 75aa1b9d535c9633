"""The committed default artifact matches the corpus and the code, is small enough to ship, and its runtime arrays
(default.npz) were derived from it and predict exactly what its scikit-learn pipeline does."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import sklearn
from scipy import sparse

from classifier import data, persistence
from classifier.categories import CATEGORIES, RESTRICTED_CATEGORIES, is_restricted
from classifier.pipeline import (
    MAX_MODEL_CHARS,
    familiar_bitmap,
    familiarity,
    linear_estimator,
    normalise,
    shrink_unfamiliar,
)
from classifier.predict import _HAS_LETTER as HAS_LETTER
from classifier.predict import _MAX_TERM_WORDS as MAX_TERM_WORDS
from classifier.predict import _TERM as TERM
from classifier.predict import DEFAULT_MODEL_PATH, load_model, route, safe_scan, safety_scanner
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


def test_default_runtime_arrays_ship_beside_the_skops_file_and_derive_from_it() -> None:
    """classifier/models/default.npz records the sha256 of default.skops and stays under 25 MB."""
    arrays = persistence.runtime_path(DEFAULT_MODEL_PATH)
    assert arrays.is_file(), "run: python -m classifier.persistence runtime classifier/models/default.skops"
    assert arrays.stat().st_size < 25_000_000
    model = persistence.load_runtime(arrays, persistence.file_sha256(DEFAULT_MODEL_PATH))
    assert model.metadata == persistence.read_metadata(DEFAULT_MODEL_PATH)


def _reference_word_scores(pipeline: Any, words: list[str]) -> np.ndarray:
    """Per class score of single words from scikit-learn's own transformers: TF-IDF without length normalisation."""
    union = pipeline.named_steps["features"]
    weights = union.transformer_weights or {}
    blocks = []
    for name, part in union.transformer_list:
        if not hasattr(part, "steps"):  # the lexicon block: a single word gives no safety-net feature here
            blocks.append(sparse.csr_matrix((len(words), len(RESTRICTED_CATEGORIES))))
            continue
        tfidf = copy.copy(part.named_steps["tfidf"])
        tfidf.norm = None
        counts = part.named_steps["hash"].transform(part.named_steps["normalise"].transform(words))
        blocks.append(tfidf.transform(counts) * weights.get(name, 1.0))
    coef = linear_estimator(pipeline).coef_
    return np.asarray(sparse.hstack(blocks).tocsr() @ (coef.T if sparse.issparse(coef) else np.asarray(coef).T))


def _reference_top_terms(pipeline: Any, text: str, category_index: int) -> tuple[str, ...]:
    """Up to three distinct words of the text weighing most (positively) towards the category, as written."""
    originals = TERM.findall(text[:MAX_MODEL_CHARS])[:MAX_TERM_WORDS]
    norms = TERM.findall(normalise(text))[:MAX_TERM_WORDS]
    if not norms:
        return ()
    if len(norms) != len(originals):
        originals = norms
    scores = _reference_word_scores(pipeline, norms)[:, category_index]
    picked: list[str] = []
    taken: set[str] = set()
    for j in sorted(range(len(norms)), key=lambda j: -scores[j]):  # stable: ties in text order
        if scores[j] <= 0 or len(picked) == 3:
            break
        if norms[j] not in taken:
            taken.add(norms[j])
            picked.append(originals[j])
    return tuple(picked)


def test_runtime_predictions_are_the_pipelines_on_the_whole_corpus(corpus: list[data.Example]) -> None:
    """The shipped arrays predict what the shipped scikit-learn pipeline does, on every corpus line.

    Reference: the pipeline's own predict_proba with the unfamiliar-text rule (pipeline.py) to 1e-9; category,
    routing and reasons from those probabilities; top terms on a sample from scikit-learn's own transformers.
    """
    runtime = load_model(DEFAULT_MODEL_PATH)
    assert runtime is not None and runtime.pipeline is None
    skops_model = persistence.load(DEFAULT_MODEL_PATH)
    pipeline = skops_model.pipeline
    texts = [e.text for e in corpus] + ["", "😀🙏", "12345", "x" * 30_000, "ჩვენი ავტობუსი დაგვიანდა"]
    normalised = [normalise(t) for t in texts]
    bitmap = skops_model.familiar_bitmap()
    assert bitmap is not None
    assert np.array_equal(runtime.familiar_bitmap(), bitmap)
    familiar = familiarity(normalised, bitmap, runtime.metadata["unfamiliar_min_order"])
    reference = shrink_unfamiliar(pipeline.predict_proba(texts), familiar, runtime.metadata["unfamiliar_gamma"])
    predictions = runtime.predict(texts)
    classes = list(runtime.classes)
    assert classes == [str(c) for c in pipeline.classes_]
    scan = safety_scanner()
    for i, (text, prediction) in enumerate(zip(texts, predictions, strict=True)):
        readable = HAS_LETTER.search(normalised[i]) is not None
        probabilities = reference[i] if readable else np.eye(len(classes))[classes.index("other")]
        assert np.allclose([prediction.probabilities[c] for c in classes], probabilities, rtol=0, atol=1e-9), i
        tied = np.ptp(probabilities) <= 1e-12  # fully unfamiliar: uniform, no category stands out
        category = "other" if tied else classes[int(np.argmax(probabilities))]
        hit, hit_category = safe_scan(scan, text)
        restricted_mass = float(probabilities[[is_restricted(c) for c in classes]].sum())
        assert prediction.category == category, i
        assert (prediction.restricted, prediction.restricted_reasons) == route(
            category, restricted_mass, runtime.threshold, hit
        ), i
        assert prediction.safety_net_category == hit_category
    for i in range(0, len(texts), 53):
        expected = _reference_top_terms(pipeline, texts[i], classes.index(predictions[i].category))
        assert predictions[i].top_terms == (expected if HAS_LETTER.search(normalised[i]) else ()), i
    sample = texts[::211]
    assert [p.to_dict() for p in skops_model.predict(sample)] == [p.to_dict() for p in runtime.predict(sample)]


def test_the_shipped_bitmap_is_the_training_splits_ngrams() -> None:
    """The familiarity bitmap in default.skops is features.familiar_bitmap of the normalised training split."""
    skops_model = persistence.load(DEFAULT_MODEL_PATH)
    expected = familiar_bitmap([normalise(e.text) for e in data.load_split().train])
    assert np.array_equal(skops_model.familiar_bitmap(), expected)
