"""The public status lookup: a reference code -> the status in plain words and public staff replies, nothing else.

Nothing here may tell a restricted case apart from a general one (issue 4): the stage depends on the
workflow status only, which both queues share, and the same queries run whether the code is malformed,
unknown or known, so that neither wording nor timing separates those answers.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import select

from cfm.extensions import db
from cfm.models import Case, Message
from cfm.services.reference import normalise_reference

# Workflow status -> what the person is told. Referrals read "in progress": "referred externally" is
# where a focal point's referral to the misconduct-reporting platform shows, so it must not stand out.
STAGES: dict[str, str] = {
    "new": "received",
    "under_review": "in_progress",
    "referred_internally": "in_progress",
    "referred_externally": "in_progress",
    "no_action_required": "no_action",
    "action_taken": "action_taken",
    "closed": "closed",
}
STAGE_ORDER = ("received", "in_progress", "action_taken", "no_action", "closed")
_NO_SUCH_CASE = -1


@dataclasses.dataclass(frozen=True)
class PublicReply:
    """A reply that staff sent to the person."""

    text: str
    sent_at: datetime


@dataclasses.dataclass(frozen=True)
class PublicStatus:
    """All the status page may show of a case."""

    reference: str
    stage: str
    replies: tuple[PublicReply, ...]


def lookup(value: str) -> PublicStatus | None:
    """The public status for a code as typed (lower case, no hyphen, O for 0 all work), or None."""
    reference = normalise_reference(value) or ""
    case = db.session.scalars(select(Case).where(Case.reference == reference)).first()
    query = (
        select(Message)
        .where(Message.case_id == (case.id if case is not None else _NO_SUCH_CASE), Message.direction == "outbound")
        .order_by(Message.created_at, Message.id)
    )
    messages = db.session.scalars(query).all()
    if case is None:
        return None
    replies = tuple(PublicReply(m.text, m.created_at) for m in messages if m.text)
    return PublicStatus(case.reference, STAGES.get(case.status, "in_progress"), replies)
