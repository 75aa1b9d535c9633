"""The beneficiary blueprint: feedback form, surveys and status lookup (imports nothing of cfm.console)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__)

from cfm.public import views  # noqa: E402,F401  (registers the routes on bp)
