"""SMS and WhatsApp through Twilio: inbound payloads, keywords, signatures, segments, TwiML, outbound sends."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from twilio import request_validator as twilio_request_validator
from twilio.base import exceptions as twilio_exceptions
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from channels.base import ChannelError, Contact, IntakeRequest, decode_utf8

if TYPE_CHECKING:
    # The REST client and requests are imported when a message is sent: web workers that only receive never load
    # them (issue 9, worker memory).
    from twilio.http import HttpClient
    from twilio.rest import Client

# Recent twilio releases raise TwilioServiceException (RFC 9457 problem details) besides TwilioRestException, and
# sign some webhooks with a SharedKey (HMAC-SHA256); older releases (setup.cfg allows twilio>=9.0) have neither.
TwilioServiceException: Any = getattr(twilio_exceptions, "TwilioServiceException", TwilioRestException)
get_signature_algorithm: Any = getattr(twilio_request_validator, "get_signature_algorithm", None)

WHATSAPP_PREFIX: Final = "whatsapp:"
# E.164: "+", a non-zero country code digit, at most 15 digits in all (7 at least in practice).
E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
# Twilio accepts at most 10 media items per message; anything above is not a real payload.
MAX_MEDIA: Final = 10
MEDIA_PLACEHOLDER: Final = "[media message: {count} attachment(s)]"
# Twilio error code for "attempt to send to an unsubscribed recipient" (the person sent STOP to the carrier).
TWILIO_UNSUBSCRIBED: Final = 21610

# ---------------------------------------------------------------------------------------------------------------
# Inbound messages


def parse_twilio(form: Mapping[str, str]) -> IntakeRequest:
    """Twilio's inbound messaging webhook (SMS or WhatsApp) -> a validated IntakeRequest, or ChannelError."""
    message_sid = _field(form, "MessageSid") or _field(form, "SmsSid")
    sender = _field(form, "From")
    if not message_sid:
        raise ChannelError("missing_field", "The field MessageSid is missing.", field="MessageSid")
    if not sender:
        raise ChannelError("missing_field", "The field From is missing.", field="From")
    recipient = _field(form, "To")
    whatsapp = _is_whatsapp(sender) or _is_whatsapp(recipient)
    phone = _address(sender, "From")
    if not E164.fullmatch(phone):
        raise ChannelError("invalid_phone", "The sender is not a phone number in E.164 format.", field="From")
    media = _media(form)
    body = _value(form, "Body")
    if (body is None or not body.strip()) and media:
        body = MEDIA_PLACEHOLDER.format(count=len(media))
    elif body is None:
        raise ChannelError("empty_text", "The message is empty.", field="Body")
    extra: dict[str, Any] = {}
    if media:
        extra["media"] = media
        extra["media_count"] = len(media)
    account_sid = _field(form, "AccountSid")
    if account_sid:
        # The webhook compares it with the programme's account: a payload signed for another account is refused.
        extra["account_sid"] = account_sid
    request = IntakeRequest(
        channel="whatsapp" if whatsapp else "sms",
        text=body,
        provider_id=message_sid,
        to_number=_address(recipient, "To") if recipient else None,
        contact=Contact(phone=phone),
        # The person wrote from this number and expects the answer there; STOP withdraws it (parse_keyword).
        consent_to_contact=True,
        extra=extra,
    )
    return request.validated()


def _field(form: Mapping[str, str], name: str) -> str | None:
    """A stripped form value; empty becomes None."""
    value = _value(form, name)
    if value is None:
        return None
    return value.strip() or None


def _value(form: Mapping[str, str], name: str) -> str | None:
    """A form value as str; bytes must be UTF-8 (ChannelError otherwise), never repr()'d."""
    value: object = form.get(name)
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return decode_utf8(bytes(value), field=name)
    return str(value)


def _is_whatsapp(address: str | None) -> bool:
    """True for a `whatsapp:` channel address."""
    return bool(address) and str(address).lower().startswith(WHATSAPP_PREFIX)


def _address(address: str, field: str) -> str:
    """The phone number of a channel address (`whatsapp:+1...` -> `+1...`); other channels are refused."""
    if _is_whatsapp(address):
        return address[len(WHATSAPP_PREFIX) :].strip()
    if ":" in address:
        raise ChannelError("unsupported_channel", f"The {field} address uses a channel we do not accept.", field=field)
    return address


def _media(form: Mapping[str, str]) -> list[dict[str, str | None]]:
    """Media items as references only (content type and Twilio URL); never fetched here."""
    try:
        count = int(str(form.get("NumMedia") or "0").strip())
    except ValueError:
        count = 0
    items: list[dict[str, str | None]] = []
    for index in range(min(max(count, 0), MAX_MEDIA)):
        url = _field(form, f"MediaUrl{index}")
        content_type = _field(form, f"MediaContentType{index}")
        if url or content_type:
            items.append({"content_type": content_type, "url": url})
    return items


def parse_phone(value: str | None) -> str | None:
    """A phone number written by a person (spaces, dashes, brackets, 00 prefix) as E.164, or None if it is not one."""
    if value is None:
        return None
    compact = re.sub(r"[\s\-().\u00a0]", "", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if E164.fullmatch(compact) else None


# ---------------------------------------------------------------------------------------------------------------
# Keywords

KeywordKind = Literal["status", "opt_out", "opt_in"]


@dataclasses.dataclass(frozen=True)
class Keyword:
    """A command rather than feedback: a status question (with the code as typed) or an opt-out / opt-in."""

    kind: KeywordKind
    reference: str | None = None
    # The language the keyword belongs to when it names only one (a hint for the reply), else None.
    language: str | None = None


# The STATUS keyword in each language; acknowledgements should advertise one of these (tests can check that).
STATUS_KEYWORDS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("STATUS",),
    "fr": ("STATUT",),
    "es": ("ESTADO",),
    "ar": ("حالة", "الحالة"),
    "fa": ("وضعیت", "حالت"),
    "ps": ("حالت",),
    "ru": ("СТАТУС",),
    "uk": ("СТАТУС",),
    "so": ("XAALAD", "XAALADDA"),
    "sw": ("HALI",),
    "am": ("ሁኔታ",),
    "ti": ("ኩነታት",),
}
# Carrier-standard words (Twilio's defaults) plus a few unambiguous translations; whole message only.
OPT_OUT_KEYWORDS: Final = (
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",
    "ARRET", "ARRÊT", "BAJA", "СТОП", "توقف",
)  # fmt: skip
# "YES" is one of Twilio's opt-in words but not ours: "yes" is a normal answer to an officer's question.
OPT_IN_KEYWORDS: Final = ("START", "UNSTOP", "SUBSCRIBE", "СТАРТ")

# Tokens are separated by spaces and punctuation (Latin, Arabic and Ethiopic), but not by the code's hyphen.
_SEPARATORS: Final = re.compile(r"[\s:#=,;.!?¿¡\"'()\[\]،؛؟።፣፤]+")
_ARABIC_VARIANTS: Final = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه", "ـ": None})
# Cyrillic and Greek letters that look like Latin ones: a code typed on the wrong keyboard still matches.
_HOMOGLYPHS: Final = str.maketrans(
    "АВСЕНКМОРТХУЅІЈаеорсхуѕіјΑΒΕΖΗΙΚΜΝΟΡΤΥΧ–—_",
    "ABCEHKMOPTXYSIJaeopcxysijABEZHIKMNOPTYX---",
)
_CODE_SYMBOLS: Final = re.compile(r"[0-9A-Za-z]{8}")
_CODE_LIKE: Final = re.compile(r"(?=[A-Za-z-]*[0-9])[0-9A-Za-z-]{1,32}")


def fold_word(word: str) -> str:
    """Compare keywords without case, accents, Arabic diacritics and the Arabic/Persian letter variants."""
    decomposed = unicodedata.normalize("NFKD", word.casefold()).translate(_ARABIC_VARIANTS)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _table(words: tuple[str, ...] | list[str]) -> frozenset[str]:
    """Folded keyword set."""
    return frozenset(fold_word(word) for word in words)


_STATUS: Final = _table([word for words in STATUS_KEYWORDS.values() for word in words])
_OPT_OUT: Final = _table(OPT_OUT_KEYWORDS)
_OPT_IN: Final = _table(OPT_IN_KEYWORDS)


def _status_language(word: str) -> str | None:
    """The one language a folded translated STATUS keyword belongs to; None for STATUS itself or a shared word."""
    # Every locale may tell people to send STATUS, so the English word says nothing about the language.
    languages = [lang for lang, words in STATUS_KEYWORDS.items() if lang != "en" and word in _table(words)]
    return languages[0] if len(languages) == 1 else None


def parse_keyword(text: object) -> Keyword | None:
    """`STATUS <code>` (in any of our languages), or an opt-out / opt-in word; None for ordinary feedback.

    Only short messages are keywords: "STATUS AB12-CD34 nobody answers me" stays feedback so nothing is lost.
    """
    if not isinstance(text, str):
        return None
    # Invisible format characters (RLM/LRM marks, ZWNJ, BOM) come with right-to-left keyboards; drop them.
    visible = "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf")
    tokens = [token for token in _SEPARATORS.split(visible) if token]
    if not tokens or len(tokens) > 3:
        return None
    folded = [fold_word(token) for token in tokens]
    if len(tokens) == 1:
        if folded[0] in _OPT_OUT:
            return Keyword("opt_out")
        if folded[0] in _OPT_IN:
            return Keyword("opt_in")
    if folded[0] in _STATUS:
        keyword, rest, after = folded[0], tokens[1:], False
    elif folded[-1] in _STATUS:
        # Written after the code, as right-to-left writers sometimes do ("AB12-CD34 حالة").
        keyword, rest, after = folded[-1], tokens[:-1], True
    else:
        return None
    language = _status_language(keyword)
    if not rest:
        return Keyword("status", None, language)
    reference = _reference(rest)
    if reference is None or (after and not _CODE_SYMBOLS.fullmatch(reference.replace("-", ""))):
        return None  # after the keyword, a whole code only ("Room 12 status" is feedback)
    return Keyword("status", reference, language)


def _reference(tokens: list[str]) -> str | None:
    """The code as typed, tidied (split halves joined, look-alike letters and non-ASCII digits mapped), or None.

    Not a format check (the application normalises and looks codes up), only "could this be a code at all":
    8 letters/digits, or one Latin token with a digit. Several STATUS words are everyday words ("Hali mbaya",
    "حالة سيئة": the situation is bad), and such a message is feedback, not a status question.
    """
    mapped = ["".join(_ascii_digit(ch) for ch in token.translate(_HOMOGLYPHS)) for token in tokens]
    compact = "".join(token.replace("-", "") for token in mapped)
    # One code in twenty has no digit; without one, it must look written as a code (XXXX-XXXX, XXXX XXXX, capitals)
    # so that an eight-letter word ("Estado terrible") is not taken for one.
    split = len(mapped) == 2 or "-" in mapped[0]
    if _CODE_SYMBOLS.fullmatch(compact) and (any(ch.isdigit() for ch in compact) or split or compact.isupper()):
        return f"{compact[:4]}-{compact[4:]}"
    if len(mapped) == 1 and _CODE_LIKE.fullmatch(mapped[0]):
        return mapped[0]
    return None


def _ascii_digit(ch: str) -> str:
    """Arabic-Indic, Persian and other decimal digits as ASCII digits; other characters unchanged."""
    if ch.isdigit() and not ch.isascii():
        value = unicodedata.decimal(ch, None)
        if value is not None:
            return str(value)
    return ch


# ---------------------------------------------------------------------------------------------------------------
# Signatures


def validate_signature(
    url: str,
    params: Mapping[str, str] | Any,
    signature: str | None,
    auth_token: str,
    *,
    signature_settings: str | None = None,
) -> bool:
    """True when X-Twilio-Signature matches (twilio's RequestValidator); False on anything missing or odd.

    `signature_settings` is the X-Twilio-Webhooks-Signature-Settings header of SharedKey-signed webhooks.
    """
    if not signature or not auth_token or not url:
        return False
    try:
        algorithm = None
        if signature_settings:
            if get_signature_algorithm is None:
                return False
            algorithm = get_signature_algorithm(signature_settings)
        validator = RequestValidator(auth_token)
        if algorithm is None:
            return bool(validator.validate(url, params, signature))
        return bool(validator.validate(url, params, signature, algorithm=algorithm))
    except Exception:  # a malformed request is simply not valid; never a 500
        return False


# ---------------------------------------------------------------------------------------------------------------
# Segments (GSM 03.38 / 3GPP TS 23.038)

# The default alphabet, in code order (0x1B is the escape to the extension table, not a character).
GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table: each is sent as ESC + character, two septets.
GSM7_EXTENSION: Final = "\f^{}\\[~]|€"
_GSM7_COST: Final[dict[str, int]] = {ch: 1 for ch in GSM7_BASIC if ch != "\x1b"} | {ch: 2 for ch in GSM7_EXTENSION}
GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


def segments(text: str) -> tuple[str, int]:
    """("GSM-7" or "UCS-2", number of SMS segments); 0 segments for an empty text.

    Long messages lose 7 septets (GSM-7) or 3 code units (UCS-2) per segment to the concatenation header, and a
    segment never splits an escape sequence or a surrogate pair, so the count is made by packing, as phones do.
    """
    if all(ch in _GSM7_COST for ch in text):
        costs = [_GSM7_COST[ch] for ch in text]
        return "GSM-7", _pack(costs, GSM7_SINGLE, GSM7_MULTI)
    # UTF-16 code units: characters outside the BMP (most emoji) take two.
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return "UCS-2", _pack(costs, UCS2_SINGLE, UCS2_MULTI)


def _pack(costs: list[int], single: int, multi: int) -> int:
    """Segments needed for units of the given costs, never splitting a unit across two segments."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > multi:
            count, used = count + 1, 0
        used += cost
    return count


# ---------------------------------------------------------------------------------------------------------------
# Replies and outbound messages


def twiml_reply(text: str | None) -> str:
    """TwiML for the webhook response: one <Message>, or an empty <Response/> when there is nothing to say."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


class SendError(RuntimeError):
    """An outbound message Twilio did not accept; `retryable` says whether trying again may help.

    The message names the HTTP status and Twilio error code only, never the number or the text.
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code

    @property
    def opted_out(self) -> bool:
        """True when Twilio refused because the person unsubscribed (STOP sent to the carrier)."""
        return self.code == TWILIO_UNSUBSCRIBED


def make_client(
    account_sid: str, auth_token: str, http_client: HttpClient | None = None, *, timeout: float = 15.0
) -> Client:
    """A twilio REST client; tests pass a capturing http_client, production gets one with a timeout."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    if http_client is None:
        # twilio's default client waits forever; a job must not hang on a dead connection.
        http_client = TwilioHttpClient(timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)


def send_sms(client: Client, *, to: str, from_: str, body: str, status_callback: str | None = None) -> str:
    """Send one SMS or WhatsApp message (`whatsapp:` addresses) and return its SID, or raise SendError.

    `from_` may be a number or a Messaging Service SID (MG...). A timeout after Twilio received the request
    can still have sent the message; the retry policy belongs to the caller.
    """
    import requests

    kwargs: dict[str, Any] = {"to": to, "body": body}
    if from_.startswith("MG"):
        kwargs["messaging_service_sid"] = from_
    else:
        kwargs["from_"] = from_
    if status_callback:
        kwargs["status_callback"] = status_callback
    try:
        message = client.messages.create(**kwargs)
    except (TwilioRestException, TwilioServiceException) as exc:
        # Not chained: Twilio's own message may quote the phone number, and tracebacks end up in logs.
        raise _send_error(exc) from None
    except (requests.RequestException, OSError) as exc:
        raise SendError(f"Twilio could not be reached ({type(exc).__name__}).", retryable=True) from exc
    except TwilioException as exc:
        raise SendError(f"The Twilio client failed ({type(exc).__name__}).", retryable=False) from exc
    sid = getattr(message, "sid", None)
    if not sid:
        # Accepted but unreadable: sending again could deliver the message twice.
        raise SendError("Twilio accepted the message but returned no SID.", retryable=False)
    return str(sid)


def _send_error(exc: TwilioRestException | TwilioServiceException) -> SendError:
    """HTTP 429 and 5xx may pass on retry; other 4xx will not."""
    status = _int(getattr(exc, "status", None))
    code = _int(getattr(exc, "code", None))
    if code is not None and code < 1000:
        code = None  # twilio fills in the HTTP status when the body had no Twilio error code
    retryable = status is None or status == 429 or status >= 500
    return SendError(
        f"Twilio refused the message (HTTP {status}, error {code}).", retryable=retryable, status=status, code=code
    )


def _int(value: object) -> int | None:
    """An int from an int or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


# ---------------------------------------------------------------------------------------------------------------
# Delivery status callbacks

# Statuses after which Twilio sends no further update for the message.
FINAL_STATUSES: Final = frozenset({"delivered", "undelivered", "failed", "read", "canceled", "received"})
FAILED_STATUSES: Final = frozenset({"undelivered", "failed"})
_STATUS_WORD: Final = re.compile(r"[a-z_]{1,32}")


class StatusUpdate(NamedTuple):
    """One delivery status callback: (message_sid, status, error_code)."""

    message_sid: str
    status: str
    error_code: int | None


def parse_status_callback(form: Mapping[str, str]) -> StatusUpdate:
    """Twilio's message status callback -> (MessageSid, lower-case MessageStatus, ErrorCode or None)."""
    message_sid = _field(form, "MessageSid") or _field(form, "SmsSid")
    if not message_sid:
        raise ChannelError("missing_field", "The field MessageSid is missing.", field="MessageSid")
    status = (_field(form, "MessageStatus") or _field(form, "SmsStatus") or "").lower()
    if not status:
        raise ChannelError("missing_field", "The field MessageStatus is missing.", field="MessageStatus")
    if not _STATUS_WORD.fullmatch(status):
        raise ChannelError("invalid_status", "The message status is not valid.", field="MessageStatus")
    return StatusUpdate(message_sid, status, _int(_field(form, "ErrorCode")))
