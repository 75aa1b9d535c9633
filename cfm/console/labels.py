"""Translatable labels for the codes the console shows (statuses, categories, channels...)."""

from __future__ import annotations

from datetime import datetime, timedelta

import flask_babel
from babel import dates
from flask_babel import lazy_gettext as _l

STATUS_LABELS = {
    "new": _l("New"),
    "under_review": _l("Under review"),
    "referred_internally": _l("Referred internally"),
    "referred_externally": _l("Referred externally"),
    "no_action_required": _l("No individual action required"),
    "action_taken": _l("Action taken"),
    "closed": _l("Closed"),
}
CATEGORY_LABELS = {
    "information_request": _l("Information request"),
    "assistance_request": _l("Assistance request"),
    "service_complaint": _l("Service complaint"),
    "suggestion": _l("Suggestion"),
    "appreciation": _l("Appreciation"),
    "other": _l("Other"),
    "sexual_exploitation_abuse": _l("Sexual exploitation and abuse"),
    "fraud_corruption": _l("Fraud and corruption"),
    "staff_misconduct": _l("Staff misconduct"),
    "safety_protection": _l("Safety and protection"),
}
PRIORITY_LABELS = {"low": _l("Low"), "normal": _l("Normal"), "high": _l("High"), "urgent": _l("Urgent")}
CHANNEL_LABELS = {
    "web": _l("Web form"),
    "survey": _l("Survey"),
    "sms": _l("SMS"),
    "whatsapp": _l("WhatsApp"),
    "hotline": _l("Hotline"),
    "ivr": _l("Voicemail"),
    "api": _l("Partner API"),
}
QUEUE_LABELS = {"general": _l("General"), "restricted": _l("Restricted"), "pending": _l("Awaiting classification")}
CLOSURE_LABELS = {
    "sms_reply": _l("Answered by SMS"),
    "call": _l("Answered by phone call"),
    "visit": _l("Answered in person"),
    "information_given": _l("Information given at once"),
    "not_reachable": _l("Not reachable or anonymous"),
}
REASON_LABELS = {
    "safety_net": _l("Safety-net keywords"),
    "category": _l("Classifier category"),
    "threshold": _l("Restricted probability above threshold"),
    "unclassified": _l("Not classified"),
    "officer": _l("Moved by staff"),
}
EVENT_LABELS = {
    "status": _l("Status"),
    "category": _l("Category"),
    "queue": _l("Queue"),
    "assignment": _l("Assignment"),
    "referral": _l("Referral"),
}
DELIVERY_LABELS = {
    "pending": _l("Waiting to be sent"),
    "retrying": _l("Sending again soon"),
    "accepted": _l("Accepted"),
    "scheduled": _l("Scheduled"),
    "queued": _l("Queued"),
    "sending": _l("Sending"),
    "sent": _l("Sent"),
    "delivered": _l("Delivered"),
    "read": _l("Read"),
    "undelivered": _l("Not delivered"),
    "failed": _l("Failed"),
    "not_sent": _l("Not sent"),
    "canceled": _l("Cancelled"),
}
REPLY_REFUSALS = {
    "no_phone": _l("The person left no phone number, so there is no one to reply to."),
    "no_consent": _l("The person did not agree to be contacted."),
    "opted_out": _l("The person asked for no more messages (STOP)."),
}
ROLE_LABELS = {
    "officer": _l("MEC officer"),
    "supervisor": _l("Supervisor"),
    "focal_point": _l("Focal point"),
    "admin": _l("Administrator"),
    "report_viewer": _l("Report viewer"),
}


def label(table: dict[str, object], code: str | None) -> str:
    """The translated label of a code, or the code itself when it has none."""
    if code is None:
        return ""
    return str(table.get(code, code))


class PageFormats:
    """Labels and dates for one page that shows many rows, with the locale and time zone looked up once.

    A queue page shows fifty rows of labels and dates: through label() and the Babel filters each one looks up the
    request's translations, locale and time zone again (a third of the page's CPU, issue 9). The text is the same:
    the same translations, and the same Babel calls flask_babel's format_datetime and format_timedelta make.
    """

    def __init__(self) -> None:
        self.locale = flask_babel.get_locale()
        self.tzinfo = flask_babel.get_timezone()
        self._formats = flask_babel.get_babel().instance.date_formats
        self._tables: dict[int, dict[str, str]] = {}

    def label(self, table: dict[str, object], code: str | None) -> str:
        """label(table, code), each table translated once."""
        if code is None:
            return ""
        translated = self._tables.get(id(table))
        if translated is None:
            translated = self._tables[id(table)] = {key: str(value) for key, value in table.items()}
        return translated.get(code, code)

    def datetime(self, value: datetime, width: str) -> str:
        """As the `datetimeformat(width)` filter: in the request's time zone and locale."""
        pattern = self._formats.get(f"datetime.{width}") or width
        return dates.format_datetime(value, pattern, tzinfo=self.tzinfo, locale=self.locale)

    def timedelta(self, delta: timedelta, granularity: str) -> str:
        """As the `timedeltaformat(granularity=...)` filter."""
        return dates.format_timedelta(delta, granularity, threshold=0.85, add_direction=False, locale=self.locale)
