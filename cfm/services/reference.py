"""Reference codes: XXXX-XXXX, 8 Crockford base32 symbols (40 random bits), forgiving when read back."""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_IGNORED = str.maketrans("", "", " -_.\u00a0\u200f\u200e\u2066\u2067\u2068\u2069")


def new_reference() -> str:
    """A fresh random code, e.g. 7QK2-M9XD."""
    bits = secrets.randbits(40)
    symbols = "".join(ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))
    return f"{symbols[:4]}-{symbols[4:]}"


def normalise_reference(value: str) -> str | None:
    """Canonical XXXX-XXXX for a code typed or read aloud (lower case, no hyphen, O/0, I/L/1), or None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    compact = value.upper().translate(_IGNORED).translate(_READ_AS)
    if len(compact) != 8 or any(ch not in ALPHABET for ch in compact):
        return None
    return f"{compact[:4]}-{compact[4:]}"
