"""Settings: defaults here, then CFM_* environment variables, then the dict given to create_app."""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: SQLite file cfm.sqlite in the instance folder
    "SECRET_KEY": None,
    "ENCRYPTION_KEYS": None,
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
    "CLASSIFY_RETRIES": 3,
    "JOB_QUEUE": "cfm",
    "JOB_RETRY_INTERVALS": [5, 30, 120],  # seconds between RQ retries (backoff)
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
}

# Keys whose environment values are strings but mean numbers or booleans.
_INT_KEYS = ("RETENTION_DAYS", "DUE_HOURS_RESTRICTED", "DUE_HOURS_GENERAL", "CLASSIFY_RETRIES", "MAX_CONTENT_LENGTH")
_BOOL_KEYS = ("REQUIRE_2FA", "TESTING", "WTF_CSRF_ENABLED")


def coerce(config: dict[str, Any]) -> None:
    """Turn string values from the environment into the types the code expects."""
    for key in _INT_KEYS:
        if isinstance(config.get(key), str):
            config[key] = int(config[key])
    for key in _BOOL_KEYS:
        if isinstance(config.get(key), str):
            config[key] = config[key].strip().lower() in ("1", "true", "yes", "on")
    if isinstance(config.get("LOCALES"), str):
        config["LOCALES"] = [code.strip() for code in config["LOCALES"].split(",") if code.strip()]
