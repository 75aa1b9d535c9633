"""Locales: negotiation, language-to-locale mapping, catalogs compiled at start-up, text direction, time zone."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import get_timezone
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import refresh
from markupsafe import Markup

log = logging.getLogger(__name__)


def _translations_dir() -> Path:
    """Where the .po catalogs are: cfm/translations in a wheel, the repository's translations/ in a checkout.

    The catalogs live at the repository root (translations/, the layout the project asked for); cfm/translations
    is a symbolic link to it, which setuptools follows so that a plain `pip install .` ships them (issue 7).
    """
    packaged = Path(__file__).resolve().parent / "translations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "translations"


TRANSLATIONS_DIR = _translations_dir()
# Classifier language codes whose locale has another name (fa covers Dari; the web locale is fa_AF).
LANGUAGE_TO_LOCALE = {"fa": "fa_AF"}
# Blueprints that answer machines and render no page: no <html lang dir> to prepare (their errors are JSON).
MACHINE_BLUEPRINTS = frozenset({"webhooks"})
# Left-to-right mark: keeps a reference code in reading order inside right-to-left plain text (SMS).
LRM = "\u200e"


@dataclasses.dataclass(frozen=True)
class LocaleInfo:
    """What templates need for <html lang dir>."""

    code: str
    language_tag: str
    direction: str
    native_name: str

    @property
    def rtl(self) -> bool:
        """True for right-to-left scripts."""
        return self.direction == "rtl"


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
    """URL prefix > choice stored in the session > the officer's own setting > Accept-Language > programme > en."""
    if not has_request_context():
        return str(current_app.config["DEFAULT_LOCALE"])
    locales = current_app.config["LOCALES"]
    from_url = (request.view_args or {}).get("lang_code")
    if from_url in locales:
        return str(from_url)
    chosen = session.get("locale")
    if chosen in locales:
        return str(chosen)
    own = _user_locale()
    if own is not None:
        return own
    best = request.accept_languages.best_match([code.replace("_", "-") for code in locales])
    if best:
        return best.replace("-", "_")
    return _programme_locale() or str(current_app.config["DEFAULT_LOCALE"])


def _programme_locale() -> str | None:
    """The language of the page's programme (/p/<slug>), else, on public pages, of the default programme."""
    if g.get("programme_locale"):
        return str(g.programme_locale)
    if request.blueprint != "public" or g.get("programme") is not None:
        return None
    if "default_programme_locale" not in g:
        programme = _default_programme()
        g.default_programme_locale = locale_for_language(programme.default_language) if programme else None
    return g.default_programme_locale


def _default_programme() -> Any:
    """The default programme, or None (also when the database is unreachable: the page reports that itself)."""
    from sqlalchemy.exc import SQLAlchemyError

    from cfm.extensions import db
    from cfm.services.intake import default_programme

    try:
        return default_programme()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("locale: default programme unavailable, using the defaults")
        return None


def _user_locale() -> str | None:
    """The language a signed-in officer chose for the console (User.locale); never consulted on public pages."""
    if request.blueprint != "console":
        return None
    from flask_login import current_user

    code = getattr(current_user, "locale", None) if current_user.is_authenticated else None
    return str(code) if code in current_app.config["LOCALES"] else None


def select_timezone() -> str | None:
    """Times are stored in UTC and shown in the programme's time zone: the page's programme, else the default one."""
    if not has_request_context():
        return None
    explicit = g.get("timezone")
    if explicit:
        return str(explicit)
    programme = g.get("programme") or _default_programme()
    name = str(programme.timezone) if programme is not None and programme.timezone else None
    return name if name and _known_timezone(name) else None


@functools.cache
def _known_timezone(name: str) -> bool:
    """True for an IANA time zone name Babel knows (a typo in a programme must not break every page)."""
    try:
        get_timezone(name)
    except LookupError:
        log.warning("time zone %r is unknown; showing UTC", name)
        return False
    return True


@functools.cache
def native_name(code: str) -> str:
    """The language's name in itself, from Babel's locale data (fa_AF -> دری, am -> አማርኛ)."""
    locale = Locale.parse(code)
    name = locale.languages.get(code) or locale.languages.get(locale.language) or locale.get_display_name() or code
    return name[:1].upper() + name[1:]


@functools.cache
def locale_info(code: str) -> LocaleInfo:
    """Language tag, direction and native name from Babel's locale data."""
    locale = Locale.parse(code)
    direction = "rtl" if locale.character_order == "right-to-left" else "ltr"
    return LocaleInfo(code, code.replace("_", "-"), direction, native_name(code))


def sms_status_keyword(locale: str) -> str:
    """The STATUS keyword people send in this locale's language (one that channels.sms.parse_keyword reads)."""
    from channels.sms import STATUS_KEYWORDS

    language = locale.replace("-", "_").split("_")[0]
    return STATUS_KEYWORDS.get(language, STATUS_KEYWORDS["en"])[0]


def isolate(value: str) -> Markup:
    """A code or phone number kept left-to-right inside text of either direction (HTML)."""
    return Markup('<bdi dir="ltr">%s</bdi>') % value


def isolate_plain(value: str, locale: str) -> str:
    """The plain-text counterpart for SMS: a left-to-right mark before and after, only in right-to-left locales.

    A code such as 1234-ABCD would otherwise show as ABCD-1234 in an Arabic message; LRM is understood by
    every phone that shows Arabic script (isolates U+2066..2069 are not, on older handsets).
    """
    return f"{LRM}{value}{LRM}" if locale_info(locale).rtl else value


def compile_catalogs(app: Flask) -> Path:
    """Compile translations/*/LC_MESSAGES/messages.po into the instance folder (built at start-up, never committed).

    A .mo is rebuilt only when its .po's content changed (a digest is kept beside it: file times are not reliable
    across checkouts and package upgrades); each new one is written to a temporary file and renamed, so that
    several workers starting at once never read a half-written catalog. Fuzzy entries are left out (English shows).
    """
    target = Path(app.instance_path) / "translations"
    for po_path in sorted(TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po")):
        locale = po_path.parent.parent.name
        mo_path = target / po_path.relative_to(TRANSLATIONS_DIR).with_suffix(".mo")
        source = po_path.read_bytes()
        digest = hashlib.sha256(source).hexdigest()
        stamp = mo_path.with_suffix(".sha256")
        if mo_path.exists() and stamp.exists() and stamp.read_text().strip() == digest:
            continue
        try:
            catalog = read_po(io.BytesIO(source), locale=locale, abort_invalid=True)
        except Exception as exc:  # one broken catalog must not stop the service
            log.error("catalog %s could not be read (%s); its last good build, or English, is shown", locale, exc)
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        compiled = io.BytesIO()
        write_mo(compiled, catalog, use_fuzzy=False)
        _atomic_write(mo_path, compiled.getvalue())
        _atomic_write(stamp, digest.encode())
    check_catalogs(app, target)
    return target


def _atomic_write(path: Path, data: bytes) -> None:
    """Write a file through a temporary file in the same folder and a rename."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp_name, path)


def check_catalogs(app: Flask, compiled: Path) -> list[str]:
    """Log the configured locales that have no catalog (they show English); return them."""
    missing = [
        code
        for code in app.config["LOCALES"]
        if code != "en" and not (compiled / code / "LC_MESSAGES" / "messages.mo").exists()
    ]
    if missing:
        log.warning("no translation catalog for configured locales: %s (English is shown)", ", ".join(missing))
    else:
        log.info("translation catalogs present for all %d configured locales", len(app.config["LOCALES"]))
    return missing


def init_app(app: Flask) -> None:
    """Compile catalogs, point Flask-Babel at them, select the time zone, expose g.localeinfo to templates."""
    compiled = str(compile_catalogs(app))
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", compiled)
    babel_config = app.extensions.get("babel")
    if babel_config is not None:
        # Flask-Babel read its directories in babel.init_app(), before the catalogs were compiled.
        directories = str(app.config["BABEL_TRANSLATION_DIRECTORIES"]).split(";")
        babel_config.default_directories = directories
        babel_config.translation_directories = [
            d if os.path.isabs(d) else os.path.join(app.root_path, d) for d in directories
        ]
        babel_config.timezone_selector = babel_config.timezone_selector or select_timezone
    app.jinja_env.filters.setdefault("isolate", isolate)
    app.jinja_env.globals.setdefault("sms_status_keyword", sms_status_keyword)

    @app.url_value_preprocessor
    def _fresh_locale(endpoint: str | None, values: dict[str, Any] | None) -> None:
        # Runs first in every request (before the blueprints' own preprocessors): Flask-Babel caches the locale,
        # time zone and catalog on g, and an app context may outlive one request (tests, stream_with_context).
        refresh()
        g.pop("default_programme_locale", None)

    @app.before_request
    def _localeinfo() -> None:
        if request.blueprint in MACHINE_BLUEPRINTS:
            # Issue 9: Twilio's webhooks render no page and have no language in their URL; their answers pick
            # their locale themselves (force_locale), so negotiating one on every request was spent for nothing.
            return
        from_url = (request.view_args or {}).get("lang_code")
        if from_url in app.config["LOCALES"] and session.get("locale") != from_url:
            # A page reached through the language picker (or a link in one language) is an explicit choice:
            # remembered, so that the short URL on a poster (/feedback, /p/<slug>) opens in that language next time.
            session["locale"] = from_url
        g.localeinfo = locale_info(select_locale())
