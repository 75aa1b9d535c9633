"""Training: fit the pipeline on the training split, tune the restricted threshold out of fold, save."""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GroupKFold

from classifier import data
from classifier.categories import RESTRICTED_CATEGORIES, is_restricted
from classifier.data import Example
from classifier.pipeline import (
    UNFAMILIAR_GAMMA,
    UNFAMILIAR_MIN_ORDER,
    build_features,
    build_pipeline,
    calibration_folds,
    familiar_bitmap,
    familiarity,
    normalise,
    shrink_unfamiliar,
)
from classifier.predict import DEFAULT_MODEL_PATH, Model, safe_scan, safety_scanner

log = logging.getLogger(__name__)

PACKAGE_DIR: Final = Path(__file__).resolve().parent
# The files whose content decides what a trained model is; a change in any of them means: retrain.
FINGERPRINT_FILES: Final = (
    "categories.py",
    "pipeline.py",
    "features.py",
    "train.py",
    "language.py",
    "safety_net.py",
    "data/__init__.py",
)
# The floor is 0.98; the threshold aims above it (issue 3). Out-of-fold recall counts the safety net, and the
# lexicon entries added for issue 3 were written from the training split's own misses, so they catch those very
# lines (as hits and as features) and would raise the threshold by construction. Measured on the training split:
# with the lexicon as it was before them, tuning at 0.98 gives threshold 0.178; with the current lexicon that
# threshold reaches 0.986 out of fold. The margin keeps the fitted entries from moving the threshold; they still
# add restriction at prediction time. Re-checked with the familiarity bitmap (issue 3, training split, 5 folds):
# 0.98 would give threshold 0.228 and 0.093 of general lines caught, 0.986 gives 0.193 and 0.134; the margin stays,
# since held out the model reached 0.975 restricted recall even at 0.986 (floor 0.98).
TARGET_RECALL: Final = 0.986
TUNING_FOLDS: Final = 5
MIN_THRESHOLD: Final = 0.02
MAX_THRESHOLD: Final = 0.9


class NoTrainingDataError(ValueError):
    """Nothing (or fewer than two categories) to train on."""


def code_fingerprint(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the code and lexicon files that decide the model's behaviour."""
    digest = hashlib.sha256()
    paths = [package_dir / name for name in FINGERPRINT_FILES]
    lexicon = package_dir / "lexicon"
    if lexicon.is_dir():
        paths += sorted(p for p in lexicon.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in paths:
        digest.update(path.relative_to(package_dir).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class ThresholdChoice:
    """The tuned threshold and what it achieved out of fold on the training split."""

    threshold: float
    restricted_recall: float
    false_restricted_rate: float
    model_only_recall: float
    n_restricted: int
    n_general: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "threshold": self.threshold,
            "restricted_recall": self.restricted_recall,
            "false_restricted_rate": self.false_restricted_rate,
            "model_only_recall": self.model_only_recall,
            "n_restricted": self.n_restricted,
            "n_general": self.n_general,
        }


def restricted_mass(probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Summed probability of the restricted categories per row."""
    mask = np.array([is_restricted(c) for c in classes])
    return probabilities[:, mask].sum(axis=1)


def tune_threshold(
    probabilities: np.ndarray,
    classes: Sequence[str],
    labels: Sequence[str],
    safety_hits: Sequence[bool],
    target_recall: float = TARGET_RECALL,
) -> ThresholdChoice:
    """Highest threshold whose restricted recall (with category and safety net) reaches target_recall."""
    truth = np.array([is_restricted(label) for label in labels])
    top_restricted = np.array([is_restricted(classes[i]) for i in probabilities.argmax(axis=1)])
    hits = np.asarray(safety_hits, dtype=bool)
    mass = restricted_mass(probabilities, classes)
    caught_anyway = top_restricted | hits
    n_restricted, n_general = int(truth.sum()), int((~truth).sum())

    def outcome(threshold: float) -> tuple[float, float]:
        flagged = caught_anyway | (mass >= threshold)
        recall = float(flagged[truth].mean()) if n_restricted else 1.0
        false_rate = float(flagged[~truth].mean()) if n_general else 0.0
        return recall, false_rate

    # Candidates: each restricted line's mass (the threshold that just catches it), highest first.
    candidates = sorted({MAX_THRESHOLD, *np.clip(mass[truth], MIN_THRESHOLD, MAX_THRESHOLD).tolist()}, reverse=True)
    chosen = MIN_THRESHOLD
    for candidate in candidates:
        if outcome(candidate)[0] >= target_recall:
            chosen = candidate
            break
    # Round down a little so the rule does not hinge on one line's exact probability.
    chosen = max(MIN_THRESHOLD, float(np.floor(chosen * 1000) / 1000))
    recall, false_rate = outcome(chosen)
    model_only = float((top_restricted | (mass >= chosen))[truth].mean()) if n_restricted else 1.0
    return ThresholdChoice(chosen, recall, false_rate, model_only, n_restricted, n_general)


def out_of_fold_probabilities(
    texts: Sequence[str],
    labels: Sequence[str],
    groups: Sequence[str],
    folds: int = TUNING_FOLDS,
    gamma: float = UNFAMILIAR_GAMMA,
    min_order: int = UNFAMILIAR_MIN_ORDER,
) -> tuple[np.ndarray, list[str]]:
    """Group k-fold probabilities for every training text, as the model would give them (unfamiliar-text rule too).

    The features are fitted once (their IDF sees every text, no labels); the model and the familiarity bitmap (the
    character n-grams counted as familiar) come from the training folds only.
    """
    classes = sorted(set(labels))
    features = build_features()
    matrix = features.fit_transform(list(texts))
    y = np.asarray(labels)
    group_array = np.asarray(groups)
    n_splits = max(2, min(folds, len(set(groups))))
    result = np.zeros((len(texts), len(classes)))
    template = build_pipeline().steps[-1][1]
    normalised = [normalise(text) for text in texts]
    for train_idx, test_idx in GroupKFold(n_splits=n_splits).split(matrix, y, groups=group_array):
        fold_classes = sorted(set(y[train_idx]))
        if len(fold_classes) < 2:
            continue
        model = clone(template)
        model.set_params(cv=calibration_folds(group_array[train_idx].tolist()))
        model.fit(matrix[train_idx], y[train_idx])
        fold_proba = model.predict_proba(matrix[test_idx])
        proba = np.zeros((len(test_idx), len(classes)))
        for j, cls in enumerate(model.classes_):
            proba[:, classes.index(cls)] = fold_proba[:, j]
        bitmap = familiar_bitmap([normalised[i] for i in train_idx])
        familiar = familiarity([normalised[i] for i in test_idx], bitmap, min_order)
        result[test_idx] = shrink_unfamiliar(proba, familiar, gamma)
    return result, classes


def fit_model(
    examples: Sequence[Example],
    groups: Sequence[str] | None = None,
    *,
    tune: bool = True,
    folds: int = TUNING_FOLDS,
    target_recall: float = TARGET_RECALL,
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Fit the pipeline on examples and tune its threshold out of fold; raises NoTrainingDataError."""
    examples = [e for e in examples if e.text and e.text.strip()]
    categories = Counter(e.category for e in examples)
    if len(categories) < 2:
        raise NoTrainingDataError(
            f"need examples of at least 2 categories, got {len(examples)} examples in {len(categories)}"
        )
    if groups is None:
        groups = data.assign_groups(examples)
    groups = list(groups)
    texts = [e.text for e in examples]
    labels = [e.category for e in examples]
    started = time.perf_counter()
    threshold_info: dict[str, Any] = {"tuned": False}
    threshold = 0.5
    if tune and len(set(groups)) >= 3:
        probabilities, classes = out_of_fold_probabilities(
            texts, labels, groups, folds, UNFAMILIAR_GAMMA, UNFAMILIAR_MIN_ORDER
        )
        scan = safety_scanner()
        hits = [safe_scan(scan, text)[0] for text in texts]
        choice = tune_threshold(probabilities, classes, labels, hits, target_recall)
        threshold = choice.threshold
        threshold_info = {"tuned": True, "folds": folds, "target_recall": target_recall, **choice.as_dict()}
    pipeline = build_pipeline(calibration_folds(groups))
    pipeline.fit(texts, labels)
    bitmap = familiar_bitmap([normalise(text) for text in texts])
    info = dict(metadata or {})
    estimator = pipeline.steps[-1][1].estimator
    info.update(
        svm_c=getattr(estimator, "C", None),
        nb_weight=getattr(estimator, "nb_weight", None),
        nb_alpha=getattr(estimator, "nb_alpha", None),
        unfamiliar_gamma=UNFAMILIAR_GAMMA,
        unfamiliar_min_order=UNFAMILIAR_MIN_ORDER,
        n_examples=len(examples),
        categories=dict(sorted(categories.items())),
        languages=dict(sorted(Counter(e.lang for e in examples).items())),
        threshold_tuning=threshold_info,
        training_seconds=round(time.perf_counter() - started, 2),
    )
    return Model.from_pipeline(pipeline, threshold, info, familiar=bitmap)


def train(corpus: Iterable[Example] | None = None, extra: Iterable[Example] = (), output: Path | None = None) -> Model:
    """Train on corpus (default: the training split of the shipped corpus) plus extra; save when output is given."""
    extra_list = list(extra)
    if corpus is None:
        corpus_split = data.load_split()
        examples, groups = list(corpus_split.train), list(corpus_split.train_groups)
        corpus_sha = data.corpus_sha256()
        corpus_source = "corpus-train-split"
        n_held_out = len(corpus_split.held_out)
    else:
        examples = list(corpus)
        groups = data.assign_groups(examples)
        corpus_sha = data.examples_sha256(examples)
        corpus_source = "given"
        n_held_out = 0
    if extra_list:
        extra_groups = data.assign_groups(extra_list)
        examples += extra_list
        groups += [f"extra:{g}" for g in extra_groups]
    trained_at = datetime.now(UTC).replace(microsecond=0)
    fingerprint = code_fingerprint()
    metadata = {
        "model_version": f"{trained_at:%Y%m%d}-{corpus_sha[:8]}-{fingerprint[:8]}"
        + (f"+{len(extra_list)}c" if extra_list else ""),
        "trained_at": trained_at.isoformat(),
        "corpus_sha256": corpus_sha,
        "corpus_source": corpus_source,
        "code_fingerprint": fingerprint,
        "n_extra": len(extra_list),
        "extra_sha256": data.examples_sha256(extra_list) if extra_list else None,
        "n_held_out": n_held_out,
        "restricted_categories": list(RESTRICTED_CATEGORIES),
    }
    model = fit_model(examples, groups, metadata=metadata)
    if output is not None:
        from classifier import persistence

        persistence.save(model, output)
    return model


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: python -m classifier.train [--output PATH]."""
    parser = argparse.ArgumentParser(prog="python -m classifier.train", description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_MODEL_PATH, help="artifact path (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = train(output=args.output)
    except NoTrainingDataError as exc:
        print(f"no training data: {exc}", file=sys.stderr)
        return 2
    tuning = model.metadata["threshold_tuning"]
    print(
        f"trained {model.version} on {model.metadata['n_examples']} examples "
        f"in {model.metadata['training_seconds']} s; threshold {model.threshold:.3f} "
        f"(out-of-fold restricted recall {tuning.get('restricted_recall', float('nan')):.3f}, "
        f"false-restricted {tuning.get('false_restricted_rate', float('nan')):.3f}); saved {args.output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
