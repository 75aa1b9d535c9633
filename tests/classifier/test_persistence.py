"""Saving and loading: round trip, version checks, corrupt and missing files, untrusted types, atomic writes."""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path

import pytest
import sklearn
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from classifier import persistence
from classifier.predict import Model, load_model

TEXTS = ["when is the flight", "the driver asked me to spend the night", "thank you so much", "", "😀"]


@pytest.fixture(scope="module")
def saved_once(small_model: Model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small model saved once for this module."""
    return persistence.save(small_model, tmp_path_factory.mktemp("saved") / "model.skops")


@pytest.fixture
def saved(saved_once: Path, tmp_path: Path) -> Path:
    """A private copy of the saved small model (tests may damage it)."""
    target = tmp_path / "model.skops"
    shutil.copyfile(saved_once, target)
    return target


def test_round_trip_predicts_the_same(small_model: Model, saved: Path) -> None:
    """A saved and loaded model gives the same predictions, threshold and metadata."""
    loaded = persistence.load(saved)
    assert loaded.threshold == small_model.threshold
    assert loaded.classes == small_model.classes
    assert [p.to_dict() for p in loaded.predict(TEXTS)] == [p.to_dict() for p in small_model.predict(TEXTS)]
    meta = loaded.metadata
    assert meta["format_version"] == persistence.FORMAT_VERSION
    assert meta["sklearn_version"] == sklearn.__version__
    assert meta["labels"] == list(small_model.classes)
    assert meta["threshold"] == small_model.threshold


def test_artifact_is_compressed_zip_with_metadata(saved: Path) -> None:
    """The artifact is a deflate-compressed skops zip with a readable metadata member."""
    with zipfile.ZipFile(saved) as archive:
        infos = archive.infolist()
        assert "schema.json" in archive.namelist()
        assert persistence.METADATA_MEMBER in archive.namelist()
    assert any(info.compress_type == zipfile.ZIP_DEFLATED for info in infos)
    assert persistence.read_metadata(saved)["format_version"] == persistence.FORMAT_VERSION


def test_save_is_atomic(small_model: Model, saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed save leaves the previous artifact untouched and no temporary file behind."""
    before = saved.read_bytes()

    def broken_dump(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(persistence.sio, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        persistence.save(small_model, saved)
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_format_version_change_is_refused(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An artifact of another format version raises ModelVersionError, and load_model gives None."""
    monkeypatch.setattr(persistence, "FORMAT_VERSION", persistence.FORMAT_VERSION + 1)
    with pytest.raises(persistence.ModelVersionError, match="format version"):
        persistence.load(saved)
    assert load_model(saved) is None


def test_sklearn_version_change_is_refused(
    small_model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An artifact written by another scikit-learn series raises ModelVersionError."""
    with monkeypatch.context() as patch:
        patch.setattr(persistence.sklearn, "__version__", "0.24.2")
        path = persistence.save(small_model, tmp_path / "old.skops")
    with pytest.raises(persistence.ModelVersionError, match="scikit-learn 0.24.2"):
        persistence.load(path)
    assert load_model(path) is None


def test_missing_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A missing artifact raises ModelNotFoundError; load_model logs the reason and returns None."""
    with pytest.raises(persistence.ModelNotFoundError):
        persistence.load(tmp_path / "nope.skops")
    with caplog.at_level(logging.WARNING):
        assert load_model(tmp_path / "nope.skops") is None
    assert "ModelNotFoundError" in caplog.text


@pytest.mark.parametrize(
    "damage",
    ["random_bytes", "truncated", "empty", "no_metadata", "metadata_not_object", "broken_schema"],
)
def test_corrupt_file(saved: Path, damage: str) -> None:
    """Damaged artifacts raise ModelCorruptError and load_model returns None."""
    content = saved.read_bytes()
    if damage == "random_bytes":
        saved.write_bytes(bytes(range(256)) * 40)
    elif damage == "truncated":
        saved.write_bytes(content[: len(content) // 2])
    elif damage == "empty":
        saved.write_bytes(b"")
    else:
        with zipfile.ZipFile(saved) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        if damage == "no_metadata":
            del members[persistence.METADATA_MEMBER]
        elif damage == "metadata_not_object":
            members[persistence.METADATA_MEMBER] = b"[1, 2]"
        else:
            members["schema.json"] = b'{"__class__": "dict", "content": '
        with zipfile.ZipFile(saved, "w") as archive:
            for name, payload in members.items():
                archive.writestr(name, payload)
    with pytest.raises(persistence.ModelCorruptError):
        persistence.load(saved)
    assert load_model(saved) is None


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    """An artifact holding a type outside the explicit trusted list is refused before anything is built."""
    path = tmp_path / "evil.skops"
    sio.dump({"pipeline": LogisticRegression(), "threshold": 0.5, "metadata": "{}"}, path)
    metadata = {"format_version": persistence.FORMAT_VERSION, "sklearn_version": sklearn.__version__}
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(persistence.METADATA_MEMBER, json.dumps(metadata))
    with pytest.raises(persistence.ModelCorruptError, match="untrusted types"):
        persistence.load(path)


def test_not_a_pipeline_is_corrupt(tmp_path: Path) -> None:
    """An artifact of trusted types that is not a classifier is refused as corrupt."""
    path = tmp_path / "odd.skops"
    metadata = {"format_version": persistence.FORMAT_VERSION, "sklearn_version": sklearn.__version__}
    sio.dump({"pipeline": [1, 2], "threshold": 0.5, "metadata": json.dumps(metadata)}, path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(persistence.METADATA_MEMBER, json.dumps(metadata))
    with pytest.raises(persistence.ModelCorruptError):
        persistence.load(path)


def test_error_hierarchy() -> None:
    """All load errors share the ModelError base."""
    for error in (persistence.ModelNotFoundError, persistence.ModelCorruptError, persistence.ModelVersionError):
        assert issubclass(error, persistence.ModelError)
