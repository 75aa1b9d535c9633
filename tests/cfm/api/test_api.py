"""The partner API: tokens, plain JSON, KoboToolbox and RapidPro payloads, case status, bad input (issue 5)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cfm import create_app
from cfm.api.tokens import create_token, revoke_token
from cfm.extensions import db
from cfm.models import ApiToken, AuditEvent, Case
from cfm.services.admin import create_programme
from cfm.services.crypto import generate_keys
from cfm.services.intake import submit
from channels.base import IntakeRequest
from tests.cfm.api.conftest import bearer
from tests.cfm.helpers import counts

QUESTION = "When is our flight to Canada? Nobody told us the date of the departure."
NOTHING = {"case": 0, "message": 0, "reporter": 0}

KOBO = {
    "_id": 4711,
    "_uuid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "formhub/uuid": "abcdef0123456789",
    "_xform_id_string": "aB3dEfGh",
    "_submission_time": "2024-05-02T08:30:00",
    "_attachments": [],
    "_geolocation": [None, None],
    "start": "2024-05-02T08:20:00.000+03:00",
    "end": "2024-05-02T08:29:00.000+03:00",
    "meta/instanceID": "uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "group_feedback/feedback": "The bus to the transit centre did not come and we waited four hours.",
    "group_feedback/language": "en",
    "group_contact/consent": "yes",
    "group_contact/phone": "+254 711 000 222",
    "group_site/site_name": "Transit centre 2",
}
RAPIDPRO = {
    "contact": {"uuid": "c-1", "name": "Amina", "urn": "tel:+254711000333"},
    "flow": {"uuid": "f-1", "name": "Feedback"},
    "path": [],
    "results": {
        "feedback": {"value": "Thank you for the blankets and the tea at the transit centre", "category": "All"},
        "consent": {"value": "Yes", "category": "Yes"},
    },
    "run": {"uuid": "r-1", "created_on": "2024-05-02T08:30:00Z"},
    "input": {"uuid": "m-1", "text": "Yes", "urn": "tel:+254711000333", "attachments": []},
    "channel": {"uuid": "ch-1", "name": "Android"},
}


def post(client: FlaskClient, token: str | None, body: Any, **kwargs: Any) -> Any:
    """POST JSON to /api/v1/feedback."""
    headers = bearer(token) if token else {}
    return client.post("/api/v1/feedback", json=body, headers=headers, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Tokens


def test_a_token_is_stored_only_as_its_hash(programme: Any) -> None:
    row, secret = create_token("kenya", "kobo arrival survey")
    assert secret.startswith("cfm_") and len(secret) > 40
    stored = db.session.get(ApiToken, row.id)
    assert stored is not None
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps([stored.token_hash, stored.token_prefix, stored.name])
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "api_token.create")).one()


def test_the_tokens_command_prints_the_token_once_and_lists_only_its_prefix(app: Flask, programme: Any) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=["tokens", "create", "--programme", "kenya", "--name", "kobo", "--kobo-field", "text=q_story,q_text"]
    )
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    row = db.session.scalars(select(ApiToken)).one()
    assert row.field_map == {"text": ["q_story", "q_text"]}
    listed = runner.invoke(args=["tokens", "list"])
    assert row.token_prefix in listed.output and secret not in listed.output
    assert runner.invoke(args=["tokens", "revoke", str(row.id)]).exit_code == 0
    assert "revoked" in runner.invoke(args=["tokens", "list"]).output
    bad = runner.invoke(args=["tokens", "create", "--programme", "nowhere", "--name", "x"])
    assert bad.exit_code != 0 and "Unknown programme" in bad.output


@pytest.mark.parametrize("how", ["none", "unknown", "revoked", "malformed"])
def test_without_a_valid_token_nothing_is_accepted(client: FlaskClient, token: str, how: str) -> None:
    headers = {
        "none": {},
        "unknown": bearer("cfm_" + "x" * 43),
        "revoked": bearer(token),
        "malformed": {"Authorization": "Bearer"},
    }[how]
    if how == "revoked":
        revoke_token(db.session.scalars(select(ApiToken)).one().id)
    response = client.post("/api/v1/feedback", json={"text": QUESTION}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"] == "unauthorized"
    assert counts() == NOTHING
    assert client.get("/api/v1/cases/7QK2-M9XD", headers=headers).status_code == 401


def test_basic_auth_with_the_token_as_password_works_for_kobo(client: FlaskClient, token: str) -> None:
    credentials = base64.b64encode(f"kobo:{token}".encode()).decode()
    response = client.post("/api/v1/feedback", json=KOBO, headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 201


# ---------------------------------------------------------------------------------------------------------------
# Plain JSON


def test_plain_json_feedback_creates_a_case_and_returns_the_acknowledgement(client: FlaskClient, token: str) -> None:
    body = {
        "text": QUESTION,
        "external_id": "partner-42",
        "consent_to_contact": True,
        "contact": {"name": "Amina", "phone": "+254711000444"},
    }
    response = post(client, token, body)
    assert response.status_code == 201
    data = response.get_json()
    case = db.session.scalars(select(Case)).one()
    assert data["reference"] == case.reference and data["created"] is True and data["format"] == "json"
    assert case.reference in data["acknowledgement"]
    assert case.channel == "api" and case.text == QUESTION
    assert case.reporter is not None and case.reporter.consent_to_contact
    again = post(client, token, body)
    assert again.status_code == 200
    assert again.get_json()["reference"] == case.reference and again.get_json()["created"] is False
    assert counts()["case"] == 1


def test_without_an_external_id_every_post_is_a_new_case(client: FlaskClient, token: str) -> None:
    post(client, token, {"text": QUESTION})
    post(client, token, {"text": QUESTION})
    assert counts()["case"] == 2


def test_the_same_external_id_from_two_programmes_makes_two_cases(client: FlaskClient, token: str) -> None:
    create_programme("greece", "Greece relocation", language="ar")
    _row, other = create_token("greece", "other partner")
    first = post(client, token, {"text": QUESTION, "external_id": "id-1"}).get_json()
    second = post(client, other, {"text": QUESTION, "external_id": "id-1"}).get_json()
    assert first["reference"] != second["reference"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ([{"text": QUESTION}], 400, "invalid_json"),
        ("just a string", 400, "invalid_json"),
        ({}, 422, "missing_field"),
        ({"text": ""}, 422, "empty_text"),
        ({"text": 42}, 422, "invalid_text"),
        ({"text": "x" * 5001}, 422, "text_too_long"),
        ({"text": QUESTION, "colour": "blue"}, 422, "unknown_field"),
        ({"text": QUESTION, "contact": {"phone": "call me"}}, 422, "invalid_phone"),
        ({"text": QUESTION, "contact": {"email": "not-an-address"}}, 422, "invalid_email"),
        ({"text": QUESTION, "contact": {"address": "x"}}, 422, "unknown_field"),
        ({"text": QUESTION, "consent_to_contact": "yes"}, 422, "invalid_field"),
        ({"text": QUESTION, "language": "12"}, 422, "invalid_language"),
        ({"text": QUESTION, "received_at": "yesterday"}, 422, "invalid_date"),
        ({"text": QUESTION, "received_at": "2999-01-01T00:00:00Z"}, 422, "invalid_date"),
        ({"text": QUESTION, "external_id": ""}, 422, "invalid_field"),
    ],
)
def test_bad_json_gets_a_clear_error_and_nothing_is_stored(
    client: FlaskClient, token: str, body: Any, status: int, code: str
) -> None:
    response = post(client, token, body)
    assert response.status_code == status
    assert response.get_json()["error"] == code and response.get_json()["message"]
    assert counts() == NOTHING


def test_a_body_that_is_not_json_is_refused(client: FlaskClient, token: str) -> None:
    response = client.post("/api/v1/feedback", data="text=hello", headers=bearer(token))
    assert response.status_code == 415
    broken = client.post(
        "/api/v1/feedback", data="{not json", headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and broken.get_json()["error"] == "invalid_json"
    deep = client.post(
        "/api/v1/feedback", data="[" * 100000, headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert deep.status_code == 400
    assert counts() == NOTHING


def test_a_body_of_two_megabytes_is_refused_with_413(client: FlaskClient, token: str) -> None:
    response = post(client, token, {"text": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert response.get_json()["error"]
    assert counts() == NOTHING


def test_database_gone_gives_a_503_and_no_acknowledgement(backend: str, tmp_path: Path) -> None:
    url = (
        f"sqlite:///{tmp_path / 'missing-dir' / 'cfm.sqlite'}"
        if backend == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2"
    )
    app = create_app({"TESTING": True, "DATABASE_URL": url, **generate_keys()})
    response = app.test_client().post("/api/v1/feedback", json={"text": QUESTION}, headers=bearer("cfm_whatever"))
    assert response.status_code == 503
    assert "acknowledgement" not in response.get_json()


# ---------------------------------------------------------------------------------------------------------------
# KoboToolbox


def test_a_kobo_submission_is_mapped_by_field_names(client: FlaskClient, token: str) -> None:
    response = post(client, token, KOBO)
    assert response.status_code == 201
    data = response.get_json()
    assert data["format"] == "kobo"
    # The form's own question that is mapped to nothing is reported; Kobo's metadata is not.
    assert data["ignored_fields"] == ["group_site/site_name"]
    case = db.session.scalars(select(Case)).one()
    assert case.text == KOBO["group_feedback/feedback"]
    assert case.language == "en"
    assert case.reporter is not None and case.reporter.phone == "+254711000222" and case.reporter.consent_to_contact
    assert case.received_at.isoformat().startswith("2024-05-02T08:30:00")
    assert (case.extra or {})["kobo_form"] == "aB3dEfGh"
    assert post(client, token, KOBO).status_code == 200  # Kobo resends: the same _uuid
    assert counts()["case"] == 1


def test_a_token_can_carry_its_own_kobo_field_map(client: FlaskClient, programme: Any) -> None:
    _row, secret = create_token("kenya", "kobo", {"text": ["q_story"], "phone": ["q_mobile"]})
    body = {"_uuid": "u-2", "q_story": "Where do I collect my hygiene kit?", "q_mobile": "+254711000555"}
    response = post(client, secret, body)
    assert response.status_code == 201, response.get_json()
    case = db.session.scalars(select(Case)).one()
    assert case.text == "Where do I collect my hygiene kit?"
    assert case.reporter is not None and case.reporter.phone == "+254711000555"


def test_a_kobo_payload_without_a_mapped_text_field_says_which_fields_it_has(client: FlaskClient, token: str) -> None:
    body = {"_uuid": "u-3", "q_story": "Where do I collect my hygiene kit?", "q_age": "34", "_status": "ok"}
    response = post(client, token, body)
    assert response.status_code == 422
    data = response.get_json()
    assert data["error"] == "no_text_field" and data["field"] == "text"
    assert "q_story" in data["message"] and "feedback" in data["message"]
    assert "hygiene" not in data["message"]
    assert counts() == NOTHING


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"group_feedback/feedback": ["a", "list"]}, "invalid_text"),
        ({"group_contact/phone": "call me"}, "invalid_phone"),
        ({"_uuid": "", "meta/instanceID": None, "_id": None}, "missing_field"),
    ],
)
def test_a_bad_kobo_submission_is_refused_clearly(
    client: FlaskClient, token: str, change: dict[str, Any], code: str
) -> None:
    body = {key: value for key, value in {**KOBO, **change}.items() if value is not None}
    response = post(client, token, body)
    assert response.status_code == 422 and response.get_json()["error"] == code
    assert counts() == NOTHING


# ---------------------------------------------------------------------------------------------------------------
# RapidPro / TextIt


def test_a_rapidpro_webhook_creates_a_case_from_the_feedback_result(client: FlaskClient, token: str) -> None:
    response = post(client, token, RAPIDPRO)
    assert response.status_code == 201 and response.get_json()["format"] == "rapidpro"
    case = db.session.scalars(select(Case)).one()
    assert case.text == RAPIDPRO["results"]["feedback"]["value"]
    assert case.reporter is not None and case.reporter.phone == "+254711000333"
    assert case.reporter.name == "Amina" and case.reporter.consent_to_contact
    assert post(client, token, RAPIDPRO).status_code == 200
    assert counts()["case"] == 1


def test_a_rapidpro_webhook_without_results_uses_the_input_text(client: FlaskClient, token: str) -> None:
    body = {**RAPIDPRO, "results": {}, "input": {"uuid": "m-2", "text": QUESTION, "urn": "whatsapp:254711000333"}}
    body["contact"] = {"uuid": "c-1", "name": None, "urn": "whatsapp:254711000333"}
    assert post(client, token, body).status_code == 201
    case = db.session.scalars(select(Case)).one()
    assert case.text == QUESTION
    assert case.reporter is not None and case.reporter.phone == "+254711000333"
    assert case.reporter.consent_to_contact is False


def test_a_rapidpro_webhook_without_text_is_refused(client: FlaskClient, token: str) -> None:
    body = {**RAPIDPRO, "results": {}, "input": None}
    response = post(client, token, body)
    assert response.status_code == 422 and response.get_json()["error"] == "empty_text"
    assert counts() == NOTHING


# ---------------------------------------------------------------------------------------------------------------
# Case status


def test_the_status_of_a_case_of_the_token_programme(client: FlaskClient, token: str) -> None:
    reference = post(client, token, {"text": QUESTION}).get_json()["reference"]
    for typed in (reference, reference.lower(), reference.replace("-", "")):
        response = client.get(f"/api/v1/cases/{typed}", headers=bearer(token))
        assert response.status_code == 200
        assert response.get_json() == {"reference": reference, "stage": "received"}


def test_a_restricted_case_answers_exactly_like_a_general_one(client: FlaskClient, token: str) -> None:
    text = "The escort asked for money to keep our names on the list for the flight"
    reference = post(client, token, {"text": text}).get_json()["reference"]
    case = db.session.scalars(select(Case).where(Case.reference == reference)).one()
    assert case.queue == "restricted"
    response = client.get(f"/api/v1/cases/{reference}", headers=bearer(token))
    assert response.get_json() == {"reference": reference, "stage": "received"}


def test_another_programmes_case_is_not_found(client: FlaskClient, token: str) -> None:
    create_programme("greece", "Greece relocation", language="ar")
    other = submit(IntakeRequest(channel="web", text=QUESTION, programme="greece")).case
    for reference in (other.reference, "7QK2-M9XD", "not a code"):
        response = client.get(f"/api/v1/cases/{reference}", headers=bearer(token))
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"


def test_the_openapi_document_describes_every_route(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/api/v1/feedback", "/api/v1/cases/{reference}", "/api/v1/openapi.json"}
    routes = {rule.rule for rule in client.application.url_map.iter_rules() if rule.rule.startswith("/api/")}
    assert {path.replace("{reference}", "<reference>") for path in document["paths"]} == routes
