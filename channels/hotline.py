"""Hotline: transcript files (CSV or JSON lines) and IVR voicemail transcriptions -> IntakeRequests."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from channels.base import MAX_TEXT_LENGTH, ChannelError, Contact, IntakeRequest, clean_text
from channels.sms import E164, fold_word, parse_phone
from channels.web import SERIOUS_HINT, FormErrors

REQUIRED_COLUMNS: Final = ("transcript_id", "text")
OPTIONAL_COLUMNS: Final = (
    "language", "programme", "received_at", "caller_phone", "caller_name", "consent", "operator",
)  # fmt: skip
FORMATS: Final = ("csv", "jsonl", "json")
# Far above any real batch of call transcripts; the upload route has its own, lower limit.
MAX_FILE_BYTES: Final = 50 * 1024 * 1024
# A date this far in the future is a typing error, not a call.
FUTURE_TOLERANCE: Final = timedelta(days=1)
IVR_PLACEHOLDER: Final = "[voicemail without transcription]"
T = TypeVar("T")
# What Twilio puts in From when the caller withheld the number (the words spelled on a keypad).
WITHHELD_NUMBERS: Final = frozenset({"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"})

_YES: Final = frozenset(
    fold_word(word)
    for word in (
        "yes", "y", "true", "1", "oui", "si", "sí", "نعم", "بله", "آره", "هو", "да", "так", "haa", "ndiyo", "ndio",
        "አዎ", "እወ",
    )
)  # fmt: skip
_NO: Final = frozenset(
    fold_word(word)
    for word in (
        "no", "n", "false", "0", "non", "لا", "نه", "نخیر", "нет", "ні", "maya", "hapana", "አይ", "የለም", "ኣይ", "ኣይፋል",
    )
)  # fmt: skip
# Language names and ISO 639-2/3 codes an operator may write instead of our two-letter codes.
_LANGUAGE_ALIASES: Final[dict[str, str]] = {
    "english": "en", "eng": "en", "french": "fr", "français": "fr", "francais": "fr", "fra": "fr", "fre": "fr",
    "spanish": "es", "español": "es", "espanol": "es", "spa": "es", "arabic": "ar", "العربية": "ar", "ara": "ar",
    "dari": "fa", "prs": "fa", "farsi": "fa", "persian": "fa", "fas": "fa", "per": "fa", "pes": "fa",
    "دری": "fa", "فارسی": "fa", "pashto": "ps", "pus": "ps", "pbt": "ps", "پښتو": "ps",
    "ukrainian": "uk", "українська": "uk", "ukr": "uk", "russian": "ru", "русский": "ru", "rus": "ru",
    "somali": "so", "soomaali": "so", "som": "so", "swahili": "sw", "kiswahili": "sw", "swa": "sw", "swh": "sw",
    "amharic": "am", "አማርኛ": "am", "amh": "am", "tigrinya": "ti", "ትግርኛ": "ti", "tir": "ti",
}  # fmt: skip
_LANGUAGE_CODE: Final = re.compile(r"[a-z]{2,3}")


@dataclasses.dataclass(frozen=True)
class RowError:
    """One rejected row: its number as the user sees it (CSV header = row 1; JSON lines: the line number)."""

    row: int
    code: str
    message: str
    transcript_id: str | None = None
    field: str | None = None


@dataclasses.dataclass
class ImportBatch:
    """What a transcript file holds: requests with their row numbers, and the rows that were refused."""

    format: str
    requests: list[tuple[int, IntakeRequest]] = dataclasses.field(default_factory=list)
    errors: list[RowError] = dataclasses.field(default_factory=list)
    ignored_columns: list[str] = dataclasses.field(default_factory=list)

    @property
    def duplicates(self) -> list[RowError]:
        """Rows refused because their transcript_id appeared earlier in the file."""
        return [error for error in self.errors if error.code == "duplicate"]


def parse_transcripts(data: bytes, *, filename: str | None = None, fmt: str | None = None) -> ImportBatch:
    """A transcript file -> ImportBatch; file-level problems (encoding, missing column) raise ChannelError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ChannelError("invalid_file", "The file must be given as bytes.", field="file")
    raw = bytes(data)
    if len(raw) > MAX_FILE_BYTES:
        raise ChannelError(
            "file_too_large", f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.", field="file"
        )
    text = _decode(raw)
    if not text.strip():
        raise ChannelError("empty_file", "The file is empty.", field="file")
    kind = _format(text, filename, fmt)
    batch = ImportBatch(format=kind)
    records = _csv_records(text, batch) if kind == "csv" else _json_records(text, batch, kind)
    seen: dict[str, int] = {}
    for row, record in records:
        try:
            request = _request(record, row, seen)
        except ChannelError as exc:
            batch.errors.append(RowError(row, exc.code, exc.message, _transcript_id(record), exc.field))
        else:
            batch.requests.append((row, request))
    return batch


def _decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), or UTF-16 with a BOM (Excel's "Unicode text"); never a guessed encoding."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ChannelError("invalid_encoding", "The file is not valid UTF-16.", field="file") from exc
    body = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise ChannelError(
            "invalid_encoding",
            f"The file is not UTF-8: line {line} has characters in another encoding (Latin-1 or Windows-1252?). "
            'Save it as "CSV UTF-8" and import it again; nothing was imported.',
            field="file",
        ) from exc


def _format(text: str, filename: str | None, fmt: str | None) -> str:
    """csv, jsonl or json: as asked, else from the file name, else from the first character."""
    if fmt is not None:
        kind = fmt.strip().lower().lstrip(".")
        kind = {"ndjson": "jsonl", "tsv": "csv"}.get(kind, kind)
        if kind not in FORMATS:
            raise ChannelError("unsupported_format", "The format must be csv, jsonl or json.", field="format")
        return kind
    suffix = (filename or "").rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
    first = text.lstrip()[:1]
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix == "json":
        return "json" if first == "[" else "jsonl"
    if suffix in ("csv", "tsv", "txt"):
        return "csv"
    return {"{": "jsonl", "[": "json"}.get(first, "csv")


# ---------------------------------------------------------------------------------------------------------------
# CSV


def _csv_records(text: str, batch: ImportBatch) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a CSV file as dicts keyed by the normalised header; broken rows become RowErrors on the way."""
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ChannelError("invalid_header", f"The header row is not valid CSV ({exc}).", field="file") from exc
    names = [_column(name) for name in header]
    doubled = sorted({name for name in names if name and names.count(name) > 1})
    if doubled:
        raise ChannelError("duplicate_column", f"The column {doubled[0]} appears more than once.", field=doubled[0])
    for required in REQUIRED_COLUMNS:
        if required not in names:
            found = ", ".join(name for name in names if name) or "none"
            raise ChannelError(
                "missing_column",
                f"The required column {required} is missing (columns found: {found}).",
                field=required,
            )
    batch.ignored_columns = [name for name in names if name and name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    return _csv_rows(reader, names, batch)


def _csv_rows(reader: Any, names: list[str], batch: ImportBatch) -> Iterator[tuple[int, dict[str, Any]]]:
    """Data rows numbered as in a spreadsheet (the header is row 1); one bad row never stops the others."""
    row = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row += 1
            batch.errors.append(_csv_error(row, exc))
            continue
        row += 1
        if not any(value.strip() for value in values):
            continue
        if len(values) > len(names) and any(value.strip() for value in values[len(names) :]):
            batch.errors.append(
                RowError(
                    row,
                    "extra_fields",
                    f"The row has {len(values)} fields but the header has {len(names)} "
                    "(a separator inside an unquoted text?).",
                )
            )
            continue
        yield row, {name: value for name, value in zip(names, values, strict=False) if name}


def _csv_error(row: int, exc: csv.Error) -> RowError:
    """A readable RowError for what the csv module refused (its messages never quote the data)."""
    reason = str(exc)
    if "field larger than field limit" in reason:
        return RowError(row, "text_too_long", f"A field of this row is far longer than {MAX_TEXT_LENGTH} characters.")
    if "unexpected end of data" in reason:
        return RowError(
            row, "unclosed_quote", "A quoted field starting on this row is never closed; the rows after it are lost."
        )
    return RowError(row, "malformed_row", f"The row is not valid CSV ({reason}).")


def _delimiter(text: str) -> str:
    """The separator the header line uses most: `;` (spreadsheets in many locales), `,` or a tab."""
    header = text.split("\n", 1)[0]
    counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _column(name: str) -> str:
    """A header cell as a column key: trimmed, lower case, spaces and hyphens as underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().strip("\ufeff").lower())


# ---------------------------------------------------------------------------------------------------------------
# JSON lines and JSON arrays


def _json_records(text: str, batch: ImportBatch, kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Objects of a JSON-lines file (numbered by line) or of a JSON array (numbered from 1)."""
    ignored: dict[str, None] = {}
    for row, item in _json_items(text, batch, kind):
        if not isinstance(item, dict):
            batch.errors.append(RowError(row, "not_an_object", "This line is not a JSON object."))
            continue
        record = {str(key).strip().lower(): value for key, value in item.items()}
        for key in record:
            if key not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
                ignored[key] = None
        batch.ignored_columns = list(ignored)
        yield row, record


def _json_items(text: str, batch: ImportBatch, kind: str) -> Iterator[tuple[int, Any]]:
    """Decoded JSON values with their row numbers; undecodable lines become RowErrors."""
    if kind == "json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ChannelError(
                "invalid_json", f"The file is not valid JSON ({exc.msg}, line {exc.lineno}).", field="file"
            ) from exc
        if not isinstance(items, list):
            raise ChannelError("invalid_json", "A JSON file must hold a list of objects.", field="file")
        yield from enumerate(items, start=1)
        return
    # Split on \n only: U+2028 and friends may stand unescaped inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            batch.errors.append(
                RowError(number, "invalid_json", f"This line is not valid JSON ({exc.msg}, column {exc.colno}).")
            )
        except RecursionError:
            batch.errors.append(RowError(number, "invalid_json", "This line is nested too deeply."))


# ---------------------------------------------------------------------------------------------------------------
# One row


def _request(record: Mapping[str, Any], row: int, seen: dict[str, int]) -> IntakeRequest:
    """One record -> a validated IntakeRequest, or ChannelError naming the field."""
    transcript_id = _transcript_id(record)
    if transcript_id is None:
        raise ChannelError("missing_value", "The transcript_id is empty.", field="transcript_id")
    if transcript_id in seen:
        raise ChannelError(
            "duplicate",
            f"The transcript_id {transcript_id} already appears on row {seen[transcript_id]}.",
            field="transcript_id",
        )
    seen[transcript_id] = row
    text = record.get("text")
    if text is None or (isinstance(text, str) and not text.strip()):
        raise ChannelError("missing_value", "The text is empty.", field="text")
    if not isinstance(text, str):
        raise ChannelError("invalid_text", "The text must be a string.", field="text")
    phone_value = _string(record, "caller_phone")
    phone = parse_phone(phone_value)
    if phone_value and phone is None:
        raise ChannelError(
            "invalid_phone",
            "The caller_phone is not an international number (+ and country code).",
            field="caller_phone",
        )
    extra: dict[str, Any] = {"source": "import"}
    operator = _string(record, "operator")
    if operator:
        extra["operator"] = operator
    request = IntakeRequest(
        channel="hotline",
        text=text,
        provider_id=transcript_id,
        programme=_string(record, "programme"),
        received_at=_received_at(record.get("received_at")),
        language_hint=_language(_string(record, "language")),
        contact=Contact(name=_string(record, "caller_name"), phone=phone),
        consent_to_contact=_consent(record.get("consent")),
        extra=extra,
    )
    return request.validated()


def _transcript_id(record: Mapping[str, Any]) -> str | None:
    """The transcript id as text (JSON integers allowed), or None when absent or unusable."""
    value = record.get("transcript_id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _string(record: Mapping[str, Any], key: str) -> str | None:
    """An optional text field: stripped, empty -> None; numbers and other types are refused."""
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChannelError("invalid_field", f"The {key} must be text.", field=key)
    return value.strip() or None


def _received_at(value: object) -> datetime | None:
    """ISO 8601 date-time as an aware UTC datetime (a naive one is UTC); empty -> None (now)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ChannelError("invalid_date", "The received_at must be an ISO 8601 date-time.", field="received_at")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ChannelError(
            "invalid_date",
            "The received_at is not an ISO 8601 date-time (for example 2024-05-01T14:30:00).",
            field="received_at",
        ) from exc
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise ChannelError("invalid_date", "The received_at is in the future.", field="received_at")
    return moment


def _language(value: str | None) -> str | None:
    """A language code (en, fa, ps...) from a code, a tag (fa-AF) or a language name; None when empty."""
    if value is None:
        return None
    folded = value.strip().casefold().replace("_", "-")
    if folded in _LANGUAGE_ALIASES:
        return _LANGUAGE_ALIASES[folded]
    primary = folded.split("-", 1)[0]
    primary = _LANGUAGE_ALIASES.get(primary, primary)
    if _LANGUAGE_CODE.fullmatch(primary):
        return primary
    raise ChannelError("invalid_language", "The language is not a language code such as ar or fa.", field="language")


def _consent(value: object) -> bool:
    """yes/no, true/false, 1/0 (and yes/no in our languages); empty means no consent."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        folded = fold_word(value.strip())
        if not folded or folded in _NO:
            return False
        if folded in _YES:
            return True
    raise ChannelError("invalid_consent", "The consent must be yes or no.", field="consent")


# ---------------------------------------------------------------------------------------------------------------
# One call entered by an operator in the console (issue 5)

# The form's field names; the console form uses the same names.
CALL_FIELDS: Final = ("text", "programme", "language", "caller_name", "caller_phone", "consent", "serious")
_CHECKED: Final = frozenset({"y", "yes", "on", "true", "1"})
# Where IntakeRequest.validated() names a contact field differently from the form.
_CALL_FIELD_NAMES: Final = {"name": "caller_name", "phone": "caller_phone"}


def call_request(
    data: Mapping[str, str],
    *,
    programme_choices: Collection[str],
    languages: Collection[str] = (),
    call_id: str | None = None,
    operator: str | None = None,
) -> IntakeRequest:
    """An operator's call form -> a validated IntakeRequest; FormErrors lists every wrong field (nothing is stored).

    The caller's name and number are kept only with their consent, and consent needs a number to call back on;
    "serious" sets the same hint as the web form's "something serious" choice (the case goes to the focal points).
    """
    errors: list[ChannelError] = []
    text = _collect_call(errors, lambda: clean_text(data.get("text", ""), field="text"))
    programme = (data.get("programme") or "").strip()
    if not programme:
        errors.append(ChannelError("choice_required", "Choose the programme.", field="programme"))
    elif programme not in programme_choices:
        errors.append(ChannelError("invalid_choice", "This is not one of the programmes.", field="programme"))
    language = _collect_call(errors, lambda: _language((data.get("language") or "").strip() or None))
    if language is not None and languages and language not in languages:
        errors.append(ChannelError("invalid_language", "This is not one of the languages.", field="language"))
    consent = _checked(data.get("consent"))
    raw_phone = (data.get("caller_phone") or "").strip()
    phone = parse_phone(raw_phone)
    name = (data.get("caller_name") or "").strip() or None
    if raw_phone and phone is None:
        errors.append(
            ChannelError("invalid_phone", "The number is not an international number (+ and country code).",
                         field="caller_phone")
        )  # fmt: skip
    elif consent and phone is None:
        errors.append(ChannelError("phone_required", "Consent needs a number to call back on.", field="caller_phone"))
    if (name or phone) and not consent:
        errors.append(
            ChannelError("consent_required", "Contact details are kept only with the caller's consent.",
                         field="consent")
        )  # fmt: skip
    extra: dict[str, Any] = {"source": "console"}
    if operator:
        extra["operator"] = operator
    request = IntakeRequest(
        channel="hotline",
        text=text or "",
        provider_id=call_id,
        programme=programme or None,
        language_hint=language,
        contact=Contact(name=name, phone=phone) if consent else Contact(),
        consent_to_contact=consent and phone is not None,
        category_hint=SERIOUS_HINT if _checked(data.get("serious")) else None,
        extra=extra,
    )
    if errors:
        raise FormErrors(errors)
    try:
        return request.validated()
    except ChannelError as exc:
        field = _CALL_FIELD_NAMES.get(exc.field or "", exc.field)
        raise FormErrors([ChannelError(exc.code, exc.message, field=field)]) from exc


def _checked(value: str | None) -> bool:
    """A ticked checkbox (WTForms sends "y", browsers "on")."""
    return isinstance(value, str) and value.strip().lower() in _CHECKED


def _collect_call(errors: list[ChannelError], check: Callable[[], T]) -> T | None:
    """Run one check; record its ChannelError instead of stopping at the first wrong field."""
    try:
        return check()
    except ChannelError as exc:
        errors.append(exc)
        return None


# ---------------------------------------------------------------------------------------------------------------
# IVR voicemail


def parse_ivr_transcription(form: Mapping[str, str], *, language_hint: str | None = None) -> IntakeRequest:
    """Twilio's recording or transcription callback -> IntakeRequest; a voicemail without text keeps a placeholder.

    Both callbacks carry the same RecordingSid, so they name one case; when the transcription arrives after
    the recording, the caller (the webhook) replaces the placeholder text of that case.
    """
    recording_sid = _form(form, "RecordingSid")
    call_sid = _form(form, "CallSid")
    provider_id = recording_sid or call_sid
    if not provider_id:
        raise ChannelError("missing_field", "The field RecordingSid is missing.", field="RecordingSid")
    status = (_form(form, "TranscriptionStatus") or "").lower() or None
    extra: dict[str, Any] = {
        key: value
        for key, value in (
            ("recording_sid", recording_sid),
            ("call_sid", call_sid),
            ("recording_url", _form(form, "RecordingUrl")),
            ("transcription_sid", _form(form, "TranscriptionSid")),
            ("transcription_status", status),
        )
        if value
    }
    duration = _form(form, "RecordingDuration")
    if duration and duration.isdigit():
        extra["recording_duration"] = int(duration)
    caller = _form(form, "From")
    phone = caller if caller and E164.fullmatch(caller) and caller not in WITHHELD_NUMBERS else None
    if caller and phone is None:
        extra["caller_id"] = "withheld"
    to_number = _form(form, "To")
    text = _form(form, "TranscriptionText")
    request = IntakeRequest(
        channel="ivr",
        text=text or IVR_PLACEHOLDER,
        provider_id=provider_id,
        to_number=to_number,
        language_hint=language_hint,
        contact=Contact(phone=phone),
        extra=extra,
    )
    if text and status in (None, "completed"):
        try:
            return dataclasses.replace(request, extra={**extra, "transcription_missing": False}).validated()
        except ChannelError as exc:
            if exc.field != "text":
                raise
            # An unusable transcription must not lose the voicemail: keep the recording, flag it for listening.
            extra["transcription_rejected"] = exc.code
    return dataclasses.replace(
        request, text=IVR_PLACEHOLDER, extra={**extra, "transcription_missing": True}
    ).validated()


def _form(form: Mapping[str, str], name: str) -> str | None:
    """A stripped form value; empty becomes None."""
    value = form.get(name)
    if value is None:
        return None
    return str(value).strip() or None
