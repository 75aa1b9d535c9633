"""API tokens: created (shown once), looked up by their SHA-256, revoked; every change audited."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import select

from cfm.extensions import db
from cfm.models import ApiToken, Programme
from cfm.models.types import utcnow
from cfm.services import audit

TOKEN_PREFIX: Final = "cfm_"  # noqa: S105  (a visible prefix, not a secret)
FIELD_MAP_KEYS: Final = ("text", "language", "consent", "phone", "name", "email")
# A Kobo (XLSForm) field name, or a group path of them ("group_a/complaint"): letters, digits, _ - . only.
FIELD_NAME: Final = re.compile(r"[^\W\d][\w.-]*(?:/[^\W\d][\w.-]*)*")
MAX_FIELD_NAME: Final = 100  # characters of one name
MAX_FIELD_NAMES: Final = 10  # names tried for one key
# last_used_at is written at most this often, so that a busy partner does not write on every request.
_TOUCH_EVERY: Final = timedelta(minutes=5)


class TokenError(ValueError):
    """A token operation that cannot be done; the message says why (in English, for the CLI).

    `code` and `params` let the admin pages say it in the admin's language (cfm/console/admin.py).
    """

    def __init__(self, message: str, code: str | None = None, **params: Any) -> None:
        """Keep the English message, a stable code and the values the translated message needs."""
        super().__init__(message)
        self.code = code
        self.params = params


def hash_token(token: str) -> str:
    """SHA-256 of the token: tokens are 256 random bits, so an unsalted hash is enough to store them."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    programme_slug: str, name: str, field_map: Mapping[str, Sequence[str]] | None = None
) -> tuple[ApiToken, str]:
    """A new token for the programme: (the stored row, the token itself - shown once, never stored)."""
    programme = db.session.scalars(select(Programme).where(Programme.slug == programme_slug)).first()
    if programme is None:
        raise TokenError(f"Unknown programme: {programme_slug}.")
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError("The token name must have 1 to 100 characters.")
    checked = check_field_map(field_map)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        programme=programme,
        name=name,
        token_hash=hash_token(token),
        token_prefix=token[:12],
        field_map=checked,
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        "api_token.create",
        object_type="api_token",
        object_ref=str(row.id),
        details={"programme": programme.slug, "name": name, "prefix": row.token_prefix},
    )
    db.session.commit()
    return row, token


def check_field_map(field_map: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]] | None:
    """A token's Kobo field map, checked: known keys, safe names, at most MAX_FIELD_NAMES per key.

    Names are stripped and de-duplicated in order (the first match wins); a key without names is left out, so the
    configured API_KOBO_FIELDS apply to it; an empty map is None (every key from the configuration).
    """
    unknown = sorted(set(field_map or {}) - set(FIELD_MAP_KEYS))
    if unknown:
        raise TokenError(
            f"Unknown field map keys: {', '.join(unknown)} (use {', '.join(FIELD_MAP_KEYS)}).",
            "field_key",
            keys=", ".join(unknown)[:200],
        )
    checked: dict[str, list[str]] = {}
    for key in FIELD_MAP_KEYS:
        values = (field_map or {}).get(key) or ()
        if isinstance(values, str):
            raise TokenError(f"The field names of {key} must be a list.", "field_name", name=values[:60])
        names = list(dict.fromkeys(str(name).strip() for name in values if str(name).strip()))
        for name in names:
            if len(name) > MAX_FIELD_NAME or not FIELD_NAME.fullmatch(name):
                raise TokenError(
                    f"Not a Kobo field name: {name[:60]!r} (letters, digits, _ - . and / between groups, "
                    f"at most {MAX_FIELD_NAME} characters).",
                    "field_name",
                    name=name[:60],
                )
        if len(names) > MAX_FIELD_NAMES:
            raise TokenError(
                f"At most {MAX_FIELD_NAMES} field names for {key}.", "field_count", key=key, count=MAX_FIELD_NAMES
            )
        if names:
            checked[key] = names
    return checked or None


def authenticate(token: str | None) -> ApiToken | None:
    """The active token row for a presented token, or None."""
    if not token or len(token) > 200:
        return None
    row = db.session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if row is None or not row.active:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        row.last_used_at = now
        db.session.commit()
    return row


def revoke_token(token_id: int) -> ApiToken:
    """Revoke a token by id (idempotent)."""
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise TokenError(f"No token with id {token_id}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            "api_token.revoke",
            object_type="api_token",
            object_ref=str(row.id),
            details={"programme": row.programme.slug, "name": row.name},
        )
        db.session.commit()
    return row


def list_tokens() -> list[ApiToken]:
    """All tokens, newest first."""
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.id.desc())))
