"""Offline language identification for the 12 corpus languages (pycld2 first, py3langid and script rules after)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path
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

# Script letter ranges, as a str.translate table onto one marker letter per script (counted with str.count).
_SCRIPT_RANGES: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    "E": ((0x1200, 0x139F), (0x2D80, 0x2DDF), (0xAB00, 0xAB2F)),
    "A": ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    "C": ((0x0400, 0x052F),),
    "L": ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F)),
}
_SCRIPT_TABLE: Final[dict[int, str]] = {
    code: marker for marker, ranges in _SCRIPT_RANGES.items() for low, high in ranges for code in range(low, high + 1)
}
_SCRIPT_NAMES: Final = {"E": "ethiopic", "A": "arabic", "C": "cyrillic", "L": "latin"}

# Letters that only Pashto uses among ar/fa/ps; Persian letters absent from Arabic (Pashto uses them too);
# Arabic-only letters (teh marbuta, alef maqsura, Arabic yeh and kaf). Counted with str.count (fast).
_PASHTO_STRONG: Final = tuple("ټډړږښګځڅڼۍې")
_PERSIAN_LETTERS: Final = tuple("پچژگکی")
_ARABIC_LETTERS: Final = tuple("ةىيك")

# Tigrinya vs Amharic: frequent function words and letters (the ቐ and ኸ series are far more Tigrinya).
_TI_MARKERS: Final = (
    "ኣብ ኣለ ኣይ ኣና ኢዩ እዩ ኢና እየ ናይ ከም ምስ የለን ዘሎ ዝኾነ ኣሎ ሓደ ክንደይ ኣበይ ስለ በጃኹም ኢሉ ንዓና ንሕና ኣነ እንታይ ዝበለ"
).split()
_TI_LETTERS: Final = tuple("ቐቑቒቓቔቕቖኸኹኺኻኼኽኾ")
_AM_MARKERS: Final = ("ነው ናቸው ነበር እባክ እና ውስጥ አለ አይ የለም ምን መቼ የት ለምን እንዴት ሰው እኔ እኛ ነኝ ይሄ ይህ ላይ ጋር በጣም").split()

# Cyrillic: letters that tell Ukrainian from Russian.
_UK_LETTERS: Final = tuple("іїєґІЇЄҐ")
_RU_LETTERS: Final = tuple("ыэъёЫЭЪЁ")

# Arabizi: a digit standing for a letter inside a Latin word (3=ع, 7=ح, 2=ء, 5=خ, 9=ق), and frequent words.
_ARABIZI: Final = re.compile(r"(?i)(?<!\d)(?:[a-z][23579]|[23579][a-z])")
_LATIN_TOKEN: Final = re.compile(r"[a-z0-9']+")
_ARABIZI_WORDS: Final = frozenset(
    "ana enta inta enti ahl 3ayez 3ayz bidi badi mafi fi ma3 wallah yalla inshallah habibi shukran ma3lesh "
    "lazem kteer ktir keef kif shu esh leh lesh mish msh 7ad el al wa ya 3ala 3an".split()
)
# Finglish (Dari/Farsi in Latin letters): frequent words.
_FINGLISH_WORDS: Final = frozenset(
    "salam man ma shoma lotfan lutfan mikhaham mikham mekhaham chera kojast kuja koja dar ast hast nist "
    "nadarim daram darom bayad khanom agha tashakor merci kheili khaili chi chand kardan kard shod migirad "
    "mekona mekunad hastam hastim ba az ra ke ham".split()
)


def _count(text: str, items: Iterable[str]) -> int:
    """Occurrences of all items in text."""
    return sum(text.count(item) for item in items)


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


# py3langid's full model holds 142 languages (a 28 MB weight matrix) and a dense 39 MB byte automaton; we keep our
# languages' weights and the automaton as exceptions to its start row (issue 9: worker memory). COMPACT_MODEL is
# derived from py3langid's own model by compact_arrays() (`python -m classifier.language` writes it); a test proves
# both equal, and a file from another py3langid version is not used.
COMPACT_MODEL: Final = Path(__file__).with_name("models") / "langid.npz"
_COMPACT_KEYS: Final = ("source", "classes", "ptc", "pc", "out", "row", "starts", "keys", "targets", "root")


def _langid_source() -> str:
    """The py3langid release whose model the compact arrays come from."""
    import py3langid

    return f"py3langid {py3langid.__version__}"


def compact_arrays() -> dict[str, Any]:
    """py3langid's model restricted to our languages, its automaton stored as exceptions to the start row.

    A state's row of next states differs from the start state's row in ~56 of 256 bytes; those (byte, next state)
    pairs are kept per row, sorted by byte ("keys", "targets", row r's in starts[r]:starts[r + 1]).
    """
    import numpy as np
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    full = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    wanted = set(LANGUAGES)
    indices = [i for i, code in enumerate(full.nb_classes) if code in wanted]  # py3langid's own order (ties)
    dense = np.frombuffer(full.tk_nextmove, dtype=f"u{full.tk_nextmove.itemsize}").reshape(-1, 256)
    row = np.frombuffer(full.tk_row, dtype=f"u{full.tk_row.itemsize}")
    root = dense[row[0]].copy()
    rows, keys = np.nonzero(dense != root)
    starts = np.zeros(len(dense) + 1, dtype=np.uint32)
    np.cumsum(np.bincount(rows, minlength=len(dense)), out=starts[1:])
    return {
        "source": np.array(_langid_source()),
        "classes": np.array([full.nb_classes[i] for i in indices]),
        "ptc": full.nb_ptc[:, indices],
        "pc": full.nb_pc[indices],
        "out": np.asarray(full.tk_output, dtype=np.int32),
        "row": row.copy(),
        "starts": starts,
        "keys": keys.astype(np.uint8),
        "targets": dense[rows, keys],
        "root": root,
    }


def write_compact_model(path: Path = COMPACT_MODEL) -> None:
    """Write compact_arrays() to path (an npz without pickles), atomically."""
    import numpy as np

    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        np.savez_compressed(f, **compact_arrays())
    tmp.replace(path)


def _read_compact(path: Path) -> dict[str, Any] | None:
    """The compact arrays in path; None when missing, unreadable or made from another py3langid model."""
    import zipfile

    import numpy as np

    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:  # our handle: closed even on a bad zip
            arrays = {key: npz[key] for key in _COMPACT_KEYS}
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("compact language model unusable (%s), derived from py3langid instead", type(exc).__name__)
        return None
    if str(arrays["source"]) != _langid_source():
        log.warning("compact language model is from %s, derived from py3langid instead", arrays["source"])
        return None
    return arrays


def _compact_identifier(arrays: dict[str, Any]) -> Any:
    """A py3langid LanguageIdentifier that walks the compact automaton (same scores, bit for bit)."""
    from array import array
    from collections import Counter

    import numpy as np
    from py3langid.langid import RAW_FLOOR, LanguageIdentifier

    def packed(values: Any, typecode: str) -> array[int]:
        """values as a stdlib array (indexing it is faster than indexing numpy from Python)."""
        out = array(typecode)
        kind = "i" if typecode.islower() else "u"
        out.frombytes(np.ascontiguousarray(values, dtype=f"{kind}{out.itemsize}").tobytes())
        return out

    class CompactIdentifier(LanguageIdentifier):
        __slots__ = ("_keys", "_out", "_root", "_row", "_starts", "_targets")

        def __init__(self, arrays: dict[str, Any]) -> None:
            # The parent's dense automaton stays empty: _raw_score walks the compact one.
            super().__init__(arrays["ptc"], arrays["pc"], arrays["classes"].tolist(), None, [], True, tk_row=())
            self._keys = arrays["keys"].tobytes()
            self._targets = packed(arrays["targets"], "I")
            self._starts = packed(arrays["starts"], "I")
            self._row = packed(arrays["row"], "I")
            self._root = arrays["root"].tolist()
            self._out = packed(arrays["out"], "i")

        def _raw_score(self, text: bytes) -> Any:
            """py3langid's _raw_score over the compact automaton."""
            keys, targets, starts, row, root, out = (
                self._keys,
                self._targets,
                self._starts,
                self._row,
                self._root,
                self._out,
            )
            state, found = 0, []
            for letter in text:
                r = row[state]
                at = keys.find(letter, starts[r], starts[r + 1])
                state = targets[at] if at >= 0 else root[letter]
                feature = out[state]
                if feature >= 0:
                    found.append(feature)
            if found:
                return self._sparse_score(Counter(found), self.nb_ptc)
            fill = 0.0 if self._norm_probs else RAW_FLOOR
            return np.full(len(self.nb_classes), fill, dtype=np.float32)

    return CompactIdentifier(arrays)  # an argument, not a closure: the arrays are not kept


def _release_memory() -> None:
    """Collect and hand freed heap pages back to the operating system (glibc; elsewhere nothing happens)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to hand back this way
        pass


def _identifier() -> Any:
    """The py3langid fallback identifier over our languages, from the compact model (loaded on first use)."""
    global _langid, _langid_failed
    if _langid is not None or _langid_failed:
        return _langid
    with _langid_lock:
        if _langid is None and not _langid_failed:
            try:
                arrays = _read_compact(COMPACT_MODEL)
                if arrays is None:
                    arrays = compact_arrays()
                    _release_memory()  # the full model is gone; give its pages back
                _langid = _compact_identifier(arrays)
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
    ti = _count(text, _TI_MARKERS) + 2 * _count(text, _TI_LETTERS)
    am = _count(text, _AM_MARKERS)
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
    pashto_strong = _count(text, _PASHTO_STRONG)
    if pashto_strong >= 2 or (pashto_strong >= 1 and cld == "ps"):
        return "ps"
    persian = _count(text, _PERSIAN_LETTERS)
    arabic = _count(text, _ARABIC_LETTERS)
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
    uk = _count(text, _UK_LETTERS)
    ru = _count(text, _RU_LETTERS)
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
    tokens = _LATIN_TOKEN.findall(text.lower())
    words = max(1, len(tokens))
    arabizi = len(_ARABIZI.findall(text)) + sum(token in _ARABIZI_WORDS for token in tokens)
    finglish = sum(token in _FINGLISH_WORDS for token in tokens)
    if cld in _LATIN_LANGS and reliable and percent >= 70 and max(arabizi, finglish) < 0.34 * words:
        return cld
    if arabizi >= 2 and arabizi >= finglish and arabizi >= 0.2 * words:
        return "ar"
    if finglish >= 2 and finglish > arabizi and finglish >= 0.25 * words:
        return "fa"
    if cld.startswith("x:"):
        # pycld2 sees a language we do not cover: mostly transliterated text; better unknown than a wrong reply.
        return UNKNOWN
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
    marked = cleaned.translate(_SCRIPT_TABLE)
    counts = {name: marked.count(marker) for marker, name in _SCRIPT_NAMES.items()}
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


if __name__ == "__main__":
    write_compact_model()
    print(f"wrote {COMPACT_MODEL}")  # noqa: T201
