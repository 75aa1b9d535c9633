"""Evaluation: report figures, floors, written reports and model card (on a small model, fast)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from classifier import evaluate
from classifier.categories import RESTRICTED_CATEGORIES
from classifier.predict import Model


@pytest.fixture(scope="module")
def report(small_model: Model, tmp_path_factory: pytest.TempPathFactory) -> tuple[evaluate.EvaluationReport, Path]:
    """An evaluation of the small model, with leave-one-language-out on one language, written to a temp folder."""
    out = tmp_path_factory.mktemp("reports")
    result = evaluate.evaluate(small_model, out, lolo_languages=["en"], lolo_sample=15)
    return result, out


def test_report_figures(report: tuple[evaluate.EvaluationReport, Path]) -> None:
    """The report carries held-out figures per category, language, restricted queue and LOLO."""
    result, _ = report
    assert result.n_held_out > 0
    assert 0.0 <= result.macro_f1 <= 1.0
    assert set(result.restricted_by_category) == set(RESTRICTED_CATEGORIES)
    assert 0.0 <= result.restricted["recall"] <= 1.0
    assert 0.0 <= result.restricted["false_restricted_rate"] <= 1.0
    assert result.per_language and all(0.0 <= row["macro_f1"] <= 1.0 for row in result.per_language.values())
    assert list(result.lolo) == ["en"]
    assert len(result.confusion) == len(result.confusion_labels)
    assert sum(map(sum, result.confusion)) == result.n_held_out


def test_floors(report: tuple[evaluate.EvaluationReport, Path]) -> None:
    """floors() lists (name, value, floor, holds) for every floor of the issue."""
    result, _ = report
    floors = result.floors()
    names = [name for name, *_ in floors]
    assert names[:3] == ["macro_f1", "restricted_recall", "false_restricted_rate (ceiling)"]
    assert any(name.startswith("min_language_macro_f1") for name in names)
    assert any(name.startswith("lolo_min_restricted_recall") for name in names)
    for name, value, floor, holds in floors:
        assert isinstance(holds, bool) and not math.isnan(value)
        assert holds == (value <= floor if "ceiling" in name else value >= floor)


def test_reports_written(report: tuple[evaluate.EvaluationReport, Path]) -> None:
    """evaluation.json, evaluation.md and the model card are written to the output folder."""
    result, out = report
    saved = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert saved["macro_f1"] == pytest.approx(result.macro_f1)
    markdown = (out / "evaluation.md").read_text(encoding="utf-8")
    assert "Confusion matrix" in markdown and "Per language" in markdown
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert result.model_version in card
    assert "out-of-fold" in card and f"{result.threshold:.3f}" in card


def test_corpus_statistics_section(tmp_path: Path) -> None:
    """The data README statistics section is regenerated between its markers."""
    readme = tmp_path / "README.md"
    readme.write_text(f"guide\n\n{evaluate.STATS_BEGIN}\nold\n{evaluate.STATS_END}\ntail\n", encoding="utf-8")
    evaluate.write_data_readme(readme)
    text = readme.read_text(encoding="utf-8")
    assert "old" not in text and "information_request" in text and text.endswith("tail\n")


def test_committed_readme_has_markers() -> None:
    """classifier/data/README.md keeps the markers the generator needs."""
    text = evaluate.DATA_README.read_text(encoding="utf-8")
    assert evaluate.STATS_BEGIN in text and evaluate.STATS_END in text
