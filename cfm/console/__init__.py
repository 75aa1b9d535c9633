"""The staff blueprint under /console: sign-in, queues, case view, triage actions (imports nothing of cfm.public)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console")

# Importing the modules registers their routes on bp (and the admin sub-blueprint).
from cfm.console import admin, dashboard, exports, hotline, notices, views  # noqa: E402,F401,I001
