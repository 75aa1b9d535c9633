"""SQLAlchemy 2.0 typed models."""

from cfm.models.audit import AuditEvent
from cfm.models.case import Case, Message
from cfm.models.programme import PhoneNumber, Programme
from cfm.models.reporter import Reporter
from cfm.models.survey import Survey, SurveyResponse
from cfm.models.user import ROLES, User

__all__ = [
    "ROLES",
    "AuditEvent",
    "Case",
    "Message",
    "PhoneNumber",
    "Programme",
    "Reporter",
    "Survey",
    "SurveyResponse",
    "User",
]
