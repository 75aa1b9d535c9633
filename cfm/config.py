"""Settings: defaults here, then CFM_* environment variables, then the dict given to create_app."""

from __future__ import annotations

import json
from typing import Any

from classifier.categories import CATEGORIES

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: SQLite file cfm.sqlite in the instance folder
    "SECRET_KEY": None,
    "ENCRYPTION_KEYS": None,
    "LOOKUP_KEY": None,  # HMAC key of phone lookups; SECRET_KEY, ENCRYPTION_KEYS and it are required (SECURITY.md)
    "REDIS_URL": None,  # None: jobs run inline
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "MODEL_PATH": None,  # None: the model shipped with the package
    "RETENTION_DAYS": 365,
    "REQUIRE_2FA": True,
    "DEFAULT_LOCALE": "en",
    "LOCALES": ["en", "fr", "es", "ar", "fa_AF", "ps", "uk", "ru", "so", "sw", "am", "ti"],
    "DUE_HOURS_RESTRICTED": 72,
    "DUE_HOURS_GENERAL": 30 * 24,
    # Issue 6: service level per category, in hours from receipt (cfm.services.routing.due_hours). A programme may
    # set its own; a category left out falls back to its queue's level. From the environment as one JSON object,
    # which replaces the whole map: CFM_DUE_HOURS_BY_CATEGORY='{"safety_protection": 12, "other": 336}'.
    "DUE_HOURS_BY_CATEGORY": {
        "safety_protection": 24,  # a risk to someone's safety: the same day
        "sexual_exploitation_abuse": 72,  # PSEA: a focal point acts within 72 hours
        "fraud_corruption": 72,
        "staff_misconduct": 72,
        "assistance_request": 72,  # medical needs, a wheelchair, lost documents: within three days
        "information_request": 7 * 24,
        "service_complaint": 14 * 24,
        "suggestion": 30 * 24,
        "appreciation": 30 * 24,
        "other": 30 * 24,
    },
    "CLASSIFY_RETRIES": 3,
    "JOB_QUEUE": "cfm",
    "JOB_RETRY_INTERVALS": [5, 30, 120],  # seconds between RQ retries (backoff)
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # Issue 5: Twilio webhooks, conversations, outbound replies, IVR and the partner API.
    "PUBLIC_BASE_URL": None,  # e.g. https://cfm.example.org behind a proxy: the URL Twilio signs; None: request.url
    "CONVERSATION_WINDOW_HOURS": 24,  # a follow-up SMS within this many hours joins the open case; 0: never
    "OUTBOUND_RETRIES": 3,  # further attempts for a reply Twilio could not take (backoff: JOB_RETRY_INTERVALS)
    "IVR_LANGUAGES": ["en", "fr", "ar", "fa"],  # language menu after the programme's own language (9 at most)
    "IVR_PROMPT_URLS": {},  # recorded prompts: {"menu": url, "ar": url, ...}; spoken by Twilio when missing
    "IVR_MAX_RECORDING_SECONDS": 180,
    "API_RATE_LIMIT": "600 per minute",  # per API token
    # KoboToolbox REST Service: which form fields hold the text, language, consent and contact (first match wins;
    # a field matches by its full path or its last path segment). An API token may override any of these.
    "API_KOBO_FIELDS": {
        "text": ["feedback", "text", "complaint", "comment", "message", "description"],
        "language": ["language", "lang"],
        "consent": ["consent", "consent_to_contact"],
        "phone": ["phone", "phone_number", "contact_phone"],
        "name": ["name", "full_name", "contact_name"],
        "email": ["email", "contact_email"],
    },
    # RapidPro / TextIt flow webhooks: flow results that hold the feedback (else the last message's text) and consent.
    "API_RAPIDPRO_TEXT_RESULTS": ["feedback", "complaint", "comment", "message", "text"],
    "API_RAPIDPRO_CONSENT_RESULTS": ["consent", "consent_to_contact"],
    # Issue 6: overdue reminders (`cfm remind`, or every REMIND_EVERY_MINUTES in `cfm worker` when RQ is used).
    "REMIND_INTERVAL_HOURS": 24,  # a case still overdue is reminded again after this many hours
    "REMIND_EVERY_MINUTES": 60,  # how often the worker runs the reminders; 0: never (use `cfm remind` in cron)
    "SMTP_HOST": None,  # None: console notices only, no email
    "SMTP_PORT": 587,
    "SMTP_USER": None,
    "SMTP_PASSWORD": None,
    "SMTP_FROM": "cfm@localhost",
    "SMTP_STARTTLS": True,
}

# Keys whose environment values are strings but mean numbers or booleans.
_INT_KEYS = ("RETENTION_DAYS", "DUE_HOURS_RESTRICTED", "DUE_HOURS_GENERAL", "CLASSIFY_RETRIES", "MAX_CONTENT_LENGTH")
_BOOL_KEYS = ("REQUIRE_2FA", "TESTING", "WTF_CSRF_ENABLED")
_MESSAGING_INT_KEYS = ("CONVERSATION_WINDOW_HOURS", "OUTBOUND_RETRIES", "IVR_MAX_RECORDING_SECONDS")
_REMINDER_INT_KEYS = ("REMIND_INTERVAL_HOURS", "REMIND_EVERY_MINUTES", "SMTP_PORT")


def coerce(config: dict[str, Any]) -> None:
    """Turn string values from the environment into the types the code expects."""
    for key in _INT_KEYS:
        if isinstance(config.get(key), str):
            config[key] = int(config[key])
    for key in (*_MESSAGING_INT_KEYS, *_REMINDER_INT_KEYS):
        if isinstance(config.get(key), str):
            config[key] = int(config[key])
    if isinstance(config.get("SMTP_STARTTLS"), str):
        config["SMTP_STARTTLS"] = config["SMTP_STARTTLS"].strip().lower() in ("1", "true", "yes", "on")
    for key in _BOOL_KEYS:
        if isinstance(config.get(key), str):
            config[key] = config[key].strip().lower() in ("1", "true", "yes", "on")
    if isinstance(config.get("IVR_LANGUAGES"), str):
        config["IVR_LANGUAGES"] = [code.strip() for code in config["IVR_LANGUAGES"].split(",") if code.strip()]
    if "DUE_HOURS_BY_CATEGORY" in config:
        config["DUE_HOURS_BY_CATEGORY"] = _due_hours_by_category(config["DUE_HOURS_BY_CATEGORY"])
    if isinstance(config.get("LOCALES"), str):
        config["LOCALES"] = [code.strip() for code in config["LOCALES"].split(",") if code.strip()]


def _due_hours_by_category(value: Any) -> dict[str, int]:
    """A fresh {category: hours} map (JSON text from the environment too); refuses unknown codes and bad hours."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    if not isinstance(value, dict):
        raise ValueError("DUE_HOURS_BY_CATEGORY must be a JSON object of category codes to hours.")
    unknown = sorted(set(value) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"DUE_HOURS_BY_CATEGORY: unknown categories {', '.join(unknown)}.")
    hours = {str(code): int(h) for code, h in value.items() if h is not None}
    if any(h < 1 for h in hours.values()):
        raise ValueError("DUE_HOURS_BY_CATEGORY: hours must be positive whole numbers.")
    return hours
