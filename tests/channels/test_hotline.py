"""Hotline adapter: transcript files (CSV, JSON lines) with per-row errors, and IVR voicemail transcriptions."""

from __future__ import annotations

import codecs
import json
from datetime import UTC, datetime, timedelta

import pytest

from channels.base import MAX_TEXT_LENGTH, ChannelError, Contact
from channels.hotline import IVR_PLACEHOLDER, ImportBatch, RowError, parse_ivr_transcription, parse_transcripts

PHONE = "+254700000009"
HEADER = "transcript_id,text,language,programme,received_at,caller_phone,caller_name,consent,operator"


def csv_bytes(*lines: str, header: str = HEADER, bom: bool = False, delimiter: str = ",") -> bytes:
    """A CSV file as a spreadsheet would save it."""
    text = "\r\n".join([header.replace(",", delimiter), *lines]) + "\r\n"
    return (codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8")


def jsonl_bytes(*items: object) -> bytes:
    """A JSON-lines file; strings are written as they are (for broken lines)."""
    return "\n".join(item if isinstance(item, str) else json.dumps(item) for item in items).encode()


def errors_by_row(batch: ImportBatch) -> dict[int, str]:
    """Row number -> error code."""
    return {error.row: error.code for error in batch.errors}


# ---------------------------------------------------------------------------------------------------------------
# CSV


def test_csv_rows_become_hotline_requests() -> None:
    batch = parse_transcripts(
        csv_bytes(
            "T-1,The distribution list skipped our family.,en,kabul-evac,2024-05-01T10:30:00,"
            "+254 700 000 009,Amina,yes,op-7",
            'T-2,"Long wait, no water, at the transit centre",fa-AF,,2024-05-01T12:00:00+03:00,,,no,',
        ),
        filename="calls.csv",
    )
    assert batch.format == "csv"
    assert batch.errors == []
    [(row1, first), (row2, second)] = batch.requests
    assert (row1, row2) == (2, 3)
    assert first.channel == "hotline"
    assert first.provider_id == "T-1"
    assert first.text == "The distribution list skipped our family."
    assert first.language_hint == "en"
    assert first.programme == "kabul-evac"
    assert first.received_at == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    assert first.contact == Contact(name="Amina", phone=PHONE)
    assert first.consent_to_contact is True
    assert first.extra == {"source": "import", "operator": "op-7"}
    assert second.text == "Long wait, no water, at the transit centre"
    assert second.language_hint == "fa"
    assert second.programme is None
    assert second.received_at == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    assert second.contact.is_empty()
    assert second.consent_to_contact is False
    assert second.extra == {"source": "import"}


def test_csv_with_bom_and_semicolons() -> None:
    batch = parse_transcripts(
        csv_bytes(
            "1;الحافلة لم تأت، ونحن ننتظر منذ الصباح;ar", header="transcript_id;text;language", bom=True, delimiter=";"
        )
    )
    assert batch.errors == []
    [(row, request)] = batch.requests
    assert row == 2
    assert request.text == "الحافلة لم تأت، ونحن ننتظر منذ الصباح"
    assert request.language_hint == "ar"


def test_only_required_columns_and_loose_header_names() -> None:
    batch = parse_transcripts(csv_bytes("9,hello", header=" Transcript ID , TEXT "))
    assert batch.errors == []
    assert batch.requests[0][1].provider_id == "9"


def test_utf16_unicode_text_export_is_read() -> None:
    text = "transcript_id\ttext\r\nu1\tوضعیت ما خوب نیست\r\n"
    batch = parse_transcripts(codecs.BOM_UTF16_LE + text.encode("utf-16-le"), filename="calls.txt")
    assert batch.errors == []
    assert batch.requests[0][1].text == "وضعیت ما خوب نیست"


def test_quoted_multiline_text_keeps_spreadsheet_row_numbers() -> None:
    batch = parse_transcripts(
        csv_bytes('a,"first line\nsecond line, with comma"', "b,next row", header="transcript_id,text")
    )
    assert [(row, request.text) for row, request in batch.requests] == [
        (2, "first line\nsecond line, with comma"),
        (3, "next row"),
    ]


def test_latin1_file_is_refused_naming_the_line() -> None:
    data = "transcript_id,text\n1,fine\n2,caf\u00e9 cr\u00e8me\n3,also fine\n".encode("latin-1")
    with pytest.raises(ChannelError) as excinfo:
        parse_transcripts(data, filename="calls.csv")
    assert excinfo.value.code == "invalid_encoding"
    assert "line 3" in excinfo.value.message
    assert "UTF-8" in excinfo.value.message
    assert "caf" not in excinfo.value.message


def test_invalid_utf8_in_json_lines_is_refused() -> None:
    data = b'{"transcript_id": "1", "text": "ok"}\n{"transcript_id": "2", "text": "\xff\xfe"}\n'
    with pytest.raises(ChannelError) as excinfo:
        parse_transcripts(data, fmt="jsonl")
    assert excinfo.value.code == "invalid_encoding"
    assert "line 2" in excinfo.value.message


@pytest.mark.parametrize(
    ("header", "missing"),
    [("transcript_id,language", "text"), ("text,language", "transcript_id"), ("transcript_id;text_body", "text")],
)
def test_missing_column_is_a_file_error(header: str, missing: str) -> None:
    with pytest.raises(ChannelError) as excinfo:
        parse_transcripts(csv_bytes("1,x", header=header))
    assert excinfo.value.code == "missing_column"
    assert excinfo.value.field == missing
    assert f"column {missing} is missing" in excinfo.value.message


def test_duplicate_column_is_a_file_error() -> None:
    with pytest.raises(ChannelError) as excinfo:
        parse_transcripts(csv_bytes("1,a,b", header="transcript_id,text,Text"))
    assert excinfo.value.code == "duplicate_column"


def test_broken_rows_do_not_stop_good_ones() -> None:
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    batch = parse_transcripts(
        csv_bytes(
            "ok-1,good one,,,,,,,",  # row 2
            "no-text,,,,,,,,",  # row 3
            ",text without id,,,,,,,",  # row 4
            "bad-phone,text,,,,0700 000 009,,,",  # row 5
            "bad-consent,text,,,,,,perhaps,",  # row 6
            "bad-date,text,,,01/05/2024 10:00,,,,",  # row 7
            f"future,text,,,{future},,,,",  # row 8
            "bad-lang,text,Arabic language,,,,,,",  # row 9
            "shifted,text with, an unquoted comma,,,,,,,,surplus",  # row 10
            'stray,"quoted" then more,,,,,,,',  # row 11
            ",,,,,,,,",  # row 12: empty, skipped
            "",  # row 13: blank, skipped
            "ok-2,good two,,,,,,,",  # row 14
            "too-long," + "x" * (MAX_TEXT_LENGTH + 1) + ",,,,,,,",  # row 15
            "ok-3,good three,,,,,,,",  # row 16
        )
    )
    assert [(row, request.provider_id) for row, request in batch.requests] == [(2, "ok-1"), (14, "ok-2"), (16, "ok-3")]
    assert errors_by_row(batch) == {
        3: "missing_value",
        4: "missing_value",
        5: "invalid_phone",
        6: "invalid_consent",
        7: "invalid_date",
        8: "invalid_date",
        9: "invalid_language",
        10: "extra_fields",
        11: "malformed_row",
        15: "text_too_long",
    }
    fields = {error.row: error.field for error in batch.errors}
    assert fields[3] == "text" and fields[5] == "caller_phone" and fields[9] == "language"
    assert next(error for error in batch.errors if error.row == 5).transcript_id == "bad-phone"


def test_unclosed_quote_is_reported() -> None:
    batch = parse_transcripts(csv_bytes("1,fine", '2,"never closed', "3,swallowed", header="transcript_id,text"))
    assert [row for row, _ in batch.requests] == [2]
    [error] = batch.errors
    assert error.code == "unclosed_quote"
    assert error.row == 3


def test_two_megabyte_field_is_a_row_error_and_the_next_row_survives() -> None:
    data = csv_bytes("1," + "x" * (2 * 1024 * 1024), "2,after the big one", header="transcript_id,text")
    batch = parse_transcripts(data)
    assert [(error.row, error.code) for error in batch.errors] == [(2, "text_too_long")]
    assert [(row, request.provider_id) for row, request in batch.requests] == [(3, "2")]


def test_duplicate_transcript_ids_in_one_file() -> None:
    batch = parse_transcripts(csv_bytes("A,first", "B,second", "A,again", "A,and again", header="transcript_id,text"))
    assert [request.provider_id for _, request in batch.requests] == ["A", "B"]
    assert [(error.row, error.code, error.transcript_id) for error in batch.duplicates] == [
        (4, "duplicate", "A"),
        (5, "duplicate", "A"),
    ]
    assert "row 2" in batch.duplicates[0].message


def test_extra_columns_are_reported_as_ignored() -> None:
    batch = parse_transcripts(csv_bytes("1,hello,x,y", header="transcript_id,text,Call Duration,notes"))
    assert batch.ignored_columns == ["call_duration", "notes"]
    assert len(batch.requests) == 1


def test_trailing_empty_cells_are_tolerated() -> None:
    batch = parse_transcripts(csv_bytes("1,hello,,", "2,short", header="transcript_id,text,language"))
    assert batch.errors == []
    assert [request.text for _, request in batch.requests] == ["hello", "short"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", True),
        ("YES", True),
        ("true", True),
        ("1", True),
        ("oui", True),
        ("Sí", True),
        ("نعم", True),
        ("بله", True),
        ("да", True),
        ("так", True),
        ("haa", True),
        ("ndiyo", True),
        ("አዎ", True),
        ("no", False),
        ("FALSE", False),
        ("0", False),
        ("non", False),
        ("لا", False),
        ("نه", False),
        ("нет", False),
        ("ні", False),
        ("maya", False),
        ("hapana", False),
        ("", False),
    ],
)
def test_consent_values(value: str, expected: bool) -> None:
    batch = parse_transcripts(csv_bytes(f"1,hello,{value}", header="transcript_id,text,consent"))
    assert batch.errors == []
    assert batch.requests[0][1].consent_to_contact is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("ar", "ar"), ("AR", "ar"), ("fa_AF", "fa"), ("prs", "fa"), ("Dari", "fa"), ("Pashto", "ps"), ("uk-UA", "uk")],
)
def test_language_values(value: str, expected: str) -> None:
    batch = parse_transcripts(csv_bytes(f"1,hello,{value}", header="transcript_id,text,language"))
    assert batch.requests[0][1].language_hint == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01 08:15", datetime(2024, 5, 1, 8, 15, tzinfo=UTC)),
        ("2024-05-01T08:15:00Z", datetime(2024, 5, 1, 8, 15, tzinfo=UTC)),
        ("2024-05-01T08:15:00+04:30", datetime(2024, 5, 1, 3, 45, tzinfo=UTC)),
    ],
)
def test_received_at_values(value: str, expected: datetime) -> None:
    batch = parse_transcripts(csv_bytes(f"1,hello,{value}", header="transcript_id,text,received_at"))
    assert batch.requests[0][1].received_at == expected


def test_row_errors_never_quote_the_text_or_the_phone() -> None:
    batch = parse_transcripts(
        csv_bytes("1,secret words,+1 bad phone,", "2,,,maybe", header="transcript_id,text,caller_phone,consent")
    )
    for error in batch.errors:
        assert "secret" not in error.message and "bad phone" not in error.message


def test_empty_file_and_wrong_input() -> None:
    for data in (b"", b"  \n\n", codecs.BOM_UTF8):
        with pytest.raises(ChannelError) as excinfo:
            parse_transcripts(data)
        assert excinfo.value.code == "empty_file"
    with pytest.raises(ChannelError) as excinfo:
        parse_transcripts("transcript_id,text\n1,x\n")  # type: ignore[arg-type]
    assert excinfo.value.code == "invalid_file"
    with pytest.raises(ChannelError) as excinfo:
        parse_transcripts(b"transcript_id,text\n1,x\n", fmt="xlsx")
    assert excinfo.value.code == "unsupported_format"


def test_header_only_file_is_an_empty_batch() -> None:
    batch = parse_transcripts(csv_bytes(header="transcript_id,text"))
    assert batch.requests == [] and batch.errors == []


# ---------------------------------------------------------------------------------------------------------------
# JSON lines and JSON


def test_json_lines_with_bad_lines_among_good_ones() -> None:
    data = jsonl_bytes(
        {"transcript_id": "j1", "text": "Need a wheelchair at the airport", "consent": True, "language": "en"},
        "",
        "[1, 2, 3]",
        '"just a string"',
        "42",
        "null",
        '{"transcript_id": "j2", "text": "unterminated',
        {"transcript_id": 17, "text": "Numbers as ids are fine", "caller_phone": "+254700000009"},
        {"transcript_id": "j3", "text": "Name must be text", "caller_name": 12},
        {"transcript_id": "j1", "text": "Same id again"},
        {"transcript_id": True, "text": "Boolean id"},
        {"text": "No id"},
        {"transcript_id": "j4", "text": 3.5},
        {"Transcript_ID": "j5", "TEXT": "Keys are case-insensitive", "duration": 30},
    )
    batch = parse_transcripts(data, filename="calls.jsonl")
    assert batch.format == "jsonl"
    assert [(row, request.provider_id) for row, request in batch.requests] == [(1, "j1"), (8, "17"), (14, "j5")]
    assert batch.requests[0][1].consent_to_contact is True
    assert batch.requests[1][1].contact.phone == PHONE
    assert errors_by_row(batch) == {
        3: "not_an_object",
        4: "not_an_object",
        5: "not_an_object",
        6: "not_an_object",
        7: "invalid_json",
        9: "invalid_field",
        10: "duplicate",
        11: "missing_value",
        12: "missing_value",
        13: "invalid_text",
    }
    assert batch.ignored_columns == ["duration"]


def test_json_lines_keep_unicode_line_separators_inside_strings() -> None:
    data = '{"transcript_id": "u", "text": "one\u2028two"}\n'.encode()
    batch = parse_transcripts(data)
    assert batch.errors == []
    assert batch.requests[0][1].text == "one\u2028two"


def test_json_line_with_two_megabytes_of_text_is_a_row_error() -> None:
    batch = parse_transcripts(
        jsonl_bytes({"transcript_id": "big", "text": "x" * (2 * 1024 * 1024)}, {"transcript_id": "s", "text": "ok"})
    )
    assert [(error.row, error.code) for error in batch.errors] == [(1, "text_too_long")]
    assert [row for row, _ in batch.requests] == [2]


def test_json_array_file() -> None:
    data = json.dumps([{"transcript_id": "a", "text": "first"}, "not an object", {"transcript_id": "b", "text": "x"}])
    batch = parse_transcripts(data.encode(), filename="calls.json")
    assert batch.format == "json"
    assert [(row, request.provider_id) for row, request in batch.requests] == [(1, "a"), (3, "b")]
    assert batch.errors == [RowError(2, "not_an_object", "This line is not a JSON object.")]


def test_broken_json_array_is_a_file_error() -> None:
    with pytest.raises(ChannelError) as excinfo:
        parse_transcripts(b'[{"transcript_id": "a", "text": "x"},', fmt="json")
    assert excinfo.value.code == "invalid_json"


@pytest.mark.parametrize(
    ("data", "filename", "fmt", "expected"),
    [
        (b'{"transcript_id": "1", "text": "x"}', None, None, "jsonl"),
        (b'[{"transcript_id": "1", "text": "x"}]', None, None, "json"),
        (b"transcript_id,text\n1,x", None, None, "csv"),
        (b'{"transcript_id": "1", "text": "x"}', "export.json", None, "jsonl"),
        (b'{"transcript_id": "1", "text": "x"}', "export.ndjson", None, "jsonl"),
        (b'{"transcript_id": "1", "text": "x"}', None, "NDJSON", "jsonl"),
        (b"transcript_id,text\n1,x", "calls.CSV", None, "csv"),
    ],
)
def test_format_detection(data: bytes, filename: str | None, fmt: str | None, expected: str) -> None:
    batch = parse_transcripts(data, filename=filename, fmt=fmt)
    assert batch.format == expected
    assert len(batch.requests) == 1


# ---------------------------------------------------------------------------------------------------------------
# IVR


def ivr_form(**fields: str) -> dict[str, str]:
    """A Twilio transcription callback."""
    form = {
        "AccountSid": "AC" + "1" * 32,
        "CallSid": "CA" + "2" * 32,
        "RecordingSid": "RE" + "3" * 32,
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE3",
        "TranscriptionSid": "TR" + "4" * 32,
        "TranscriptionStatus": "completed",
        "TranscriptionText": "The shelter has no heating and my children are sick.",
        "TranscriptionUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Transcriptions/TR4",
        "From": PHONE,
        "To": "+15005550006",
        "CallStatus": "completed",
    }
    form.update(fields)
    return {key: value for key, value in form.items() if value is not None}


def test_ivr_transcription_becomes_a_request() -> None:
    request = parse_ivr_transcription(ivr_form())
    assert request.channel == "ivr"
    assert request.provider_id == "RE" + "3" * 32
    assert request.text == "The shelter has no heating and my children are sick."
    assert request.contact.phone == PHONE
    assert request.consent_to_contact is False
    assert request.to_number == "+15005550006"
    assert request.extra["recording_url"] == "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE3"
    assert request.extra["call_sid"] == "CA" + "2" * 32
    assert request.extra["transcription_missing"] is False


@pytest.mark.parametrize(
    "fields",
    [
        {"TranscriptionStatus": "failed", "TranscriptionText": ""},
        {"TranscriptionStatus": "failed", "TranscriptionText": "partial garbage"},
        {"TranscriptionStatus": "completed", "TranscriptionText": "   "},
        # The recording callback, before any transcription.
        {"TranscriptionStatus": None, "TranscriptionText": None, "TranscriptionSid": None, "RecordingDuration": "42"},
    ],
)
def test_voicemail_without_transcription_is_kept(fields: dict[str, str | None]) -> None:
    request = parse_ivr_transcription(ivr_form(**fields))  # type: ignore[arg-type]
    assert request.text == IVR_PLACEHOLDER
    assert request.extra["transcription_missing"] is True
    assert request.extra["recording_url"].endswith("/Recordings/RE3")
    assert request.provider_id == "RE" + "3" * 32


def test_recording_duration_is_noted() -> None:
    request = parse_ivr_transcription(ivr_form(TranscriptionText=None, RecordingDuration="42"))  # type: ignore[arg-type]
    assert request.extra["recording_duration"] == 42


def test_unusable_transcription_keeps_the_voicemail() -> None:
    request = parse_ivr_transcription(ivr_form(TranscriptionText="x" * (MAX_TEXT_LENGTH + 1)))
    assert request.text == IVR_PLACEHOLDER
    assert request.extra["transcription_rejected"] == "text_too_long"


@pytest.mark.parametrize("caller", ["+266696687", "+7378742833", "anonymous", "Restricted"])
def test_withheld_caller_id_is_not_a_contact(caller: str) -> None:
    request = parse_ivr_transcription(ivr_form(From=caller))
    assert request.contact.phone is None
    assert request.extra["caller_id"] == "withheld"


def test_call_sid_is_the_fallback_id_and_one_is_required() -> None:
    assert parse_ivr_transcription(ivr_form(RecordingSid="")).provider_id == "CA" + "2" * 32
    with pytest.raises(ChannelError) as excinfo:
        parse_ivr_transcription(ivr_form(RecordingSid="", CallSid=""))
    assert excinfo.value.code == "missing_field"


def test_ivr_language_hint_from_the_menu() -> None:
    assert parse_ivr_transcription(ivr_form(), language_hint="ps").language_hint == "ps"
