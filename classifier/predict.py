"""load_model() and Model.predict(): category, probabilities, language, restricted routing and top terms.

Prediction is computed with numpy alone from a few arrays (hashed n-grams, TF-IDF weights, a compact linear weight
matrix, sigmoid calibration, the unfamiliar-text rule). The web app and the worker load those arrays from the
runtime artifact (default.npz beside default.skops) and so never import scikit-learn, scipy or skops (issue 9:
worker memory); training and evaluation build the same arrays from a fitted pipeline (Model.from_pipeline).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from classifier import language
from classifier.categories import CATEGORIES, RESTRICTED_CATEGORIES, is_restricted
from classifier.features import (
    FAMILIAR_ORDERS,
    MAX_MODEL_CHARS,
    char_ngram_hashes_with_order,
    char_ngram_raw_hashes,
    check_familiar_bitmap,
    familiarity_from_hashes,
    normalise,
    word_ngram_hashes,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH: Final = Path(__file__).resolve().parent / "models" / "default.skops"
# Layout of the arrays Model.to_arrays() gives and Model.from_arrays() reads; bump when it changes.
RUNTIME_LAYOUT: Final = 2
TOP_TERMS: Final = 3
REASONS: Final = ("category", "threshold", "safety_net")
_HAS_LETTER: Final = re.compile(r"[^\W\d_]")
# A word worth showing as a top term: three or more word characters, at least one a letter.
_TERM: Final = re.compile(r"(?=\w*[^\W\d_])\w{3,}")
_MAX_TERM_WORDS: Final = 300
# Feature entries multiplied with the weights at a time in a batch (entries x classes floats: 640 KB for 10).
_CHUNK: Final = 1 << 13

SafetyScan = Callable[[str], Any]


class UnsupportedPipelineError(ValueError):
    """A fitted pipeline whose layout the numpy prediction path does not compute."""


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


@dataclass(frozen=True)
class FeatureBlock:
    """One hashed n-gram block of the feature union: where its columns start, its TF-IDF and union weights."""

    kind: str  # "char" (character n-grams inside words) or "word" (word unigrams and bigrams)
    offset: int
    n_features: int
    ngram_range: tuple[int, int]
    weight: float
    sublinear: bool
    norm: str | None
    idf: np.ndarray

    def hashes(self, normalised: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(text index, column) of every n-gram occurrence, as the pipeline's hasher gives them."""
        if self.kind == "char":
            rows, cols, _ = char_ngram_hashes_with_order(normalised, self.ngram_range, self.n_features)
            return rows, cols
        return word_ngram_hashes(normalised, self.n_features)

    def layout(self) -> dict[str, Any]:
        """The JSON-safe parameters (the idf goes in an array of its own)."""
        return {
            "kind": self.kind,
            "offset": self.offset,
            "n_features": self.n_features,
            "ngram_range": list(self.ngram_range),
            "weight": self.weight,
            "sublinear": self.sublinear,
            "norm": self.norm,
        }


_scan_lock = threading.Lock()
_scan_function: SafetyScan | None = None
_scan_looked_up = False


def safety_scanner() -> SafetyScan | None:
    """classifier.safety_net.scan, or None (logged once) while that module is missing or broken."""
    global _scan_function, _scan_looked_up
    if not _scan_looked_up:
        with _scan_lock:
            if not _scan_looked_up:
                try:
                    from classifier import safety_net

                    _scan_function = safety_net.scan
                except Exception as exc:  # someone else's module; its absence must not stop the classifier
                    log.warning("safety net unavailable: %s", type(exc).__name__)
                    _scan_function = None
                _scan_looked_up = True
    return _scan_function


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


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow (scipy.special.expit, in numpy)."""
    small = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + small), small / (1.0 + small))


def shrink_unfamiliar(probabilities: np.ndarray, familiar: np.ndarray, gamma: float) -> np.ndarray:
    """p' = f^gamma * p + (1 - f^gamma) / n_classes (the unfamiliar-text rule; see MODEL_CARD.md)."""
    if gamma <= 0:
        return probabilities
    weight = np.clip(familiar, 0.0, 1.0)[:, None] ** gamma
    return weight * probabilities + (1.0 - weight) / probabilities.shape[1]


class Model:
    """The trained classifier as arrays, with its classes, restricted threshold and metadata."""

    pipeline: Any  # the fitted scikit-learn Pipeline it was built from (training, evaluation, save); None at runtime

    def __init__(
        self, pipeline: Any, threshold: float, metadata: dict[str, Any] | None = None, *, familiar: np.ndarray | None
    ) -> None:
        """Model.from_pipeline."""
        parts = _arrays_from_pipeline(pipeline)
        parts["familiar"] = familiar
        self._setup(parts, threshold, metadata)
        self.pipeline = pipeline

    @classmethod
    def from_pipeline(
        cls, pipeline: Any, threshold: float, metadata: dict[str, Any] | None = None, *, familiar: np.ndarray | None
    ) -> Model:
        """A model computing exactly what a fitted pipeline (build_pipeline's layout) predicts, plus the rule.

        familiar: the familiarity bitmap of the training texts (features.familiar_bitmap), None for no
        unfamiliar-text rule.
        """
        return cls(pipeline, threshold, metadata, familiar=familiar)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Model:
        """The model to_arrays() described; ValueError (or KeyError) when the arrays do not fit together."""
        layout = json.loads(str(np.asarray(arrays["layout"])[()]))
        if not isinstance(layout, dict) or layout.get("runtime_layout") != RUNTIME_LAYOUT:
            raise ValueError("runtime arrays of another layout")
        parts: dict[str, Any] = {name: np.asarray(arrays[name]) for name in _ARRAY_NAMES}
        parts["familiar"] = np.asarray(arrays["familiar"]) if layout["familiar"] else None
        parts["blocks"] = [
            FeatureBlock(
                kind=str(block["kind"]),
                offset=int(block["offset"]),
                n_features=int(block["n_features"]),
                ngram_range=(int(block["ngram_range"][0]), int(block["ngram_range"][1])),
                weight=float(block["weight"]),
                sublinear=bool(block["sublinear"]),
                norm=None if block["norm"] is None else str(block["norm"]),
                idf=np.asarray(arrays[f"idf_{i}"]),
            )
            for i, block in enumerate(layout["blocks"])
        ]
        parts.update(
            classes=[str(c) for c in layout["classes"]],
            n_features=int(layout["n_features"]),
            lexicon=None if layout["lexicon"] is None else (int(layout["lexicon"][0]), float(layout["lexicon"][1])),
            binary=bool(layout["binary"]),
        )
        metadata = layout["metadata"]
        if not isinstance(metadata, dict):
            raise ValueError("runtime metadata is not an object")
        model = cls.__new__(cls)
        model._setup(parts, float(layout["threshold"]), metadata)
        model.pipeline = None
        return model

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything prediction needs, as named numpy arrays (no objects: loadable with allow_pickle=False)."""
        layout = {
            "runtime_layout": RUNTIME_LAYOUT,
            "classes": list(self.classes),
            "threshold": self.threshold,
            "metadata": self.metadata,
            "n_features": len(self._rows),
            "blocks": [block.layout() for block in self._blocks],
            "lexicon": None if self._lexicon is None else list(self._lexicon),
            "familiar": self._familiar is not None,
            "binary": self._binary,
        }
        arrays = {
            "layout": np.array(json.dumps(layout, sort_keys=True)),
            "coef": self._coef,
            "used": self._used.astype(np.int32 if len(self._rows) < 2**31 else np.int64),
            "intercept": self._intercept,
            "calibration_a": self._a,
            "calibration_b": self._b,
            "order": self._order,
        }
        if self._familiar is not None:
            arrays["familiar"] = self._familiar
        arrays.update({f"idf_{i}": block.idf for i, block in enumerate(self._blocks)})
        return arrays

    def _setup(self, parts: dict[str, Any], threshold: float, metadata: dict[str, Any] | None) -> None:
        """Check that the arrays fit together and keep them; ValueError when they do not."""
        self.threshold = float(threshold)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.classes: tuple[str, ...] = tuple(parts["classes"])
        n_classes = len(self.classes)
        coef = np.ascontiguousarray(parts["coef"], dtype=np.float64)
        used = np.asarray(parts["used"])
        n_features = int(parts["n_features"])
        blocks: list[FeatureBlock] = list(parts["blocks"])
        binary = bool(parts["binary"])
        n_scores = 1 if binary else n_classes
        order = np.asarray(parts["order"])
        if (
            n_classes < 2
            or len(set(self.classes)) != n_classes
            or binary != (n_classes == 2)
            or coef.ndim != 2
            or coef.shape != (len(used) + 1, n_classes)
            or used.ndim != 1
            or used.dtype.kind not in "iu"
            or (len(used) and (used[0] < 0 or used[-1] >= n_features or np.any(np.diff(used) <= 0)))
            or np.any(coef[-1] != 0)
            or any(np.asarray(parts[name]).shape != (n_scores,) for name in ("intercept", "calibration_a"))
            or np.asarray(parts["calibration_b"]).shape != (n_scores,)
            or order.shape != (n_scores,)
            or order.dtype.kind not in "iu"
            or len(set(order.tolist())) != n_scores
            or (len(order) and (order.min() < 0 or order.max() >= n_classes))
            or not blocks
        ):
            raise ValueError("runtime arrays do not fit together")
        end = 0
        for block in blocks:
            if (
                block.kind not in ("char", "word")
                or block.offset < end
                or block.n_features <= 0
                or block.norm not in (None, "l2")
                or block.idf.shape != (block.n_features,)
                or block.idf.dtype != np.float64
            ):
                raise ValueError("a feature block does not fit")
            end = block.offset + block.n_features
        lexicon = parts["lexicon"]
        if lexicon is not None and not 0 <= lexicon[0] <= n_features - len(RESTRICTED_CATEGORIES):
            raise ValueError("the lexicon columns are outside the features")
        if end > n_features:
            raise ValueError("feature blocks beyond the weights")
        familiar = None if parts["familiar"] is None else check_familiar_bitmap(parts["familiar"])
        self._coef = coef
        self._used = used.astype(np.int64)
        rows = np.full(n_features, len(used), dtype=np.int32)
        rows[self._used] = np.arange(len(used), dtype=np.int32)
        self._rows = rows
        self._blocks = tuple(blocks)
        self._lexicon: tuple[int, float] | None = lexicon
        self._familiar: np.ndarray | None = familiar
        # The character block whose hashes the familiarity reuses (same orders), if any.
        self._familiar_block = next(
            (b for b in self._blocks if b.kind == "char" and b.ngram_range == FAMILIAR_ORDERS), None
        )
        self._binary = binary
        self._intercept = np.asarray(parts["intercept"], dtype=np.float64)
        self._a = np.asarray(parts["calibration_a"], dtype=np.float64)
        self._b = np.asarray(parts["calibration_b"], dtype=np.float64)
        self._order = order.astype(np.int64)
        self._restricted_mask = np.array([is_restricted(c) for c in self.classes])
        self._scan: SafetyScan | None | bool = False  # False: not looked up yet

    @property
    def version(self) -> str:
        """The model version string recorded at training."""
        return str(self.metadata.get("model_version", "unversioned"))

    def _weights(self, features: np.ndarray | int) -> np.ndarray:
        """The weight rows of these feature indices (the zero row for features training never saw)."""
        return self._coef[self._rows[features]]

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
            probabilities[wordy] = self._probabilities([normalised[i] for i in wordy], [scanned[i][1] for i in wordy])
        chosen = probabilities.argmax(axis=1)
        if "other" in self.classes:
            # Fully unfamiliar text has uniform probabilities: no category stands out, so "other", not the first.
            chosen[np.ptp(probabilities, axis=1) <= 1e-12] = self.classes.index("other")
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

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The model's probabilities (rows: texts, columns: self.classes), as Prediction.probabilities gives them."""
        clean = [_as_text(text) for text in texts]
        scan = self._scanner()
        return self._probabilities([normalise(text) for text in clean], [safe_scan(scan, text)[1] for text in clean])

    def familiar_bitmap(self) -> np.ndarray | None:
        """The familiarity bitmap of the training texts (features.familiar_bitmap), None without the rule."""
        return self._familiar

    def familiarity(self, normalised: Sequence[str]) -> np.ndarray | None:
        """Per text, the share of its character n-grams (n >= min order) seen in training; None without the bitmap."""
        if self._familiar is None:
            return None
        return self._familiarity(normalised)[0]

    def _familiarity(self, normalised: Sequence[str]) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """(familiarity per text, the character block's (rows, cols) from the same hashes, reused for the scores).

        features.familiarity's computation, with the hashes shared with the character block.
        """
        assert self._familiar is not None
        min_order = int(self.metadata.get("unfamiliar_min_order", 3))
        rows, hashes, orders = char_ngram_raw_hashes(normalised, FAMILIAR_ORDERS)
        familiar = familiarity_from_hashes(len(normalised), rows, hashes, orders, self._familiar, min_order)
        block = self._familiar_block
        char = None if block is None else (rows, (hashes % np.uint64(block.n_features)).astype(np.int64))
        return familiar, char

    def _probabilities(self, normalised: list[str], hit_categories: Sequence[str | None]) -> np.ndarray:
        """Calibrated probabilities, then the unfamiliar-text rule (see MODEL_CARD.md)."""
        gamma = float(self.metadata.get("unfamiliar_gamma", 0.0) or 0.0)
        char = None
        familiar = None
        if self._familiar is not None:
            familiar, char = self._familiarity(normalised)
        proba = self._calibrated(normalised, hit_categories, char=char)
        if gamma > 0 and familiar is not None:
            proba = shrink_unfamiliar(proba, familiar, gamma)
        return proba

    def _calibrated(
        self,
        normalised: list[str],
        hit_categories: Sequence[str | None],
        char: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The pipeline's calibrated probabilities: linear scores, then one sigmoid per class, normalised."""
        # The estimator's scores: one per class in its order, or with two classes one, for the second.
        columns = np.array([1]) if self._binary else self._order
        decision = self._scores(normalised, char=char)[:, columns] + self._intercept
        if self._lexicon is not None:
            offset, weight = self._lexicon
            for i, category in enumerate(hit_categories):
                if category in RESTRICTED_CATEGORIES:
                    decision[i] += self._weights(offset + RESTRICTED_CATEGORIES.index(category))[columns] * weight
        n_classes = len(self.classes)
        proba = np.zeros((len(normalised), n_classes))
        if self._binary:
            proba[:, 1] = sigmoid(-(self._a * decision + self._b))[:, 0]
            proba[:, 0] = 1.0 - proba[:, 1]
        else:
            proba[:, self._order] = sigmoid(-(self._a * decision + self._b))
            total = proba.sum(axis=1, keepdims=True)
            proba = np.divide(proba, total, out=np.full_like(proba, 1.0 / n_classes), where=total != 0)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba

    def _scores(
        self, normalised: Sequence[str], *, words: bool = False, char: tuple[np.ndarray, np.ndarray] | None = None
    ) -> np.ndarray:
        """Character and word n-gram TF-IDF features @ weights, as the pipeline computes them (columns: classes).

        words=True leaves out the length normalisation (scores of single words for the top terms); char passes
        the character block's hashes when they are already computed.
        """
        n_texts = len(normalised)
        scores = np.zeros((n_texts, self._coef.shape[1]))
        for block in self._blocks:
            if char is not None and block is self._familiar_block:
                rows, cols = char
            else:
                rows, cols = block.hashes(normalised)
            if not len(rows):
                continue
            n_features = block.n_features
            keys, counts = np.unique(rows * n_features + cols, return_counts=True)
            rows, cols = keys // n_features, keys % n_features
            values = counts.astype(np.float64)
            if block.sublinear:
                values = np.log(values) + 1.0
            values *= block.idf[cols]
            if block.norm == "l2" and not words:
                norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n_texts))
                norms[norms == 0] = 1.0
                values /= norms[rows]
            values *= block.weight
            weight_rows = self._rows[cols + block.offset]
            if n_texts == 1:
                scores[0] += values @ self._coef[weight_rows]
            else:
                self._add_products(scores, rows, weight_rows, values)
        return scores

    def _add_products(self, scores: np.ndarray, rows: np.ndarray, weight_rows: np.ndarray, values: np.ndarray) -> None:
        """scores[row] += value * weights[weight row] for every entry; entries come sorted by row.

        The sparse (texts x features) @ (features x classes) product in numpy: entries whose feature training gave
        no weight add exactly zero and are dropped; the rest are gathered (np.take: much faster than fancy
        indexing), scaled and summed per text (np.add.reduceat) in chunks that stay in the processor's cache.
        """
        keep = weight_rows != len(self._used)
        rows, weight_rows, values = rows[keep], weight_rows[keep].astype(np.intp), values[keep]
        buffer = np.empty((min(len(rows), _CHUNK), self._coef.shape[1]))
        for start in range(0, len(rows), _CHUNK):
            stop = min(start + _CHUNK, len(rows))
            products = buffer[: stop - start]
            np.take(self._coef, weight_rows[start:stop], axis=0, out=products)
            products *= values[start:stop, None]
            chunk_rows = rows[start:stop]
            firsts = np.flatnonzero(np.concatenate(([True], chunk_rows[1:] != chunk_rows[:-1])))
            scores[chunk_rows[firsts]] += np.add.reduceat(products, firsts, axis=0)

    def _top_terms(self, texts: Sequence[str], normalised: Sequence[str], chosen: np.ndarray) -> list[tuple[str, ...]]:
        """The words of each text that weigh most towards its chosen category (as written in the text)."""
        if not texts:
            return []
        text_index: list[int] = []
        words: list[str] = []
        shown: list[str] = []
        for i, (text, norm) in enumerate(zip(texts, normalised, strict=True)):
            originals = _TERM.findall(text[:MAX_MODEL_CHARS])[:_MAX_TERM_WORDS]
            norms = _TERM.findall(norm)[:_MAX_TERM_WORDS]
            # Normalisation changed the word boundaries: show normalised words.
            shown += originals if len(norms) == len(originals) else norms
            words += norms
            text_index += [i] * len(norms)
        if not words:
            return [()] * len(texts)
        keys: dict[str, int] = {}
        cols = np.array([keys.setdefault(word, len(keys)) for word in words], dtype=np.int64)
        rows = np.array(text_index, dtype=np.int64)
        # Per class weight of single normalised words (TF-IDF without length normalisation: long, rare words count).
        values = self._scores(list(keys), words=True)[cols, np.asarray(chosen)[rows]]
        # Per text: words by weight (ties: in text order), positive ones only, each word once, the first three.
        order = np.lexsort((-values, rows))
        order = order[values[order] > 0]
        _, first = np.unique(rows[order] * len(keys) + cols[order], return_index=True)
        order = order[np.sort(first)]
        ranked = rows[order]
        rank = np.arange(len(order)) - np.searchsorted(ranked, ranked)
        result: list[list[str]] = [[] for _ in texts]
        for i, j in zip(ranked[rank < TOP_TERMS].tolist(), order[rank < TOP_TERMS].tolist(), strict=True):
            result[i].append(shown[j])
        return [tuple(picked) for picked in result]


_ARRAY_NAMES: Final = ("coef", "used", "intercept", "calibration_a", "calibration_b", "order")


def _arrays_from_pipeline(pipeline: Any) -> dict[str, Any]:
    """The pieces Model._setup keeps, read from a fitted pipeline (features union, calibrated linear model).

    UnsupportedPipelineError for another layout: only what the numpy path computes exactly is accepted.
    """
    from scipy import sparse

    from classifier.pipeline import CharNgramHasher, SafetyNetFeatures, TextNormaliser, WordNgramHasher

    try:
        steps = pipeline.steps
        if len(steps) != 2:
            raise UnsupportedPipelineError("expected two steps: features, calibrated model")
        union, model = steps[0][1], steps[1][1]
        classes = [str(c) for c in pipeline.classes_]
        calibrated = model.calibrated_classifiers_
        if len(calibrated) != 1 or calibrated[0].method != "sigmoid":
            raise UnsupportedPipelineError("expected one sigmoid-calibrated classifier (ensemble=False)")
        weights = union.transformer_weights or {}
        blocks: list[FeatureBlock] = []
        lexicon: tuple[int, float] | None = None
        offset = 0
        for name, part in union.transformer_list:
            weight = float(weights.get(name, 1.0))
            if isinstance(part, SafetyNetFeatures):
                lexicon = (offset, weight)
                offset += len(RESTRICTED_CATEGORIES)
                continue
            parts = [step for _, step in getattr(part, "steps", [])]
            if (
                len(parts) != 3
                or not isinstance(parts[0], TextNormaliser)
                or not isinstance(parts[1], CharNgramHasher | WordNgramHasher)
                or type(parts[2]).__name__ != "TfidfTransformer"
            ):
                raise UnsupportedPipelineError(f"feature block {name!r}: expected normalise, hash, tfidf")
            hasher, tfidf = parts[1], parts[2]
            idf = np.array(tfidf.idf_, dtype=np.float64)
            is_char = isinstance(hasher, CharNgramHasher)
            low, high = tuple(hasher.ngram_range) if is_char else (1, 2)
            blocks.append(
                FeatureBlock(
                    kind="char" if is_char else "word",
                    offset=offset,
                    n_features=int(hasher.n_features),
                    ngram_range=(int(low), int(high)),
                    weight=weight,
                    sublinear=bool(tfidf.sublinear_tf),
                    norm=tfidf.norm,
                    idf=idf,
                )
            )
            offset += int(hasher.n_features)
        estimator = calibrated[0].estimator
        raw = estimator.coef_
        if sparse.issparse(raw):
            by_feature = sparse.csc_matrix(raw)
            used = np.flatnonzero(np.diff(by_feature.indptr))
            block = by_feature[:, used].toarray()
        else:
            raw = np.asarray(raw, dtype=np.float64)
            used = np.flatnonzero(np.any(raw != 0, axis=0))
            block = raw[:, used]
        if raw.shape[1] != offset:
            raise UnsupportedPipelineError("the weights do not cover the features")
        binary = len(classes) == 2
        if binary:
            if block.shape[0] != 1 or [str(c) for c in estimator.classes_] != classes:
                raise UnsupportedPipelineError("two classes: expected one score for the second")
            block = np.vstack([-block[0], block[0]])
        order = np.array([classes.index(str(c)) for c in estimator.classes_], dtype=np.int64)
        if binary:
            order = order[1:]
        coef = np.zeros((len(used) + 1, len(classes)), dtype=np.float64)
        # Columns in self.classes order (the estimator's order is the same in practice: both are sorted labels).
        coef[:-1, np.arange(len(classes)) if binary else order] = block.T
        return {
            "classes": classes,
            "coef": coef,
            "used": used.astype(np.int64),
            "n_features": offset,
            "blocks": blocks,
            "lexicon": lexicon,
            "binary": binary,
            "intercept": np.array(estimator.intercept_, dtype=np.float64).ravel(),
            "calibration_a": np.array([c.a_ for c in calibrated[0].calibrators], dtype=np.float64),
            "calibration_b": np.array([c.b_ for c in calibrated[0].calibrators], dtype=np.float64),
            "order": order,
        }
    except (AttributeError, IndexError, TypeError, KeyError) as exc:
        raise UnsupportedPipelineError(f"not a fitted classifier pipeline ({type(exc).__name__})") from exc


def _as_text(text: object) -> str:
    """A str for anything given as a text (None and non-strings become empty or their str)."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "replace")
    return "" if text is None else str(text)


def load_model(path: str | Path | None = None) -> Model | None:
    """The model at path (default: the shipped one), or None with a logged reason: cases go to manual triage.

    The runtime arrays beside the skops file (same name, .npz) are read when they were derived from exactly that
    file (its sha256); otherwise the skops file itself, which imports scikit-learn (logged).
    """
    from classifier import persistence

    target = Path(path) if path is not None else DEFAULT_MODEL_PATH
    try:
        return persistence.load_for_prediction(target)
    except persistence.ModelError as exc:
        log.warning("classifier model not loaded (%s): %s", type(exc).__name__, exc)
        return None


__all__ = [
    "CATEGORIES",
    "DEFAULT_MODEL_PATH",
    "Model",
    "Prediction",
    "UnsupportedPipelineError",
    "load_model",
    "route",
    "safety_scanner",
]
