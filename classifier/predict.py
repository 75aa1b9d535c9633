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
from sklearn.pipeline import Pipeline

from classifier import language
from classifier.categories import CATEGORIES, RESTRICTED_CATEGORIES, is_restricted
from classifier.pipeline import MAX_MODEL_CHARS, linear_estimator, normalise

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH: Final = Path(__file__).resolve().parent / "models" / "default.skops"
TOP_TERMS: Final = 3
REASONS: Final = ("category", "threshold", "safety_net")
# A word for the top terms: letters/digits with inner apostrophes or hyphens.
_WORD: Final = re.compile(r"\w+(?:['’-]\w+)*")
_HAS_LETTER: Final = re.compile(r"[^\W\d_]")
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
    try:
        from classifier import safety_net
    except Exception as exc:  # the safety net is someone else's module; its absence must not stop prediction
        log.warning("safety net unavailable: %s", type(exc).__name__)
        return None
    scan: SafetyScan = safety_net.scan
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
        self._coef = self._class_weights()
        self._word_parts = self._word_feature_parts()
        self._scan: SafetyScan | None | bool = False  # False: not looked up yet

    @property
    def version(self) -> str:
        """The model version string recorded at training."""
        return str(self.metadata.get("model_version", "unversioned"))

    def _class_weights(self) -> Any:
        """Linear weights as a (features x classes) matrix for explaining predictions."""
        estimator = linear_estimator(self.pipeline)
        coef = estimator.coef_.toarray() if sparse.issparse(estimator.coef_) else np.asarray(estimator.coef_)
        if coef.shape[0] == 1 and len(self.classes) == 2:
            coef = np.vstack([-coef[0], coef[0]])
        return np.ascontiguousarray(coef.T)

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
        has_letter = [bool(_HAS_LETTER.search(text[:MAX_MODEL_CHARS])) for text in clean]
        wordy = [i for i, ok in enumerate(has_letter) if ok]
        probabilities = np.zeros((len(clean), len(self.classes)))
        if "other" in self.classes:
            probabilities[:, self.classes.index("other")] = 1.0
        if wordy:
            probabilities[wordy] = self.pipeline.predict_proba([clean[i] for i in wordy])
        chosen = probabilities.argmax(axis=1)
        terms = self._top_terms([clean[i] for i in wordy], chosen[wordy])
        top_terms: list[tuple[str, ...]] = [()] * len(clean)
        for i, found in zip(wordy, terms, strict=True):
            top_terms[i] = found
        restricted_mass = probabilities[:, self._restricted_mask].sum(axis=1)
        scan = self._scanner()
        predictions = []
        for i, text in enumerate(clean):
            category = self.classes[int(chosen[i])] if has_letter[i] or "other" not in self.classes else "other"
            hit, hit_category = safe_scan(scan, text)
            restricted, reasons = route(category, float(restricted_mass[i]), self.threshold, hit)
            predictions.append(
                Prediction(
                    category=category,
                    confidence=float(probabilities[i, self.classes.index(category)]),
                    probabilities={c: float(p) for c, p in zip(self.classes, probabilities[i], strict=True)},
                    language=language.detect(text) if has_letter[i] else language.UNKNOWN,
                    restricted=restricted,
                    restricted_reasons=reasons,
                    safety_net_category=hit_category,
                    top_terms=top_terms[i],
                    model_version=self.version,
                )
            )
        return predictions

    def _word_feature_parts(self) -> list[tuple[Any, Any]]:
        """(hasher, idf x weight diagonal) per feature block, to vectorise single words without normalisation."""
        union = self._features.steps[-1][1]
        parts = []
        for name, part in union.transformer_list:
            weight = (union.transformer_weights or {}).get(name, 1.0)
            idf = part.steps[-1][1].idf_
            parts.append((part.steps[0][1], sparse.diags(idf * weight, format="csr")))
        return parts

    def _word_vectors(self, words: list[str]) -> Any:
        """TF-IDF vectors of single words without length normalisation (rare, long words weigh more)."""
        blocks = []
        for hasher, idf in self._word_parts:
            counts = hasher.transform(words)
            counts.data = 1.0 + np.log(counts.data)
            blocks.append(counts @ idf)
        return sparse.hstack(blocks, format="csr")

    def _top_terms(self, texts: Sequence[str], chosen: np.ndarray) -> list[tuple[str, ...]]:
        """The words of each text that weigh most towards its chosen category."""
        if not texts:
            return []
        words_per_text: list[list[tuple[str, str]]] = []
        keys: dict[str, int] = {}
        normalised: dict[str, str] = {}
        for text in texts:
            pairs = []
            for word in _WORD.findall(text[:MAX_MODEL_CHARS])[:_MAX_TERM_WORDS]:
                if len(word) > 2 and _HAS_LETTER.search(word):
                    key = normalised.get(word)
                    if key is None:
                        key = normalised[word] = normalise(word)
                        keys.setdefault(key, len(keys))
                    pairs.append((word, key))
            words_per_text.append(pairs)
        if not keys:
            return [()] * len(texts)
        scores = self._word_vectors(list(keys)) @ self._coef
        result: list[tuple[str, ...]] = []
        for pairs, column in zip(words_per_text, chosen, strict=True):
            ranked: dict[str, tuple[float, str]] = {}
            for word, key in pairs:
                value = float(scores[keys[key], column])
                if value > 0 and key not in ranked:
                    ranked[key] = (value, word)
            best = sorted(ranked.values(), reverse=True)[:TOP_TERMS]
            result.append(tuple(word for _, word in best))
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
        return persistence.load(target)
    except persistence.ModelError as exc:
        log.warning("classifier model not loaded (%s): %s", type(exc).__name__, exc)
        return None


__all__ = ["CATEGORIES", "DEFAULT_MODEL_PATH", "Model", "Prediction", "load_model", "route", "safety_scanner"]
