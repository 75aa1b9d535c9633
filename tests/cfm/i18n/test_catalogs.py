"""CI check of the catalogs (issue 7): the .pot is not stale, required strings are translated, placeholders match.

Every failure message says how to fix it: re-extract and merge with translations/update.sh (pybabel extract +
update), translate what it reports in translations/<locale>/LC_MESSAGES/messages.po, run these tests again.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from cfm.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[3]
TRANSLATIONS = ROOT / "translations"
POT = TRANSLATIONS / "messages.pot"
LOCALES: tuple[str, ...] = tuple(code for code in DEFAULTS["LOCALES"] if code != "en")
# The officers' side must exist in these locales at least (issue 7); the others fall back to English there.
CONSOLE_LOCALES = ("fr", "es", "ar", "uk", "ru")
# A string is staff-only when every place it is used is under these paths; anything else a beneficiary may see.
STAFF_ONLY_PATHS = ("cfm/console/", "cfm/templates/console/")
# The same keywords as translations/update.sh passes to pybabel extract (a test below keeps them in step).
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}

UPDATE = (
    "run translations/update.sh (pybabel extract -F translations/babel.cfg -k _l -k lazy_gettext "
    "-o translations/messages.pot . && pybabel update -i translations/messages.pot -d translations)"
)
TRANSLATE = "translate them in translations/{locale}/LC_MESSAGES/messages.po (remove '#, fuzzy' once checked)"
PERCENT = re.compile(r"%(?:\((\w+)\))?[#0\- +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")
BRACES = re.compile(r"(?<!\{)\{(\w*)(?:[!:][^{}]*)?\}(?!\})")


def msgid_of(message: Message) -> str:
    """The singular msgid of an entry."""
    return message.id[0] if isinstance(message.id, tuple | list) else str(message.id)


def forms_of(message: Message) -> list[str]:
    """The msgstr forms of an entry (one for a singular entry)."""
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string or ""]


def ids_of(message: Message) -> list[str]:
    """The msgid and, for a plural entry, msgid_plural."""
    return list(message.id) if isinstance(message.id, tuple | list) else [str(message.id)]


@cache
def extracted() -> dict[str, Message]:
    """What pybabel extract finds in the sources today, run in-process with translations/babel.cfg."""
    with (TRANSLATIONS / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str, Message] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",), strip_comment_tags=True
    ):
        key = message[0] if isinstance(message, tuple) else message
        entry = found.setdefault(key, Message(message, context=context))
        entry.locations.append((filename.replace("\\", "/"), lineno))
    return found


@cache
def template() -> Catalog:
    """translations/messages.pot."""
    with POT.open("rb") as handle:
        return read_po(handle)


@cache
def catalog(locale: str) -> Catalog:
    """translations/<locale>/LC_MESSAGES/messages.po."""
    path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    assert path.exists(), f"no catalog for {locale}: {UPDATE}"
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def entries(locale: str) -> Iterator[Message]:
    """Every message of a catalog except the header."""
    return (message for message in catalog(locale) if message.id)


def staff_only(message: Message) -> bool:
    """True when the string appears only on the officers' side (console views, forms and templates)."""
    return bool(message.locations) and all(path.startswith(STAFF_ONLY_PATHS) for path, _ in message.locations)


def required(locale: str, message: Message) -> bool:
    """Beneficiary strings in every locale; staff-only strings in the console locales."""
    return not staff_only(message) or locale in CONSOLE_LOCALES


def placeholders(text: str) -> tuple[set[str], set[str]]:
    """Named %-placeholders (positional ones as their conversion) and {name} fields in a text."""
    percent = {match.group(1) or match.group(0) for match in PERCENT.finditer(text) if match.group(0) != "%%"}
    return percent, set(BRACES.findall(text))


# --- (a) the template and the catalogs follow the sources ------------------------------------------------------


def test_the_template_has_every_marked_string_of_the_sources() -> None:
    in_pot = {msgid_of(message) for message in template() if message.id}
    missing = sorted(set(extracted()) - in_pot)
    assert not missing, f"translations/messages.pot is stale, {len(missing)} new string(s): {missing[:10]}; {UPDATE}"


def test_the_template_has_no_string_the_sources_no_longer_use() -> None:
    gone = sorted({msgid_of(message) for message in template() if message.id} - set(extracted()))
    assert not gone, f"translations/messages.pot lists strings no source uses any more: {gone[:10]}; {UPDATE}"


def test_plural_entries_in_the_template_match_the_sources() -> None:
    pot = {msgid_of(message): message for message in template() if message.id}
    wrong = [key for key, message in extracted().items() if key in pot and ids_of(pot[key]) != ids_of(message)]
    assert not wrong, f"singular/plural pairs differ from the sources: {wrong}; {UPDATE}"


@pytest.mark.parametrize("locale", LOCALES)
def test_each_catalog_has_every_string_of_the_template(locale: str) -> None:
    in_po = {msgid_of(message) for message in entries(locale)}
    missing = sorted({msgid_of(message) for message in template() if message.id} - in_po)
    assert not missing, f"{locale}: catalog not updated from the template, missing {missing[:10]}; {UPDATE}"


def test_update_script_uses_the_keywords_this_check_extracts_with() -> None:
    script = (TRANSLATIONS / "update.sh").read_text()
    for keyword in ("_l", "lazy_gettext", "lazy_ngettext:1,2"):
        assert f"-k {keyword}" in script, f"translations/update.sh must extract with -k {keyword}"
    assert "-F translations/babel.cfg" in script and "compile" not in script.split("set -euo")[1]


def test_every_configured_locale_has_a_catalog() -> None:
    missing = [locale for locale in LOCALES if not (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").exists()]
    assert not missing, f"no catalog for {missing}: {UPDATE} (LOCALES=... translations/update.sh creates them)"


# --- (b) complete where required, never fuzzy ---------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_required_strings_are_translated(locale: str) -> None:
    untranslated = [
        msgid_of(message)
        for message in entries(locale)
        if required(locale, message) and not all(form.strip() for form in forms_of(message))
    ]
    assert not untranslated, (
        f"{locale}: {len(untranslated)} required string(s) untranslated, e.g. {untranslated[:8]}; "
        + TRANSLATE.format(locale=locale)
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_required_strings_are_not_fuzzy(locale: str) -> None:
    fuzzy = [msgid_of(message) for message in entries(locale) if required(locale, message) and message.fuzzy]
    assert not fuzzy, (
        f"{locale}: fuzzy entries are not used by the app (English shows): {fuzzy[:8]}; "
        + TRANSLATE.format(locale=locale)
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_plural_forms_are_babels_and_every_form_is_given(locale: str) -> None:
    expected = get_plural(locale)
    po = catalog(locale)
    assert po.num_plurals == expected.num_plurals, (
        f"{locale}: Plural-Forms header says {po.num_plurals} forms, Babel says {expected.num_plurals} "
        f"({expected.plural_forms}); fix the header of translations/{locale}/LC_MESSAGES/messages.po"
    )
    for message in entries(locale):
        if message.pluralizable and any(forms_of(message)):
            assert len(forms_of(message)) == expected.num_plurals, f"{locale}: {msgid_of(message)!r} needs all forms"


# --- (c) placeholders ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_match_between_source_and_translation(locale: str) -> None:
    broken = []
    for message in entries(locale):
        source = placeholders(ids_of(message)[-1])
        for index, form in enumerate(forms_of(message)):
            if form and placeholders(form) != source:
                broken.append(f"{msgid_of(message)!r} [form {index}]: {placeholders(form)} != {source}")
    assert not broken, (
        f"{locale}: placeholders must be kept exactly, %(name)s and {{name}} alike (do not translate the names): "
        f"{broken[:5]}; fix translations/{locale}/LC_MESSAGES/messages.po"
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_python_format_translations_format(locale: str) -> None:
    failures = []
    for message in entries(locale):
        names, _ = placeholders(ids_of(message)[-1])
        if not message.python_format or not all(name.isidentifier() for name in names):
            continue
        for form in forms_of(message):
            try:
                _ = form % dict.fromkeys(names, 1) if form else ""
            except (KeyError, ValueError, TypeError) as exc:
                failures.append(f"{msgid_of(message)!r}: {type(exc).__name__} {exc}")
    assert not failures, f"{locale}: translations that fail to format: {failures[:5]} (a stray % must be written %%)"


# --- (d) every catalog compiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_each_catalog_compiles_and_passes_babels_checks(locale: str) -> None:
    po = catalog(locale)
    problems = [f"{msgid_of(message)!r}: {errors}" for message, errors in po.check() if message.id]
    assert not problems, f"{locale}: {problems[:5]}; fix translations/{locale}/LC_MESSAGES/messages.po"
    compiled = io.BytesIO()
    write_mo(compiled, po, use_fuzzy=False)
    assert compiled.getvalue().startswith(b"\xde\x12\x04\x95"), f"{locale}: the .mo file could not be written"


@pytest.mark.slow
def test_the_wheel_ships_the_catalogs(tmp_path: Path) -> None:
    """A plain `pip install .` carries translations/ (through the cfm/translations link) for start-up compiling."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    names = set(zipfile.ZipFile(next(tmp_path.glob("cfm-*.whl"))).namelist())
    for locale in LOCALES:
        assert f"cfm/translations/{locale}/LC_MESSAGES/messages.po" in names, f"{locale} missing from the wheel"
    assert not any(name.endswith(".mo") for name in names), ".mo files are built at start-up, never shipped"
