"""Fixtures of the webhook tests: the app knows the Twilio account the requests are signed for."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.cfm.webhooks.support import ACCOUNT_SID, AUTH_TOKEN


@pytest.fixture
def twilio(app: Flask, programme: Any) -> Flask:
    """The app with the default programme and the configured Twilio account (no programme-level token)."""
    app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    return app
