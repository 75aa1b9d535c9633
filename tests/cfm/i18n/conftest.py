"""Fixtures of the locale tests: SQLite only (locale behaviour does not depend on the database backend)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[3]
ALL_LOCALES = ("en", "fr", "es", "ar", "fa_AF", "ps", "uk", "ru", "so", "sw", "am", "ti")
RTL = ("ar", "fa_AF", "ps")


@pytest.fixture
def backend() -> str:
    """Locales, catalogs and text direction are the same on both databases; the intake tests cover the matrix."""
    return "sqlite"


def catalog(locale: str) -> Catalog:
    """translations/<locale>/LC_MESSAGES/messages.po."""
    with (ROOT / "translations" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)
