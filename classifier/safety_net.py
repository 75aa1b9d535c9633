"""Multilingual lexicon safety net for the restricted categories: high recall, cheap, runs inline."""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from classifier.categories import RESTRICTED_CATEGORIES

__all__ = [
    "LEXICON_DIR",
    "LexiconError",
    "SafetyNetHit",
    "lexicon_stats",
    "normalise",
    "scan",
    "scan_all",
]

LEXICON_DIR: Final[Path] = Path(__file__).with_name("lexicon")

# When several categories match, the highest entry weight wins, then this order. Sexual exploitation first
# (it often comes with a "place on the list", which would otherwise read as fraud); safety before fraud
# and staff because "smugglers threatened us" is not staff misconduct; fraud before staff because a bribe
# is often pressed with a threat. Routing is the same for all four: only the label shown differs.
PRIORITY: Final[tuple[str, ...]] = (
    "sexual_exploitation_abuse",
    "safety_protection",
    "fraud_corruption",
    "staff_misconduct",
)
assert set(PRIORITY) == set(RESTRICTED_CATEGORIES)

# --------------------------------------------------------------------------------------------- normalise

# Arabic-script letter variants that people type interchangeably, plus digits and invisible marks.
# Hamza carriers (أ إ ؤ ئ) and madda (آ) lose their combining mark in the NFD step below.
_CHAR_MAP: Final[dict[int, str]] = {
    # Arabic script
    0x0671: "\u0627",  # ٱ alef wasla -> ا
    0x0649: "\u064a",  # ى alef maksura -> ي
    0x06CC: "\u064a",  # ی Farsi yeh -> ي
    0x06D0: "\u064a",  # ې Pashto e -> ي
    0x06CD: "\u064a",  # ۍ Pashto yeh with tail -> ي
    0x06CE: "\u064a",  # ێ -> ي
    0x06D2: "\u064a",  # ے yeh barree -> ي
    0x0626: "\u064a",  # ئ (if not decomposed) -> ي
    0x0629: "\u0647",  # ة teh marbuta -> ه
    0x06C0: "\u0647",  # ۀ -> ه
    0x06D5: "\u0647",  # ە ae -> ه (ۀ decomposes to it)
    0x06C1: "\u0647",  # ہ heh goal -> ه
    0x06BE: "\u0647",  # ھ heh doachashmee -> ه
    0x06A9: "\u0643",  # ک keheh -> ك
    0x06AA: "\u0643",  # ڪ swash kaf -> ك
    0x06AB: "\u06af",  # ګ Pashto gaf ring -> گ
    0x0624: "\u0648",  # ؤ -> و
    0x0640: "",  # tatweel
    # invisible format characters: ZWNJ separates Persian morphemes like a space, the rest go
    0x200C: " ",
    0x200B: "",
    0x200D: "",
    0x200E: "",
    0x200F: "",
    0x202A: "",
    0x202B: "",
    0x202C: "",
    0x202D: "",
    0x202E: "",
    0x2066: "",
    0x2067: "",
    0x2068: "",
    0x2069: "",
    0x00AD: "",
    0xFEFF: "",
    # Cyrillic: Ukrainian ґ is often typed as г
    0x0491: "\u0433",
    # apostrophe look-alikes (Ukrainian, Somali, French)
    0x2019: "'",
    0x2018: "'",
    0x02BC: "'",
    0x02B9: "'",
    0x0060: "'",
    0x00B4: "'",
}
# Arabic-Indic and extended (Persian) digits -> ASCII
_CHAR_MAP.update({0x0660 + i: str(i) for i in range(10)})
_CHAR_MAP.update({0x06F0 + i: str(i) for i in range(10)})

_BAD_CHARS: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACES: Final = re.compile(r"\s+")
_RUN3: Final = re.compile(r"([^\W\d_])\1{2,}")


def _fold(text: str) -> str:
    """NFKC, casefold, drop combining marks and unify letter variants (character by character)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", text.translate(_CHAR_MAP))


def normalise(text: str) -> str:
    """Fold case, marks, letter variants, elongation and whitespace so that patterns match typed text."""
    try:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        text = _BAD_CHARS.sub(" ", text)
        text = _fold(text)
        text = _RUN3.sub(r"\1\1", text)
        return _SPACES.sub(" ", text).strip()
    except Exception:  # the safety net must never take an intake down; an unscannable text is empty
        return ""


# Scan form: normalised text with every separator (punctuation, Ge'ez word marks) turned into one space,
# so that patterns are plain words joined by single spaces. Currency signs and % stay: "$50", "10%".
_SEPARATORS: Final = re.compile(r"[^\w$€£%]+|_+")


def _scan_forms(text: str) -> list[str]:
    """The one or two scan forms of a text (elongated runs cut to two letters, and to one)."""
    text = _BAD_CHARS.sub(" ", text)
    folded = _fold(text)
    forms = [_RUN3.sub(r"\1\1", folded)]
    if len(forms[0]) != len(folded):  # there was elongation: "pleeease" needs "please" as well
        forms.append(_RUN3.sub(r"\1", folded))
    return [_SPACES.sub(" ", _SEPARATORS.sub(" ", f)).strip() for f in forms]


# ---------------------------------------------------------------------------------------------- lexicon


class LexiconError(ValueError):
    """A lexicon file is malformed (bad JSON, unknown category, bad pattern)."""


@dataclass(frozen=True, slots=True)
class SafetyNetHit:
    """One lexicon match: the restricted category, the entry that matched and the lexicon it came from."""

    category: str
    term: str
    language: str


@dataclass(frozen=True, slots=True)
class _Entry:
    """A compiled-to-be lexicon entry."""

    category: str
    term: str
    language: str
    regex: str
    weight: int
    bounded: bool


# Built-in macros, usable in every file: {GAP} = the rest of this word, then up to 4 more words;
# {GAPn} = up to n more words; {W} = the rest of the word; {END} = end of word.
_BUILTIN_MACROS: Final[dict[str, str]] = {
    "W": r"[^ ]*",
    "END": r"(?![^ ])",
    "GAP": r"[^ ]*(?: [^ ]+){0,4} ",
    **{f"GAP{n}": rf"[^ ]*(?: [^ ]+){{0,{n}}} " for n in range(0, 13)},
}
_MACRO: Final = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
_ESCAPE_OR_LITERAL: Final = re.compile(r"(\\.)|([^\\]+)", re.DOTALL)
_LEFT_BOUNDARY: Final = r"(?<![^ ])"

_SCRIPTS: Final[dict[str, str]] = {
    "Latn": r"a-z\u00df-\u024f",
    "Cyrl": r"\u0400-\u052f",
    "Arab": r"\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff",
    "Ethi": r"\u1200-\u139f\u2d80-\u2ddf\uab00-\uab2f",
}
_SCRIPT_OF_TEXT: Final[dict[str, re.Pattern[str]]] = {k: re.compile(f"[{v}]") for k, v in _SCRIPTS.items()}


def _expand(pattern: str, macros: dict[str, str], depth: int = 0) -> str:
    """Replace {NAME} macros (file macros first, then built-ins), recursively."""
    if depth > 8:
        raise LexiconError(f"macro recursion too deep in {pattern!r}")

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in macros:
            return "(?:" + _expand(macros[name], macros, depth + 1) + ")"
        if name in _BUILTIN_MACROS:
            return _BUILTIN_MACROS[name]
        raise LexiconError(f"unknown macro {{{name}}} in {pattern!r}")

    return _MACRO.sub(repl, pattern)


def _fold_pattern(pattern: str) -> str:
    """Fold the literal letters of a regex exactly as texts are folded, leaving escapes alone."""
    parts = []
    for m in _ESCAPE_OR_LITERAL.finditer(pattern):
        parts.append(m.group(1) if m.group(1) else _fold(m.group(2)))
    return "".join(parts)


def _script_of(regex: str) -> str:
    """The script whose letters dominate a pattern (Latn when it has none)."""
    literal = re.sub(r"\\.|\(\?[:=!<]+|\{[0-9,]+\}", "", regex)
    counts = {k: len(re.findall(f"[{v}]", literal)) for k, v in _SCRIPTS.items()}
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else "Latn"


def _entries_from(data: dict[str, Any], source: str) -> list[_Entry]:
    """Validate one parsed lexicon file and turn it into entries."""
    language = data.get("language")
    if not isinstance(language, str) or not language:
        raise LexiconError(f"{source}: missing 'language'")
    macros = data.get("macros", {})
    if not isinstance(macros, dict):
        raise LexiconError(f"{source}: 'macros' must be an object")
    bounded = data.get("boundary", "word") == "word"
    prefix = data.get("prefix", "")
    entries: list[_Entry] = []
    for category, items in data.get("entries", {}).items():
        if category not in RESTRICTED_CATEGORIES:
            raise LexiconError(f"{source}: {category!r} is not a restricted category")
        for item in items:
            if isinstance(item, str):
                term, pattern, weight = item, item, 1
            elif isinstance(item, dict) and isinstance(item.get("pattern", item.get("term")), str):
                pattern = item.get("pattern", item.get("term"))
                term = str(item.get("term", pattern))
                weight = int(item.get("weight", 1))
            else:
                raise LexiconError(f"{source}: bad entry {item!r}")
            regex = _fold_pattern(_expand(pattern, macros))
            if prefix:
                regex = f"(?:{_fold_pattern(_expand(prefix, macros))})?(?:{regex})"
            try:
                compiled = re.compile(regex)
            except re.error as exc:
                raise LexiconError(f"{source}: bad pattern {pattern!r}: {exc}") from exc
            if compiled.groups:
                raise LexiconError(f"{source}: use (?:...) not (...) in {pattern!r}")
            if compiled.match(""):
                raise LexiconError(f"{source}: pattern {pattern!r} matches the empty string")
            entries.append(_Entry(category, term, language, regex, weight, bounded))
    return entries


def load_entries(paths: Iterable[Path] | None = None) -> list[_Entry]:
    """Read and validate lexicon files (all of classifier/lexicon/*.json by default)."""
    entries: list[_Entry] = []
    for path in sorted(paths if paths is not None else LEXICON_DIR.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LexiconError(f"{path.name}: {exc}") from exc
        if not isinstance(data, dict):
            raise LexiconError(f"{path.name}: not a JSON object")
        entries.extend(_entries_from(data, path.name))
    return entries


@dataclass(frozen=True, slots=True)
class _Bucket:
    """All entries of one script compiled into one regex; group i+1 is entry i."""

    detector: re.Pattern[str]
    regex: re.Pattern[str]
    entries: tuple[_Entry, ...]


def _rank(entry: _Entry) -> tuple[int, int]:
    """Sort key: heavier entries first, then category priority."""
    return (-entry.weight, PRIORITY.index(entry.category))


def _compile(entries: list[_Entry]) -> tuple[_Bucket, ...]:
    """Group entries by script and compile each group into one zero-width, overlapping regex."""
    by_script: dict[str, list[_Entry]] = {}
    for entry in sorted(entries, key=_rank):
        by_script.setdefault(_script_of(entry.regex), []).append(entry)
    buckets = []
    for script, group in by_script.items():
        # Zero-width lookahead so that a long co-occurrence match does not hide a shorter hit inside it.
        bounded = "|".join(f"({e.regex})" for e in group if e.bounded)
        free = "|".join(f"({e.regex})" for e in group if not e.bounded)
        ordered = tuple([e for e in group if e.bounded] + [e for e in group if not e.bounded])
        alts = []
        if bounded:
            alts.append(f"{_LEFT_BOUNDARY}(?=(?:{bounded}))")
        if free:
            alts.append(f"(?=(?:{free}))")
        buckets.append(_Bucket(_SCRIPT_OF_TEXT[script], re.compile("|".join(alts)), ordered))
    return tuple(buckets)


_LOCK: Final = threading.Lock()
_CACHE: dict[str, tuple[_Bucket, ...]] = {}


def _buckets() -> tuple[_Bucket, ...]:
    """The compiled lexicon, built once on first use."""
    compiled = _CACHE.get("default")
    if compiled is None:
        with _LOCK:
            compiled = _CACHE.get("default")
            if compiled is None:
                compiled = _compile(load_entries())
                _CACHE["default"] = compiled
    return compiled


def reload() -> None:
    """Drop the compiled lexicon so that the next scan reads the files again."""
    with _LOCK:
        _CACHE.clear()


def _hits(text: str) -> list[tuple[int, _Entry]]:
    """(position, entry) for every match in every scan form of the text."""
    found: list[tuple[int, _Entry]] = []
    for form in _scan_forms(text):
        for bucket in _buckets():
            if not bucket.detector.search(form):
                continue
            for m in bucket.regex.finditer(form):
                found.append((m.start(), bucket.entries[(m.lastindex or 1) - 1]))
    return found


def scan_all(text: str) -> list[SafetyNetHit]:
    """Every distinct hit in the text, in order of position; empty when nothing matched."""
    if not isinstance(text, str) or not text:
        return []
    seen: set[SafetyNetHit] = set()
    hits: list[SafetyNetHit] = []
    for _, entry in sorted(_hits(text), key=lambda pe: (pe[0], _rank(pe[1]))):
        hit = SafetyNetHit(entry.category, entry.term, entry.language)
        if hit not in seen:
            seen.add(hit)
            hits.append(hit)
    return hits


def scan(text: str) -> SafetyNetHit | None:
    """The strongest hit (heaviest entry, then category priority, then earliest), or None."""
    if not isinstance(text, str) or not text:
        return None
    found = _hits(text)
    if not found:
        return None
    _, entry = min(found, key=lambda pe: (_rank(pe[1]), pe[0]))
    return SafetyNetHit(entry.category, entry.term, entry.language)


def lexicon_stats() -> dict[str, dict[str, int]]:
    """Number of entries per lexicon language and category (for reports and tests)."""
    stats: dict[str, dict[str, int]] = {}
    for bucket in _buckets():
        for entry in bucket.entries:
            per = stats.setdefault(entry.language, {})
            per[entry.category] = per.get(entry.category, 0) + 1
    return stats
