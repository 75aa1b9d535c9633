"""Reference codes: format, alphabet, forgiving lookups."""

from __future__ import annotations

import re

import pytest

from cfm.services.reference import ALPHABET, new_reference, normalise_reference

FORMAT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


def test_reference_is_two_groups_of_four_crockford_symbols() -> None:
    codes = {new_reference() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(FORMAT.match(code) for code in codes)
    assert not set("ILOU") & set("".join(codes))


def test_reference_uses_the_whole_alphabet_in_every_position() -> None:
    codes = [new_reference().replace("-", "") for _ in range(3000)]
    for position in range(8):
        assert {code[position] for code in codes} == set(ALPHABET)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("7QK2-M9XD", "7QK2-M9XD"),
        ("7qk2m9xd", "7QK2-M9XD"),
        (" 7qk2 m9xd ", "7QK2-M9XD"),
        ("O1I2-L3OO", "0112-1300"),
        ("\u20667QK2-M9XD\u2069", "7QK2-M9XD"),
    ],
)
def test_lookup_forgives_case_hyphens_and_look_alike_letters(typed: str, canonical: str) -> None:
    assert normalise_reference(typed) == canonical


@pytest.mark.parametrize("typed", ["", "7QK2-M9X", "7QK2-M9XDD", "7QK2-M9XU", "7QK2;M9XD", "x" * 100])
def test_lookup_rejects_what_cannot_be_a_code(typed: str) -> None:
    assert normalise_reference(typed) is None
