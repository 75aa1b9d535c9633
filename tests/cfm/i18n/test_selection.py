"""Locale selection in one place (cfm.i18n.select_locale) and the catalog check at start-up (issue 7).

Order: URL prefix > choice stored in the session > the officer's own setting (console) > Accept-Language >
programme default > en.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cfm import create_app, i18n
from cfm.services.admin import create_programme
from tests.cfm.helpers import PASSWORD, user
from tests.cfm.i18n.conftest import ROOT

LANG = re.compile(r'<html[^>]*\blang="([^"]+)"')


def lang_of(client: FlaskClient, path: str, accept: str | None = None) -> str:
    """The lang attribute of a page as rendered for this client."""
    headers = {"Accept-Language": accept} if accept else {}
    response = client.get(path, headers=headers, follow_redirects=True)
    assert response.status_code in (200, 404), f"{path}: {response.status_code}"
    match = LANG.search(response.get_data(as_text=True))
    assert match, f"{path}: no <html lang>"
    return match.group(1)


@pytest.fixture
def swahili(ctx: Flask) -> Any:
    """The default programme, whose people mostly speak Swahili."""
    return create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)


def test_url_prefix_comes_first(client: FlaskClient, swahili: Any) -> None:
    with client.session_transaction() as session:
        session["locale"] = "es"
    assert lang_of(client, "/fr/p/kenya", accept="ar") == "fr"
    assert lang_of(client, "/fa_AF/status", accept="ar") == "fa-AF"


def test_a_language_chosen_in_the_picker_is_remembered_over_the_browser_language(
    client: FlaskClient, swahili: Any
) -> None:
    assert lang_of(client, "/ps/feedback", accept="en") == "ps"  # the picker's link
    with client.session_transaction() as session:
        assert session["locale"] == "ps"
    assert lang_of(client, "/p/kenya", accept="en") == "ps"  # the poster's short URL, later
    assert lang_of(client, "/status", accept="ru") == "ps"


def test_browser_language_comes_before_the_programme_language(client: FlaskClient, swahili: Any) -> None:
    assert lang_of(client, "/p/kenya", accept="ru, en;q=0.5") == "ru"
    assert lang_of(client, "/p/kenya", accept="fa") == "fa-AF"  # Dari is offered for Persian
    assert lang_of(client, "/p/kenya", accept="ar-SY,ar;q=0.9") == "ar"
    assert lang_of(client, "/feedback", accept="de, ti;q=0.3") == "ti"


def test_programme_language_when_the_browser_names_none_of_ours(client: FlaskClient, swahili: Any) -> None:
    assert lang_of(client, "/p/kenya") == "sw"
    assert lang_of(client, "/p/kenya", accept="de") == "sw"
    assert lang_of(client, "/feedback", accept="zh") == "sw"  # the default programme's form


def test_english_when_nothing_else_applies(client: FlaskClient, ctx: Flask) -> None:
    create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="de", is_default=True)
    assert lang_of(client, "/p/kenya", accept="zh") == "en"
    assert lang_of(client, "/nothing-here", accept="zh") == "en"


def test_an_officer_reads_the_console_in_the_language_of_their_account(client: FlaskClient, ctx: Flask) -> None:
    officer = user("amina@example.org", "officer")
    officer.locale = "uk"
    from cfm.extensions import db

    db.session.commit()
    response = client.post("/console/login", data={"email": "amina@example.org", "password": PASSWORD})
    assert response.status_code in (302, 303), response.status_code
    assert lang_of(client, "/console/", accept="fr") == "uk"
    assert lang_of(client, "/feedback", accept="fr") == "fr"  # the public side never reads an officer's setting


def test_start_up_logs_configured_locales_without_a_catalog(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    locales = ["en", "fr", "ar", "de", "pt"]
    with caplog.at_level(logging.WARNING, logger="cfm.i18n"):
        create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "LOCALES": locales})
    warnings = [record.getMessage() for record in caplog.records if record.name == "cfm.i18n"]
    assert any("de, pt" in message for message in warnings), warnings
    assert not any("fr" in message.split(":")[-1] for message in warnings)


def test_shipped_locales_all_have_a_catalog(app: Flask) -> None:
    compiled = Path(app.extensions["babel"].translation_directories[0])
    assert i18n.check_catalogs(app, compiled) == []


def test_catalogs_are_compiled_at_start_up_and_rebuilt_when_the_po_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "translations"
    (source / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (source / "xx" / "LC_MESSAGES").mkdir(parents=True)
    po = source / "fr" / "LC_MESSAGES" / "messages.po"
    po.write_bytes((ROOT / "translations" / "fr" / "LC_MESSAGES" / "messages.po").read_bytes())
    (source / "xx" / "LC_MESSAGES" / "messages.po").write_text("a line that is not PO at all\n", encoding="utf-8")
    monkeypatch.setattr(i18n, "TRANSLATIONS_DIR", source)
    app = Flask("probe", instance_path=str(tmp_path / "instance"))
    app.config["LOCALES"] = ["en", "fr"]

    with caplog.at_level(logging.ERROR, logger="cfm.i18n"):
        target = i18n.compile_catalogs(app)
    mo = target / "fr" / "LC_MESSAGES" / "messages.mo"
    assert mo.exists() and not (target / "xx").joinpath("LC_MESSAGES", "messages.mo").exists()
    assert any("xx" in record.getMessage() for record in caplog.records), "a broken catalog is logged, not fatal"

    built = mo.read_bytes()
    later = time.time() + 5
    os.utime(po, (later, later))  # a checkout or an upgrade touches files without changing them
    i18n.compile_catalogs(app)
    assert mo.read_bytes() == built and mo.stat().st_mtime < later, "an up-to-date .mo is kept"
    po.write_text(po.read_text(encoding="utf-8").replace("Merci", "Grand merci"), encoding="utf-8")
    i18n.compile_catalogs(app)
    assert mo.read_bytes() != built, "a changed .po is compiled again"
