"""build_pipeline(): text normalisation, hashed character and word n-grams, a calibrated linear model."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.model_selection import BaseCrossValidator, GroupKFold, PredefinedSplit
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

RANDOM_STATE: Final = 20240611
# Longer texts are cut for the model (the safety net still reads all of it); hotline notes stay far below this.
MAX_MODEL_CHARS: Final = 20_000
CHAR_FEATURES: Final = 2**18
WORD_FEATURES: Final = 2**17

_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_CONTROLS: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_ELONGATION: Final = re.compile(r"(\D)\1{2,}")
_LONG_NUMBER: Final = re.compile(r"\d{3,}")
# Combining marks: Latin accents, Cyrillic breve and stress, Arabic harakat and hamza marks, Ethiopic has none.
_COMBINING: Final = re.compile("[\u0300-\u036f\u0483-\u0489\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

# Arabic-script letter variants onto one form (alef, yeh, kaf, teh marbuta, heh), Arabic-Indic digits to ASCII.
_TRANSLATE: Final = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ی": "ي",
        "ې": "ي",
        "ۍ": "ي",
        "ئ": "ي",
        "ک": "ك",
        "ګ": "گ",
        "ة": "ه",
        "ۀ": "ه",
        "ہ": "ه",
        "ـ": None,  # tatweel
        **{chr(0x0660 + i): str(i) for i in range(10)},
        **{chr(0x06F0 + i): str(i) for i in range(10)},
    }
)


def normalise(text: str) -> str:
    """Lowercase NFKC text without diacritics, Arabic letter variants, tatweel, elongation or long numbers."""
    if not isinstance(text, str):
        return ""
    text = text[:MAX_MODEL_CHARS]
    if text.isascii():
        text = _CONTROLS.sub(" ", text.lower())
    else:
        text = _CONTROLS.sub(" ", _SURROGATES.sub("", text))
        text = unicodedata.normalize("NFKD", text.casefold())
        if _COMBINING.search(text):
            text = _COMBINING.sub("", text)
        text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    text = _ELONGATION.sub(r"\1\1", text)
    text = _LONG_NUMBER.sub("000", text)
    return " ".join(text.split())


class TextNormaliser(TransformerMixin, BaseEstimator):
    """Pipeline step applying normalise() to every text."""

    def fit(self, X: Iterable[str], y: Any = None) -> TextNormaliser:
        """Nothing to learn."""
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        """Normalised copies of the texts."""
        return [normalise(text) for text in X]

    def __sklearn_tags__(self) -> Any:
        """Input is a list of strings, not a numeric array."""
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags


def build_features() -> Pipeline:
    """Normaliser plus the union of char_wb 1-4 grams and word 1-2 grams, each hashed and TF-IDF weighted."""
    char = Pipeline(
        [
            (
                "hash",
                HashingVectorizer(
                    analyzer="char_wb",
                    ngram_range=(1, 4),
                    n_features=CHAR_FEATURES,
                    alternate_sign=False,
                    norm=None,
                    lowercase=False,
                ),
            ),
            ("tfidf", TfidfTransformer(sublinear_tf=True)),
        ]
    )
    word = Pipeline(
        [
            (
                "hash",
                HashingVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    token_pattern=r"(?u)\b\w+\b",
                    n_features=WORD_FEATURES,
                    alternate_sign=False,
                    norm=None,
                    lowercase=False,
                ),
            ),
            ("tfidf", TfidfTransformer(sublinear_tf=True)),
        ]
    )
    union = FeatureUnion([("char", char), ("word", word)], transformer_weights={"char": 1.0, "word": 0.6})
    return Pipeline([("normalise", TextNormaliser()), ("features", union)])


def calibration_folds(groups: Sequence[str], n_splits: int = 4) -> PredefinedSplit:
    """Group folds for the calibration step (near-duplicates never calibrate each other); deterministic."""
    n_splits = max(2, min(n_splits, len(set(groups))))
    test_fold = np.zeros(len(groups), dtype=np.int64)
    for fold, (_, test) in enumerate(GroupKFold(n_splits=n_splits).split(np.zeros(len(groups)), groups=groups)):
        test_fold[test] = fold
    return PredefinedSplit(test_fold)


def build_pipeline(calibration_cv: int | BaseCrossValidator = 4, c: float = 0.5) -> Pipeline:
    """The whole classifier: features, then a LinearSVC with sigmoid calibration (train passes group folds)."""
    svm = LinearSVC(C=c, class_weight="balanced", random_state=RANDOM_STATE)
    calibrated = CalibratedClassifierCV(svm, method="sigmoid", cv=calibration_cv, ensemble=False)
    features = build_features()
    return Pipeline([*features.steps, ("model", calibrated)])


def linear_estimator(pipeline: Pipeline) -> Any:
    """The fitted linear model inside the calibrated step (its coef_ gives the top terms)."""
    return pipeline.steps[-1][1].calibrated_classifiers_[0].estimator
