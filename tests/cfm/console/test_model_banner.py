"""A missing, corrupt or incompatible model (issue 8): the app starts, cases wait restricted, the console says so."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cfm import create_app
from cfm.extensions import db
from cfm.models import Case, User
from cfm.services.admin import create_programme
from classifier import persistence
from classifier.predict import DEFAULT_MODEL_PATH, Model, load_model
from tests.cfm.console.conftest import TOTP_SECRET, sign_in
from tests.cfm.helpers import user

BANNER = b"The classifier is not loaded: new cases wait in the restricted queue for manual triage"
QUESTION = "When does the bus to the transit centre leave on Monday?"


def missing(tmp_path: Path) -> Path:
    """A MODEL_PATH with no file."""
    return tmp_path / "gone.skops"


def garbage(tmp_path: Path) -> Path:
    """A file of bytes that are no model at all."""
    target = tmp_path / "garbage.skops"
    target.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64)
    return target


def _rewritten(tmp_path: Path, name: str, change: Callable[[str, bytes], bytes | None]) -> Path:
    """A copy of the shipped artifact with its members changed (None drops a member)."""
    target = tmp_path / name
    with zipfile.ZipFile(DEFAULT_MODEL_PATH) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            content = change(info.filename, source.read(info.filename))
            if content is not None:
                out.writestr(info.filename, content)
    return target


def other_sklearn(tmp_path: Path) -> Path:
    """The shipped model as if written by another scikit-learn series (skops file, metadata intact otherwise)."""

    def change(member: str, content: bytes) -> bytes:
        if member != persistence.METADATA_MEMBER:
            return content
        metadata = json.loads(content)
        metadata["sklearn_version"] = "0.24.2"
        return json.dumps(metadata).encode()

    return _rewritten(tmp_path, "old-sklearn.skops", change)


def no_schema(tmp_path: Path) -> Path:
    """A damaged artifact: right metadata, but the skops schema is gone."""
    return _rewritten(tmp_path, "damaged.skops", lambda member, content: None if member == "schema.json" else content)


BROKEN: dict[str, Callable[[Path], Path]] = {
    "missing": missing,
    "garbage": garbage,
    "other-sklearn": other_sklearn,
    "damaged": no_schema,
}


@pytest.fixture(scope="module")
def shipped_model() -> Model:
    """The shipped model, loaded once for this module."""
    model = load_model(DEFAULT_MODEL_PATH)
    assert model is not None
    return model


def people() -> dict[str, str]:
    """One user per console role (focal points and admins with their second factor)."""
    made = {
        "officer": user("officer@example.org", "officer"),
        "supervisor": user("supervisor@example.org", "officer", "supervisor"),
        "focal": user("focal@example.org", "focal_point"),
        "admin": user("admin@example.org", "admin"),
        "viewer": user("viewer@example.org", "report_viewer"),
    }
    for name in ("focal", "admin"):
        made[name].totp_secret = TOTP_SECRET
    db.session.commit()
    return {name: u.email for name, u in made.items()}


def console_page(app: Flask, email: str) -> bytes:
    """A console page as this user sees it, in a session of their own."""
    client = app.test_client()
    sign_in(client, email)
    response = client.get("/console/account")
    assert response.status_code == 200
    return response.data


@pytest.mark.parametrize("kind", list(BROKEN))
def test_without_a_usable_model_the_app_starts_cases_wait_restricted_and_the_console_says_so(
    app: Flask, ctx: Flask, client: FlaskClient, tmp_path: Path, kind: str
) -> None:
    path = BROKEN[kind](tmp_path)
    with pytest.raises(persistence.ModelError):
        persistence.load(path)
    app.config["MODEL_PATH"] = str(path)
    assert "cfm_model" not in app.extensions  # nothing loaded yet: the banner comes from checking the file
    create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)
    emails = people()
    assert BANNER in console_page(app, emails["officer"])

    response = client.post("/en/feedback", data={"text": QUESTION})
    assert response.status_code in (200, 302)
    db.session.expire_all()
    case = db.session.scalars(select(Case)).one()
    assert (case.queue, case.classification_status, case.category) == ("restricted", "failed", None)
    assert "unclassified" in (case.restricted_reasons or [])
    assert app.extensions["cfm_model"] is None  # the full load was tried and failed closed
    officer = app.test_client()
    sign_in(officer, emails["officer"])
    assert case.reference.encode() not in officer.get("/console/queue/general").data
    assert BANNER in console_page(app, emails["focal"])


def test_every_console_user_sees_the_banner_on_every_page(app: Flask, ctx: Flask, tmp_path: Path) -> None:
    app.config["MODEL_PATH"] = str(garbage(tmp_path))
    create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)
    emails = people()
    for email in emails.values():
        client = app.test_client()
        sign_in(client, email)
        for path in ("/console/account", "/console/"):
            response = client.get(path, follow_redirects=True)
            assert response.status_code == 200, (email, path)
            assert BANNER in response.data, (email, path)
            assert b'class="model-banner" role="alert"' in response.data
    assert BANNER not in app.test_client().get("/console/login").data  # not before signing in
    assert BANNER not in app.test_client().get("/en/feedback").data  # never on the public side


@pytest.mark.parametrize("locale", ["ar", "fr"])
def test_the_banner_is_translated(app: Flask, ctx: Flask, tmp_path: Path, locale: str) -> None:
    from flask_babel import force_locale, gettext

    app.config["MODEL_PATH"] = str(missing(tmp_path))
    emails = people()
    officer = db.session.scalars(select(User).where(User.email == emails["officer"])).one()
    officer.locale = locale
    db.session.commit()
    client = app.test_client()
    sign_in(client, emails["officer"])
    page = client.get("/console/account").get_data(as_text=True)
    assert f'lang="{locale}"' in page
    with force_locale(locale):
        expected = gettext("The classifier is not loaded: new cases wait in the restricted queue for manual triage")
    assert expected in page


def test_with_the_shipped_model_there_is_no_banner(app: Flask, ctx: Flask, shipped_model: Model) -> None:
    emails = people()
    assert "cfm_model" not in app.extensions
    assert BANNER not in console_page(app, emails["officer"])  # the file checks out
    app.extensions["cfm_model"] = shipped_model
    assert BANNER not in console_page(app, emails["focal"])
    app.extensions["cfm_model"] = None  # the full load failed after all
    assert BANNER in console_page(app, emails["focal"])


def test_a_model_replaced_by_a_broken_file_shows_the_banner(app: Flask, ctx: Flask, tmp_path: Path) -> None:
    target = tmp_path / "model.skops"
    shutil.copyfile(DEFAULT_MODEL_PATH, target)
    app.config["MODEL_PATH"] = str(target)
    emails = people()
    assert BANNER not in console_page(app, emails["officer"])
    target.write_bytes(b"not a zip any more")
    assert BANNER in console_page(app, emails["officer"])


def test_the_app_starts_with_a_missing_model(tmp_path: Path) -> None:
    from tests.conftest import make_config

    config = make_config("sqlite", tmp_path, None, MODEL_PATH=str(tmp_path / "none.skops"))
    application = create_app(config)
    with application.app_context():
        db.create_all()
    response = application.test_client().get("/healthz")
    assert response.status_code == 200
