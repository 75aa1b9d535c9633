"""load_model() and Model.predict(): category, probabilities, language, restricted routing and top terms."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.pipeline import Pipeline

from classifier import language
from classifier.categories import CATEGORIES, RESTRICTED_CATEGORIES, is_restricted
from classifier.pipeline import (
    MAX_MODEL_CHARS,
    CharNgramHasher,
    SafetyNetFeatures,
    TextNormaliser,
    WordNgramHasher,
    char_ngram_hashes_with_order,
    familiarity,
    linear_estimator,
    normalise,
    safety_net_scan,
    shrink_unfamiliar,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH: Final = Path(__file__).resolve().parent / "models" / "default.skops"
TOP_TERMS: Final = 3
REASONS: Final = ("category", "threshold", "safety_net")
_HAS_LETTER: Final = re.compile(r"[^\W\d_]")
# A word worth showing as a top term: three or more word characters, at least one a letter.
_TERM: Final = re.compile(r"(?=\w*[^\W\d_])\w{3,}")
_MAX_TERM_WORDS: Final = 300

SafetyScan = Callable[[str], Any]


@dataclass(frozen=True)
class Prediction:
    """What the classifier says about one text."""

    category: str
    confidence: float
    probabilities: dict[str, float]
    language: str
    restricted: bool
    restricted_reasons: tuple[str, ...]
    safety_net_category: str | None
    top_terms: tuple[str, ...]
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field."""
        return {
            "category": self.category,
            "confidence": round(float(self.confidence), 4),
            "probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()},
            "language": self.language,
            "restricted": bool(self.restricted),
            "restricted_reasons": list(self.restricted_reasons),
            "safety_net_category": self.safety_net_category,
            "top_terms": list(self.top_terms),
            "model_version": self.model_version,
        }


def safety_scanner() -> SafetyScan | None:
    """classifier.safety_net.scan, or None (logged) while that module is missing or broken."""
    scan: SafetyScan | None = safety_net_scan()
    return scan


def safe_scan(scan: SafetyScan | None, text: str) -> tuple[bool, str | None]:
    """(hit, category) from the safety net; an error in it counts as a hit (fail closed), logged without text."""
    if scan is None:
        return False, None
    try:
        hit = scan(text)
    except Exception as exc:  # fail closed: a case the safety net could not read goes to the focal points
        log.error("safety net failed on a text: %s", type(exc).__name__)
        return True, None
    if hit is None:
        return False, None
    category = getattr(hit, "category", None)
    return True, category if category in RESTRICTED_CATEGORIES else None


def route(
    category: str, restricted_probability: float, threshold: float, safety_hit: bool
) -> tuple[bool, tuple[str, ...]]:
    """The routing rule: restricted category, OR summed restricted probability >= threshold, OR safety-net hit."""
    reasons = []
    if is_restricted(category):
        reasons.append("category")
    if restricted_probability >= threshold:
        reasons.append("threshold")
    if safety_hit:
        reasons.append("safety_net")
    return bool(reasons), tuple(reasons)


class Model:
    """A trained pipeline with its restricted threshold and metadata."""

    def __init__(self, pipeline: Pipeline, threshold: float, metadata: dict[str, Any] | None = None) -> None:
        """Wrap a fitted pipeline."""
        self.pipeline = pipeline
        self.threshold = float(threshold)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.classes: tuple[str, ...] = tuple(str(c) for c in pipeline.classes_)
        self._restricted_mask = np.array([is_restricted(c) for c in self.classes])
        self._features = Pipeline(pipeline.steps[:-1])
        self._coef, self._rows = self._class_weights()
        self._fast = self._compile()
        self._scan: SafetyScan | None | bool = False  # False: not looked up yet

    @property
    def version(self) -> str:
        """The model version string recorded at training."""
        return str(self.metadata.get("model_version", "unversioned"))

    def _class_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Linear weights, compact: (rows of the features training gave a weight, plus one zero row) x classes.

        Hashed features leave most columns unused (no training text hashed there: weight 0 in every class), so
        only the used ones are kept, with `rows` mapping every feature to its row (unused: the zero row); the
        weights gathered are the same numbers, so predictions are identical to the full matrix's (issue 9).
        """
        estimator = linear_estimator(self.pipeline)
        raw = estimator.coef_
        if sparse.issparse(raw):
            by_feature = sparse.csc_matrix(raw)
            used = np.flatnonzero(np.diff(by_feature.indptr))
            block = by_feature[:, used].toarray()
        else:
            raw = np.asarray(raw)
            used = np.flatnonzero(np.any(raw != 0, axis=0))
            block = raw[:, used]
        if block.shape[0] == 1 and len(self.classes) == 2:
            block = np.vstack([-block[0], block[0]])
        coef = np.zeros((len(used) + 1, block.shape[0]), dtype=np.float64)
        coef[:-1] = block.T
        rows = np.full(raw.shape[1], len(used), dtype=np.int32)
        rows[used] = np.arange(len(used), dtype=np.int32)
        return coef, rows

    def _weights(self, features: np.ndarray | int) -> np.ndarray:
        """The weight rows of these feature indices (the zero row for features training never saw)."""
        return self._coef[self._rows[features]]

    def _times_weights(self, matrix: Any) -> np.ndarray:
        """A sparse (texts x features) matrix @ the weights, computed on the compact rows."""
        matrix = sparse.csr_matrix(matrix)
        compact = sparse.csr_matrix(
            (matrix.data, self._rows[matrix.indices], matrix.indptr), shape=(matrix.shape[0], self._coef.shape[0])
        )
        return np.asarray(compact @ self._coef)

    def release_training_weights(self) -> None:
        """Store the pipeline's own weight matrix sparse (sklearn's sparsify): it keeps working, in less memory.

        The fast path reads the compact copy; the dense matrix inside the pipeline (features x classes float64,
        mostly zeros) is only kept for sklearn's path. Called at load (load_model), never before a save.
        """
        estimator = linear_estimator(self.pipeline)
        if not sparse.issparse(estimator.coef_) and hasattr(estimator, "sparsify"):
            estimator.sparsify()

    def _scanner(self) -> SafetyScan | None:
        """The safety net's scan function, looked up once."""
        if self._scan is False:
            self._scan = safety_scanner()
        return self._scan  # type: ignore[return-value]

    def predict_one(self, text: str) -> Prediction:
        """Prediction for one text."""
        return self.predict([text])[0]

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Predictions for texts, in order; never raises on bad text."""
        clean = [_as_text(text) for text in texts]
        if not clean:
            return []
        scan = self._scanner()
        scanned = [safe_scan(scan, text) for text in clean]
        normalised = [normalise(text) for text in clean]
        has_letter = [bool(_HAS_LETTER.search(text)) for text in normalised]
        wordy = [i for i, ok in enumerate(has_letter) if ok]
        probabilities = np.zeros((len(clean), len(self.classes)))
        if "other" in self.classes:
            probabilities[:, self.classes.index("other")] = 1.0
        if wordy:
            probabilities[wordy] = self._probabilities(
                [clean[i] for i in wordy], [normalised[i] for i in wordy], [scanned[i][1] for i in wordy]
            )
        chosen = probabilities.argmax(axis=1)
        terms = self._top_terms([clean[i] for i in wordy], [normalised[i] for i in wordy], chosen[wordy])
        top_terms: list[tuple[str, ...]] = [()] * len(clean)
        for i, found in zip(wordy, terms, strict=True):
            top_terms[i] = found
        restricted_mass = probabilities[:, self._restricted_mask].sum(axis=1)
        predictions = []
        classes = self.classes
        for i, text in enumerate(clean):
            category = classes[int(chosen[i])] if has_letter[i] or "other" not in classes else "other"
            hit, hit_category = scanned[i]
            restricted, reasons = route(category, float(restricted_mass[i]), self.threshold, hit)
            row = probabilities[i].tolist()
            predictions.append(
                Prediction(
                    category=category,
                    confidence=row[classes.index(category)],
                    probabilities=dict(zip(classes, row, strict=True)),
                    language=language.detect(text) if has_letter[i] else language.UNKNOWN,
                    restricted=restricted,
                    restricted_reasons=reasons,
                    safety_net_category=hit_category,
                    top_terms=top_terms[i],
                    model_version=self.version,
                )
            )
        return predictions

    def _compile(self) -> dict[str, Any] | None:
        """The fitted pieces the fast path needs (None when the pipeline has another layout: use sklearn's)."""
        try:
            if len(self.pipeline.steps) != 2 or len(self.classes) < 3:
                return None
            union, model = self.pipeline.steps[0][1], self.pipeline.steps[1][1]
            calibrated = model.calibrated_classifiers_
            if len(calibrated) != 1 or calibrated[0].method != "sigmoid":
                return None
            weights = union.transformer_weights or {}
            blocks = []
            lexicon: tuple[int, float] | None = None
            offset = 0
            for name, part in union.transformer_list:
                weight = float(weights.get(name, 1.0))
                if isinstance(part, SafetyNetFeatures):
                    lexicon = (offset, weight)
                    offset += len(RESTRICTED_CATEGORIES)
                    continue
                steps = [step for _, step in part.steps]
                if (
                    len(steps) != 3
                    or not isinstance(steps[0], TextNormaliser)
                    or not isinstance(steps[1], CharNgramHasher | WordNgramHasher)
                ):
                    return None
                tfidf = steps[2]
                blocks.append((offset, steps[1], np.asarray(tfidf.idf_), weight, bool(tfidf.sublinear_tf), tfidf.norm))
                offset += steps[1].n_features
            if offset != len(self._rows):
                return None
            estimator = calibrated[0].estimator
            return {
                "familiar": self._familiar_parts(),
                "blocks": blocks,
                "lexicon": lexicon,
                "intercept": np.asarray(estimator.intercept_, dtype=np.float64),
                "a": np.array([c.a_ for c in calibrated[0].calibrators], dtype=np.float64),
                "b": np.array([c.b_ for c in calibrated[0].calibrators], dtype=np.float64),
                "order": np.array([list(self.classes).index(str(c)) for c in estimator.classes_]),
            }
        except (AttributeError, IndexError, TypeError, ValueError):
            return None

    def _familiar_parts(self) -> tuple[CharNgramHasher, np.ndarray] | None:
        """The character hasher and the mask of its columns seen in training (for the unfamiliar-text rule)."""
        union = self.pipeline.steps[0][1]
        for _, part in getattr(union, "transformer_list", []):
            steps = [step for _, step in getattr(part, "steps", [])]
            if len(steps) == 3 and isinstance(steps[1], CharNgramHasher):
                idf = np.asarray(steps[2].idf_)
                # Smoothed IDF is largest exactly for columns that no training text contained.
                return steps[1], idf < idf.max() - 1e-9
        return None

    def _scores(
        self, normalised: list[str], *, words: bool = False, char: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """Character and word n-gram features @ weights, computed like the pipeline without its overhead.

        words=True leaves out the length normalisation (scores of single words for the top terms); char passes
        the character hashes when they are already computed.
        """
        assert self._fast is not None
        n_texts = len(normalised)
        scores = np.zeros((n_texts, self._coef.shape[1]))
        for offset, hasher, idf, weight, sublinear, norm in self._fast["blocks"]:
            n_features = hasher.n_features
            if char is not None and isinstance(hasher, CharNgramHasher):
                rows, cols = char
            else:
                rows, cols = hasher.hashes(normalised)
            if not len(rows):
                continue
            keys, counts = np.unique(rows * n_features + cols, return_counts=True)
            rows, cols = keys // n_features, keys % n_features
            values = counts.astype(np.float64)
            if sublinear:
                values = np.log(values) + 1.0
            values *= idf[cols]
            if norm == "l2" and not words:
                norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n_texts))
                norms[norms == 0] = 1.0
                values /= norms[rows]
            values *= weight
            if n_texts == 1:
                scores[0] += values @ self._weights(cols + offset)
            elif n_texts <= 64:  # scipy's per-call cost outweighs the work for a few texts (the top-term words)
                np.add.at(scores, rows, self._weights(cols + offset) * values[:, None])
            else:
                indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n_texts))))
                matrix = sparse.csr_matrix(
                    (values, self._rows[cols + offset], indptr), shape=(n_texts, len(self._coef))
                )
                scores += matrix @ self._coef
        return scores

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The model's probabilities (rows: texts, columns: self.classes), as Prediction.probabilities gives them."""
        clean = [_as_text(text) for text in texts]
        scan = self._scanner()
        return self._probabilities(
            clean, [normalise(text) for text in clean], [safe_scan(scan, text)[1] for text in clean]
        )

    def _probabilities(
        self, texts: Sequence[str], normalised: list[str], hit_categories: Sequence[str | None]
    ) -> np.ndarray:
        """The model's probabilities: the pipeline's, then the unfamiliar-text rule (see MODEL_CARD.md)."""
        gamma = float(self.metadata.get("unfamiliar_gamma", 0.0) or 0.0)
        min_order = int(self.metadata.get("unfamiliar_min_order", 3))
        if self._fast is None:
            proba = self._calibrated(texts, normalised, hit_categories)
            parts = self._familiar_parts()
            if gamma > 0 and parts is not None:
                proba = shrink_unfamiliar(proba, familiarity(normalised, parts[0], parts[1], min_order), gamma)
            return proba
        char = None
        familiar = None
        parts = self._fast["familiar"]
        if parts is not None:
            hasher, seen = parts
            low, high = hasher.ngram_range
            rows, cols, orders = char_ngram_hashes_with_order(normalised, (low, high), hasher.n_features)
            char = (rows, cols)
            keep = orders >= min_order
            total = np.bincount(rows[keep], minlength=len(normalised))
            known = np.bincount(rows[keep], weights=seen[cols[keep]].astype(np.float64), minlength=len(normalised))
            familiar = np.where(total > 0, known / np.maximum(total, 1), 1.0)
        proba = self._calibrated(texts, normalised, hit_categories, char=char)
        if gamma > 0 and familiar is not None:
            proba = shrink_unfamiliar(proba, familiar, gamma)
        return proba

    def _calibrated(
        self,
        texts: Sequence[str],
        normalised: list[str],
        hit_categories: Sequence[str | None],
        char: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The pipeline's calibrated probabilities (computed without sklearn's per-call overhead when possible)."""
        if self._fast is None:
            return np.asarray(self.pipeline.predict_proba(list(texts)))
        decision = self._scores(normalised, char=char) + self._fast["intercept"]
        if self._fast["lexicon"] is not None:
            offset, weight = self._fast["lexicon"]
            for i, category in enumerate(hit_categories):
                if category in RESTRICTED_CATEGORIES:
                    decision[i] += self._weights(offset + RESTRICTED_CATEGORIES.index(category)) * weight
        proba = np.zeros((len(texts), len(self.classes)))
        proba[:, self._fast["order"]] = expit(-(self._fast["a"] * decision + self._fast["b"]))
        total = proba.sum(axis=1, keepdims=True)
        proba = np.divide(proba, total, out=np.full_like(proba, 1.0 / len(self.classes)), where=total != 0)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba

    def _word_scores(self, words: list[str]) -> np.ndarray:
        """Per class weight of single normalised words (TF-IDF without length normalisation: long, rare words count)."""
        if self._fast is not None:
            return self._scores(words, words=True)
        return self._times_weights(self._features.transform(words))

    def _top_terms(self, texts: Sequence[str], normalised: Sequence[str], chosen: np.ndarray) -> list[tuple[str, ...]]:
        """The words of each text that weigh most towards its chosen category (as written in the text)."""
        if not texts:
            return []
        keys: dict[str, int] = {}
        text_index: list[int] = []
        key_index: list[int] = []
        shown: list[str] = []
        for i, (text, norm) in enumerate(zip(texts, normalised, strict=True)):
            originals = _TERM.findall(text[:MAX_MODEL_CHARS])[:_MAX_TERM_WORDS]
            norms = _TERM.findall(norm)[:_MAX_TERM_WORDS]
            if len(norms) != len(originals):  # normalisation changed the word boundaries: show normalised words
                originals = norms
            for original, key in zip(originals, norms, strict=True):
                text_index.append(i)
                key_index.append(keys.setdefault(key, len(keys)))
                shown.append(original)
        if not keys:
            return [()] * len(texts)
        word_scores = self._word_scores(list(keys))
        rows = np.asarray(text_index)
        cols = np.asarray(key_index)
        values = np.asarray(word_scores)[cols, np.asarray(chosen)[rows]]
        order = np.lexsort((-values, rows))
        starts = np.searchsorted(rows[order], np.arange(len(texts) + 1))
        result: list[tuple[str, ...]] = []
        for i in range(len(texts)):
            picked: list[str] = []
            seen: set[int] = set()
            for j in order[starts[i] : starts[i + 1]]:
                if values[j] <= 0 or len(picked) == TOP_TERMS:
                    break
                if cols[j] not in seen:
                    seen.add(cols[j])
                    picked.append(shown[j])
            result.append(tuple(picked))
        return result


def _as_text(text: object) -> str:
    """A str for anything given as a text (None and non-strings become empty or their str)."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "replace")
    return "" if text is None else str(text)


def load_model(path: str | Path | None = None) -> Model | None:
    """The model at path (default: the shipped one), or None with a logged reason: cases go to manual triage."""
    from classifier import persistence

    target = Path(path) if path is not None else DEFAULT_MODEL_PATH
    try:
        model = persistence.load(target)
    except persistence.ModelError as exc:
        log.warning("classifier model not loaded (%s): %s", type(exc).__name__, exc)
        return None
    model.release_training_weights()
    return model


__all__ = ["CATEGORIES", "DEFAULT_MODEL_PATH", "Model", "Prediction", "load_model", "route", "safety_scanner"]
