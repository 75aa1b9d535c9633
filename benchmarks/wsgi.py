"""The app gunicorn serves in the intake and load benchmarks: CFM as configured by CFM_* variables, plus the
baseline endpoint (benchmarks.baseline), so the webhook is measured against the database write itself."""

from __future__ import annotations

from benchmarks.baseline import baseline
from cfm import create_app

app = create_app()
app.register_blueprint(baseline)
