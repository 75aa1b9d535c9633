"""Locales: negotiation, language-to-locale mapping, catalogs compiled at start-up, text direction."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, g, has_request_context, request, session

log = logging.getLogger(__name__)
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
RTL_LOCALES = frozenset({"ar", "fa_AF", "ps"})
# Classifier language codes whose locale has another name (fa covers Dari; the web locale is fa_AF).
LANGUAGE_TO_LOCALE = {"fa": "fa_AF"}


@dataclasses.dataclass(frozen=True)
class LocaleInfo:
    """What templates need for <html lang dir>."""

    code: str
    language_tag: str
    direction: str
    native_name: str


def locale_for_language(language: str | None) -> str | None:
    """The configured locale for a language code (en, fa, fa_AF, ar-SY...), or None."""
    if not language:
        return None
    locales = current_app.config["LOCALES"]
    code = language.replace("-", "_")
    for candidate in (
        code,
        LANGUAGE_TO_LOCALE.get(code),
        code.split("_")[0],
        LANGUAGE_TO_LOCALE.get(code.split("_")[0]),
    ):
        if candidate and candidate in locales:
            return candidate
    return None


def select_locale() -> str:
    """URL prefix > choice stored in the session > Accept-Language > default."""
    if not has_request_context():
        return current_app.config["DEFAULT_LOCALE"]
    locales = current_app.config["LOCALES"]
    from_url = (request.view_args or {}).get("lang_code")
    if from_url in locales:
        return str(from_url)
    chosen = session.get("locale")
    if chosen in locales:
        return str(chosen)
    best = request.accept_languages.best_match([code.replace("_", "-") for code in locales])
    if best:
        return best.replace("-", "_")
    return str(g.get("programme_locale") or current_app.config["DEFAULT_LOCALE"])


def locale_info(code: str) -> LocaleInfo:
    """Language tag, direction and native name from Babel's locale data."""
    locale = Locale.parse(code)
    direction = "rtl" if locale.character_order == "right-to-left" else "ltr"
    return LocaleInfo(code, code.replace("_", "-"), direction, (locale.display_name or code).capitalize())


def compile_catalogs(app: Flask) -> Path:
    """Compile translations/*.po into the instance folder (built at start-up, never committed)."""
    target = Path(app.instance_path) / "translations"
    for po_path in sorted(TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po")):
        mo_path = target / po_path.relative_to(TRANSLATIONS_DIR).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parent.parent.name)
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as handle:
            write_mo(handle, catalog)
        tmp.replace(mo_path)
    missing = [code for code in app.config["LOCALES"] if code != "en" and not (target / code).exists()]
    if missing:
        log.info("no catalog yet for locales: %s", ", ".join(missing))
    return target


def init_app(app: Flask) -> None:
    """Compile catalogs and expose g.localeinfo to templates."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(compile_catalogs(app)))

    @app.before_request
    def _localeinfo() -> None:
        g.localeinfo = locale_info(select_locale())
