"""Twilio for real in tests: requests signed by RequestValidator, TwiML parsed back, outbound HTTP captured."""

from __future__ import annotations

import dataclasses
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from flask.testing import FlaskClient
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

AUTH_TOKEN = "webhook-test-auth-token-0123456789"
ACCOUNT_SID = "AC" + "a" * 32
OUR_NUMBER = "+254700000001"  # the `programme` fixture's number
PHONE = "+254711222333"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def sign(url: str, form: Mapping[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature for a form posted to url, computed by the twilio library."""
    return str(RequestValidator(token).compute_signature(url, dict(form)))


def post(
    client: FlaskClient,
    path: str,
    form: Mapping[str, str],
    *,
    token: str = AUTH_TOKEN,
    signed_url: str | None = None,
    signature: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> TestResponse:
    """POST a form as Twilio does, signed for the exact URL (path with its query string) unless told otherwise."""
    url = signed_url if signed_url is not None else f"http://localhost{path}"
    all_headers = {"X-Twilio-Signature": signature if signature is not None else sign(url, form, token)}
    all_headers.update(headers or {})
    return client.post(path, data=dict(form), headers=all_headers)


def inbound(body: str | None, sid: str, *, phone: str = PHONE, to: str = OUR_NUMBER, **extra: str) -> dict[str, str]:
    """Twilio's inbound messaging webhook fields."""
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": phone,
        "To": to,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    if body is not None:
        form["Body"] = body
    form.update(extra)
    return form


def twiml(response: TestResponse) -> ET.Element:
    """The TwiML document of a response (checks it is XML)."""
    assert response.mimetype in ("text/xml", "application/xml"), response.mimetype
    root = ET.fromstring(response.get_data())  # noqa: S314  (our own response)
    assert root.tag == "Response"
    return root


def messages(response: TestResponse) -> list[str]:
    """The texts of the TwiML <Message> elements."""
    return [element.text or "" for element in twiml(response).iter("Message")]


@dataclasses.dataclass
class Captured:
    """One HTTP call the twilio client made."""

    method: str
    url: str
    data: dict[str, Any] | None
    auth: tuple[str, str] | None


class CapturingHttpClient(HttpClient):
    """A twilio HttpClient that records calls and answers from a script (201 by default); never the network."""

    def __init__(self, *outcomes: Response | BaseException) -> None:
        super().__init__(logger=logging.getLogger("tests.twilio"), is_async=False)
        self.outcomes = list(outcomes)
        self.calls: list[Captured] = []

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Record the call; return (or raise) the next scripted outcome."""
        self.calls.append(Captured(method, uri, dict(data or {}), auth))
        outcome = self.outcomes.pop(0) if self.outcomes else created(f"SM{len(self.calls):032d}")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def created(sid: str = "SM" + "b" * 32) -> Response:
    """Twilio's 201 answer to a message create."""
    return Response(201, json.dumps({"sid": sid, "account_sid": ACCOUNT_SID, "status": "queued"}))


def refused(status: int, code: int | None = None) -> Response:
    """A Twilio error answer (its message quotes the number, as Twilio's do)."""
    payload: dict[str, object] = {"status": status, "message": f"The 'To' number {PHONE} is not valid."}
    if code is not None:
        payload["code"] = code
    return Response(status, json.dumps(payload))
