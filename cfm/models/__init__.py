"""SQLAlchemy 2.0 typed models."""

from cfm.models.api_token import ApiToken
from cfm.models.audit import AuditEvent
from cfm.models.case import Case, Message
from cfm.models.notice import Notice
from cfm.models.programme import PhoneNumber, Programme
from cfm.models.reply_template import ReplyTemplate
from cfm.models.reporter import Reporter
from cfm.models.survey import Survey, SurveyResponse
from cfm.models.triage import CaseEvent, CaseNote, Referral
from cfm.models.user import ROLES, User, UserSession

__all__ = [
    "ROLES",
    "ApiToken",
    "AuditEvent",
    "Case",
    "CaseEvent",
    "CaseNote",
    "Message",
    "Notice",
    "PhoneNumber",
    "Programme",
    "Referral",
    "ReplyTemplate",
    "Reporter",
    "Survey",
    "SurveyResponse",
    "User",
    "UserSession",
]
