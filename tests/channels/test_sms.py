"""SMS and WhatsApp adapter against the real twilio library: signatures, TwiML, REST calls captured, no network."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from channels.base import MAX_TEXT_LENGTH, ChannelError
from channels.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MEDIA_PLACEHOLDER,
    STATUS_KEYWORDS,
    Keyword,
    SendError,
    make_client,
    parse_keyword,
    parse_phone,
    parse_status_callback,
    parse_twilio,
    segments,
    send_sms,
    twiml_reply,
    validate_signature,
)

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
URL = "https://cfm.example.org/sms/twilio"
PHONE = "+254700000009"
OUR_NUMBER = "+15005550006"
CODE = "AB12-CD34"


def inbound(**fields: str) -> dict[str, str]:
    """An inbound message webhook payload as Twilio sends it."""
    payload = {
        "MessageSid": "SM" + "a" * 32,
        "SmsSid": "SM" + "a" * 32,
        "AccountSid": ACCOUNT_SID,
        "From": PHONE,
        "To": OUR_NUMBER,
        "Body": "The bus to the transit centre never came.",
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    payload.update(fields)
    return {key: value for key, value in payload.items() if value is not None}


def code_of(excinfo: pytest.ExceptionInfo[ChannelError]) -> str:
    """The stable error code."""
    return excinfo.value.code


# ---------------------------------------------------------------------------------------------------------------
# Inbound


def test_sms_becomes_an_intake_request() -> None:
    request = parse_twilio(inbound())
    assert request.channel == "sms"
    assert request.provider_id == "SM" + "a" * 32
    assert request.text == "The bus to the transit centre never came."
    assert request.contact.phone == PHONE
    assert request.to_number == OUR_NUMBER
    assert request.consent_to_contact is True
    assert request.extra == {"account_sid": ACCOUNT_SID}


def test_whatsapp_addresses_lose_their_prefix() -> None:
    request = parse_twilio(inbound(From=f"whatsapp:{PHONE}", To=f"whatsapp:{OUR_NUMBER}", ProfileName="Amina"))
    assert request.channel == "whatsapp"
    assert request.contact.phone == PHONE
    assert request.to_number == OUR_NUMBER
    # The WhatsApp profile name was not given by the person as contact data; it is not kept.
    assert request.contact.name is None


def test_sms_sid_is_used_when_message_sid_is_absent() -> None:
    payload = inbound()
    del payload["MessageSid"]
    assert parse_twilio(payload).provider_id == "SM" + "a" * 32


def test_media_only_message_gets_a_placeholder_and_references() -> None:
    request = parse_twilio(
        inbound(
            Body="",
            NumMedia="2",
            MediaContentType0="image/jpeg",
            MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
            MediaContentType1="audio/ogg",
            MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
        )
    )
    assert request.text == MEDIA_PLACEHOLDER.format(count=2) == "[media message: 2 attachment(s)]"
    assert request.extra["media_count"] == 2
    assert request.extra["media"] == [
        {"content_type": "image/jpeg", "url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"},
        {"content_type": "audio/ogg", "url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2"},
    ]


def test_media_with_a_caption_keeps_the_caption() -> None:
    payload = inbound(Body="Photo of the tent", NumMedia="1", MediaContentType0="image/png", MediaUrl0="https://x/1")
    del payload["NumSegments"]
    request = parse_twilio(payload)
    assert request.text == "Photo of the tent"
    assert request.extra["media_count"] == 1


@pytest.mark.parametrize(("num_media", "expected"), [("abc", 0), ("-3", 0), ("50", 10)])
def test_media_count_is_bounded(num_media: str, expected: int) -> None:
    fields = {f"MediaUrl{i}": f"https://x/{i}" for i in range(50)}
    request = parse_twilio(inbound(Body="see photos", NumMedia=num_media, **fields))
    assert request.extra.get("media_count", 0) == expected


@pytest.mark.parametrize("body", [None, "", "   \n "])
def test_message_without_body_or_media_is_refused(body: str | None) -> None:
    payload = inbound()
    if body is None:
        del payload["Body"]
    else:
        payload["Body"] = body
    with pytest.raises(ChannelError) as excinfo:
        parse_twilio(payload)
    assert code_of(excinfo) == "empty_text"


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_missing_required_field_is_refused(missing: str) -> None:
    payload = inbound()
    payload.pop("SmsSid")
    payload[missing] = ""
    with pytest.raises(ChannelError) as excinfo:
        parse_twilio(payload)
    assert code_of(excinfo) == "missing_field"
    assert excinfo.value.field == missing


@pytest.mark.parametrize(
    "sender",
    ["12345", "254700000009", "+0123456789", "+12345", "+1234567890123456", "+1 555 010 0000", "ALPHA", "+2547OO"],
)
def test_invalid_phone_is_refused(sender: str) -> None:
    with pytest.raises(ChannelError) as excinfo:
        parse_twilio(inbound(From=sender))
    assert code_of(excinfo) == "invalid_phone"
    assert sender not in excinfo.value.message


def test_other_channel_address_is_refused() -> None:
    with pytest.raises(ChannelError) as excinfo:
        parse_twilio(inbound(From="messenger:1234567890"))
    assert code_of(excinfo) == "unsupported_channel"


def test_two_megabyte_body_is_refused_clearly() -> None:
    with pytest.raises(ChannelError) as excinfo:
        parse_twilio(inbound(Body="x" * (2 * 1024 * 1024)))
    assert code_of(excinfo) == "text_too_long"
    assert str(MAX_TEXT_LENGTH) in excinfo.value.message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"caf\xe9 au lait", "invalid_encoding"),
        ("bad \udcff byte", "invalid_encoding"),
        ("a\x00b", "invalid_characters"),
    ],
)
def test_undecodable_body_is_refused(body: Any, code: str) -> None:
    with pytest.raises(ChannelError) as excinfo:
        parse_twilio(inbound(Body=body))
    assert code_of(excinfo) == code


def test_utf8_bytes_body_is_decoded() -> None:
    request = parse_twilio(inbound(Body="شكرا لكم".encode()))  # type: ignore[arg-type]
    assert request.text == "شكرا لكم"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("+254 700 000 009", PHONE),
        ("00254-700-000-009", PHONE),
        ("(+254) 700.000.009", PHONE),
        ("0700 000 009", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_phone(written: str | None, expected: str | None) -> None:
    assert parse_phone(written) == expected


# ---------------------------------------------------------------------------------------------------------------
# Signatures


def signed(params: Any, url: str = URL, token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send."""
    return str(RequestValidator(token).compute_signature(url, params))


def test_signed_request_is_valid() -> None:
    params = inbound(Body="مرحبا، أين مكتب التسجيل؟")
    assert validate_signature(URL, params, signed(params), AUTH_TOKEN) is True


def test_signature_with_port_in_url_is_valid() -> None:
    params = inbound()
    assert validate_signature(URL, params, signed(params, url="https://cfm.example.org:443/sms/twilio"), AUTH_TOKEN)


def test_signature_over_repeated_form_fields_is_valid() -> None:
    params = MultiDict([*inbound().items(), ("Tag", "b"), ("Tag", "a")])
    assert validate_signature(URL, params, signed(params), AUTH_TOKEN) is True


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_missing_signature_is_invalid(signature: str | None) -> None:
    assert validate_signature(URL, inbound(), signature, AUTH_TOKEN) is False


def test_wrong_signature_is_invalid() -> None:
    params = inbound()
    assert validate_signature(URL, params, signed(params, token="another-token"), AUTH_TOKEN) is False
    assert validate_signature(URL, params, "bm90IGEgc2lnbmF0dXJl", AUTH_TOKEN) is False


def test_tampered_param_is_invalid() -> None:
    params = inbound()
    signature = signed(params)
    assert validate_signature(URL, {**params, "Body": "something else"}, signature, AUTH_TOKEN) is False
    assert validate_signature(URL, {**params, "Extra": "1"}, signature, AUTH_TOKEN) is False
    without_body = {key: value for key, value in params.items() if key != "Body"}
    assert validate_signature(URL, without_body, signature, AUTH_TOKEN) is False


def test_signature_for_another_url_is_invalid() -> None:
    params = inbound()
    signature = signed(params)
    assert validate_signature("http://cfm.example.org/sms/twilio", params, signature, AUTH_TOKEN) is False
    assert validate_signature(URL + "/status", params, signature, AUTH_TOKEN) is False


def test_missing_auth_token_never_validates() -> None:
    params = inbound()
    assert validate_signature(URL, params, signed(params, token=""), "") is False


def test_odd_input_never_raises() -> None:
    assert validate_signature(URL, None, "abc", AUTH_TOKEN) is False
    assert validate_signature(URL, {"Body": None}, "abc", AUTH_TOKEN) is False
    assert validate_signature("", inbound(), "abc", AUTH_TOKEN) is False


def test_shared_key_sha256_signature() -> None:
    params = inbound()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(URL, params, algorithm="HMAC_SHA256")
    settings = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    assert validate_signature(URL, params, signature, AUTH_TOKEN, signature_settings=settings) is True
    assert validate_signature(URL, params, signature, AUTH_TOKEN) is False
    assert validate_signature(URL, params, signed(params), AUTH_TOKEN, signature_settings=settings) is False


def test_unknown_signature_algorithm_is_invalid() -> None:
    params = inbound()
    settings = "key=k,algorithm=HMAC_MD5"
    assert validate_signature(URL, params, signed(params), AUTH_TOKEN, signature_settings=settings) is False


# ---------------------------------------------------------------------------------------------------------------
# Segments


def test_gsm_tables_are_complete() -> None:
    assert len(GSM7_BASIC) == 128
    assert len(set(GSM7_BASIC)) == 128
    assert not set(GSM7_BASIC) & set(GSM7_EXTENSION)


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("", "GSM-7", 0),
        ("Hello", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r", "GSM-7", 1),
        # Extension table characters take two septets each.
        ("{" * 80, "GSM-7", 1),
        ("{" * 81, "GSM-7", 2),
        ("€" * 80, "GSM-7", 1),
        ("a" * 159 + "€", "GSM-7", 2),
        ("a" * 158 + "€", "GSM-7", 1),
        ("^{}\\[~]|€\f", "GSM-7", 1),
        # An escape sequence is never split across segments: 306 septets but three segments.
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),
        # Characters outside the GSM alphabet switch the whole message to UCS-2.
        ("Café ç", "UCS-2", 1),
        ("`backtick`", "UCS-2", 1),
        ("ع" * 70, "UCS-2", 1),
        ("ع" * 71, "UCS-2", 2),
        ("ع" * 134, "UCS-2", 2),
        ("ع" * 135, "UCS-2", 3),
        ("شكراً، استلمنا رسالتك. رقمك المرجعي AB12-CD34.", "UCS-2", 1),
        ("ሰላም", "UCS-2", 1),
        # Emoji are two UTF-16 code units, and a surrogate pair is never split.
        ("😀" * 35, "UCS-2", 1),
        ("😀" * 36, "UCS-2", 2),
        ("😀" * 67, "UCS-2", 3),
        ("a" * 69 + "😀", "UCS-2", 2),
        ("a" * 68 + "😀", "UCS-2", 1),
    ],
)
def test_segments(text: str, encoding: str, count: int) -> None:
    assert segments(text) == (encoding, count)


# ---------------------------------------------------------------------------------------------------------------
# Keywords


@pytest.mark.parametrize(
    ("language", "word"), [(language, word) for language, words in STATUS_KEYWORDS.items() for word in words]
)
def test_status_keyword_in_every_language(language: str, word: str) -> None:
    shared = sum(word in words for words in STATUS_KEYWORDS.values()) > 1
    expected_language = None if language == "en" or shared else language
    for text in (f"{word} {CODE}", f"  {word.lower()}   {CODE.lower().replace('-', '')} ", f"{word}: {CODE}"):
        keyword = parse_keyword(text)
        assert keyword is not None, text
        assert keyword.kind == "status"
        assert keyword.reference is not None and keyword.reference.upper() == CODE
        assert keyword.language == expected_language
    assert parse_keyword(word) == Keyword("status", None, expected_language)


@pytest.mark.parametrize(
    ("text", "reference", "language"),
    [
        ("STATUS AB12-CD34", "AB12-CD34", None),
        ("status ab12cd34", "ab12-cd34", None),
        ("Status AB12 CD34", "AB12-CD34", None),
        ("STATUS\tAB12–CD34", "AB12-CD34", None),  # an en dash from a phone keyboard
        ("Statut AB12-CD34", "AB12-CD34", "fr"),
        ("estado ab12-cd34", "ab12-cd34", "es"),
        ("حالة AB١٢-CD٣٤", "AB12-CD34", "ar"),  # Arabic-Indic digits
        ("حاله AB12-CD34", "AB12-CD34", "ar"),  # ta marbuta typed as ha
        ("الحالة AB12-CD34", "AB12-CD34", "ar"),
        ("\u200fحالة\u200f AB12-CD34", "AB12-CD34", "ar"),  # right-to-left marks
        ("AB12-CD34 حالة", "AB12-CD34", "ar"),  # code typed first
        ("وضعیت AB۱۲-CD۳۴", "AB12-CD34", "fa"),  # Persian digits
        ("وضعيت AB12-CD34", "AB12-CD34", "fa"),  # Arabic yeh instead of Persian yeh
        ("حالت AB12-CD34", "AB12-CD34", None),  # Pashto and Dari share the word
        ("статус AB12-CD34", "AB12-CD34", None),
        ("СТАТУС АВ12-СD34", "AB12-CD34", None),  # Cyrillic look-alike letters in the code
        ("xaalad ab12-cd34", "ab12-cd34", "so"),
        ("HALI AB12-CD34", "AB12-CD34", "sw"),
        ("ሁኔታ AB12-CD34", "AB12-CD34", "am"),
        ("ኩነታት AB12-CD34።", "AB12-CD34", "ti"),
        ("STATUS #AB12-CD34!", "AB12-CD34", None),
        # The reference is extracted, not validated: the application normalises and looks it up.
        ("STATUS AB12-CD3", "AB12-CD3", None),
        ("STATUS 0OIL-1234", "0OIL-1234", None),
        ("STATUS ABCDEFGH", "ABCD-EFGH", None),
        ("status abcd-efgh", "abcd-efgh", None),
        ("status abcd efgh", "abcd-efgh", None),
    ],
)
def test_status_keyword_variants(text: str, reference: str, language: str | None) -> None:
    assert parse_keyword(text) == Keyword("status", reference, language)


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", " Stop. ", "STOPALL", "unsubscribe", "Cancel", "END", "quit", "OPTOUT", "Arrêt", "СТОП", "توقف"],
)
def test_opt_out_words(text: str) -> None:
    assert parse_keyword(text) == Keyword("opt_out")


@pytest.mark.parametrize("text", ["START", "start", "UNSTOP", "Subscribe!", "старт"])
def test_opt_in_words(text: str) -> None:
    assert parse_keyword(text) == Keyword("opt_in")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "yes",
        "Stop the driver from shouting at us",
        "stop now",
        "Status of my case is still unclear",
        "STATUS AB12-CD34 nobody has answered me for a month",
        "The end",
        "حالة الطوارئ في المخيم سيئة جدا",
        "Hello",
        # STATUS words that are everyday words, followed by something that is not a code.
        "Hali mbaya",
        "Estado terrible",
        "حالة سيئة",
        "Status unclear",
        "Application status",
        "my status",
        "A12 status",
    ],
)
def test_ordinary_feedback_is_not_a_keyword(text: str) -> None:
    assert parse_keyword(text) is None


def test_non_text_is_not_a_keyword() -> None:
    assert parse_keyword(None) is None
    assert parse_keyword(42) is None


def test_keyword_is_immutable() -> None:
    keyword = Keyword("status", CODE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        keyword.kind = "opt_out"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------------------
# TwiML


def test_twiml_reply_parses_back_to_the_text() -> None:
    text = "Thank you <b>&</b> شكرا — reference AB12-CD34."
    xml = twiml_reply(text)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xml.encode())  # noqa: S314 - our own output
    assert root.tag == "Response"
    messages = list(root)
    assert [element.tag for element in messages] == ["Message"]
    assert messages[0].text == text
    assert messages[0].attrib == {}


@pytest.mark.parametrize("text", [None, ""])
def test_twiml_without_reply_is_an_empty_response(text: str | None) -> None:
    root = ET.fromstring(twiml_reply(text).encode())  # noqa: S314 - our own output
    assert root.tag == "Response"
    assert list(root) == []


# ---------------------------------------------------------------------------------------------------------------
# Outbound through the REST client, captured


@dataclasses.dataclass
class Captured:
    """One HTTP call the twilio client made."""

    method: str
    url: str
    data: dict[str, object] | None
    auth: tuple[str, str] | None
    timeout: float | None


class CapturingHttpClient(HttpClient):
    """A twilio HttpClient that records calls and answers from a script; nothing reaches the network."""

    def __init__(self, *outcomes: Response | BaseException) -> None:
        super().__init__(logger=logging.getLogger("tests.twilio"), is_async=False)
        self.outcomes = list(outcomes)
        self.calls: list[Captured] = []

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Record the call and return (or raise) the next scripted outcome."""
        self.calls.append(Captured(method, uri, data, auth, timeout))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def created(sid: str = "SM" + "b" * 32) -> Response:
    """Twilio's 201 answer to a message create."""
    payload = {"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued", "to": PHONE, "from": OUR_NUMBER}
    return Response(201, json.dumps(payload))


def refused(status: int, code: int | None = None) -> Response:
    """A Twilio error answer in the classic format (the message quotes the number, as Twilio's do)."""
    payload: dict[str, object] = {"status": status, "message": f"The 'To' number {PHONE} is not valid."}
    if code is not None:
        payload["code"] = code
        payload["more_info"] = f"https://www.twilio.com/docs/errors/{code}"
    return Response(status, json.dumps(payload))


MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def test_send_sms_posts_the_message_and_returns_the_sid() -> None:
    http = CapturingHttpClient(created())
    client = make_client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    sid = send_sms(client, to=PHONE, from_=OUR_NUMBER, body="Your case is closed.", status_callback=URL + "/status")
    assert sid == "SM" + "b" * 32
    [call] = http.calls
    assert call.method == "POST"
    assert call.url == MESSAGES_URL
    assert call.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert call.data == {
        "To": PHONE,
        "From": OUR_NUMBER,
        "Body": "Your case is closed.",
        "StatusCallback": URL + "/status",
    }


def test_send_whatsapp_and_messaging_service() -> None:
    http = CapturingHttpClient(created(), created())
    client = make_client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    send_sms(client, to=f"whatsapp:{PHONE}", from_=f"whatsapp:{OUR_NUMBER}", body="مرحبا")
    send_sms(client, to=PHONE, from_="MG" + "c" * 32, body="hi")
    assert http.calls[0].data == {"To": f"whatsapp:{PHONE}", "From": f"whatsapp:{OUR_NUMBER}", "Body": "مرحبا"}
    assert http.calls[1].data == {"To": PHONE, "MessagingServiceSid": "MG" + "c" * 32, "Body": "hi"}


@pytest.mark.parametrize(
    ("outcome", "retryable", "status", "code"),
    [
        (refused(400, 21211), False, 400, 21211),
        (refused(401, 20003), False, 401, 20003),
        (refused(404), False, 404, None),
        (refused(429, 20429), True, 429, 20429),
        (refused(500), True, 500, None),
        (refused(503, 20503), True, 503, 20503),
        (Response(502, "<html>Bad gateway</html>"), True, 502, None),
    ],
)
def test_send_errors_say_whether_to_retry(outcome: Response, retryable: bool, status: int, code: int | None) -> None:
    http = CapturingHttpClient(outcome)
    client = make_client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    with pytest.raises(SendError) as excinfo:
        send_sms(client, to=PHONE, from_=OUR_NUMBER, body="private words")
    error = excinfo.value
    assert (error.retryable, error.status, error.code) == (retryable, status, code)
    # Neither the number nor the text reaches the message or the exception chain (tracebacks end up in logs).
    assert PHONE not in str(error) and "private words" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert len(http.calls) == 1


def test_problem_details_errors_are_mapped() -> None:
    problem = {"type": "https://www.twilio.com/docs/errors/20503", "title": "Unavailable", "status": 503, "code": 20503}
    http = CapturingHttpClient(Response(503, json.dumps(problem)), Response(400, json.dumps(problem | {"status": 400})))
    client = make_client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    with pytest.raises(SendError) as excinfo:
        send_sms(client, to=PHONE, from_=OUR_NUMBER, body="x")
    assert excinfo.value.retryable is True
    with pytest.raises(SendError) as excinfo:
        send_sms(client, to=PHONE, from_=OUR_NUMBER, body="x")
    assert excinfo.value.retryable is False


def test_unsubscribed_recipient_is_reported_as_opted_out() -> None:
    http = CapturingHttpClient(refused(400, 21610))
    client = make_client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    with pytest.raises(SendError) as excinfo:
        send_sms(client, to=PHONE, from_=OUR_NUMBER, body="x")
    assert excinfo.value.opted_out is True
    assert excinfo.value.retryable is False


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError("connection refused"),
        requests.exceptions.Timeout("read timed out"),
        ConnectionResetError("reset by peer"),
    ],
)
def test_connection_errors_are_retryable(failure: BaseException) -> None:
    http = CapturingHttpClient(failure)
    client = make_client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    with pytest.raises(SendError) as excinfo:
        send_sms(client, to=PHONE, from_=OUR_NUMBER, body="x")
    assert excinfo.value.retryable is True
    assert excinfo.value.status is None


def test_accepted_without_sid_is_not_retried() -> None:
    http = CapturingHttpClient(Response(201, json.dumps({"status": "queued"})))
    client = make_client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    with pytest.raises(SendError) as excinfo:
        send_sms(client, to=PHONE, from_=OUR_NUMBER, body="x")
    assert excinfo.value.retryable is False


def test_retry_after_a_transient_error_sends_once_more() -> None:
    http = CapturingHttpClient(refused(500), created("SM" + "d" * 32))
    client = make_client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    with pytest.raises(SendError):
        send_sms(client, to=PHONE, from_=OUR_NUMBER, body="x")
    assert send_sms(client, to=PHONE, from_=OUR_NUMBER, body="x") == "SM" + "d" * 32
    assert [call.data for call in http.calls] == [{"To": PHONE, "From": OUR_NUMBER, "Body": "x"}] * 2


def test_default_client_has_a_timeout() -> None:
    client = make_client(ACCOUNT_SID, AUTH_TOKEN)
    assert isinstance(client.http_client, TwilioHttpClient)
    assert client.http_client.timeout == 15.0


# ---------------------------------------------------------------------------------------------------------------
# Status callbacks


def test_status_callback_is_parsed() -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "delivered", "SmsStatus": "delivered", "AccountSid": ACCOUNT_SID}
    assert parse_status_callback(form) == ("SM1", "delivered", None)
    message_sid, status, error_code = parse_status_callback(
        {"MessageSid": "SM2", "MessageStatus": "Undelivered", "ErrorCode": "30003"}
    )
    assert (message_sid, status, error_code) == ("SM2", "undelivered", 30003)


def test_status_callback_fallbacks_and_odd_error_code() -> None:
    assert parse_status_callback({"SmsSid": "SM3", "SmsStatus": "sent", "ErrorCode": "n/a"}) == ("SM3", "sent", None)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"MessageStatus": "delivered"}, "missing_field"),
        ({"MessageSid": "SM1"}, "missing_field"),
        ({"MessageSid": "SM1", "MessageStatus": "<script>"}, "invalid_status"),
    ],
)
def test_bad_status_callback_is_refused(form: dict[str, str], code: str) -> None:
    with pytest.raises(ChannelError) as excinfo:
        parse_status_callback(form)
    assert code_of(excinfo) == code


# ---------------------------------------------------------------------------------------------------------------
# Boundaries


def test_channels_import_neither_flask_nor_the_application() -> None:
    code = (
        "import sys, channels.sms, channels.hotline; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'cfm', 'flask', 'sqlalchemy', 'classifier'}); "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == ""


def test_receiving_leaves_the_rest_client_unloaded() -> None:
    """Issue 9 (worker memory): twilio's REST client and requests load when a message is sent, not on import."""
    code = (
        "import sys, channels.sms; loaded = lambda: sorted({'twilio.rest', 'requests'} & set(sys.modules)); "
        "before = loaded(); channels.sms.make_client('AC' + 'a' * 32, 'token'); print(before, loaded())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[] ['requests', 'twilio.rest']"


def test_adapters_log_nothing_personal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    parse_twilio(inbound(Body="very private words"))
    http = CapturingHttpClient(created())
    send_sms(make_client(ACCOUNT_SID, AUTH_TOKEN, http_client=http), to=PHONE, from_=OUR_NUMBER, body="private")
    for record in caplog.records:
        message = record.getMessage()
        assert PHONE not in message and "private" not in message
