"""Offline language identification for the 12 corpus languages (pycld2 first, py3langid and script rules after)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any, Final

import pycld2

from classifier.categories import LANGUAGES

log = logging.getLogger(__name__)

UNKNOWN: Final = "unknown"
# Only the start of a long text is looked at: a language does not change after 2,000 characters.
MAX_CHARS: Final = 2000

# pycld2 codes onto ours; "prs" (Dari) and "fa" are both our "fa".
_CLD2_MAP: Final[dict[str, str]] = {code: code for code in LANGUAGES} | {"prs": "fa", "fa": "fa"}

# Characters pycld2 rejects as invalid UTF-8: C0/C1 controls (but tab/newline/CR), lone surrogates, noncharacters.
_BAD_CHARS: Final = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    "\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff\U000efffe\U000effff"
    "\U000ffffe\U000fffff\U0010fffe\U0010ffff]"
)

# Script letter ranges.
_ETHIOPIC: Final = re.compile("[\u1200-\u139f\u2d80-\u2ddf\uab00-\uab2f]")
_ARABIC: Final = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_CYRILLIC: Final = re.compile("[\u0400-\u04ff\u0500-\u052f]")
_LATIN: Final = re.compile("[A-Za-z\u00c0-\u024f]")

# Letters that only Pashto uses among ar/fa/ps.
_PASHTO_LETTERS: Final = re.compile("[ټډړږښګځڅڼۍېئ]")
_PASHTO_STRONG: Final = re.compile("[ټډړږښګځڅڼۍې]")
# Persian letters absent from Arabic (Pashto uses them too), and Persian yeh / keheh.
_PERSIAN_LETTERS: Final = re.compile("[پچژگکی]")
# Arabic-only letters and spellings (teh marbuta, alef maqsura, Arabic yeh and kaf).
_ARABIC_LETTERS: Final = re.compile("[ةىيك]")

# Tigrinya vs Amharic: frequent function words and letters (ቐ series is Tigrinya-only).
_TI_MARKERS: Final = re.compile(
    r"(?:ኣብ|ኣለ|ኣይ|ኣና|ኢዩ|እዩ|ኢና|እየ|ናይ|ከም|ግን|ምስ|የለን|የለ|ዘሎ|ዝኾነ|ኣሎ|ኣሎና|ኣሎኹ|ኣሎኒ|ሓደ|ክንደይ|ኣበይ|ስለ|በጃኹም|ኢሉ|በሉ|ንዓና|ንሕና|ኣነ|እንታይ|ዝበለ)"
)
_TI_LETTERS: Final = re.compile("[ቐቑቒቓቔቕቖኸኹኺኻኼኽኾ]")
_AM_MARKERS: Final = re.compile(
    r"(?:ነው|ናቸው|ነበር|እባክ|እና|ውስጥ|አለ|አይ|የለም|ምን|መቼ|የት|ለምን|እንዴት|ግን|ሰው|እኔ|እኛ|ነኝ|አልነበረም|ይሄ|ይህ|ላይ|ጋር|በጣም)"
)

# Cyrillic: letters that tell Ukrainian from Russian.
_UK_LETTERS: Final = re.compile("[іїєґІЇЄҐ]")
_RU_LETTERS: Final = re.compile("[ыэъёЫЭЪЁ]")

# Arabizi: a digit standing for a letter inside a Latin word (3=ع, 7=ح, 2=ء, 5=خ, 9=ق).
_ARABIZI: Final = re.compile(r"(?i)(?<!\d)(?:[a-z][23579]|[23579][a-z])")
_ARABIZI_WORDS: Final = re.compile(
    r"(?i)\b(?:ana|enta|inta|enti|ahl|3ayez|3ayz|bidi|badi|mafi|fi|ma3|wallah|yalla|inshallah|habibi|shukran|"
    r"ma3lesh|lazem|kteer|ktir|keef|kif|shu|esh|leh|lesh|mish|msh|7ad|el|al|wa|ya|3ala|3an)\b"
)
# Finglish (Dari/Farsi in Latin letters): frequent words.
_FINGLISH_WORDS: Final = re.compile(
    r"(?i)\b(?:salam|man|ma|shoma|lotfan|lutfan|mikhaham|mikham|mekhaham|chera|kojast|kuja|koja|dar|ast|hast|"
    r"nist|nadarim|daram|darom|bayad|khanom|agha|tashakor|merci|kheili|khaili|chi|chand|kardan|kard|shod|"
    r"migirad|mekona|mekunad|hastam|hastim|ba|az|ra|ke|ham)\b"
)

_LATIN_LANGS: Final = ("en", "fr", "es", "so", "sw")

_langid_lock = threading.Lock()
_langid: Any = None
_langid_failed = False


def clean(text: object) -> str:
    """Text that pycld2 accepts: str, no control characters, surrogates or noncharacters, at most MAX_CHARS."""
    if not isinstance(text, str):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        else:
            return ""
    return _BAD_CHARS.sub(" ", text[:MAX_CHARS])


def _cld2(text: str) -> tuple[str, int, bool]:
    """Best-effort pycld2 guess: (our code or unknown, percent, reliable)."""
    try:
        reliable, _, details = pycld2.detect(text, bestEffort=True)
    except (pycld2.error, ValueError, TypeError):
        try:
            reliable, _, details = pycld2.detect(
                text.encode("utf-8", "ignore").decode("ascii", "ignore"), bestEffort=True
            )
        except (pycld2.error, ValueError, TypeError):
            return UNKNOWN, 0, False
    _, code, percent, _ = details[0]
    return _CLD2_MAP.get(code, UNKNOWN if code == "un" else f"x:{code}"), int(percent), bool(reliable)


def _identifier() -> Any:
    """The py3langid identifier, restricted to our languages it knows (loaded on first use, ~0.5 s)."""
    global _langid, _langid_failed
    if _langid is not None or _langid_failed:
        return _langid
    with _langid_lock:
        if _langid is None and not _langid_failed:
            try:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                ident.set_languages([code for code in LANGUAGES if code in ident.nb_classes])
                _langid = ident
            except Exception as exc:  # an optional fallback must not break detection
                log.warning("py3langid unavailable: %s", type(exc).__name__)
                _langid_failed = True
    return _langid


def _langid_rank(text: str, allowed: Iterable[str]) -> tuple[str, float]:
    """py3langid's best language among allowed, with its normalised probability."""
    ident = _identifier()
    if ident is None:
        return UNKNOWN, 0.0
    allowed_set = set(allowed)
    try:
        ranked = ident.rank(text)
    except Exception:  # py3langid is best effort; never let it raise
        return UNKNOWN, 0.0
    candidates = [(lang, score) for lang, score in ranked if lang in allowed_set]
    if not candidates:
        return UNKNOWN, 0.0
    total = sum(score for _, score in candidates) or 1.0
    lang, score = candidates[0]
    return lang, score / total


def _ethiopic(text: str, cld: str) -> str:
    """Amharic or Tigrinya for Ethiopic-script text."""
    ti = len(_TI_MARKERS.findall(text)) + 2 * len(_TI_LETTERS.findall(text))
    am = len(_AM_MARKERS.findall(text))
    # Tigrinya writes the glottal a with ኣ; Amharic uses አ.
    ti_a, am_a = text.count("ኣ"), text.count("አ")
    ti += ti_a
    am += am_a
    if ti > am:
        return "ti"
    if am > ti:
        return "am"
    return cld if cld in ("am", "ti") else "am"


def _arabic(text: str, cld: str) -> str:
    """Arabic, Dari/Farsi or Pashto for Arabic-script text."""
    pashto_strong = len(_PASHTO_STRONG.findall(text))
    if pashto_strong >= 2 or (pashto_strong >= 1 and cld == "ps"):
        return "ps"
    persian = len(_PERSIAN_LETTERS.findall(text))
    arabic = len(_ARABIC_LETTERS.findall(text))
    if cld in ("ar", "fa", "ps"):
        if cld == "ar" and persian > arabic:
            return "fa"
        if cld == "fa" and arabic > 2 * persian + 2:
            return "ar"
        return cld
    if pashto_strong:
        return "ps"
    if persian >= arabic and persian > 0:
        return "fa"
    return "ar"


def _cyrillic(text: str, cld: str) -> str:
    """Ukrainian or Russian for Cyrillic text."""
    uk = len(_UK_LETTERS.findall(text))
    ru = len(_RU_LETTERS.findall(text))
    if uk > ru:
        return "uk"
    if ru > uk:
        return "ru"
    if cld in ("uk", "ru"):
        return cld
    lang, _ = _langid_rank(text, ("uk", "ru"))
    return lang if lang != UNKNOWN else "ru"


def _latin(text: str, cld: str, percent: int, reliable: bool) -> str:
    """A Latin-script language, or a best guess for transliterated Arabic or Dari/Farsi."""
    words = max(1, len(text.split()))
    arabizi = len(_ARABIZI.findall(text)) + len(_ARABIZI_WORDS.findall(text))
    finglish = len(_FINGLISH_WORDS.findall(text))
    if cld in _LATIN_LANGS and reliable and percent >= 70 and max(arabizi, finglish) < 0.34 * words:
        return cld
    if arabizi >= 2 and arabizi >= finglish and arabizi >= 0.2 * words:
        return "ar"
    if finglish >= 2 and finglish > arabizi and finglish >= 0.25 * words:
        return "fa"
    if cld in _LATIN_LANGS and (reliable or percent >= 50):
        return cld
    lang, prob = _langid_rank(text, _LATIN_LANGS)
    if lang != UNKNOWN and prob >= 0.5:
        return lang
    if cld in _LATIN_LANGS:
        return cld
    return lang if lang != UNKNOWN and prob >= 0.3 else UNKNOWN


def detect(text: str) -> str:
    """One of LANGUAGES or "unknown"; never raises."""
    try:
        return _detect(text)
    except Exception as exc:  # detection is advisory: a bug here must never stop intake
        log.warning("language detection failed: %s", type(exc).__name__)
        return UNKNOWN


def _detect(text: str) -> str:
    """Detection proper (may raise on a bug; detect() guards it)."""
    cleaned = clean(text)
    counts = {
        "ethiopic": len(_ETHIOPIC.findall(cleaned)),
        "arabic": len(_ARABIC.findall(cleaned)),
        "cyrillic": len(_CYRILLIC.findall(cleaned)),
        "latin": len(_LATIN.findall(cleaned)),
    }
    script, letters = max(counts.items(), key=lambda item: item[1])
    if letters < 2:
        return UNKNOWN
    cld, percent, reliable = _cld2(cleaned)
    if script == "ethiopic":
        return _ethiopic(cleaned, cld)
    if script == "arabic":
        return _arabic(cleaned, cld)
    if script == "cyrillic":
        return _cyrillic(cleaned, cld)
    return _latin(cleaned, cld, percent, reliable)
