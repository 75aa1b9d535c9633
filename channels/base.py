"""What every channel hands to intake: one IntakeRequest, or a ChannelError saying what was wrong."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from datetime import datetime
from typing import Any

MAX_TEXT_LENGTH = 5000
# A lone surrogate (not valid Unicode; it cannot be encoded or stored): one regex search instead of a loop per letter.
_SURROGATE = re.compile("[\ud800-\udfff]")
CHANNELS = ("web", "survey", "sms", "whatsapp", "hotline", "ivr", "api")


class ChannelError(ValueError):
    """Input a channel cannot accept; `code` is stable, `message` is safe to show (never contains the text)."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclasses.dataclass(frozen=True)
class Contact:
    """How the person may be reached; every field optional, all of it personal data."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None

    def is_empty(self) -> bool:
        """True when nothing was given."""
        return not (self.name or self.phone or self.email)


@dataclasses.dataclass(frozen=True)
class IntakeRequest:
    """One submission from any channel, already decoded, not yet validated."""

    channel: str
    text: str
    provider_id: str | None = None
    programme: str | None = None
    to_number: str | None = None
    received_at: datetime | None = None
    language_hint: str | None = None
    contact: Contact = dataclasses.field(default_factory=Contact)
    consent_to_contact: bool = False
    category_hint: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def validated(self) -> IntakeRequest:
        """Return a copy with normalised text, or raise ChannelError; nothing is stored before this passes."""
        if self.channel not in CHANNELS:
            raise ChannelError("unknown_channel", f"Unknown channel {self.channel!r}.")
        text = clean_text(self.text)
        contact = self.contact
        if contact.phone is not None or contact.name is not None or contact.email is not None:
            contact = Contact(
                name=_optional(contact.name, "name", 200),
                phone=_optional(contact.phone, "phone", 40),
                email=_optional(contact.email, "email", 254),
            )
        provider_id = _optional(self.provider_id, "provider_id", 128)
        return dataclasses.replace(self, text=text, contact=contact, provider_id=provider_id)


def clean_text(text: object, *, field: str = "text") -> str:
    """Validate free text: a non-empty str, at most MAX_TEXT_LENGTH characters, no NUL or lone surrogates."""
    if isinstance(text, bytes | bytearray):
        text = decode_utf8(bytes(text), field=field)
    if not isinstance(text, str):
        raise ChannelError("invalid_text", "The message must be text.", field=field)
    if "\x00" in text:
        raise ChannelError("invalid_characters", "The message contains a NUL character.", field=field)
    if _SURROGATE.search(text):
        raise ChannelError("invalid_encoding", "The message is not valid Unicode.", field=field)
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").strip()
    if not text:
        raise ChannelError("empty_text", "The message is empty.", field=field)
    if len(text) > MAX_TEXT_LENGTH:
        raise ChannelError("text_too_long", f"The message is longer than {MAX_TEXT_LENGTH} characters.", field=field)
    return text


def decode_utf8(raw: bytes, *, field: str = "text") -> str:
    """Decode bytes as UTF-8 or raise ChannelError (never guess an encoding silently)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChannelError("invalid_encoding", "The message is not valid UTF-8.", field=field) from exc


def _optional(value: str | None, field: str, limit: int) -> str | None:
    """Strip an optional short field; empty becomes None; too long or NUL is an error."""
    if value is None:
        return None
    if not isinstance(value, str) or "\x00" in value or _SURROGATE.search(value):
        raise ChannelError("invalid_field", f"The field {field} is not valid text.", field=field)
    value = value.strip()
    if len(value) > limit:
        raise ChannelError("field_too_long", f"The field {field} is too long.", field=field)
    return value or None
