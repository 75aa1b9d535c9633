"""Saving and loading: round trip, version checks, corrupt and missing files, untrusted types, atomic writes, and the
runtime arrays (.npz) beside the skops file: derived from it (sha256), read without scikit-learn, else the fallback."""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sklearn
import skops.io
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
    """A private copy of the saved small model and its runtime arrays (tests may damage them)."""
    target = tmp_path / "model.skops"
    shutil.copyfile(saved_once, target)
    shutil.copyfile(persistence.runtime_path(saved_once), persistence.runtime_path(target))
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

    monkeypatch.setattr(skops.io, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        persistence.save(small_model, saved)
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.npz", "model.skops"]


def test_a_failed_runtime_write_keeps_the_old_arrays_and_load_falls_back(
    small_model: Model, saved: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The .npz is replaced atomically too; arrays of an older skops file are never read for a newer one."""
    arrays = persistence.runtime_path(saved)
    before = arrays.read_bytes()

    def broken_savez(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(persistence, "_savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        persistence.save(small_model, saved)
    assert arrays.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.npz", "model.skops"]
    with caplog.at_level(logging.WARNING):
        model = load_model(saved)
    assert model is not None and model.predict(TEXTS)  # from the skops file: the arrays were not derived from it
    assert "runtime arrays not used (ModelVersionError" in caplog.text


def test_format_version_change_is_refused(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An artifact of another format version raises ModelVersionError, and load_model gives None."""
    monkeypatch.setattr(persistence, "FORMAT_VERSION", persistence.FORMAT_VERSION + 1)
    with pytest.raises(persistence.ModelVersionError, match="format version"):
        persistence.load(saved)
    assert load_model(saved) is None


def test_sklearn_version_change_is_refused(small_model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A skops artifact written by another scikit-learn series raises ModelVersionError; its runtime arrays
    (numpy only) still load, and without them load_model gives None."""
    with monkeypatch.context() as patch:
        patch.setattr(sklearn, "__version__", "0.24.2")
        path = persistence.save(small_model, tmp_path / "old.skops")
    with pytest.raises(persistence.ModelVersionError, match="scikit-learn 0.24.2"):
        persistence.load(path)
    model = load_model(path)
    assert model is not None
    assert [p.to_dict() for p in model.predict(TEXTS)] == [p.to_dict() for p in small_model.predict(TEXTS)]
    persistence.runtime_path(path).unlink()
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
    assert persistence.runtime_path(saved).is_file()  # arrays of the undamaged file: not used for this one
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


def test_save_writes_runtime_arrays_derived_from_the_skops_file(saved: Path) -> None:
    """Beside model.skops: model.npz, numpy arrays only, recording the skops file's sha256 and the format."""
    arrays_path = persistence.runtime_path(saved)
    assert arrays_path.name == "model.npz"
    with np.load(arrays_path, allow_pickle=False) as arrays:
        assert str(arrays[persistence.SOURCE_MEMBER]) == persistence.file_sha256(saved)
        assert int(arrays[persistence.RUNTIME_FORMAT_MEMBER]) == persistence.FORMAT_VERSION
        assert all(arrays[name].dtype != object for name in arrays.files)
    with zipfile.ZipFile(arrays_path) as archive:
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())


def test_load_model_reads_the_runtime_arrays(small_model: Model, saved: Path, caplog: pytest.LogCaptureFixture) -> None:
    """load_model() takes the arrays (no pipeline, no warning); a .npz path is read as it is."""
    with caplog.at_level(logging.WARNING):
        model = load_model(saved)
        direct = load_model(persistence.runtime_path(saved))
    assert caplog.text == ""
    assert model is not None and direct is not None
    assert model.pipeline is None
    assert model.metadata == persistence.read_metadata(saved)
    assert model.threshold == small_model.threshold
    assert [p.to_dict() for p in model.predict(TEXTS)] == [p.to_dict() for p in small_model.predict(TEXTS)]
    assert [p.to_dict() for p in direct.predict(TEXTS)] == [p.to_dict() for p in model.predict(TEXTS)]


def test_arrays_of_another_skops_file_are_not_used(
    small_model: Model, saved: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A skops file replaced by another model (same name) is read itself, with a warning, never through stale arrays."""
    other_dir = tmp_path / "other"
    other = persistence.save(small_model, other_dir / "model.skops")  # same model, new trained_at: other bytes
    shutil.copyfile(persistence.runtime_path(other), persistence.runtime_path(saved))
    with caplog.at_level(logging.WARNING):
        model = load_model(saved)
    assert model is not None
    assert "was derived from another model.skops" in caplog.text
    with pytest.raises(persistence.ModelVersionError):
        persistence.load_runtime(persistence.runtime_path(saved), persistence.file_sha256(saved))


@pytest.mark.parametrize("damage", ["random_bytes", "truncated", "empty", "no_source", "object_array", "no_coef"])
def test_damaged_runtime_arrays_fall_back_to_the_skops_file(
    saved: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Unreadable arrays raise ModelCorruptError; load_model then reads the skops file (warning logged)."""
    arrays_path = persistence.runtime_path(saved)
    content = arrays_path.read_bytes()
    if damage == "random_bytes":
        arrays_path.write_bytes(bytes(range(256)) * 40)
    elif damage == "truncated":
        arrays_path.write_bytes(content[: len(content) // 2])
    elif damage == "empty":
        arrays_path.write_bytes(b"")
    else:
        with np.load(arrays_path, allow_pickle=False) as loaded:
            arrays = {name: loaded[name] for name in loaded.files}
        if damage == "no_source":
            del arrays[persistence.SOURCE_MEMBER]
        elif damage == "no_coef":
            del arrays["coef"]
        else:
            arrays["coef"] = np.array([{"not": "numbers"}], dtype=object)
        with arrays_path.open("wb") as handle:
            np.savez(handle, **arrays)
    with pytest.raises(persistence.ModelCorruptError):
        persistence.load_runtime(arrays_path)
    with caplog.at_level(logging.WARNING):
        model = load_model(saved)
    assert model is not None and model.predict(TEXTS)
    assert "runtime arrays not used (ModelCorruptError" in caplog.text


def test_without_runtime_arrays_load_model_reads_the_skops_file(
    small_model: Model, saved: Path, caplog: pytest.LogCaptureFixture
) -> None:
    persistence.runtime_path(saved).unlink()
    with caplog.at_level(logging.WARNING):
        model = load_model(saved)
    assert "no runtime arrays beside model.skops" in caplog.text
    assert model is not None and model.pipeline is None  # the pipeline is not kept for prediction
    assert [p.to_dict() for p in model.predict(TEXTS)] == [p.to_dict() for p in small_model.predict(TEXTS)]


def test_the_command_rewrites_the_runtime_arrays(
    small_model: Model, saved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m classifier.persistence runtime PATH.skops rebuilds PATH.npz from the skops file."""
    arrays_path = persistence.runtime_path(saved)
    arrays_path.unlink()
    assert persistence.main(["runtime", str(saved)]) == 0
    assert persistence.file_sha256(saved) in capsys.readouterr().out
    model = persistence.load_runtime(arrays_path, persistence.file_sha256(saved))
    assert [p.to_dict() for p in model.predict(TEXTS)] == [p.to_dict() for p in small_model.predict(TEXTS)]
    saved.write_bytes(b"no model")
    assert persistence.main(["runtime", str(saved)]) == 1
    assert "ModelCorruptError" in capsys.readouterr().out


def test_the_cheap_check_follows_what_would_be_loaded(saved: Path) -> None:
    """check_artifact: fine with matching arrays, or without them on a good skops file; raises on a damaged one."""
    persistence.check_artifact(saved)
    persistence.check_artifact(persistence.runtime_path(saved))
    persistence.runtime_path(saved).write_bytes(b"damaged")
    persistence.check_artifact(saved)  # load_for_prediction would read the skops file, which is fine
    with pytest.raises(persistence.ModelCorruptError):
        persistence.check_artifact(persistence.runtime_path(saved))
    saved.write_bytes(b"damaged too")
    with pytest.raises(persistence.ModelCorruptError):
        persistence.check_artifact(saved)
    with pytest.raises(persistence.ModelNotFoundError):
        persistence.check_artifact(saved.with_name("missing.skops"))


def test_an_artifact_without_the_familiarity_bitmap_is_refused(small_model: Model, tmp_path: Path) -> None:
    """A skops payload without the bitmap (written before format 2) cannot make a model: typed error, no model."""
    metadata = dict(
        small_model.metadata, format_version=persistence.FORMAT_VERSION, sklearn_version=sklearn.__version__
    )
    payload = {"pipeline": small_model.pipeline, "threshold": small_model.threshold, "metadata": json.dumps(metadata)}
    target = tmp_path / "old.skops"
    sio.dump(payload, target)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(persistence.METADATA_MEMBER, json.dumps(metadata))
    with pytest.raises(persistence.ModelCorruptError, match="cannot rebuild"):
        persistence.load(target)
    assert load_model(target) is None


def test_format_1_runtime_arrays_are_refused_and_rebuilt(saved: Path) -> None:
    """Runtime arrays of format 1 (the idf-derived "seen" mask) are refused; the command rebuilds them."""
    arrays_path = persistence.runtime_path(saved)
    with np.load(arrays_path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    assert "familiar" in arrays and "seen" not in arrays
    arrays[persistence.RUNTIME_FORMAT_MEMBER] = np.array(1)
    with arrays_path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    with pytest.raises(persistence.ModelVersionError, match="runtime format version 1"):
        persistence.load_runtime(arrays_path)
    assert persistence.main(["runtime", str(saved)]) == 0
    model = persistence.load_runtime(arrays_path, persistence.file_sha256(saved))
    assert model.familiar_bitmap() is not None
