"""Web form and survey answers -> IntakeRequest (pure Python: no Flask, no database).

The public blueprint hands over the submitted fields as a mapping of strings (bytes for a value that was
not valid UTF-8); everything a person can get wrong is reported as a ChannelError naming the field, so
the page can show the message next to it, in the person's language (the code selects the words).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from channels.base import MAX_TEXT_LENGTH, ChannelError, Contact, IntakeRequest, clean_text, decode_utf8

# One value per field; a list of values for a field sent several times (the boxes ticked in a checkbox group).
FormValue = str | bytes | Sequence[str | bytes]
FormData = Mapping[str, FormValue]
T = TypeVar("T")

# A field people never see (hidden by the stylesheet); bots that fill every input fill it too (issue 4).
HONEYPOT_FIELD = "website"
# A random token put in the form when it is shown: sending the same form twice (double tap on a slow
# network, reload of the confirmation page) makes one case, because intake is idempotent on it.
SUBMISSION_FIELD = "submission"
_SUBMISSION = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

# Plain-words choices on the form -> the hint code stored on the case. "serious" is not one category:
# the person says it is about abuse, exploitation, fraud, misconduct or danger (the restricted group).
CATEGORY_HINTS: dict[str, str] = {
    "question": "information_request",
    "request": "assistance_request",
    "complaint": "service_complaint",
    "suggestion": "suggestion",
    "thanks": "appreciation",
    "serious": "serious",
}
SERIOUS_HINT = "serious"

CONTACT_METHODS = ("call", "sms", "whatsapp")
MAX_NAME_LENGTH = 200
_PHONE_ALLOWED = re.compile(r"^\+?[0-9 ().-]{6,32}$")
_PHONE_DIGITS = (6, 15)

QUESTION_TYPES = ("rating", "yes_no", "single_choice", "multiple_choice", "free_text")
OPTION_TYPES = ("single_choice", "multiple_choice")
RATING_VALUES = (1, 2, 3, 4, 5)
YES_NO_VALUES = {"yes": True, "no": False}
_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
FALLBACK_LOCALE = "en"


class FormErrors(ChannelError):
    """Several fields are wrong at once; `errors` holds one ChannelError per field, in form order."""

    def __init__(self, errors: list[ChannelError]) -> None:
        first = errors[0]
        super().__init__(first.code, first.message, field=first.field)
        self.errors = errors


class DefinitionError(ValueError):
    """A survey definition that cannot be used; the message says what is wrong and where."""


class TooManyChoices(ChannelError):
    """More boxes ticked than a multiple-choice question allows; `limit` is its max_choices."""

    def __init__(self, limit: int, *, field: str) -> None:
        super().__init__("too_many_choices", f"At most {limit} choices are allowed.", field=field)
        self.limit = limit


# --- feedback form -------------------------------------------------------------------------------------


def honeypot_filled(data: FormData) -> bool:
    """True when the hidden honeypot field carries anything: the sender is a bot."""
    value = data.get(HONEYPOT_FIELD)
    return bool(value.strip()) if isinstance(value, str | bytes) else False


def submission_id(data: FormData) -> str | None:
    """The form's idempotency token when it is well formed, else None (never an error for the person)."""
    value = data.get(SUBMISSION_FIELD)
    return value if isinstance(value, str) and _SUBMISSION.match(value) else None


def feedback_request(
    data: FormData,
    *,
    programme: str | None,
    programme_choices: Collection[str] = (),
    locale: str | None = None,
) -> IntakeRequest:
    """Validate the feedback form; raise FormErrors listing every wrong field, else return the request."""
    errors: list[ChannelError] = []
    chosen = programme
    if chosen is None:
        chosen = _choice(data, "programme", programme_choices, errors, required=True)
    text = _collect(errors, lambda: clean_text(data.get("text", ""), field="text"))
    hint = _choice(data, "category", CATEGORY_HINTS, errors)
    contact, method = _contact(data, errors)
    if errors:
        raise FormErrors(errors)
    extra: dict[str, Any] = {}
    if locale:
        extra["ui_locale"] = locale
    if method:
        extra["contact_method"] = method
    return IntakeRequest(
        channel="web",
        text=text or "",
        provider_id=submission_id(data),
        programme=chosen,
        contact=contact,
        consent_to_contact=not contact.is_empty(),
        category_hint=CATEGORY_HINTS[hint] if hint else None,
        extra=extra,
    )


def _contact(data: FormData, errors: list[ChannelError]) -> tuple[Contact, str | None]:
    """Contact details only when the person asked to be contacted; otherwise nothing is kept."""
    wants = _choice(data, "contact", ("yes", "no"), errors)
    if wants != "yes":
        return Contact(), None
    method = _choice(data, "method", CONTACT_METHODS, errors)
    phone = _collect(errors, lambda: normalise_phone(data.get("phone")))
    name = _collect(errors, lambda: _short_text(data.get("name"), "name", MAX_NAME_LENGTH))
    if phone is None and not any(e.field == "phone" for e in errors):
        errors.append(ChannelError("phone_required", "A phone number is needed to contact you.", field="phone"))
    return Contact(name=name, phone=phone), method


def normalise_phone(value: object) -> str | None:
    """A phone number as typed (spaces, dots, dashes, brackets allowed) -> '+' and digits; empty -> None."""
    text = _short_text(value, "phone", 40)
    if text is None:
        return None
    text = unicodedata.normalize("NFKC", text)  # full-width and Arabic-Indic digits become ASCII digits
    text = "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text)
    digits = re.sub(r"[^0-9]", "", text)
    if not _PHONE_ALLOWED.match(text) or not _PHONE_DIGITS[0] <= len(digits) <= _PHONE_DIGITS[1]:
        raise ChannelError("invalid_phone", "This does not look like a phone number.", field="phone")
    return ("+" if text.startswith("+") else "") + digits


def _short_text(value: object, field: str, limit: int) -> str | None:
    """An optional one-line field: text without NUL or line breaks, at most `limit` characters."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = decode_utf8(bytes(value), field=field)
    if not isinstance(value, str) or "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ChannelError("invalid_field", "This field contains characters that are not allowed.", field=field)
    value = " ".join(unicodedata.normalize("NFC", value).split())
    if len(value) > limit:
        raise ChannelError("field_too_long", "This field is too long.", field=field)
    return value or None


def _choice(
    data: FormData, field: str, allowed: Collection[str], errors: list[ChannelError], *, required: bool = False
) -> str | None:
    """One value among `allowed`; empty -> None (or an error when required)."""
    value = data.get(field)
    if isinstance(value, str):
        value = value.strip()
    if value in (None, ""):
        if required:
            errors.append(ChannelError("choice_required", "Please choose one.", field=field))
        return None
    if not isinstance(value, str) or value not in allowed:
        errors.append(ChannelError("invalid_choice", "This is not one of the choices.", field=field))
        return None
    return value


def _collect(errors: list[ChannelError], check: Callable[[], T]) -> T | None:
    """Run one check; record its ChannelError instead of stopping at the first wrong field."""
    try:
        return check()
    except ChannelError as exc:
        errors.append(exc)
        return None


# --- raw request bodies ---------------------------------------------------------------------------------


def undecodable_fields(body: bytes) -> dict[str, bytes]:
    """Fields of an urlencoded body whose value is not valid UTF-8, with their raw bytes.

    The web framework quietly replaces such bytes; the channel refuses them instead (never guess an
    encoding), so the caller puts these raw values back into the form data before validation.
    """
    bad: dict[str, bytes] = {}
    for pair in body.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        value = unquote_to_bytes(raw_value.replace(b"+", b" "))
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8", "replace")
            bad.setdefault(name, value)
    return bad


# --- surveys --------------------------------------------------------------------------------------------


def localised(texts: Mapping[str, str], locale: str | None) -> str:
    """The text for a locale: exact, then its language (fa_AF -> fa), then English, then any."""
    candidates = [locale, locale.split("_")[0] if locale else None, FALLBACK_LOCALE]
    for code in candidates:
        if code and texts.get(code):
            return texts[code]
    return next(iter(texts.values()), "")


@dataclasses.dataclass(frozen=True)
class Option:
    """One choice of a single- or multiple-choice question."""

    id: str
    text: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Question:
    """One survey question; `text`, `hint`, `low` and `high` map a locale to the words."""

    id: str
    type: str
    text: dict[str, str]
    required: bool = False
    hint: dict[str, str] = dataclasses.field(default_factory=dict)
    options: tuple[Option, ...] = ()
    low: dict[str, str] = dataclasses.field(default_factory=dict)
    high: dict[str, str] = dataclasses.field(default_factory=dict)
    max_choices: int | None = None  # multiple choice: at most this many options (None: any number)

    @property
    def field(self) -> str:
        """The form field name (prefixed, so that no question id can clash with the form's own fields)."""
        return f"q_{self.id}"


@dataclasses.dataclass(frozen=True)
class SurveyDefinition:
    """A survey as defined in data (cfm/surveys/*.yaml): stable ids, translatable texts."""

    slug: str
    version: int
    title: dict[str, str]
    intro: dict[str, str]
    questions: tuple[Question, ...]

    @property
    def free_text_questions(self) -> tuple[Question, ...]:
        """The questions whose answers go through intake and the classifier."""
        return tuple(q for q in self.questions if q.type == "free_text")

    @property
    def multiple_choice_fields(self) -> frozenset[str]:
        """The form fields that carry a list of values (one per ticked box)."""
        return frozenset(q.field for q in self.questions if q.type == "multiple_choice")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SurveyDefinition:
        """Parse and check a definition (YAML or JSON already loaded); raise DefinitionError."""
        if not isinstance(data, Mapping):
            raise DefinitionError("a survey definition must be a mapping")
        slug = data.get("slug")
        if not isinstance(slug, str) or not _SLUG.match(slug):
            raise DefinitionError(f"slug {slug!r}: lower-case letters, digits and hyphens")
        version = data.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise DefinitionError(f"{slug}: version must be a positive integer")
        raw_questions = data.get("questions")
        if not isinstance(raw_questions, list) or not raw_questions:
            raise DefinitionError(f"{slug}: at least one question is needed")
        questions = tuple(_question(slug, q) for q in raw_questions)
        ids = [q.id for q in questions]
        if len(set(ids)) != len(ids):
            raise DefinitionError(f"{slug}: question ids must be unique")
        return cls(
            slug=slug,
            version=version,
            title=_texts(data.get("title"), f"{slug}.title"),
            intro=_texts(data.get("intro", {}), f"{slug}.intro", required=False),
            questions=questions,
        )


def _texts(value: Any, where: str, *, required: bool = True) -> dict[str, str]:
    """A {locale: text} mapping; English is required so that every locale has a fallback."""
    if isinstance(value, str):
        value = {FALLBACK_LOCALE: value}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise DefinitionError(f"{where}: expected a mapping of locale to text")
    if required and not value.get(FALLBACK_LOCALE):
        raise DefinitionError(f"{where}: the English text is required (it is the fallback)")
    return {str(k): str(v).strip() for k, v in value.items()}


def _question(slug: str, data: Any) -> Question:
    """Parse one question."""
    if not isinstance(data, Mapping):
        raise DefinitionError(f"{slug}: each question must be a mapping")
    qid = data.get("id")
    if not isinstance(qid, str) or not _ID.match(qid):
        raise DefinitionError(f"{slug}: question id {qid!r} must be lower-case letters, digits, underscores")
    where = f"{slug}.{qid}"
    qtype = data.get("type")
    if qtype not in QUESTION_TYPES:
        raise DefinitionError(f"{where}: type must be one of {', '.join(QUESTION_TYPES)}")
    options: tuple[Option, ...] = ()
    if qtype in OPTION_TYPES:
        raw = data.get("options")
        if not isinstance(raw, list) or len(raw) < 2:
            raise DefinitionError(f"{where}: a {qtype.replace('_', '-')} question needs at least two options")
        options = tuple(_option(where, o) for o in raw)
        if len({o.id for o in options}) != len(options):
            raise DefinitionError(f"{where}: option ids must be unique")
    elif "options" in data:
        raise DefinitionError(f"{where}: only single- and multiple-choice questions have options")
    max_choices = data.get("max_choices")
    if max_choices is not None:
        if qtype != "multiple_choice":
            raise DefinitionError(f"{where}: only multiple-choice questions have max_choices")
        if not isinstance(max_choices, int) or isinstance(max_choices, bool) or not 1 <= max_choices <= len(options):
            raise DefinitionError(f"{where}: max_choices must be a whole number from 1 to {len(options)}")
    return Question(
        id=qid,
        type=str(qtype),
        text=_texts(data.get("text"), f"{where}.text"),
        required=bool(data.get("required", False)),
        hint=_texts(data.get("hint", {}), f"{where}.hint", required=False),
        options=options,
        low=_texts(data.get("low", {}), f"{where}.low", required=False),
        high=_texts(data.get("high", {}), f"{where}.high", required=False),
        max_choices=max_choices,
    )


def _option(where: str, data: Any) -> Option:
    """Parse one option."""
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not _ID.match(data["id"]):
        raise DefinitionError(f"{where}: each option needs an id (lower-case letters, digits, underscores)")
    return Option(id=data["id"], text=_texts(data.get("text"), f"{where}.{data['id']}"))


@dataclasses.dataclass(frozen=True)
class SurveyAnswers:
    """Validated answers: structured ones kept as data, free text as the intake request (or None)."""

    structured: dict[str, int | bool | str | list[str]]
    free_text_ids: tuple[str, ...]
    request: IntakeRequest | None


def survey_answers(
    definition: SurveyDefinition,
    data: FormData,
    *,
    programme: str,
    locale: str | None = None,
) -> SurveyAnswers:
    """Validate answers against the definition; raise FormErrors, else return them ready to store.

    Free-text answers are joined (blank line between them) into one intake text, so that a comment about
    abuse reaches the restricted queue like any other submission; they are not kept with the structured
    answers, where they would escape the sealing of restricted text.
    """
    errors: list[ChannelError] = []
    structured: dict[str, int | bool | str | list[str]] = {}
    texts: list[tuple[Question, str]] = []
    for question in definition.questions:
        value = _answer(question, data.get(question.field), errors)
        if value is None:
            if question.required and not any(e.field == question.field for e in errors):
                errors.append(ChannelError("answer_required", "Please answer this question.", field=question.field))
        elif question.type == "free_text":
            texts.append((question, str(value)))
        else:
            structured[question.id] = value
    contact, method = _contact(data, errors)
    joined = "\n\n".join(text for _, text in texts)
    if texts and len(joined) > MAX_TEXT_LENGTH:
        errors.append(
            ChannelError(
                "text_too_long",
                f"The answers are longer than {MAX_TEXT_LENGTH} characters together.",
                field=texts[-1][0].field,
            )
        )
    if not errors and not structured and not texts:
        errors.append(ChannelError("empty_survey", "Please answer at least one question."))
    if errors:
        raise FormErrors(errors)
    request = None
    if texts:
        extra: dict[str, Any] = {"survey": definition.slug, "survey_version": definition.version}
        if locale:
            extra["ui_locale"] = locale
        if method:
            extra["contact_method"] = method
        request = IntakeRequest(
            channel="survey",
            text=joined,
            provider_id=submission_id(data),
            programme=programme,
            contact=contact,
            consent_to_contact=not contact.is_empty(),
            extra=extra,
        )
    return SurveyAnswers(structured, tuple(q.id for q, _ in texts), request)


def _answer(
    question: Question, value: FormValue | None, errors: list[ChannelError]
) -> int | bool | str | list[str] | None:
    """One answer checked against its question type; None when not answered."""
    field = question.field
    if question.type == "multiple_choice":
        return _collect(errors, lambda: chosen_options(question, value))
    if isinstance(value, bytes):
        errors.append(ChannelError("invalid_encoding", "The answer is not valid text.", field=field))
        return None
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if not isinstance(value, str):  # several values for a question that takes one
        errors.append(ChannelError("invalid_choice", "This is not one of the choices.", field=field))
        return None
    value = value.strip()
    if question.type == "free_text":
        return _collect(errors, lambda: clean_text(value, field=field))
    if question.type == "rating":
        if value.isascii() and value.isdigit() and int(value) in RATING_VALUES:
            return int(value)
    elif question.type == "yes_no":
        if value in YES_NO_VALUES:
            return YES_NO_VALUES[value]
    elif value in {o.id for o in question.options}:
        return value
    errors.append(ChannelError("invalid_choice", "This is not one of the choices.", field=field))
    return None


def chosen_options(question: Question, value: object) -> list[str] | None:
    """The option ids ticked in a multiple-choice question, in the definition's order; None when none was.

    A browser sends one value per ticked box; a KoboToolbox select_multiple answer is one string of option ids
    separated by spaces: both are accepted. Unknown ids, an id given twice or more than max_choices ids are refused
    (ChannelError on the question's field), never trimmed silently.
    """
    field = question.field
    values = [value] if isinstance(value, str | bytes) or value is None else value
    if not isinstance(values, list | tuple):
        raise ChannelError("invalid_choice", "This is not one of the choices.", field=field)
    chosen: list[str] = []
    for item in values:
        if isinstance(item, bytes):
            raise ChannelError("invalid_encoding", "The answer is not valid text.", field=field)
        if item is None:
            continue
        if not isinstance(item, str):
            raise ChannelError("invalid_choice", "This is not one of the choices.", field=field)
        chosen.extend(item.split())
    if not chosen:
        return None
    order = {option.id: index for index, option in enumerate(question.options)}
    if any(choice not in order for choice in chosen):
        raise ChannelError("invalid_choice", "This is not one of the choices.", field=field)
    if len(set(chosen)) != len(chosen):
        raise ChannelError("duplicate_choice", "The same choice was sent twice.", field=field)
    if question.max_choices is not None and len(chosen) > question.max_choices:
        raise TooManyChoices(question.max_choices, field=field)
    return sorted(chosen, key=order.__getitem__)


def error_fields(errors: Iterable[ChannelError]) -> dict[str | None, ChannelError]:
    """The first error per field (None: the form as a whole)."""
    found: dict[str | None, ChannelError] = {}
    for error in errors:
        found.setdefault(error.field, error)
    return found
