"""CFM: complaints and feedback mechanism for humanitarian movement operations."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from flask import Flask

from cfm import config as cfm_config

MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then CFM_* environment variables, then `config`."""
    app = Flask(__name__, instance_relative_config=True)
    # A deep copy: CFM_KEY__sub=... environment variables write into nested dicts, never into the module's defaults.
    app.config.from_mapping(copy.deepcopy(cfm_config.DEFAULTS))
    app.config.from_prefixed_env("CFM")
    if config:
        app.config.from_mapping(config)
    cfm_config.coerce(app.config)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app)
    # hide_parameters: SQL errors and echo never carry message text or phone numbers into logs.
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, "hide_parameters": True})
    # Rate limits live in Redis when there is one, so that every process and host shares them.
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    if not app.config.get("SECRET_KEY") and app.config.get("TESTING"):
        app.config["SECRET_KEY"] = os.urandom(32).hex()
    if not app.config.get("TESTING") and app.config.get("KEYS_REQUIRED", True):
        # Issue 8: never run with default or missing keys (`cfm demo` passes freshly generated ones; the CLI's
        # classifier commands, which serve nothing and seal nothing, build the app with KEYS_REQUIRED off).
        from cfm.services.keys import check_settings

        check_settings(app.config)

    from cfm import errors, i18n, models  # noqa: F401  (models register their tables)
    from cfm.extensions import babel, csrf, db, limiter, login, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    login.init_app(app)
    login.user_loader(_load_user)
    limiter.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)

    from cfm import health

    app.register_blueprint(health.bp)

    from cfm.public import bp as public_bp

    app.register_blueprint(public_bp)

    from cfm.console import bp as console_bp

    app.register_blueprint(console_bp)

    from cfm.api import bp as api_bp
    from cfm.webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)
    app.register_blueprint(api_bp)

    from cfm import cli

    cli.register(app)
    return app


def database_url(app: Flask) -> str:
    """DATABASE_URL, with postgres URLs pointed at psycopg 3; default a SQLite file in the instance folder."""
    url = app.config.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + os.path.join(app.instance_path, "cfm.sqlite")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return str(url)


def _load_user(user_id: str) -> object | None:
    """Flask-Login's loader: active users with a live server-side session only."""
    from cfm.extensions import db
    from cfm.models import User

    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.active:
        return None
    # Issue 8 (ASVS V3.3.1): the cookie must name a live server-side session, so a copied cookie dies at sign-out.
    from flask import session

    from cfm.services.auth import live_session

    return user if live_session(session.get("sid"), user.id) is not None else None
