"""Saving and loading models: the skops artifact (no pickle) and the runtime arrays derived from it.

Two files per model, written together and atomically by save():
- NAME.skops, the fitted scikit-learn pipeline (skops, compressed, versioned, typed load errors): training,
  evaluation and `python -m classifier.persistence runtime` read it;
- NAME.npz, the arrays prediction needs (Model.to_arrays(): numpy only, read with allow_pickle=False), recording
  the sha256 of the skops file they were derived from. load_for_prediction() reads them when that hash matches,
  so the web app and the worker never import scikit-learn, scipy or skops (issue 9: worker memory).

Nothing here imports scikit-learn or skops at module level.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from classifier.predict import Model

log = logging.getLogger(__name__)

# Bump when the saved layout or the meaning of the metadata changes; older artifacts then fail to load.
# 2: the familiarity bitmap of the unfamiliar-text rule is saved (payload "familiar", runtime array "familiar").
FORMAT_VERSION: Final = 2
METADATA_MEMBER: Final = "cfm_metadata.json"
RUNTIME_SUFFIX: Final = ".npz"
# Members of the runtime file besides Model.to_arrays(): the skops file's sha256 and the format version.
SOURCE_MEMBER: Final = "source_sha256"
RUNTIME_FORMAT_MEMBER: Final = "format_version"

# Every type the artifact may contain, listed explicitly. skops trusts many scikit-learn types by default; we check
# the whole schema against this list ourselves, so nothing is trusted in bulk.
TRUSTED_TYPES: Final[frozenset[str]] = frozenset(
    {
        "builtins.bool",
        "builtins.dict",
        "builtins.float",
        "builtins.int",
        "builtins.list",
        "builtins.NoneType",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "classifier.pipeline.CharNgramHasher",
        "classifier.pipeline.SafetyNetFeatures",
        "classifier.pipeline.SvmNbClassifier",
        "classifier.pipeline.TextNormaliser",
        "classifier.pipeline.WordNgramHasher",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "scipy.sparse._csr.csr_matrix",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.model_selection._split.PredefinedSplit",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.pipeline.Pipeline",
        "sklearn.svm._classes.LinearSVC",
    }
)


class ModelError(Exception):
    """A model could not be loaded."""


class ModelNotFoundError(ModelError):
    """No model file at the path."""


class ModelCorruptError(ModelError):
    """The file is not a readable model artifact (or holds types we do not trust)."""


class ModelVersionError(ModelError):
    """The artifact was written with another format version or scikit-learn version."""


def installed_sklearn_version() -> str:
    """The installed scikit-learn's version, read from its distribution metadata (without importing it)."""
    try:
        return importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _sklearn_series(version: str) -> str:
    """Major.minor of a scikit-learn version: the granularity at which estimators stay loadable."""
    return ".".join(version.split(".")[:2])


def runtime_path(path: str | Path) -> Path:
    """Where the runtime arrays of a skops artifact live: beside it, same name, .npz."""
    return Path(path).with_suffix(RUNTIME_SUFFIX)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """write(temporary file in target's folder), then os.replace onto target; nothing left behind on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save(model: Model, path: str | Path) -> Path:
    """Write the skops artifact and its runtime arrays (.npz beside it), each atomically; returns the skops path."""
    import sklearn
    import skops
    import skops.io as sio

    if model.pipeline is None:
        raise ValueError("a model loaded from its runtime arrays has no pipeline to save: save the trained one")
    target = Path(path)
    metadata = dict(model.metadata)
    metadata.update(
        format_version=FORMAT_VERSION,
        sklearn_version=sklearn.__version__,
        skops_version=skops.__version__,
        threshold=model.threshold,
        labels=list(model.classes),
    )
    model.metadata = metadata
    payload = {
        "pipeline": model.pipeline,
        "threshold": float(model.threshold),
        "metadata": json.dumps(metadata),
        "familiar": model.familiar_bitmap(),
    }
    digest: list[str] = []

    def write_skops(tmp: Path) -> None:
        sio.dump(payload, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_MEMBER, json.dumps(metadata, indent=1, sort_keys=True))
        digest.append(file_sha256(tmp))

    _atomic_write(target, write_skops)
    write_runtime(model, digest[0], runtime_path(target))
    return target


def write_runtime(model: Model, source_sha256: str, target: Path) -> Path:
    """Write the model's runtime arrays (np.savez_compressed, no objects) atomically, with the source's sha256."""
    arrays = model.to_arrays()
    arrays[SOURCE_MEMBER] = np.array(source_sha256)
    arrays[RUNTIME_FORMAT_MEMBER] = np.array(FORMAT_VERSION)

    def write_npz(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            _savez(handle, arrays)

    _atomic_write(target, write_npz)
    return target


def _savez(handle: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed into an open file (a path would get .npz appended to a temporary name)."""
    np.savez_compressed(handle, allow_pickle=False, **arrays)


def rebuild_runtime(path: str | Path) -> Path:
    """Rewrite the runtime arrays of an existing skops artifact (after retraining, or to repair them)."""
    target = Path(path)
    model = load(target)
    return write_runtime(model, file_sha256(target), runtime_path(target))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an artifact without loading the model (raises the typed errors)."""
    target = Path(path)
    if not target.is_file():
        raise ModelNotFoundError(f"no model file at {target}")
    try:
        with zipfile.ZipFile(target) as archive:
            metadata = json.loads(archive.read(METADATA_MEMBER))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as exc:
        raise ModelCorruptError(f"{target.name}: unreadable artifact ({type(exc).__name__})") from exc
    if not isinstance(metadata, dict):
        raise ModelCorruptError(f"{target.name}: metadata is not an object")
    return metadata


def check_compatible(metadata: dict[str, Any]) -> None:
    """Raise ModelVersionError unless the format version and scikit-learn series match this code."""
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelVersionError(f"format version {metadata.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    saved = str(metadata.get("sklearn_version", ""))
    running = installed_sklearn_version()
    if _sklearn_series(saved) != _sklearn_series(running):
        raise ModelVersionError(f"trained with scikit-learn {saved or '?'}, running {running or 'none'}")


def artifact_types(path: Path) -> set[str]:
    """Every module.class named anywhere in the artifact's skops schema."""
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as exc:
        raise ModelCorruptError(f"{path.name}: unreadable schema ({type(exc).__name__})") from exc
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                found.add(f"{module}.{name}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def load(path: str | Path) -> Model:
    """The Model in a skops artifact (with its pipeline); ModelNotFoundError, ModelCorruptError or ModelVersionError.

    Imports scikit-learn and skops: training, evaluation and rebuilding the runtime arrays read models this way.
    """
    target = Path(path)
    metadata = read_metadata(target)
    check_compatible(metadata)
    found = artifact_types(target)
    unexpected = sorted(found - TRUSTED_TYPES)
    if unexpected:
        raise ModelCorruptError(f"{target.name}: untrusted types in artifact: {', '.join(unexpected)}")
    import skops.io as sio

    try:
        # skops still refuses anything it does not know; we name exactly the types this artifact holds.
        untrusted = set(sio.get_untrusted_types(file=target))
    except Exception as exc:  # skops raises a variety of errors on damaged archives
        raise ModelCorruptError(f"{target.name}: unreadable schema ({type(exc).__name__})") from exc
    if not untrusted <= found:
        raise ModelCorruptError(f"{target.name}: schema lists types it does not declare")
    try:
        payload = sio.load(target, trusted=sorted(untrusted))
        pipeline = payload["pipeline"]
        threshold = float(payload["threshold"])
        inner = json.loads(payload["metadata"])
        familiar = payload["familiar"]
    except Exception as exc:  # any failure to rebuild the objects means the file is not usable
        raise ModelCorruptError(f"{target.name}: cannot rebuild the model ({type(exc).__name__})") from exc
    if inner != metadata:
        raise ModelCorruptError(f"{target.name}: metadata inside and outside the model differ")
    try:
        return Model.from_pipeline(pipeline, threshold, inner, familiar=familiar)
    except Exception as exc:  # e.g. a pipeline without the expected steps
        raise ModelCorruptError(f"{target.name}: not a classifier pipeline ({type(exc).__name__})") from exc


def _read_runtime(path: Path, source_sha256: str | None, *, only_header: bool = False) -> dict[str, np.ndarray]:
    """The arrays of a runtime .npz (only its format and source hash: only_header), checked; typed errors."""
    if not path.is_file():
        raise ModelNotFoundError(f"no runtime arrays at {path}")
    try:
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as npz:
            names = [SOURCE_MEMBER, RUNTIME_FORMAT_MEMBER] if only_header else npz.files
            arrays = {name: npz[name] for name in names}
        version = int(arrays[RUNTIME_FORMAT_MEMBER])
        recorded = str(arrays[SOURCE_MEMBER][()])
    except (KeyError, OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelCorruptError(f"{path.name}: unreadable runtime arrays ({type(exc).__name__})") from exc
    if version != FORMAT_VERSION:
        raise ModelVersionError(f"runtime format version {version}, this code reads {FORMAT_VERSION}")
    if source_sha256 is not None and recorded != source_sha256:
        raise ModelVersionError(f"{path.name} was derived from another {path.with_suffix('.skops').name}")
    return arrays


def load_runtime(path: str | Path, source_sha256: str | None = None) -> Model:
    """The Model in a runtime .npz (no scikit-learn); source_sha256: the skops file's hash it must record."""
    target = Path(path)
    arrays = _read_runtime(target, source_sha256)
    try:
        model = Model.from_arrays(arrays)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise ModelCorruptError(f"{target.name}: runtime arrays do not make a model ({type(exc).__name__})") from exc
    if model.metadata.get("format_version") != FORMAT_VERSION:
        raise ModelVersionError(f"{target.name}: metadata of format version {model.metadata.get('format_version')!r}")
    return model


def load_for_prediction(path: str | Path) -> Model:
    """The model to predict with: the runtime arrays beside a skops file when derived from it, else the skops file.

    A .npz path is read as it is. Falling back to the skops file imports scikit-learn (warning logged); the
    pipeline is not kept (prediction does not use it).
    """
    target = Path(path)
    if target.suffix == RUNTIME_SUFFIX:
        return load_runtime(target)
    if not target.is_file():
        raise ModelNotFoundError(f"no model file at {target}")
    arrays = runtime_path(target)
    if arrays.is_file():
        try:
            return load_runtime(arrays, file_sha256(target))
        except (ModelError, OSError) as exc:  # not derived from this file, or unreadable: the skops file decides
            log.warning(
                "runtime arrays not used (%s: %s): loading %s with scikit-learn", type(exc).__name__, exc, target.name
            )
    else:
        log.warning("no runtime arrays beside %s: loading it with scikit-learn", target.name)
    model = load(target)
    model.pipeline = None
    return model


def check_artifact(path: str | Path) -> None:
    """The cheap check of what load_for_prediction would read, without building a model; raises the typed errors.

    Runtime arrays derived from the file: their format and hash. Otherwise the skops file: metadata, versions and
    the types its schema names.
    """
    target = Path(path)
    if target.suffix == RUNTIME_SUFFIX:
        _read_runtime(target, None, only_header=True)
        return
    if not target.is_file():
        raise ModelNotFoundError(f"no model file at {target}")
    arrays = runtime_path(target)
    if arrays.is_file():
        try:
            _read_runtime(arrays, file_sha256(target), only_header=True)
            return
        except (ModelError, OSError):
            pass  # load_for_prediction falls back to the skops file: check that
    check_compatible(read_metadata(target))
    unexpected = artifact_types(target) - TRUSTED_TYPES
    if unexpected:
        raise ModelCorruptError(f"{target.name}: untrusted types in artifact")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: python -m classifier.persistence runtime PATH.skops [...] (rewrite the runtime arrays)."""
    parser = argparse.ArgumentParser(prog="python -m classifier.persistence", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    runtime = commands.add_parser("runtime", help="rewrite PATH.npz from PATH.skops")
    runtime.add_argument("paths", nargs="+", type=Path, metavar="PATH.skops")
    args = parser.parse_args(argv)
    status = 0
    for path in args.paths:
        try:
            written = rebuild_runtime(path)
        except ModelError as exc:
            print(f"{path}: {type(exc).__name__}: {exc}")
            status = 1
            continue
        print(f"{written} ({written.stat().st_size / 1e6:.2f} MB) derived from {path} (sha256 {file_sha256(path)})")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
