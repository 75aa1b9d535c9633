"""System status every console user is told about: the classifier banner (issue 8, "A missing, corrupt or
incompatible model file: the app starts, cases go to manual triage ..., the console shows a banner").

The truth is the model this process loaded (cfm.services.classification.get_model). Before this process has loaded
one (a web process whose classification runs on RQ workers may never do so), the artifact is checked the cheap way,
without building the model or importing scikit-learn: the runtime arrays beside it were derived from it and have
this code's format; or else the file exists, its metadata reads, its format and scikit-learn versions match and it
names only trusted types. A file that passes this and still fails the full load shows the banner from the first case
that tried it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import current_app

from cfm.services.classification import model_path
from classifier import persistence
from classifier.predict import DEFAULT_MODEL_PATH

log = logging.getLogger(__name__)
_CHECKS = "cfm_model_check"


def classifier_ready() -> bool:
    """True when the classifier is (or, not loaded here yet, looks) usable; False sends the banner."""
    if "cfm_model" in current_app.extensions:
        return current_app.extensions["cfm_model"] is not None
    return artifact_usable(model_path() or DEFAULT_MODEL_PATH)


def artifact_usable(path: Path) -> bool:
    """The cheap check of a model file, remembered per path, size and modification time (its and its arrays')."""
    key = (str(path), *_stamp(path), *_stamp(persistence.runtime_path(path)))
    checks: dict[tuple[str | int, ...], bool] = current_app.extensions.setdefault(_CHECKS, {})
    if key not in checks:
        checks[key] = _check(path)
    return checks[key]


def _stamp(path: Path) -> tuple[int, int]:
    """(size, modification time) of a file, (-1, -1) when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns


def _check(path: Path) -> bool:
    """The artifact checked without loading it (persistence.check_artifact); logs why it is not usable."""
    try:
        persistence.check_artifact(path)
    except persistence.ModelError as exc:
        log.warning("console: classifier model not usable (%s): %s", type(exc).__name__, exc)
        return False
    return True
