"""The OpenAPI 3.1 document of /api/v1, kept beside the code it describes (tests run schemathesis against it)."""

from __future__ import annotations

from typing import Any

from cfm.api.payloads import MAX_ID_LENGTH
from cfm.services.status import STAGE_ORDER
from channels.base import MAX_TEXT_LENGTH

REFERENCE_PATTERN = "^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$"


def _error(description: str) -> dict[str, Any]:
    """A response with the Error body."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document() -> dict[str, Any]:
    """The OpenAPI document as a dict."""
    feedback_result = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeedbackResult"}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CFM partner API",
            "version": "1.0.0",
            "description": (
                "Feedback intake for partner systems (plain JSON, KoboToolbox REST Services, RapidPro/TextIt flow "
                "webhooks) and case status. Every call needs an API token of one programme, created with "
                "`cfm tokens create --programme SLUG --name NAME`: `Authorization: Bearer <token>`, or Basic auth "
                "with the token as the password (KoboToolbox)."
            ),
        },
        "security": [{"bearerAuth": []}, {"basicAuth": []}],
        "paths": {
            "/api/v1/feedback": {
                "post": {
                    "operationId": "submitFeedback",
                    "summary": "Submit one piece of feedback",
                    "description": (
                        "The payload kind is detected (Kobo: `_uuid`; RapidPro: `flow` and `run`; otherwise plain "
                        "JSON) or given with `format`. Idempotent: the same `external_id`, Kobo `_uuid` or RapidPro "
                        "message answers 200 with the case already created."
                    ),
                    "parameters": [
                        {
                            "name": "format",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["json", "kobo", "rapidpro"]},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "anyOf": [
                                        {"$ref": "#/components/schemas/Feedback"},
                                        {"$ref": "#/components/schemas/KoboSubmission"},
                                        {"$ref": "#/components/schemas/RapidProWebhook"},
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": {"description": "Case created", **feedback_result},
                        "200": {"description": "Already received: the existing case", **feedback_result},
                        "400": _error("The body is not a JSON object, or the format is unknown"),
                        "401": _error("Missing, unknown or revoked token"),
                        "413": _error("The body is larger than the limit (1 MB by default)"),
                        "415": _error("The body is not JSON"),
                        "422": _error("The payload was understood but refused (the field and reason are given)"),
                        "429": _error("Too many requests for this token"),
                        "503": _error("Not stored; retry later"),
                    },
                }
            },
            "/api/v1/cases/{reference}": {
                "get": {
                    "operationId": "getCaseStatus",
                    "summary": "The stage of a case of the token's programme",
                    "parameters": [
                        {
                            "name": "reference",
                            "in": "path",
                            "required": True,
                            "description": "XXXX-XXXX; lower case, no hyphen, O for 0 and I/L for 1 are accepted.",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 40},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The case's stage",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CaseStatus"}}},
                        },
                        "401": _error("Missing, unknown or revoked token"),
                        "404": _error("No case with this reference in the token's programme"),
                        "429": _error("Too many requests for this token"),
                        "503": _error("Unavailable; retry later"),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Any user name; the token as password.",
                },
            },
            "schemas": {
                "Feedback": {
                    "type": "object",
                    "description": "Plain JSON. null stands for an absent optional field.",
                    "additionalProperties": False,
                    "required": ["text"],
                    "properties": {
                        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LENGTH},
                        "external_id": {
                            "type": ["string", "null"],
                            "minLength": 1,
                            "maxLength": MAX_ID_LENGTH,
                            "description": "Your id for this submission; sending it again creates nothing new.",
                        },
                        "language": {
                            "type": ["string", "null"],
                            "pattern": "^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$",
                            "description": "ISO 639 code or tag (ar, fa, fa-AF); detected from the text when absent.",
                        },
                        "consent_to_contact": {"type": "boolean", "default": False},
                        "contact": {
                            "type": ["object", "null"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": ["string", "null"], "maxLength": 200},
                                "phone": {"type": ["string", "null"], "pattern": "^\\+[1-9][0-9]{6,14}$"},
                                "email": {"type": ["string", "null"], "format": "email", "maxLength": 254},
                            },
                        },
                        "received_at": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
                "KoboSubmission": {
                    "type": "object",
                    "description": (
                        "A KoboToolbox REST Service submission. The form's fields are mapped to text, language, "
                        "consent, phone, name and email by name (a group path ending in the name matches); the "
                        "mapping is configurable per token."
                    ),
                    "required": ["_uuid"],
                    "properties": {
                        "_uuid": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
                        "_submission_time": {"type": "string", "description": "Used as the received time."},
                    },
                    "additionalProperties": True,
                },
                "RapidProWebhook": {
                    "type": "object",
                    "description": (
                        "The body of a RapidPro/TextIt flow webhook: the feedback is the first of the configured "
                        "results (feedback, complaint...) or else the input text."
                    ),
                    "required": ["contact", "flow", "run"],
                    "properties": {
                        "contact": {
                            "type": "object",
                            "properties": {
                                "uuid": {"type": "string"},
                                "name": {"type": ["string", "null"]},
                                "urn": {"type": ["string", "null"]},
                                "language": {"type": ["string", "null"]},
                            },
                        },
                        "flow": {
                            "type": "object",
                            "properties": {"uuid": {"type": "string"}, "name": {"type": "string"}},
                        },
                        "run": {
                            "type": "object",
                            "properties": {"uuid": {"type": "string"}, "created_on": {"type": "string"}},
                        },
                        "results": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "properties": {
                                    "value": {"type": ["string", "null"]},
                                    "category": {"type": ["string", "null"]},
                                },
                            },
                        },
                        "input": {
                            "type": ["object", "null"],
                            "properties": {
                                "uuid": {"type": "string"},
                                "text": {"type": ["string", "null"]},
                                "urn": {"type": ["string", "null"]},
                            },
                        },
                    },
                    "additionalProperties": True,
                },
                "FeedbackResult": {
                    "type": "object",
                    "required": ["reference", "created", "format", "language", "acknowledgement", "ignored_fields"],
                    "properties": {
                        "reference": {"type": "string", "pattern": REFERENCE_PATTERN},
                        "created": {"type": "boolean"},
                        "format": {"type": "string", "enum": ["json", "kobo", "rapidpro"]},
                        "language": {"type": ["string", "null"]},
                        "acknowledgement": {
                            "type": "string",
                            "description": "The acknowledgement in the person's language, to pass on to them.",
                        },
                        "ignored_fields": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Kobo form fields that were not mapped to anything.",
                        },
                    },
                },
                "CaseStatus": {
                    "type": "object",
                    "required": ["reference", "stage"],
                    "properties": {
                        "reference": {"type": "string", "pattern": REFERENCE_PATTERN},
                        "stage": {"type": "string", "enum": list(STAGE_ORDER)},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": ["string", "null"]},
                        "status": {"type": "integer"},
                    },
                },
            },
        },
    }
