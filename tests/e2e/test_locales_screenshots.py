"""The feedback form on a 360x640 phone in Arabic, Dari, Amharic and English (issue 7), screenshots kept.

Headless Chromium (Debian package) renders /<locale>/feedback; the test checks what a person would see: the page
mirrored in right-to-left scripts (text and radio buttons on the right), nothing wider than the screen, and every
heading and label drawn with a real font of its script (Chromium's own record of the fonts it used, over CDP), not
with empty boxes. Screenshots: test-artifacts/screenshots/locale-<locale>.png (whole page) and
locale-<locale>-screen.png (the first screen).
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from tests.e2e.support import SCREENSHOTS

pytestmark = pytest.mark.e2e

PHONE = {"width": 360, "height": 640}
LOCALES = {"ar": "rtl", "fa_AF": "rtl", "am": "ltr", "en": "ltr"}
# The nodes whose text must be drawn with real glyphs: the heading, a field label, a radio label, the button.
NODES = ("h1", "label[for='text']", "label[for='category-1']", "button[type=submit]")


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A phone-sized page (JavaScript on only so that the test can measure; the pages ship none)."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=1)
    page = context.new_page()
    yield page
    context.close()


def fonts_used(page: Any, selector: str) -> list[dict[str, Any]]:
    """The platform fonts Chromium drew a node's text with, and how many glyphs each (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, f"{selector} is not on the page"
        fonts: list[dict[str, Any]] = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        return fonts
    finally:
        cdp.detach()


def box(page: Any, selector: str) -> dict[str, float]:
    """The bounding box of the first element matching the selector."""
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not visible"
    return dict(found)


@pytest.mark.parametrize("lang", list(LOCALES))
def test_feedback_form_renders_mirrored_unclipped_and_with_real_fonts(phone: Any, server: str, lang: str) -> None:
    page = phone
    page.goto(f"{server}/{lang}/feedback")
    direction = LOCALES[lang]
    assert page.get_attribute("html", "dir") == direction
    assert page.get_attribute("html", "lang") == lang.replace("_", "-")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"locale-{lang}.png"), full_page=True)
    page.screenshot(path=str(SCREENSHOTS / f"locale-{lang}-screen.png"))

    # Nothing clipped: no sideways scrolling, and every heading, label and the button inside the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for selector in (*NODES, "textarea#text", "#phone"):
        found = box(page, selector)
        assert found["x"] >= 0 and found["x"] + found["width"] <= PHONE["width"] + 0.5, f"{lang}: {selector} {found}"

    # Mirrored: text starts at the right edge in right-to-left scripts; a radio button sits before its label.
    heading, radio, label = box(page, "h1"), box(page, "#category-1"), box(page, "label[for='category-1']")
    right_gap = PHONE["width"] - (heading["x"] + heading["width"])
    if direction == "rtl":
        assert right_gap < 40 and radio["x"] > label["x"], f"{lang}: not mirrored (h1 {heading}, radio {radio})"
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    else:
        assert heading["x"] < 40 and radio["x"] < label["x"], f"{lang}: not left to right (h1 {heading})"

    # Real fonts: every character on the page is in some installed font (no empty boxes), and Chromium drew the
    # heading, labels and button with fonts it found (Ethiopic from an Ethiopic font).
    text = page.inner_text("body")
    missing = sorted({ch for ch in text if _visible(ch) and ord(ch) not in installed_coverage()})
    assert not missing, f"{lang}: no installed font has {[f'U+{ord(ch):04X} {ch}' for ch in missing]} (see .ci/run)"
    for selector in NODES:
        fonts = fonts_used(page, selector)
        assert fonts and all(font["glyphCount"] > 0 for font in fonts), f"{lang}: {selector} {fonts}"
        names = " ".join(font["familyName"] for font in fonts)
        assert "Last Resort" not in names, f"{lang}: {selector} drawn with the last-resort font"
        if lang == "am":
            assert any(_ethiopic(font["familyName"]) for font in fonts), f"am: no Ethiopic font for {selector}: {names}"


def _ethiopic(family: str) -> bool:
    """A font family known to carry Ethiopic script (Debian: fonts-sil-abyssinica, fonts-noto-core)."""
    return any(name in family for name in ("Abyssinica", "Ethiopic", "Nyala", "Kefa"))


def _visible(ch: str) -> bool:
    """A character that needs a glyph (not a space, control or invisible format character)."""
    return not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zs")


@cache
def installed_coverage() -> frozenset[int]:
    """Every code point some installed font covers, from fontconfig (the fonts Chromium falls back on)."""
    fc_list = shutil.which("fc-list")
    assert fc_list, "fc-list (Debian: fontconfig) is needed to check font coverage; .ci/run installs it"
    listing = subprocess.run([fc_list, "--format", "%{charset}\\n"], check=True, capture_output=True, text=True)
    covered: set[int] = set()
    for line in listing.stdout.splitlines():
        for item in line.split():
            first, _, last = item.partition("-")
            covered.update(range(int(first, 16), int(last or first, 16) + 1))
    return frozenset(covered)
