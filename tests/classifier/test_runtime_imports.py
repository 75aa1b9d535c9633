"""The web app and the worker predict without importing scikit-learn, scipy or skops (issue 9: worker memory).

A fresh interpreter (this test process has them all loaded) creates the app, loads the shipped model as the worker
does, predicts, serves the console banner check and a feedback submission classified inline, then lists the heavy
modules it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from classifier import persistence
from classifier.predict import DEFAULT_MODEL_PATH

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("sklearn", "scipy", "skops")

SCRIPT = """
import json, sys, tempfile

import cfm.cli, cfm.jobs, cfm.services.classification, cfm.services.intake, cfm.console.status
from sqlalchemy import select

from cfm import create_app
from cfm.extensions import db
from cfm.models import Case
from cfm.services.admin import create_programme
from cfm.services.crypto import generate_keys

folder = tempfile.mkdtemp()
app = create_app(
    {"TESTING": True, "WTF_CSRF_ENABLED": False, "DATABASE_URL": f"sqlite:///{folder}/cfm.sqlite",
     "REDIS_URL": None, **generate_keys()}
)
app.instance_path = folder  # the shipped model, even where `cfm train` left one in the checkout's instance folder
result = {}
with app.app_context():
    db.create_all()
    create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)
    result["ready_before_load"] = cfm.console.status.classifier_ready()
    cfm.jobs.warm_up()
    model = cfm.services.classification.get_model()
    result["version"] = model.version
    result["predicted"] = [p.category for p in model.predict(["When does the bus leave on Monday?", "شكرا جزيلا"])]
client = app.test_client()
result["feedback_status"] = client.post("/en/feedback", data={"text": "When does the bus leave on Monday?"}).status_code
result["healthz"] = client.get("/healthz").status_code
with app.app_context():
    case = db.session.scalars(select(Case)).one()
    result["case"] = [case.classification_status, case.queue, case.category]
result["heavy"] = sorted(name for name in sys.modules if name.split(".")[0] in ("sklearn", "scipy", "skops"))
print(json.dumps(result))
"""


def test_the_app_and_the_worker_predict_without_sklearn_scipy_or_skops() -> None:
    assert persistence.runtime_path(DEFAULT_MODEL_PATH).is_file()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFM_")}
    done = subprocess.run(  # noqa: S603 - this interpreter on a fixed script
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], result["heavy"]
    assert result["ready_before_load"] is True
    assert result["version"] == persistence.read_metadata(DEFAULT_MODEL_PATH)["model_version"]
    assert result["predicted"][0] == "information_request"
    assert result["feedback_status"] in (200, 302)
    assert result["healthz"] == 200
    assert result["case"][0] == "done" and result["case"][2] is not None
    assert "runtime arrays not used" not in done.stderr and "with scikit-learn" not in done.stderr


def test_the_fallback_to_the_skops_file_is_the_only_way_sklearn_comes_in(tmp_path: Path) -> None:
    """Without the runtime arrays, loading imports scikit-learn (and says so): the check above can fail."""
    target = tmp_path / "model.skops"
    target.write_bytes(DEFAULT_MODEL_PATH.read_bytes())
    script = (
        "import sys; from classifier.predict import load_model; "
        f"m = load_model({str(target)!r}); "
        "print(m is not None, any(n.split('.')[0] in ('sklearn', 'scipy', 'skops') for n in sys.modules))"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter on a fixed script
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "True"]
    assert "no runtime arrays beside model.skops" in done.stderr
