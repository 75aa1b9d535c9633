"""Our ten category codes in the IFRC community feedback coding framework's Type → Category form.

Source: the IFRC Feedback Kit (Community Engagement and Accountability toolkit, tool 15), tools 22 and 23
("Template coding framework and codebook", "Example coding frameworks"), which code each piece of feedback
first by its type (question, request, complaint, suggestion, appreciation/positive feedback, rumour/belief/
observation) and then by a category, and which set sensitive feedback (sexual exploitation and abuse, fraud and
corruption, staff misconduct, safety and security) apart for confidential handling. This is our reading of that
framework for movement operations (issue 6); an operation that uses an adapted codebook changes this one table.

The values are the framework's English wording and deliberately not translated: they are a shared vocabulary for
inter-agency reporting, compared and summed across organisations and languages.
"""

from __future__ import annotations

from typing import NamedTuple

from classifier.categories import CATEGORIES


class IfrcCode(NamedTuple):
    """One cell pair of the framework: the feedback type and the category under it."""

    type: str
    category: str


SENSITIVE = "Sensitive feedback"

IFRC_CODES: dict[str, IfrcCode] = {
    "information_request": IfrcCode("Question", "Information about the operation, its process and documents"),
    "assistance_request": IfrcCode("Request", "Request for assistance or services"),
    "service_complaint": IfrcCode("Complaint", "Quality, timeliness or conditions of services"),
    "suggestion": IfrcCode("Suggestion", "Suggestion to improve the operation"),
    "appreciation": IfrcCode("Appreciation / positive feedback", "Appreciation of services, staff or volunteers"),
    "other": IfrcCode("Rumour / belief / observation", "Other or unclear feedback"),
    "sexual_exploitation_abuse": IfrcCode(SENSITIVE, "Sexual exploitation and abuse"),
    "fraud_corruption": IfrcCode(SENSITIVE, "Fraud and corruption"),
    "staff_misconduct": IfrcCode(SENSITIVE, "Staff misconduct"),
    "safety_protection": IfrcCode(SENSITIVE, "Safety and security"),
}
NOT_CODED = IfrcCode("", "")  # a case still awaiting classification has no code yet

assert set(IFRC_CODES) == set(CATEGORIES), "every category code needs its IFRC Type and Category"


def ifrc_code(category: str | None) -> IfrcCode:
    """The framework's Type and Category for one of our category codes (blank when not yet classified)."""
    return IFRC_CODES.get(category or "", NOT_CODED)
