"""Text normalisation and hashed n-grams with numpy only: shared by training (pipeline.py) and prediction (predict.py).

Nothing here imports scikit-learn or scipy, so a process that only predicts (the web app, the worker) loads neither
(issue 9: worker memory).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Final

import numpy as np

# Longer texts are cut for the model (the safety net still reads all of it); hotline notes stay far below this.
MAX_MODEL_CHARS: Final = 20_000
CHAR_FEATURES: Final = 2**18
WORD_FEATURES: Final = 2**17

_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_CONTROLS: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_ELONGATION: Final = re.compile(r"(\D)\1{2,}")
_LONG_NUMBER: Final = re.compile(r"\d{3,}")
# Combining marks: Latin accents, Cyrillic breve and stress, Arabic harakat and hamza marks, Ethiopic has none.
_COMBINING: Final = re.compile(
    "[\u0300-\u036f\u0483-\u0489\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
    "\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
)

# Arabic-script letter variants onto one form (alef, yeh, kaf, teh marbuta, heh), Arabic-Indic digits to ASCII.
_TRANSLATE: Final = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ی": "ي",
        "ې": "ي",
        "ۍ": "ي",
        "ئ": "ي",
        "ک": "ك",
        "ګ": "گ",
        "ة": "ه",
        "ۀ": "ه",
        "ہ": "ه",
        "ـ": None,  # tatweel
        **{chr(0x0660 + i): str(i) for i in range(10)},
        **{chr(0x06F0 + i): str(i) for i in range(10)},
    }
)


def normalise(text: str) -> str:
    """Lowercase NFKC text without diacritics, Arabic letter variants, tatweel, elongation or long numbers."""
    if not isinstance(text, str):
        return ""
    text = text[:MAX_MODEL_CHARS]
    if text.isascii():
        text = _CONTROLS.sub(" ", text.lower())
    else:
        text = _CONTROLS.sub(" ", _SURROGATES.sub("", text))
        text = unicodedata.normalize("NFKD", text.casefold())
        if _COMBINING.search(text):
            text = _COMBINING.sub("", text)
        text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    text = _ELONGATION.sub(r"\1\1", text)
    text = _LONG_NUMBER.sub("000", text)
    return " ".join(text.split())


_PRIME: Final = np.uint64(0x100000001B3)
_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_MIX1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX2: Final = np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads polynomial hashes over all bits (uint64 arithmetic wraps by design)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX2
    return h ^ (h >> np.uint64(31))


def char_ngram_hashes(
    texts: Sequence[str], ngram_range: tuple[int, int], n_features: int
) -> tuple[np.ndarray, np.ndarray]:
    """(text index, column) of every character n-gram occurrence inside space-padded words."""
    rows, cols, _ = char_ngram_hashes_with_order(texts, ngram_range, n_features)
    return rows, cols


def char_ngram_hashes_with_order(
    texts: Sequence[str], ngram_range: tuple[int, int], n_features: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text index, column, n) of every character n-gram occurrence inside space-padded words."""
    rows, hashes, orders = char_ngram_raw_hashes(texts, ngram_range)
    return rows, (hashes % np.uint64(n_features)).astype(np.int64), orders


def char_ngram_raw_hashes(
    texts: Sequence[str], ngram_range: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text index, 64-bit mixed hash, n) of every character n-gram occurrence inside space-padded words.

    The hashed columns of the character block and the familiarity bits are this hash modulo a power of two.
    """
    padded = [" " + "  ".join(text.split()) + " " for text in texts]
    joined = "\x00".join(padded)
    codes = np.frombuffer(joined.encode("utf-32-le", "replace"), dtype=np.uint32).astype(np.uint64)
    lengths = np.array([len(p) + 1 for p in padded], dtype=np.int64)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)[: len(codes)]
    space = codes == 32
    boundary = codes == 0
    rows: list[np.ndarray] = []
    hashes: list[np.ndarray] = []
    orders: list[np.ndarray] = []
    low, high = ngram_range
    for n in range(low, high + 1):
        size = len(codes) - n + 1
        if size <= 0:
            continue
        h = np.zeros(size, dtype=np.uint64)
        bad = np.zeros(size, dtype=bool)
        for k in range(n):
            h = h * _PRIME + codes[k : k + size]
            bad |= boundary[k : k + size]
            if 0 < k < n - 1:
                bad |= space[k : k + size]  # a space inside the gram: it spans two words
        if n == 1:
            bad |= space[:size]
        elif n == 2:
            bad |= space[:size] & space[1 : size + 1]
        h = _mix(h + np.uint64((n * int(_GOLDEN)) % 2**64))
        keep = ~bad
        rows.append(doc[:size][keep])
        hashes.append(h[keep])
        orders.append(np.full(len(rows[-1]), n, dtype=np.int8))
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int8)
    return np.concatenate(rows), np.concatenate(hashes), np.concatenate(orders)


# The unfamiliar-text rule's index of the character n-grams training contained: a bitmap of its own (issue 3),
# 2^22 bits (512 KB packed) over the same 64-bit hash, so that text in a script training never saw collides with
# almost nothing (the character block's 2^18 columns were 36% seen). A Bloom filter with two bits per n-gram, the low
# and the high 32 bits of the hash modulo 2^22: the training split's 118k distinct 1-4-grams set 5.5% of the bits,
# and an n-gram training never had finds both of its bits set about 0.3% of the time (one bit: 2.8%, enough for a
# short Hindi line to score 0.2 familiar). It holds every order of the character block, 1-4: familiarity counts the
# orders >= min order, and a text too short to have one of them falls back to its longest n-grams.
FAMILIAR_BITS: Final = 2**22
FAMILIAR_ORDERS: Final = (1, 4)


def _familiar_bits(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two bit positions of each n-gram hash in the familiarity bitmap."""
    mask = np.uint64(FAMILIAR_BITS - 1)
    return (hashes & mask).astype(np.int64), ((hashes >> np.uint64(32)) & mask).astype(np.int64)


def familiar_bitmap(normalised: Sequence[str], ngram_range: tuple[int, int] = FAMILIAR_ORDERS) -> np.ndarray:
    """Packed bits (uint8, little bit order), set at both bits of every character n-gram of the texts."""
    _, hashes, _ = char_ngram_raw_hashes(normalised, ngram_range)
    bits = np.zeros(FAMILIAR_BITS, dtype=bool)
    for positions in _familiar_bits(hashes):
        bits[positions] = True
    return np.packbits(bits, bitorder="little")


def check_familiar_bitmap(bitmap: np.ndarray) -> np.ndarray:
    """The bitmap as a uint8 array of the right length; ValueError when it is not one."""
    bitmap = np.asarray(bitmap)
    if bitmap.dtype != np.uint8 or bitmap.shape != (FAMILIAR_BITS // 8,):
        raise ValueError("the familiarity bitmap does not fit")
    return bitmap


def familiarity_from_hashes(
    n_texts: int, rows: np.ndarray, hashes: np.ndarray, orders: np.ndarray, bitmap: np.ndarray, min_order: int
) -> np.ndarray:
    """Per text, the share of its n-grams of order >= min_order whose two bits are set (see familiarity())."""
    known = np.ones(len(hashes), dtype=bool)
    for bit in _familiar_bits(hashes):
        known &= ((bitmap[bit >> 3] >> (bit & 7).astype(np.uint8)) & 1).astype(bool)
    known = known.astype(np.float64)
    # Per text, the n-grams counted: order >= min_order, or its highest order when it has none of those.
    highest = np.zeros(n_texts, dtype=np.int64)
    np.maximum.at(highest, rows, orders.astype(np.int64))
    counted = orders >= np.minimum(highest[rows], min_order)
    total = np.bincount(rows[counted], minlength=n_texts)
    seen = np.bincount(rows[counted], weights=known[counted], minlength=n_texts)
    return np.where(total > 0, seen / np.maximum(total, 1), 1.0)


def familiarity(normalised: Sequence[str], bitmap: np.ndarray, min_order: int) -> np.ndarray:
    """Per normalised text, the share of its character n-grams (n >= min_order) that training contained.

    A text without such n-grams (one or two letters) counts its longest ones instead; an empty text counts 1.0.
    Used by training (per fold too), the pipeline path and the runtime alike.
    """
    rows, hashes, orders = char_ngram_raw_hashes(normalised, FAMILIAR_ORDERS)
    return familiarity_from_hashes(len(normalised), rows, hashes, orders, bitmap, min_order)


_INVERSE_PRIME: Final = np.uint64(pow(int(_PRIME), -1, 2**64))
_UNIGRAM_SALT: Final = np.uint64(0x2545F4914F6CDD1D)
_BIGRAM_SALT: Final = np.uint64(0x5851F42D4C957F2D)
_word_char_table: np.ndarray | None = None


def _word_chars() -> np.ndarray:
    """Boolean table over the Basic Multilingual Plane: which code points regex \\w calls word characters."""
    global _word_char_table
    if _word_char_table is None:
        word = re.compile(r"\w")
        _word_char_table = np.array(
            [not 0xD800 <= i <= 0xDFFF and word.match(chr(i)) is not None for i in range(0x10000)], dtype=bool
        )
    return _word_char_table


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) with wrapping uint64 arithmetic."""
    powers = np.full(n, base, dtype=np.uint64)
    if n:
        powers[0] = 1
    return np.cumprod(powers, dtype=np.uint64)


def word_ngram_hashes(texts: Sequence[str], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(text index, column) of every word unigram and bigram occurrence."""
    joined = "\x00".join(texts)
    raw = np.frombuffer(joined.encode("utf-32-le", "replace"), dtype=np.uint32)
    is_word = np.zeros(len(raw), dtype=bool)
    in_bmp = raw < 0x10000
    is_word[in_bmp] = _word_chars()[raw[in_bmp]]
    edges = np.diff(np.concatenate(([0], is_word.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if not len(starts):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    codes = raw.astype(np.uint64)
    # Polynomial hash of each word from prefix sums: sum c_k Q^k over the word, times P^(end-1) (Q = 1/P mod 2^64).
    prefix = np.concatenate(([np.uint64(0)], np.cumsum(codes * _powers(_INVERSE_PRIME, len(codes)), dtype=np.uint64)))
    words = _mix((prefix[ends] - prefix[starts]) * _powers(_PRIME, len(codes))[ends - 1] + _UNIGRAM_SALT)
    lengths = np.array([len(text) + 1 for text in texts], dtype=np.int64)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)[starts]
    same = doc[1:] == doc[:-1]
    bigrams = _mix(words[:-1] * _PRIME + words[1:] + _BIGRAM_SALT)[same]
    col = (np.concatenate((words, bigrams)) % np.uint64(n_features)).astype(np.int64)
    return np.concatenate((doc, doc[:-1][same])), col
