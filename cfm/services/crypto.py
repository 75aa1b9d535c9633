"""Encryption at rest (MultiFernet, newest key first) and keyed lookup hashes for phone numbers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class ConfigError(RuntimeError):
    """The configuration cannot run the app safely; the message says what to set."""


class Crypto:
    """Seals personal data with the configured keys; computes lookup hashes with its own key."""

    def __init__(self, keys: list[str], lookup_key: bytes) -> None:
        if not keys:
            raise ConfigError("ENCRYPTION_KEYS is empty.")
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except ValueError as exc:
            raise ConfigError(
                "CFM_ENCRYPTION_KEYS must be comma-separated Fernet keys (make one with: "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
            ) from exc
        self._lookup_key = lookup_key

    def encrypt(self, value: str) -> str:
        """Encrypt text with the newest key."""
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt text sealed with any configured key."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ConfigError("A sealed value cannot be opened with the configured ENCRYPTION_KEYS.") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt a token with the newest key."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def lookup_hash(self, value: str) -> str:
        """Keyed hash (HMAC-SHA256) used to find a phone number without storing it in clear."""
        return hmac.new(self._lookup_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def generate_keys() -> dict[str, str]:
    """Fresh SECRET_KEY, ENCRYPTION_KEYS and LOOKUP_KEY for demo and tests (never committed)."""
    return {
        "SECRET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LOOKUP_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }


def get_crypto() -> Crypto:
    """The app's Crypto, built on first use; a clear error when keys are missing."""
    crypto = current_app.extensions.get("cfm_crypto")
    if crypto is None:
        keys = current_app.config.get("ENCRYPTION_KEYS")
        lookup = current_app.config.get("LOOKUP_KEY")
        if not keys or not lookup:
            raise ConfigError(
                "Set CFM_ENCRYPTION_KEYS (Fernet keys, newest first) and CFM_LOOKUP_KEY before storing personal data."
            )
        if isinstance(keys, str):
            keys = [k for k in keys.split(",") if k.strip()]
        crypto = Crypto(list(keys), str(lookup).encode("utf-8"))
        current_app.extensions["cfm_crypto"] = crypto
    return crypto
