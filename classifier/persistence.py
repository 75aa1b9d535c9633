"""Saving and loading models with skops (no pickle): atomic, compressed, versioned, with typed errors."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Final

import sklearn
import skops
import skops.io as sio

from classifier.predict import Model

# Bump when the saved layout or the meaning of the metadata changes; older artifacts then fail to load.
FORMAT_VERSION: Final = 1
METADATA_MEMBER: Final = "cfm_metadata.json"

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


def _sklearn_series(version: str) -> str:
    """Major.minor of a scikit-learn version: the granularity at which estimators stay loadable."""
    return ".".join(version.split(".")[:2])


def save(model: Model, path: str | Path) -> Path:
    """Write the model atomically (temporary file in the same folder, then os.replace); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    metadata = dict(model.metadata)
    metadata.update(
        format_version=FORMAT_VERSION,
        sklearn_version=sklearn.__version__,
        skops_version=skops.__version__,
        threshold=model.threshold,
        labels=list(model.classes),
    )
    model.metadata = metadata
    payload = {"pipeline": model.pipeline, "threshold": float(model.threshold), "metadata": json.dumps(metadata)}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        sio.dump(payload, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_MEMBER, json.dumps(metadata, indent=1, sort_keys=True))
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


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
        raise ModelVersionError(
            f"format version {metadata.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    saved = str(metadata.get("sklearn_version", ""))
    if _sklearn_series(saved) != _sklearn_series(sklearn.__version__):
        raise ModelVersionError(f"trained with scikit-learn {saved or '?'}, running {sklearn.__version__}")


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
    """The Model in an artifact; ModelNotFoundError, ModelCorruptError or ModelVersionError when it cannot be."""
    target = Path(path)
    metadata = read_metadata(target)
    check_compatible(metadata)
    found = artifact_types(target)
    unexpected = sorted(found - TRUSTED_TYPES)
    if unexpected:
        raise ModelCorruptError(f"{target.name}: untrusted types in artifact: {', '.join(unexpected)}")
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
    except Exception as exc:  # any failure to rebuild the objects means the file is not usable
        raise ModelCorruptError(f"{target.name}: cannot rebuild the model ({type(exc).__name__})") from exc
    if inner != metadata:
        raise ModelCorruptError(f"{target.name}: metadata inside and outside the model differ")
    try:
        return Model(pipeline, threshold, inner)
    except Exception as exc:  # e.g. a pipeline without the expected steps
        raise ModelCorruptError(f"{target.name}: not a classifier pipeline ({type(exc).__name__})") from exc
