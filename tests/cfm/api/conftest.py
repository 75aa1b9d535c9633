"""Fixtures of the partner API tests: a programme and a token for it."""

from __future__ import annotations

from typing import Any

import pytest

from cfm.api.tokens import create_token


@pytest.fixture
def token(programme: Any) -> str:
    """A fresh API token of the default programme (the secret itself)."""
    _row, secret = create_token("kenya", "test partner")
    return secret


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}
