"""Property tests of every channel parser (issue 8): any input gives a clean IntakeRequest or a ChannelError.

Invariants of an accepted request: text non-empty, stripped, NFC, at most MAX_TEXT_LENGTH characters, no NUL, valid
UTF-8 (no lone surrogates); contact and provider id bounded, the phone in E.164.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from channels.base import MAX_TEXT_LENGTH, ChannelError, Contact, IntakeRequest, clean_text
from channels.hotline import ImportBatch, parse_ivr_transcription, parse_transcripts
from channels.sms import Keyword, parse_keyword, parse_status_callback, parse_twilio, segments
from channels.web import FormErrors, SurveyDefinition, feedback_request, survey_answers

T = TypeVar("T")
PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
E164 = re.compile(r"\+[1-9][0-9]{6,14}")

# Any text at all, lone surrogates included (what a broken client or a decoding bug could hand us).
any_text = st.text(st.characters(exclude_categories=()), max_size=300)
nasty = st.sampled_from(
    ["", " ", "\x00", "a\x00b", "\ud800", "\u202e", "\ufeff", "\r\n", "STOP", "STATUS AB12-CD34", "=1+1", "é", "\n\t"]
)
texts = st.one_of(any_text, nasty, st.text(max_size=20).map(lambda t: t * 400))  # long ones reach the limit
phones = st.one_of(
    st.from_regex(E164, fullmatch=True),
    st.from_regex(E164, fullmatch=True).map(lambda p: "whatsapp:" + p),
    st.sampled_from(["", "12345", "+0123", "messenger:1", "whatsapp:", " +254711222333 "]),
    any_text,
)


def attempt(parse: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """The parser's result, or None when it refused with a ChannelError that says why (anything else fails)."""
    try:
        return parse(*args, **kwargs)
    except ChannelError as exc:
        error = exc
    assert error.code and error.message
    if isinstance(error, FormErrors):
        assert error.errors and all(isinstance(e, ChannelError) for e in error.errors)
    return None


def assert_clean(request: IntakeRequest) -> None:
    """The invariants every accepted submission obeys."""
    text = request.text
    assert isinstance(text, str) and 0 < len(text) <= MAX_TEXT_LENGTH
    assert "\x00" not in text
    text.encode("utf-8")  # raises on a lone surrogate
    assert text == text.strip()
    assert unicodedata.is_normalized("NFC", text)
    assert request.provider_id is None or 0 < len(request.provider_id) <= 128
    contact: Contact = request.contact
    for value in (contact.name, contact.phone, contact.email):
        assert value is None or ("\x00" not in value and value == value.strip() and value)
    assert contact.phone is None or E164.fullmatch(contact.phone)


# --- base -------------------------------------------------------------------------------------------------------


@PROPERTY
@given(st.one_of(texts, st.binary(max_size=200), st.none(), st.integers()))
@example("  ok \r\n ")
@example(b"caf\xe9")
def test_clean_text_returns_clean_text_or_raises_channel_error(value: object) -> None:
    text = attempt(clean_text, value)
    if text is None:
        return
    assert_clean(IntakeRequest(channel="web", text=text))
    assert clean_text(text) == text  # idempotent


# --- Twilio messaging -----------------------------------------------------------------------------------------------

twilio_forms = st.fixed_dictionaries(
    {},
    optional={
        "MessageSid": st.one_of(st.just("SM" + "a" * 32), any_text),
        "SmsSid": any_text,
        "From": phones,
        "To": phones,
        "Body": texts,
        "NumMedia": st.one_of(st.integers(-5, 50).map(str), any_text),
        "MediaUrl0": any_text,
        "MediaContentType0": any_text,
        "AccountSid": any_text,
    },
)


@PROPERTY
@given(twilio_forms)
@example({"MessageSid": "SM1", "From": "+254711222333", "Body": "a\x00b"})
@example({"MessageSid": "SM1", "From": "whatsapp:+254711222333", "Body": "", "NumMedia": "1", "MediaUrl0": "x"})
def test_parse_twilio_gives_a_clean_request_or_a_channel_error(form: dict[str, str]) -> None:
    request = attempt(parse_twilio, form)
    if request is None:
        return
    assert_clean(request)
    assert request.channel in ("sms", "whatsapp")
    assert request.contact.phone is not None


@PROPERTY
@given(st.fixed_dictionaries({}, optional={"MessageSid": any_text, "MessageStatus": any_text, "ErrorCode": any_text}))
def test_parse_status_callback_gives_a_status_word_or_a_channel_error(form: dict[str, str]) -> None:
    update = attempt(parse_status_callback, form)
    if update is None:
        return
    assert re.fullmatch(r"[a-z_]{1,32}", update.status)
    assert update.message_sid and update.message_sid == update.message_sid.strip()
    assert update.error_code is None or isinstance(update.error_code, int)


@PROPERTY
@given(st.one_of(texts, st.none(), st.integers(), st.binary(max_size=20)))
@example("STATUS ab12-cd34")
@example("\u200fحالة AB12-CD34")
def test_parse_keyword_never_raises_and_only_reads_short_messages(value: object) -> None:
    keyword = parse_keyword(value)
    assert keyword is None or isinstance(keyword, Keyword)
    if keyword is not None:
        assert keyword.kind in ("status", "opt_out", "opt_in")
        assert keyword.reference is None or re.fullmatch(r"[0-9A-Za-z-]{1,32}", keyword.reference)


@PROPERTY
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=400))
def test_segments_never_raise_and_grow_with_the_text(text: str) -> None:
    encoding, count = segments(text)
    assert encoding in ("GSM-7", "UCS-2")
    assert (count == 0) == (text == "")
    assert count <= max(1, len(text))


# --- hotline: transcript files and IVR callbacks ------------------------------------------------------------------

records = st.lists(
    st.fixed_dictionaries(
        {"transcript_id": st.one_of(st.text(max_size=12), st.integers(), st.none(), st.booleans())},
        optional={
            "text": st.one_of(texts, st.integers(), st.none(), st.lists(st.integers(), max_size=2)),
            "language": st.one_of(any_text, st.sampled_from(["ar", "Dari", "english", "xx"])),
            "received_at": st.one_of(any_text, st.sampled_from(["2024-05-01T10:00:00Z", "3000-01-01T00:00:00"])),
            "caller_phone": phones,
            "caller_name": any_text,
            "consent": st.one_of(any_text, st.booleans(), st.sampled_from(["yes", "no", "نعم"])),
            "programme": any_text,
        },
    ),
    max_size=5,
)


def _as_csv(rows: list[dict[str, Any]]) -> bytes:
    """The records written as a CSV file (surrogates cannot be written: they are replaced, as a file would be)."""
    buffer = io.StringIO()
    columns = ["transcript_id", "text", "language", "received_at", "caller_phone", "caller_name", "consent"]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    return buffer.getvalue().encode("utf-8", "replace")


def assert_batch(batch: ImportBatch, rows: int | None) -> None:
    """Every accepted row is a clean request; with `rows` given, each row is a request or an error, none lost."""
    for _row, request in batch.requests:
        assert_clean(request)
        assert request.channel == "hotline"
    if rows is not None:
        assert len(batch.requests) + len(batch.errors) == rows


def _filled(row: dict[str, Any]) -> bool:
    """A CSV row with something in it (blank lines of a spreadsheet are skipped, not errors)."""
    columns = ("transcript_id", "text", "language", "received_at", "caller_phone", "caller_name", "consent")
    return any(str("" if row.get(key) is None else row.get(key)).strip() for key in columns)


@PROPERTY
@given(records, st.sampled_from(["csv", "jsonl", "json"]))
def test_transcript_files_give_clean_requests_or_row_errors(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "csv":
        data = _as_csv(rows)
    elif fmt == "jsonl":
        data = "\n".join(json.dumps(row) for row in rows).encode("utf-8", "surrogatepass")
    else:
        data = json.dumps(rows).encode("utf-8", "surrogatepass")
    batch = attempt(parse_transcripts, data, fmt=fmt)
    if batch is None:
        return
    assert_batch(batch, len([row for row in rows if _filled(row)]) if fmt == "csv" else len(rows))


@PROPERTY
@given(
    st.binary(max_size=400), st.sampled_from([None, "csv", "jsonl", "json", "xml"]), st.sampled_from([None, "a.csv"])
)
@example(b"\xff\xfetranscript_id,text\n", None, None)
@example(b'transcript_id,text\n1,"unterminated\n', "csv", None)
@example(b"[1, 2, {}]", "json", None)
def test_any_bytes_as_a_transcript_file_never_crash(data: bytes, fmt: str | None, filename: str | None) -> None:
    batch = attempt(parse_transcripts, data, filename=filename, fmt=fmt)
    if batch is None:
        return
    assert_batch(batch, None)


@PROPERTY
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "RecordingSid": any_text,
            "CallSid": any_text,
            "From": phones,
            "To": phones,
            "TranscriptionText": texts,
            "TranscriptionStatus": st.one_of(any_text, st.sampled_from(["completed", "failed"])),
            "RecordingDuration": any_text,
        },
    )
)
def test_ivr_callbacks_give_a_clean_request_or_a_channel_error(form: dict[str, str]) -> None:
    request = attempt(parse_ivr_transcription, form, language_hint="ar")
    if request is None:
        return
    assert_clean(request)
    assert request.channel == "ivr"


# --- web form and survey answers ----------------------------------------------------------------------------------

form_values = st.one_of(texts, st.binary(max_size=30))


@PROPERTY
@given(
    st.fixed_dictionaries(
        {"text": form_values},
        optional={
            "category": st.one_of(any_text, st.sampled_from(["question", "serious", "complaint"])),
            "contact": st.sampled_from(["yes", "no", "", "maybe"]),
            "method": any_text,
            "phone": st.one_of(phones, st.binary(max_size=10)),
            "name": form_values,
            "submission": any_text,
            "programme": any_text,
        },
    )
)
def test_the_feedback_form_gives_a_clean_request_or_form_errors(data: dict[str, Any]) -> None:
    request = attempt(feedback_request, data, programme=None, programme_choices=("kenya",), locale="ar")
    if request is None:
        return
    assert_clean(request.validated())
    assert request.text == request.validated().text  # the form already cleaned it


SURVEY = SurveyDefinition.from_dict(
    {
        "slug": "prop",
        "version": 1,
        "title": {"en": "Properties"},
        "questions": [
            {"id": "overall", "type": "rating", "text": {"en": "How was it?"}},
            {"id": "safe", "type": "yes_no", "text": {"en": "Did you feel safe?"}},
            {
                "id": "seat",
                "type": "single_choice",
                "text": {"en": "Where?"},
                "options": [{"id": "front", "text": {"en": "Front"}}, {"id": "back", "text": {"en": "Back"}}],
            },
            {"id": "comment", "type": "free_text", "text": {"en": "Anything else?"}},
            {"id": "more", "type": "free_text", "text": {"en": "More?"}},
        ],
    }
)


@PROPERTY
@given(
    st.fixed_dictionaries(
        {},
        optional={
            **{f"q_{q}": form_values for q in ("overall", "safe", "seat", "comment", "more")},
            "contact": st.sampled_from(["yes", "no"]),
            "phone": phones,
        },
    )
)
@example({"q_overall": "٣"})
@example({"q_comment": "x" * 4000, "q_more": "y" * 4000})
def test_survey_answers_are_clean_or_form_errors(data: dict[str, Any]) -> None:
    answers = attempt(survey_answers, SURVEY, data, programme="kenya", locale="en")
    if answers is None:
        return
    assert set(answers.structured) <= {"overall", "safe", "seat"}
    assert answers.structured.get("overall", 3) in range(1, 6)
    if answers.request is not None:
        assert_clean(answers.request.validated())
    else:
        assert answers.structured
