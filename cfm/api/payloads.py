"""Partner payloads -> IntakeRequest: plain JSON, KoboToolbox REST Service submissions, RapidPro/TextIt webhooks.

Pure Python (no Flask, no database), like the adapters in channels/; every refusal is a ChannelError naming the
field, and no message quotes the submitted values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from channels.base import MAX_TEXT_LENGTH, ChannelError, Contact, IntakeRequest
from channels.sms import fold_word, parse_phone

Kind = Literal["json", "kobo", "rapidpro"]
KINDS: Final = ("json", "kobo", "rapidpro")
JSON_FIELDS: Final = ("text", "external_id", "language", "consent_to_contact", "contact", "received_at")
CONTACT_FIELDS: Final = ("name", "phone", "email")
MAX_ID_LENGTH: Final = 100
FUTURE_TOLERANCE: Final = timedelta(days=1)
# A date before this is a typing error, not feedback.
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
# Keys every Kobo submission carries besides the form's own questions: never reported as unexpected.
KOBO_METADATA: Final = frozenset(
    {"start", "end", "today", "deviceid", "simserial", "subscriberid", "phonenumber", "username", "audit"}
)
_LANGUAGE: Final = re.compile(r"[a-z]{2,3}")
_LANGUAGE_ALIASES: Final[dict[str, str]] = {
    "english": "en", "eng": "en", "french": "fr", "fra": "fr", "fre": "fr", "spanish": "es", "spa": "es",
    "arabic": "ar", "ara": "ar", "dari": "fa", "prs": "fa", "farsi": "fa", "persian": "fa", "fas": "fa",
    "per": "fa", "pashto": "ps", "pus": "ps", "pbt": "ps", "ukrainian": "uk", "ukr": "uk", "russian": "ru",
    "rus": "ru", "somali": "so", "som": "so", "swahili": "sw", "swa": "sw", "swh": "sw", "amharic": "am",
    "amh": "am", "tigrinya": "ti", "tir": "ti",
}  # fmt: skip
_YES: Final = frozenset(
    fold_word(w) for w in ("yes", "y", "true", "1", "oui", "si", "sí", "نعم", "بله", "ndiyo", "haa")
)


def detect(body: Mapping[str, Any]) -> Kind:
    """Which payload this is: Kobo (its metadata keys), RapidPro (flow and run), else plain JSON."""
    if any(key in body for key in ("_uuid", "formhub/uuid", "_xform_id_string", "meta/instanceID")):
        return "kobo"
    if isinstance(body.get("flow"), Mapping) and isinstance(body.get("run"), Mapping):
        return "rapidpro"
    return "json"


def provider_id(namespace: str, kind: str, value: str) -> str:
    """A provider id unique per partner programme and payload kind (the API channel is shared)."""
    return f"{namespace}:{kind}:{value}"


# ---------------------------------------------------------------------------------------------------------------
# Plain JSON


def parse_json(body: Mapping[str, Any], *, programme: str, namespace: str) -> IntakeRequest:
    """{"text", "external_id"?, "language"?, "consent_to_contact"?, "contact"?, "received_at"?} -> IntakeRequest."""
    for key in body:
        if key not in JSON_FIELDS:
            raise ChannelError("unknown_field", f"Unknown field {str(key)[:64]!r}.", field=str(key)[:64])
    external_id = _identifier(body.get("external_id"), "external_id")
    if "text" not in body:
        raise ChannelError("missing_field", "The field text is required.", field="text")
    if isinstance(body["text"], str) and len(body["text"]) > MAX_TEXT_LENGTH:
        raise ChannelError("text_too_long", f"The message is longer than {MAX_TEXT_LENGTH} characters.", field="text")
    consent = body.get("consent_to_contact", False)
    if not isinstance(consent, bool):
        raise ChannelError("invalid_field", "consent_to_contact must be true or false.", field="consent_to_contact")
    contact = body.get("contact") or {}
    if not isinstance(contact, Mapping):
        raise ChannelError("invalid_field", "contact must be an object.", field="contact")
    for key in contact:
        if key not in CONTACT_FIELDS:
            raise ChannelError("unknown_field", f"Unknown field contact.{str(key)[:64]}.", field="contact")
    text: Any = body.get("text")  # validated() refuses anything but text
    return IntakeRequest(
        channel="api",
        text=text,
        provider_id=provider_id(namespace, "json", external_id) if external_id else None,
        programme=programme,
        received_at=_moment(body.get("received_at"), "received_at"),
        language_hint=_language(body.get("language"), "language", strict=True),
        contact=Contact(
            name=_string(contact.get("name"), "contact.name"),
            phone=_phone(contact.get("phone"), "contact.phone"),
            email=_email(contact.get("email"), "contact.email"),
        ),
        consent_to_contact=consent,
        extra={"source": "api"},
    ).validated()


# ---------------------------------------------------------------------------------------------------------------
# KoboToolbox REST Service


def parse_kobo(
    body: Mapping[str, Any], field_map: Mapping[str, Sequence[str]], *, programme: str, namespace: str
) -> tuple[IntakeRequest, list[str]]:
    """A Kobo submission -> (IntakeRequest, form fields that were not used); the map names the form's fields."""
    instance = _kobo_instance(body)
    used: set[str] = set()

    def pick(target: str) -> tuple[str | None, Any]:
        """The first field of the map's names for target present in the submission."""
        for name in field_map.get(target) or ():
            key = _kobo_key(body, str(name))
            if key is not None:
                used.add(key)
                return key, body[key]
        return None, None

    text_key, text = pick("text")
    if text_key is None:
        names = ", ".join(str(name) for name in field_map.get("text") or ()) or "none"
        found = ", ".join(sorted(_kobo_questions(body))[:20]) or "none"
        raise ChannelError(
            "no_text_field",
            f"No form field holds the feedback text (looked for: {names}; the submission has: {found}). "
            "Map the form's question to text in the API token's field map.",
            field="text",
        )
    if not isinstance(text, str):
        raise ChannelError("invalid_text", f"The field {text_key} must be text.", field=text_key)
    language_key, language = pick("language")
    consent_key, consent = pick("consent")
    phone_key, phone = pick("phone")
    name_key, name = pick("name")
    email_key, email = pick("email")
    extra: dict[str, Any] = {"source": "kobo"}
    if isinstance(body.get("_xform_id_string"), str):
        extra["kobo_form"] = body["_xform_id_string"][:100]
    request = IntakeRequest(
        channel="api",
        text=text,
        provider_id=provider_id(namespace, "kobo", instance),
        programme=programme,
        received_at=_kobo_time(body.get("_submission_time")),
        language_hint=_language(language, language_key or "language", strict=False),
        contact=Contact(
            name=_string(name, name_key or "name"),
            phone=_phone(phone, phone_key or "phone"),
            email=_email(email, email_key or "email"),
        ),
        consent_to_contact=_yes(consent),
        extra=extra,
    ).validated()
    ignored = sorted(key for key in _kobo_questions(body) if key not in used)
    return request, ignored


def _kobo_instance(body: Mapping[str, Any]) -> str:
    """The submission's instance id (_uuid, which every KoboToolbox REST Service payload carries)."""
    value = body.get("_uuid")
    if not isinstance(value, str) or not value.strip():
        raise ChannelError("missing_field", "The submission has no _uuid.", field="_uuid")
    return _identifier(value.strip().removeprefix("uuid:"), "_uuid") or ""


def _kobo_key(body: Mapping[str, Any], name: str) -> str | None:
    """The submission key for a mapped name: the exact path, else a group path ending in /name."""
    if name in body:
        return name
    suffix = "/" + name
    matches = sorted(key for key in body if isinstance(key, str) and key.endswith(suffix))
    return matches[0] if matches else None


def _kobo_questions(body: Mapping[str, Any]) -> list[str]:
    """The form's own fields: not Kobo's metadata (_..., meta/..., formhub/..., start, end...)."""
    return [
        str(key)
        for key in body
        if not str(key).startswith(("_", "meta/", "formhub/")) and str(key) not in KOBO_METADATA
    ]


def _kobo_time(value: object) -> datetime | None:
    """Kobo's _submission_time (UTC, without zone); unusable values are ignored (now is used)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return None if moment > datetime.now(UTC) + FUTURE_TOLERANCE or moment < EARLIEST else moment


# ---------------------------------------------------------------------------------------------------------------
# RapidPro / TextIt


def parse_rapidpro(
    body: Mapping[str, Any],
    *,
    text_results: Sequence[str],
    consent_results: Sequence[str],
    programme: str,
    namespace: str,
) -> IntakeRequest:
    """A flow webhook (contact, flow, run, results, input) -> IntakeRequest."""
    contact = _object(body, "contact")
    run = _object(body, "run")
    _object(body, "flow")
    results = body.get("results") or {}
    if not isinstance(results, Mapping):
        raise ChannelError("invalid_field", "results must be an object.", field="results")
    message = body.get("input") or {}
    if not isinstance(message, Mapping):
        raise ChannelError("invalid_field", "input must be an object.", field="input")
    text = next((value for value in (_result(results, key) for key in text_results) if value), None)
    if text is None:
        text = message.get("text")
    if text is None or (isinstance(text, str) and not text.strip()):
        raise ChannelError("empty_text", "The message is empty (no feedback result and no input text).", field="text")
    message_id = message.get("uuid") if isinstance(message.get("uuid"), str) else None
    run_id = run.get("uuid") if isinstance(run.get("uuid"), str) else None
    identifier = _identifier(message_id or run_id, "run.uuid")
    if identifier is None:
        raise ChannelError("missing_field", "The payload has no run.uuid.", field="run.uuid")
    urn = contact.get("urn") if isinstance(contact.get("urn"), str) else message.get("urn")
    consent = next((value for value in (_result(results, key, "category") for key in consent_results) if value), None)
    if consent is None:
        consent = next((value for value in (_result(results, key) for key in consent_results) if value), None)
    return IntakeRequest(
        channel="api",
        text=text,
        provider_id=provider_id(namespace, "rapidpro", identifier),
        programme=programme,
        language_hint=_language(contact.get("language"), "contact.language", strict=False),
        contact=Contact(name=_string(contact.get("name"), "contact.name"), phone=_urn_phone(urn)),
        consent_to_contact=_yes(consent),
        extra={"source": "rapidpro"},
    ).validated()


def _object(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A required nested object."""
    value = body.get(key)
    if not isinstance(value, Mapping):
        raise ChannelError("missing_field", f"The field {key} must be an object.", field=key)
    return value


def _result(results: Mapping[str, Any], key: str, attribute: str = "value") -> str | None:
    """A flow result's value (or category) when it is non-empty text."""
    result = results.get(key)
    value = result.get(attribute) if isinstance(result, Mapping) else None
    return value if isinstance(value, str) and value.strip() else None


def _urn_phone(urn: object) -> str | None:
    """The phone number of a tel: or whatsapp: URN; None for other schemes or numbers that are not E.164."""
    if not isinstance(urn, str) or ":" not in urn:
        return None
    scheme, _, path = urn.partition(":")
    if scheme.lower() not in ("tel", "whatsapp"):
        return None
    path = path.split("?", 1)[0].strip()
    if scheme.lower() == "whatsapp" and not path.startswith("+"):
        path = "+" + path
    return parse_phone(path)


# ---------------------------------------------------------------------------------------------------------------
# Fields


def _identifier(value: object, field: str) -> str | None:
    """An id of at most MAX_ID_LENGTH printable characters; None when absent."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ChannelError("invalid_field", f"The field {field} must be a non-empty string.", field=field)
    if len(value) > MAX_ID_LENGTH or not value.strip().isprintable():
        raise ChannelError(
            "invalid_field", f"The field {field} must be at most {MAX_ID_LENGTH} printable characters.", field=field
        )
    return value.strip()


def _string(value: object, field: str) -> str | None:
    """Optional text."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChannelError("invalid_field", f"The field {field} must be text.", field=field)
    return value


def _phone(value: object, field: str) -> str | None:
    """An optional phone number as E.164; anything else is refused."""
    text = _string(value, field)
    if text is None or not text.strip():
        return None
    phone = parse_phone(text)
    if phone is None:
        raise ChannelError(
            "invalid_phone", f"The field {field} is not an international number (+ and country code).", field=field
        )
    return phone


def _email(value: object, field: str) -> str | None:
    """An optional email address (one @, no spaces); not checked further."""
    text = _string(value, field)
    if text is None or not text.strip():
        return None
    text = text.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or any(ch.isspace() for ch in text) or len(text) > 254:
        raise ChannelError("invalid_email", f"The field {field} is not an email address.", field=field)
    return text


def _language(value: object, field: str, *, strict: bool) -> str | None:
    """A language code from a code, a tag or an English name; strict refuses the rest, else it is ignored."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        folded = value.strip().casefold().replace("_", "-")
        primary = _LANGUAGE_ALIASES.get(folded) or folded.split("-", 1)[0]
        primary = _LANGUAGE_ALIASES.get(primary, primary)
        if _LANGUAGE.fullmatch(primary):
            return primary
    if strict:
        raise ChannelError(
            "invalid_language", f"The field {field} is not a language code such as ar or fa.", field=field
        )
    return None


def _moment(value: object, field: str) -> datetime | None:
    """An ISO 8601 date-time (a naive one is UTC), not in the future."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChannelError("invalid_date", f"The field {field} must be an ISO 8601 date-time.", field=field)
    try:
        moment = datetime.fromisoformat(value.strip())
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ChannelError("invalid_date", f"The field {field} is not an ISO 8601 date-time.", field=field) from None
    if moment > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise ChannelError("invalid_date", f"The field {field} is in the future.", field=field)
    if moment < EARLIEST:
        raise ChannelError("invalid_date", f"The field {field} is before {EARLIEST.year}.", field=field)
    return moment


def _yes(value: object) -> bool:
    """Consent only on an explicit yes (true, yes, 1, oui, نعم...); anything else is no."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and fold_word(value.strip()) in _YES
