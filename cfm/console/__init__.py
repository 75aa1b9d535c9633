"""The staff blueprint under /console: sign-in, queues, case view, triage actions (imports nothing of cfm.public)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console")

from cfm.console import views  # noqa: E402,F401  (registers the routes on bp)
from cfm.console import hotline  # noqa: E402,F401
from cfm.console import dashboard  # noqa: E402,F401
from cfm.console import exports  # noqa: E402,F401
from cfm.console import notices  # noqa: E402,F401
from cfm.console import admin  # noqa: E402,F401
