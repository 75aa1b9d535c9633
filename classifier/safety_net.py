"""Multilingual lexicon safety net for the restricted categories: high recall, cheap, runs inline."""

from __future__ import annotations

import functools
import json
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from classifier.categories import RESTRICTED_CATEGORIES

try:  # the Aho-Corasick prefilter; without it every entry is tried at every word (same hits, slower)
    import ahocorasick
except ImportError:  # pragma: no cover - a declared dependency
    ahocorasick = None

__all__ = [
    "LEXICON_DIR",
    "LexiconError",
    "SafetyNetHit",
    "lexicon_stats",
    "normalise",
    "scan",
    "scan_all",
    "warm",
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
_TRIPLE: Final = re.compile(r"(.)\1\1")  # a cheap test before the letters-only rule below
_RUN3: Final = re.compile(r"([^\W\d_])\1{2,}")  # letters only: "1000" stays


def _combining_class() -> re.Pattern[str]:
    """A regex for runs of combining marks (Unicode Mn and Me in the BMP)."""
    ranges: list[str] = []
    start = prev = -2
    for cp in range(0x300, 0x10000):
        if 0xD800 <= cp < 0xE000 or unicodedata.category(chr(cp)) not in ("Mn", "Me"):
            continue
        if cp != prev + 1:
            if start >= 0:
                ranges.append(f"\\u{start:04x}-\\u{prev:04x}" if prev > start else f"\\u{start:04x}")
            start = cp
        prev = cp
    ranges.append(f"\\u{start:04x}-\\u{prev:04x}" if prev > start else f"\\u{start:04x}")
    return re.compile("[" + "".join(ranges) + "]+")


_COMBINING: Final = _combining_class()
_MAPPED: Final = re.compile("[" + re.escape("".join(map(chr, _CHAR_MAP))) + "]")


def _fold(text: str) -> str:
    """NFKC, casefold, drop combining marks and unify letter variants (character by character)."""
    if text.isascii():  # the common case, and NFKC/NFD are no-ops on it
        return text.lower().replace("`", "'")
    text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    text = _COMBINING.sub("", text)
    if _MAPPED.search(text):
        text = text.translate(_CHAR_MAP)
    return unicodedata.normalize("NFC", text)


def normalise(text: str) -> str:
    """Fold case, marks, letter variants, elongation and whitespace so that patterns match typed text."""
    try:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        text = _fold(_BAD_CHARS.sub(" ", text))
        if _TRIPLE.search(text):
            text = _RUN3.sub(r"\1\1", text)
        return _SPACES.sub(" ", text).strip()
    except Exception:  # the safety net must never take an intake down; an unscannable text is empty
        return ""


# Scan forms (and patterns) also merge letters that Ukrainian-Russian mixed writing swaps freely
# ("мєсто"/"место", "сказав"/"сказал" stay apart, but "пєрєводчик"/"переводчик", "це"/"цэ" meet);
# normalise() keeps them apart. Not ы -> и: "был" (was) would become "бил" (beat).
_LOOSE_MAP: Final[dict[int, str]] = {0x0454: "\u0435", 0x0456: "\u0438", 0x044D: "\u0435"}
_LOOSE: Final = re.compile("[\u0454\u0456\u044d]")


def _loosen(text: str) -> str:
    """Apply _LOOSE_MAP when the text has any of its letters."""
    return text.translate(_LOOSE_MAP) if _LOOSE.search(text) else text


# Scan form: normalised text with every separator (punctuation, Ge'ez word marks) turned into one space,
# so that patterns are plain words joined by single spaces. Currency signs and % stay: "$50", "10%".
_SEPARATORS: Final = re.compile(r"[^\w$€£%]+|_+")


def _scan_forms(text: str) -> list[str]:
    """The one or two scan forms of a text (elongated runs cut to two letters, and to one)."""
    folded = _loosen(_fold(_BAD_CHARS.sub(" ", text)))
    forms = [folded]
    if _TRIPLE.search(folded):
        forms = [_RUN3.sub(r"\1\1", folded)]
        once = _RUN3.sub(r"\1", folded)
        if once != forms[0]:  # "pleeease" needs "please" as well as "pleease"
            forms.append(once)
    return [_SEPARATORS.sub(" ", f).strip() for f in forms]


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
    clitics: tuple[str, ...] = ()


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
        parts.append(m.group(1) if m.group(1) else _loosen(_fold(m.group(2))))
    return "".join(parts)


def _entries_from(data: dict[str, Any], source: str) -> list[_Entry]:
    """Validate one parsed lexicon file and turn it into entries."""
    language = data.get("language")
    if not isinstance(language, str) or not language:
        raise LexiconError(f"{source}: missing 'language'")
    macros = data.get("macros", {})
    if not isinstance(macros, dict):
        raise LexiconError(f"{source}: 'macros' must be an object")
    bounded = data.get("boundary", "word") == "word"
    clitics = data.get("clitics", [])
    if not isinstance(clitics, list) or not all(isinstance(c, str) and c for c in clitics):
        raise LexiconError(f"{source}: 'clitics' must be a list of non-empty strings")
    folded_clitics = tuple(sorted({_fold(c) for c in clitics}, key=lambda c: (len(c), c)))
    entries: list[_Entry] = []
    for category, items in data.get("entries", {}).items():
        if category not in RESTRICTED_CATEGORIES:
            raise LexiconError(f"{source}: {category!r} is not a restricted category")
        for item in items:
            if isinstance(item, str):
                term, pattern, weight = item, item, 1
            elif isinstance(item, dict) and isinstance(item.get("pattern", item.get("term")), str):
                pattern = str(item.get("pattern", item.get("term")))
                term = str(item.get("term", pattern))
                weight = int(item.get("weight", 1))
            else:
                raise LexiconError(f"{source}: bad entry {item!r}")
            regex = _fold_pattern(_expand(pattern, macros))
            try:
                compiled = re.compile(regex)
            except re.error as exc:
                raise LexiconError(f"{source}: bad pattern {pattern!r}: {exc}") from exc
            if compiled.groups:
                raise LexiconError(f"{source}: use (?:...) not (...) in {pattern!r}")
            if compiled.match(""):
                raise LexiconError(f"{source}: pattern {pattern!r} matches the empty string")
            entries.append(_Entry(category, term, language, regex, weight, bounded, folded_clitics))
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


@functools.lru_cache(maxsize=1)
def _parse(regex: str) -> Any:
    """The parse tree of a regex from re's private parser.

    Only the last one is kept (entry_keys() asks for it up to three times in a row): a cache of every tree held
    ~14 MB, the largest part of the safety net's memory (issue 9).
    """
    import importlib

    return importlib.import_module("re._parser").parse(regex)


_WILD: Final = "\x00"  # marks a prefix after which any character may follow
_MAX_PREFIXES: Final = 4096


def _prefixes(regex: str, k: int = 2) -> frozenset[str] | None:
    """The strings of k characters a match can start with (shorter where any character may follow).

    None when the set is too large or the regex cannot be analysed: the entry is then tried everywhere.
    """
    try:  # the parser is private to re; if it changes, entries are simply tried at every position
        import importlib

        c: Any = importlib.import_module("re._constants")

        out: set[str] = set()

        def walk(items: list[Any], prefix: str) -> None:
            if len(out) > _MAX_PREFIXES:
                raise OverflowError
            if len(prefix) >= k:
                out.add(prefix[:k])
                return
            if not items:
                out.add(prefix + _WILD)
                return
            (op, av), rest = items[0], items[1:]
            if op is c.LITERAL:
                walk(rest, prefix + chr(av))
            elif op is c.IN:
                chars: list[str] = []
                for o, a in av:
                    if o is c.LITERAL:
                        chars.append(chr(a))
                    elif o is c.RANGE and a[1] - a[0] < 512:
                        chars.extend(chr(x) for x in range(a[0], a[1] + 1))
                    else:
                        out.add(prefix + _WILD)
                        return
                for ch in chars:
                    walk(rest, prefix + ch)
            elif op is c.SUBPATTERN:
                walk(list(av[-1]) + rest, prefix)
            elif op is c.ATOMIC_GROUP:
                walk(list(av) + rest, prefix)
            elif op is c.BRANCH:
                for branch in av[1]:
                    walk(list(branch) + rest, prefix)
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                low, high, inner = av
                if high == 0:
                    walk(rest, prefix)
                    return
                again = [(op, (max(low - 1, 0), high - 1 if high != c.MAXREPEAT else high, inner))]
                if low == 0:
                    walk(rest, prefix)
                walk(list(inner) + again + rest, prefix)
            elif op in (c.ASSERT, c.ASSERT_NOT, c.AT):
                walk(rest, prefix)
            else:
                out.add(prefix + _WILD)

        walk(list(_parse(regex)), "")
    except Exception:  # OverflowError (too many prefixes), RecursionError, or a parser we do not know
        return None
    # A prefix cut short by a wildcard ("ab" then any character) means: starts with "ab". Only an entry that
    # may start with anything at all has no usable prefix.
    if _WILD in out:
        return None
    return frozenset(pre.rstrip(_WILD) for pre in out)


_Group = tuple[_Entry, ...]
_Alternation = tuple[re.Pattern[str], _Group]


def _rank(entry: _Entry) -> tuple[int, int]:
    """Sort key: heavier entries first, then category priority."""
    return (-entry.weight, PRIORITY.index(entry.category))


@dataclass(frozen=True, slots=True)
class _Table:
    """Entries indexed by the two characters a match can start with; one alternation per index key.

    Alternations are compiled when a key is first met (a few milliseconds each), so start-up stays short
    and a long-running process compiles only the keys its texts use.
    """

    exact: dict[str, _Group]
    by_first: dict[str, _Group]
    anywhere: _Group
    cache: dict[str, _Alternation | None]

    def group(self, key: str) -> _Group:
        """The entries, best-ranked first, that may start with key (the two characters at a position)."""
        return self.exact.get(key) or self.by_first.get(key[:1]) or self.anywhere

    def lookup(self, form: str, pos: int) -> _Alternation | None:
        """The alternation to try at pos (None when no entry can start there)."""
        key = form[pos : pos + 2]
        try:
            return self.cache[key]
        except KeyError:
            pass
        group = self.group(key)
        compiled = None
        if group:
            compiled = (re.compile("|".join(f"({e.regex})" for e in group)), group)
        self.cache[key] = compiled
        return compiled


def _table(entries: list[_Entry]) -> _Table:
    """Index entries by the first two (or first) characters of a match."""
    exact: dict[str, list[_Entry]] = {}
    first: dict[str, list[_Entry]] = {}
    anywhere: list[_Entry] = []
    for entry in entries:
        prefixes = _prefixes(entry.regex)
        if prefixes is None:
            anywhere.append(entry)
            continue
        for pre in prefixes:
            if len(pre) == 2:
                exact.setdefault(pre, []).append(entry)
            else:  # one character, then any: "a[^ ]b" starts with "a"
                first.setdefault(pre[:1], []).append(entry)

    def group(members: list[_Entry]) -> _Group:
        return tuple(sorted(set(members), key=lambda e: (_rank(e), e.language, e.regex)))

    firsts = set(first) | {pre[0] for pre in exact}
    return _Table(
        {pre: group(members + first.get(pre[0], []) + anywhere) for pre, members in exact.items()},
        {ch: group(first.get(ch, []) + anywhere) for ch in firsts if first.get(ch) or anywhere},
        group(anywhere),
        {},
    )


# Two Aho-Corasick passes keep the regular expressions off most of the text. The gate looks for the strings every
# match of an entry must contain (" money" in "he {GAP} money"): a text with none of them is done. The prefilter
# looks for the first PREFILTER_CHARS characters a match can start with (fewer where the start has too many
# spellings): the alternations are tried only at those positions, not at every word.
PREFILTER_CHARS: Final = 4


def entry_keys(regex: str) -> frozenset[str] | None:
    """The strings every match of regex starts with (4, else 3, else 2 characters); None when unknown."""
    for k in (PREFILTER_CHARS, 3, 2):
        keys = _prefixes(regex, k)
        if keys is not None:
            return keys
    return None


# Which tables have an entry that may start with a prefilter key (bit flags).
WORDS: Final = 1
AFTER_CLITIC: Final = 2
INSIDE: Final = 4


def _bits(indices: list[int]) -> int:
    """A bit set (int) with the given bits on."""
    mask = 0
    for index in set(indices):
        mask |= 1 << index
    return mask


def _kind(entry: _Entry) -> int:
    """The table flag of an entry."""
    if not entry.bounded:
        return INSIDE
    return AFTER_CLITIC if entry.clitics else WORDS


def _prefilter(entries: list[_Entry]) -> Any:
    """An Aho-Corasick automaton over every entry's start keys, or None (no library, or an entry without keys)."""
    if ahocorasick is None:
        return None
    flags: dict[str, int] = {}
    members: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        keys = entry_keys(entry.regex)
        if keys is None:
            return None
        for key in keys:
            flags[key] = flags.get(key, 0) | _kind(entry)
            members.setdefault(key, []).append(index)
    automaton = ahocorasick.Automaton()
    shared: dict[tuple[int, int, int], tuple[int, int, int]] = {}  # 13,000 keys share 2,800 values (issue 9)
    for key, kind in flags.items():
        value = (len(key), kind, _bits(members[key]))
        automaton.add_word(key, shared.setdefault(value, value))
    if len(automaton):
        automaton.make_automaton()
    return automaton


def required_strings(regex: str) -> frozenset[str] | None:
    """Strings of which every match of regex contains at least one (the most selective set found); None if unknown."""
    try:  # as in _prefixes: if the private parser changes, there is simply no gate
        import importlib

        c: Any = importlib.import_module("re._constants")

        def best(options: list[frozenset[str]]) -> frozenset[str] | None:
            if not options:
                return None
            return max(options, key=lambda o: (min(map(len, o)), -len(o)))

        def sequence(items: Any, depth: int = 0) -> frozenset[str] | None:
            if depth > 20:
                return None
            options: list[frozenset[str]] = []
            run = ""
            for op, av in items:
                if op is c.LITERAL:
                    run += chr(av)
                    continue
                if run:
                    options.append(frozenset([run]))
                run = ""
                found: frozenset[str] | None = None
                if op is c.SUBPATTERN:
                    found = sequence(av[-1], depth + 1)
                elif op is c.ATOMIC_GROUP:
                    found = sequence(av, depth + 1)
                elif op is c.BRANCH:
                    branches = [sequence(branch, depth + 1) for branch in av[1]]
                    if all(b is not None for b in branches):
                        found = frozenset().union(*branches)  # type: ignore[arg-type]
                elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[0] >= 1:
                    found = sequence(av[2], depth + 1)
                if found:
                    options.append(found)
            if run:
                options.append(frozenset([run]))
            return best(options)

        return sequence(_parse(regex))
    except Exception:  # RecursionError, or a parser we do not know
        return None


def _gate(entries: list[_Entry]) -> Any:
    """An automaton over every entry's required strings, each with the entries (bit set) that need it."""
    if ahocorasick is None:
        return None
    members: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        required = required_strings(entry.regex)
        if not required:
            return None
        for text in required:
            members.setdefault(text, []).append(index)
    automaton = ahocorasick.Automaton()
    shared: dict[int, int] = {}  # 6,900 strings share 2,500 bit sets of a few hundred bytes each (issue 9)
    for text, indices in members.items():
        mask = _bits(indices)
        automaton.add_word(text, shared.setdefault(mask, mask))
    if len(automaton):
        automaton.make_automaton()
    return automaton


def alive_entries(gate: Any, form: str) -> int:
    """Bit set of the entries whose required strings occur in form (only those can match it)."""
    alive = 0
    if len(gate):
        for _, mask in gate.iter(form):
            alive |= mask
    return alive


def candidate_starts(automaton: Any, form: str, alive: int = -1) -> dict[int, int]:
    """Positions in form where an alive entry's start key occurs (a match could begin), with their table flags."""
    starts: dict[int, int] = {}
    if len(automaton):
        for end, (length, kind, mask) in automaton.iter(form):
            if mask & alive:
                pos = end - length + 1
                starts[pos] = starts.get(pos, 0) | kind
    return starts


class _Matchers:
    """Each entry's own compiled regex, by its bit in the prefilter and gate sets (compiled when first needed).

    Trying a key's alive entries one by one in rank order finds the entry its alternation would (an entry none of
    whose required strings is in the text cannot match there), and one regex per entry is far smaller than an
    alternation per key, which repeats each entry about five times (issue 9: the alternations held ~8 MB after a
    corpus scan; every entry's own regex ~1 MB).
    """

    __slots__ = ("_index", "_patterns", "_plans")

    def __init__(self, entries: list[_Entry]) -> None:
        # Equal entries (the same pattern twice in a file) have the same required strings: either bit will do.
        self._index = {entry: index for index, entry in enumerate(entries)}
        self._patterns: list[re.Pattern[str] | None] = [None] * len(entries)
        self._plans: dict[tuple[int, str], tuple[tuple[_Entry, int], ...]] = {}

    def plan(self, table: _Table, key: str) -> tuple[tuple[_Entry, int], ...]:
        """The (entry, bit) pairs of table's group for key, in rank order."""
        plan_key = (id(table), key)
        plan = self._plans.get(plan_key)
        if plan is None:
            plan = tuple((entry, self._index[entry]) for entry in table.group(key))
            self._plans[plan_key] = plan
        return plan

    def pattern(self, entry: _Entry, index: int) -> re.Pattern[str]:
        """The compiled regex of one entry."""
        pattern = self._patterns[index]
        if pattern is None:
            pattern = self._patterns[index] = re.compile(entry.regex)
        return pattern

    def compile_all(self) -> None:
        """Compile every entry's regex now."""
        for entry, index in self._index.items():
            self.pattern(entry, index)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """The whole lexicon: word-initial entries, entries that may follow a clitic, and Ge'ez-style stems."""

    words: _Table
    clitic_tables: tuple[tuple[tuple[str, ...], frozenset[str], _Table], ...]
    inside: _Table
    inside_chars: re.Pattern[str] | None
    prefilter: Any = None
    gate: Any = None
    matchers: _Matchers | None = None


def _compile(entries: list[_Entry], prefilter: bool = True) -> _Compiled:
    """Compile the lexicon once (prefilter=False: try entries at every word, as a reference for tests)."""
    inside = _table([e for e in entries if not e.bounded])
    chars = "".join(sorted({pre[0] for pre in inside.exact} | set(inside.by_first)))
    detector = re.compile("[" + re.escape(chars) + "]") if chars else None
    if inside.anywhere:
        detector = re.compile(".", re.DOTALL)
    by_clitics: dict[tuple[str, ...], list[_Entry]] = {}
    for entry in entries:
        if entry.bounded and entry.clitics:
            by_clitics.setdefault(entry.clitics, []).append(entry)
    compiled = _Compiled(
        _table([e for e in entries if e.bounded and not e.clitics]),
        tuple((c, frozenset(x[0] for x in c), _table(group)) for c, group in by_clitics.items()),
        inside,
        detector,
        _prefilter(entries) if prefilter else None,
        _gate(entries) if prefilter else None,
        _Matchers(entries) if prefilter else None,
    )
    _parse.cache_clear()  # the last parse tree is of no further use
    return compiled


_LOCK: Final = threading.Lock()
_CACHE: dict[str, _Compiled] = {}


def _compiled() -> _Compiled:
    """The compiled lexicon, built once on first use."""
    compiled = _CACHE.get("default")
    if compiled is None:
        with _LOCK:
            compiled = _CACHE.get("default")
            if compiled is None:
                compiled = _compile(load_entries())
                _CACHE["default"] = compiled
    return compiled


def warm(all_patterns: bool = False) -> None:
    """Read and index the lexicon now (about a second), e.g. at start-up, rather than on the first scan.

    all_patterns=True also compiles every entry's regex (about a quarter of a second more) that scans would
    otherwise compile the first time a text needs it: for long-running workers and benchmarks.
    """
    compiled = _compiled()
    if all_patterns:
        if compiled.matchers is not None:
            compiled.matchers.compile_all()
        else:  # no prefilter (pyahocorasick missing): scans try the alternations
            for table in (compiled.words, compiled.inside, *(t for _, _, t in compiled.clitic_tables)):
                for key in list(table.exact):
                    table.lookup(key, 0)


def reload() -> None:
    """Drop the compiled lexicon so that the next scan reads the files again."""
    with _LOCK:
        _CACHE.clear()


def _try_alive(
    table: _Table, form: str, pos: int, found: list[tuple[int, _Entry]], alive: int, matchers: _Matchers
) -> None:
    """Try, in rank order, the alive entries that can start at pos; record the first that matches (as _try)."""
    for entry, index in matchers.plan(table, form[pos : pos + 2]):
        if alive >> index & 1 and matchers.pattern(entry, index).match(form, pos) is not None:
            found.append((pos, entry))
            return


def _try(table: _Table, form: str, pos: int, found: list[tuple[int, _Entry]]) -> None:
    """Try the entries that can start at pos; record the first (best-ranked) that matches."""
    alternation = table.lookup(form, pos)
    if alternation is not None:
        m = alternation[0].match(form, pos)
        if m is not None:
            found.append((pos, alternation[1][(m.lastindex or 1) - 1]))


def _hits(text: str, lexicon: _Compiled | None = None) -> list[tuple[int, _Entry]]:
    """(position, entry) for every match in every scan form of the text."""
    lexicon = lexicon if lexicon is not None else _compiled()
    found: list[tuple[int, _Entry]] = []
    for form in _scan_forms(text):
        if not form:
            continue
        alive = -1  # every entry
        if lexicon.gate is not None:
            alive = alive_entries(lexicon.gate, form)
            if not alive:
                continue
        matchers = lexicon.matchers
        if lexicon.prefilter is None or matchers is None:
            _hits_everywhere(lexicon, form, found)
            continue
        candidates = candidate_starts(lexicon.prefilter, form, alive)
        if not candidates:
            continue
        inside: list[tuple[int, _Entry]] = []
        for pos in sorted(candidates):
            kind = candidates[pos]
            start = form.rfind(" ", 0, pos) + 1  # the start of the word pos is in
            if start == pos:
                if kind & WORDS:
                    _try_alive(lexicon.words, form, pos, found, alive, matchers)
                if kind & AFTER_CLITIC:
                    for _, _, table in lexicon.clitic_tables:
                        _try_alive(table, form, pos, found, alive, matchers)
            elif kind & AFTER_CLITIC and form[pos] != " ":
                prefix = form[start:pos]
                for clitics, _, table in lexicon.clitic_tables:
                    if prefix in clitics:  # Arabic و ف ب ل ك ال ...: the entries may follow a clitic
                        _try_alive(table, form, pos, found, alive, matchers)
            if kind & INSIDE:
                _try_alive(lexicon.inside, form, pos, inside, alive, matchers)
        found.extend(inside)
    return found


def _hits_everywhere(lexicon: _Compiled, form: str, found: list[tuple[int, _Entry]]) -> None:
    """Try the entries at every word start, after every clitic and at every inside character (no prefilter)."""
    pos = 0
    for word in form.split(" "):
        _try(lexicon.words, form, pos, found)
        for clitics, starts, table in lexicon.clitic_tables:
            _try(table, form, pos, found)
            if word[:1] not in starts:
                continue
            for clitic in clitics:  # Arabic و ف ب ل ك ال ...: try the entries after each possible clitic
                if len(word) > len(clitic) and word.startswith(clitic):
                    _try(table, form, pos + len(clitic), found)
        pos += len(word) + 1
    if lexicon.inside_chars is not None:
        for m in lexicon.inside_chars.finditer(form):
            _try(lexicon.inside, form, m.start(), found)


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
    for entry in load_entries():
        per = stats.setdefault(entry.language, {})
        per[entry.category] = per.get(entry.category, 0) + 1
    return stats
