"""Error pages (HTML for people, JSON for machines) and SQLite connection settings."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL for concurrent readers, foreign keys on, overwrite deleted data, wait on locks."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON", "busy_timeout=10000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()


def _wants_json() -> bool:
    """Machines get JSON: the API, webhooks, health, or an explicit Accept header."""
    path = request.path
    if path.startswith(("/api/", "/healthz", "/sms/", "/voice/")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _messages() -> dict[int, str]:
    """Plain-words explanations per status code."""
    return {
        400: _("The request could not be understood."),
        403: _("You are not allowed to do this."),
        404: _("This page does not exist."),
        405: _("This action is not allowed here."),
        413: _("What you sent is too large."),
        429: _("Too many attempts. Please wait a moment and try again."),
        500: _("Something went wrong on our side. Nothing you sent was lost; please try again later."),
        503: _("The service is busy. Please try again in a few minutes."),
    }


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> ResponseReturnValue:
        code = error.code or 500
        message = _messages().get(code, error.description or "")
        if _wants_json():
            return {"error": error.name, "status": code, "message": message}, code
        return render_template("error.html", code=code, message=message), code

    @app.errorhandler(Exception)
    def _unhandled(error: Exception) -> ResponseReturnValue:
        log.exception("unhandled error on %s %s", request.method, request.url_rule)
        return _http_error(InternalServerError())
