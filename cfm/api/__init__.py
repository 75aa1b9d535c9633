"""The partner API (/api/v1): JSON, KoboToolbox and RapidPro intake, case status, and its OpenAPI document."""

from __future__ import annotations

from flask import Blueprint

from cfm.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Partners authenticate with a token in a header, never a cookie: CSRF does not apply.
csrf.exempt(bp)

from cfm.api import views  # noqa: E402,F401  (registers the routes on bp)
