"""Browser fixtures: one headless Chromium (the Debian package, never a downloaded build) per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from cfm import create_app
from cfm.services.crypto import generate_keys
from tests.e2e.support import CHROMIUM, CHROMIUM_ARGS, serve


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium from /usr/bin/chromium; fails (never skips) when it is missing."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The public site on 127.0.0.1: SQLite with the schema from the migrations, CSRF on, one default programme
    with the travel survey published, served by werkzeug in a thread (the console flow brings its own)."""
    from cfm.services.admin import create_programme, upgrade_schema
    from cfm.services.surveys import publish_survey

    folder = tmp_path_factory.mktemp("e2e")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "e2e-secret-key-not-for-production",
            "WTF_CSRF_ENABLED": True,
            "DATABASE_URL": f"sqlite:///{folder / 'cfm.sqlite'}",
            "REDIS_URL": None,
            **generate_keys(),
        }
    )
    with app.app_context():
        upgrade_schema()
        programme = create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)
        publish_survey(programme, "travel")
    with serve(app) as url:
        yield url
