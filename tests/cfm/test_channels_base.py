"""IntakeRequest validation: bad input gets a clear error before anything is stored."""

from __future__ import annotations

import pytest

from channels.base import MAX_TEXT_LENGTH, ChannelError, Contact, IntakeRequest, clean_text


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty_text"),
        ("   \n\t ", "empty_text"),
        ("x" * (MAX_TEXT_LENGTH + 1), "text_too_long"),
        ("hello\x00world", "invalid_characters"),
        ("bad \udcff surrogate", "invalid_encoding"),
        (b"caf\xe9", "invalid_encoding"),
        (12345, "invalid_text"),
    ],
)
def test_bad_text_is_refused_with_a_stable_code(text: object, code: str) -> None:
    with pytest.raises(ChannelError) as info:
        clean_text(text)
    assert info.value.code == code
    assert info.value.field == "text"


def test_text_is_normalised_and_kept_whole() -> None:
    assert clean_text("  Cafe\u0301 \r\nline two  ") == "Caf\u00e9 \nline two"
    assert clean_text("x" * MAX_TEXT_LENGTH) == "x" * MAX_TEXT_LENGTH
    assert clean_text("مرحبا".encode()) == "مرحبا"


def test_validated_request_strips_contact_and_refuses_unknown_channel() -> None:
    request = IntakeRequest(channel="sms", text=" hi ", contact=Contact(name="  ", phone=" +254700000009 "))
    valid = request.validated()
    assert valid.text == "hi"
    assert valid.contact == Contact(name=None, phone="+254700000009", email=None)
    with pytest.raises(ChannelError) as info:
        IntakeRequest(channel="fax", text="hi").validated()
    assert info.value.code == "unknown_channel"


def test_contact_fields_with_nul_or_too_long_are_refused() -> None:
    with pytest.raises(ChannelError):
        IntakeRequest(channel="web", text="hi", contact=Contact(name="a\x00b")).validated()
    with pytest.raises(ChannelError):
        IntakeRequest(channel="web", text="hi", contact=Contact(phone="1" * 41)).validated()
