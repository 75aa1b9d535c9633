"""Triage actions: assignment, status workflow, category corrections, notes, closing the loop, referrals.

Every action re-checks that the actor may see the case (access.get_visible_case), writes a CaseEvent for the
case's history and an audit event (who, when, what; the reason itself is sealed in the CaseEvent, and the audit
event carries its SHA-256 so that the log stays tamper-evident without holding words that may name people),
then commits. Views stay thin (shared/DESIGN.md: "Indico: state changes go through service functions").

Optimistic locking (issue 8): the actions that change the case row (assign, status, category, referral) take the
version of the case the officer saw and refuse with StaleCase when it has moved on; a write that races past that
check fails its flush (Case.version is the mapper's version_id_col) and is refused the same way. Notes, replies,
views and delivery callbacks only add or change other rows, so they never make an officer's form stale.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ParamSpec, TypeVar

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from cfm.extensions import db
from cfm.models import Case, CaseEvent, CaseNote, Referral, User
from cfm.models.case import QUEUE_GENERAL, QUEUE_PENDING, QUEUE_RESTRICTED, STATUSES
from cfm.models.types import utcnow
from cfm.services import audit, dashboard, routing
from cfm.services.access import GENERAL_READERS, RESTRICTED_READERS, can_see_restricted, get_visible_case
from classifier.categories import CATEGORIES, is_restricted

# The workflow of shared/DESIGN.md: new -> under review -> referred / no action / action taken -> closed.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("under_review", "no_action_required"),
    "under_review": ("referred_internally", "referred_externally", "no_action_required", "action_taken"),
    "referred_internally": ("action_taken", "no_action_required", "under_review", "closed"),
    "referred_externally": ("action_taken", "no_action_required", "under_review", "closed"),
    "no_action_required": ("closed", "under_review"),
    "action_taken": ("closed", "under_review"),
    "closed": ("under_review",),
}
# How the loop was closed with the person (shared/DESIGN.md, "Closing the loop").
CLOSURE_METHODS = ("sms_reply", "call", "visit", "information_given", "not_reachable")
DEFAULT_PLATFORM = "misconduct_reporting"
MAX_REASON = 2000
MAX_NOTE = 10000
MAX_REFERRAL_ID = 128
log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


class TriageError(ValueError):
    """An action that cannot be done; the message (translated) says why."""


class CaseNotVisible(LookupError):
    """The actor may not see this case: the view answers 404."""


class StaleCase(TriageError):
    """The case changed since the officer read it (optimistic locking, issue 8): nothing was written.

    The console shows its own translated words for it (cfm.console.views._act); this message is for logs and CLI.
    """

    def __init__(self) -> None:
        super().__init__("The case changed since it was read; nothing was written.")


def _check_version(case: Case, expected_version: int | None) -> None:
    """Refuse when the form was filled in on an older version of the case (None: the caller did not say)."""
    if expected_version is not None and expected_version != case.version:
        raise StaleCase()


def _stale_safe(action: Callable[P, R]) -> Callable[P, R]:
    """A concurrent write that wins the race between our check and our flush surfaces as StaleCase, rolled back."""

    @functools.wraps(action)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return action(*args, **kwargs)
        except StaleDataError:
            db.session.rollback()
            log.info("%s: refused, the case changed concurrently", action.__name__)
            raise StaleCase() from None

    return wrapper


def _check_visible(case: Case, actor: User) -> None:
    """Defence in depth: the service refuses a case the actor could not have opened."""
    if get_visible_case(actor, case.reference) is None:
        raise CaseNotVisible(case.reference)


def _reason(reason: str | None, *, required: bool) -> str | None:
    """A trimmed reason, required or optional, of bounded length."""
    text = (reason or "").strip()
    if required and not text:
        raise TriageError(_("Please give a reason."))
    if len(text) > MAX_REASON:
        raise TriageError(_("The reason is too long."))
    return text or None


def _event(case: Case, actor: User, kind: str, old: str | None, new: str | None, reason: str | None) -> CaseEvent:
    """Add a history event to the session."""
    event = CaseEvent(case=case, actor_id=actor.id, kind=kind, old_value=old, new_value=new, reason=reason)
    db.session.add(event)
    db.session.flush()
    if kind == "status" and old == "new":  # a first response, for the dashboard (issue 9)
        dashboard.record_response(case, event.created_at)
    return event


def _audit(action: str, case: Case, actor: User, event: CaseEvent | None, **details: Any) -> None:
    """Audit event for a case action: values changed, the history event, a hash of the reason."""
    if event is not None:
        details["event"] = event.id
        if event.reason:
            details["reason_sha256"] = hashlib.sha256(event.reason.encode("utf-8")).hexdigest()
    audit.record(action, actor=actor, object_type="case", object_ref=case.reference, details=details)


# --- assignment ---------------------------------------------------------------------------------------------


def _scoped_to(user: User, case: Case) -> bool:
    """True when the user's programmes include the case's (no programmes means all)."""
    return not user.programmes or any(p.id == case.programme_id for p in user.programmes)


def _may_read_queue(user: User, queue: str) -> bool:
    """True when the user's roles open this queue."""
    readers = GENERAL_READERS if queue == QUEUE_GENERAL else RESTRICTED_READERS
    return bool(set(user.roles or []) & set(readers))


def assignable_users(case: Case) -> list[User]:
    """Active users who could open this case, by email."""
    users = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.email))
    return [u for u in users if _may_read_queue(u, case.queue) and _scoped_to(u, case)]


def can_assign_others(actor: User, case: Case) -> bool:
    """Supervisors assign general cases; focal points assign restricted ones."""
    roles = set(actor.roles or [])
    return "supervisor" in roles if case.queue == QUEUE_GENERAL else "focal_point" in roles


@_stale_safe
def assign(
    case: Case,
    assignee: User | None,
    *,
    actor: User,
    reason: str | None = None,
    expected_version: int | None = None,
) -> CaseEvent:
    """Assign or unassign; anyone may take an unassigned case or hand back their own, only leads reassign."""
    _check_visible(case, actor)
    _check_version(case, expected_version)
    reason = _reason(reason, required=False)
    current = case.assignee
    if assignee is not None and assignee.id == (current.id if current else None):
        raise TriageError(_("The case is already assigned to this person."))
    self_service = (assignee is not None and assignee.id == actor.id and current is None) or (
        assignee is None and current is not None and current.id == actor.id
    )
    if not self_service and not can_assign_others(actor, case):
        raise TriageError(_("Only a supervisor or a focal point can reassign this case."))
    if assignee is not None and assignee.id not in {u.id for u in assignable_users(case)}:
        raise TriageError(_("This person cannot work on this case."))
    case.assignee = assignee
    event = _event(
        case, actor, "assignment", current.email if current else None, assignee.email if assignee else None, reason
    )
    _audit(
        "case.assign",
        case,
        actor,
        event,
        to=assignee.id if assignee else None,
        previous=current.id if current else None,
    )
    db.session.commit()
    return event


# --- status workflow ------------------------------------------------------------------------------------------


def next_statuses(case: Case) -> tuple[str, ...]:
    """Statuses the workflow allows from the case's status."""
    return TRANSITIONS.get(case.status, ())


@_stale_safe
def change_status(
    case: Case,
    status: str,
    *,
    actor: User,
    reason: str | None = None,
    closure_method: str | None = None,
    expected_version: int | None = None,
) -> CaseEvent:
    """Move a case along the workflow; closing records how the loop was closed with the person."""
    _check_visible(case, actor)
    _check_version(case, expected_version)
    if status not in STATUSES or status not in next_statuses(case):
        raise TriageError(_("This status change is not part of the workflow."))
    reason = _reason(reason, required=False)
    old = case.status
    details: dict[str, Any] = {"from": old, "to": status}
    if status == "closed":
        if closure_method not in CLOSURE_METHODS:
            raise TriageError(_("Say how the loop was closed with the person before closing the case."))
        case.closed_at = utcnow()
        case.closure_method = closure_method
        details["closure_method"] = closure_method
    elif old == "closed":
        case.closed_at = None
        case.closure_method = None
    case.status = status
    event = _event(case, actor, "status", old, status, reason)
    _audit("case.status", case, actor, event, **details)
    db.session.commit()
    return event


# --- category corrections -------------------------------------------------------------------------------------


@_stale_safe
def reclassify(
    case: Case, category: str, *, actor: User, reason: str | None, expected_version: int | None = None
) -> CaseEvent:
    """Correct the category (the classifier's training signal); move the case between queues when it must.

    Anyone who can open a case may move it INTO the restricted queue (its text and thread are sealed at once and
    the case leaves the officer's sight); only a focal point may move one OUT (shared/DESIGN.md, "Routing").
    """
    _check_visible(case, actor)
    _check_version(case, expected_version)
    if category not in CATEGORIES:
        raise TriageError(_("Unknown category."))
    reason = _reason(reason, required=True)
    to_restricted = is_restricted(category)
    was_restricted = case.queue != QUEUE_GENERAL
    if was_restricted and not to_restricted and not can_see_restricted(actor):
        raise TriageError(_("Only a focal point can move a case out of the restricted queue."))
    if category == case.category and to_restricted == was_restricted:
        raise TriageError(_("The case already has this category."))
    old_category, old_queue = case.category, case.queue
    case.category = category
    case.category_source = "officer"
    if case.classification_status == "pending":
        case.classification_status = "done"  # the officer's decision stands; a late model run must not undo it
    event = _event(case, actor, "category", old_category, category, reason)
    details: dict[str, Any] = {"from": old_category, "to": category}
    if to_restricted and not was_restricted:
        _move_to_restricted(case, actor, category)
        details["queue"] = [old_queue, case.queue]
    elif was_restricted and not to_restricted:
        _move_to_general(case, actor)
        details["queue"] = [old_queue, case.queue]
    old_due = case.due_at
    case.due_at = _recomputed_due(case, category, escalated=to_restricted and not was_restricted)
    if case.due_at != old_due:
        # Even a later date (e.g. an overdue restricted case moved to a category with a longer level) is on record.
        details["due_at"] = [old_due.isoformat() if old_due else None, case.due_at.isoformat()]
    _audit("case.category", case, actor, event, **details)
    db.session.commit()
    return event


def _recomputed_due(case: Case, category: str, *, escalated: bool) -> datetime:
    """The due date for the new category, counted from receipt (issue 6: service levels per category).

    Moving a case into the restricted queue never makes it due later than it was.
    """
    due = routing.due_at(case.programme, case.received_at, restricted=case.queue != QUEUE_GENERAL, category=category)
    return min(due, case.due_at) if escalated and case.due_at else due


def _move_to_restricted(case: Case, actor: User, category: str) -> None:
    """Seal the text and thread, raise priority (reclassify() gives it the category's service level)."""
    old_queue = case.queue
    case.queue = QUEUE_RESTRICTED
    case.set_sealed(True)
    for message in case.messages:
        message.set_sealed(True)
    case.restricted_reasons = sorted(set(case.restricted_reasons or []) | {"officer"})
    case.priority = "urgent" if category in routing.URGENT_CATEGORIES else "high"
    if case.assignee is not None and not _may_read_queue(case.assignee, QUEUE_RESTRICTED):
        case.assignee = None  # an officer may not keep a case they can no longer open
    _event(case, actor, "queue", old_queue, QUEUE_RESTRICTED, None)


def _move_to_general(case: Case, actor: User) -> None:
    """Unseal the text and thread (searchable again), normal priority (reclassify() sets the service level)."""
    old_queue = case.queue
    case.queue = QUEUE_GENERAL
    case.set_sealed(False)
    for message in case.messages:
        message.set_sealed(False)
    case.priority = "normal"
    if case.assignee is not None and not _may_read_queue(case.assignee, QUEUE_GENERAL):
        case.assignee = None
    _event(case, actor, "queue", old_queue, QUEUE_GENERAL, None)


# --- notes and referrals --------------------------------------------------------------------------------------


def add_note(case: Case, body: str, *, actor: User) -> CaseNote:
    """An internal note (sealed at rest); the audit log records that a note was added, not its words."""
    _check_visible(case, actor)
    text = (body or "").strip()
    if not text:
        raise TriageError(_("The note is empty."))
    if len(text) > MAX_NOTE:
        raise TriageError(_("The note is too long."))
    note = CaseNote(case=case, author_id=actor.id, body=text)
    db.session.add(note)
    db.session.flush()
    audit.record("case.note", actor=actor, object_type="case", object_ref=case.reference, details={"note": note.id})
    db.session.commit()
    return note


@_stale_safe
def refer(
    case: Case,
    referral_id: str,
    referred_on: date,
    *,
    actor: User,
    platform: str = DEFAULT_PLATFORM,
    expected_version: int | None = None,
) -> Referral:
    """Record a restricted case's referral to the misconduct-reporting platform, with that platform's id."""
    _check_visible(case, actor)
    _check_version(case, expected_version)
    if case.queue not in (QUEUE_RESTRICTED, QUEUE_PENDING) or not can_see_restricted(actor):
        raise TriageError(_("Only restricted cases are referred to the misconduct-reporting platform."))
    referral_id = (referral_id or "").strip()
    if not referral_id or len(referral_id) > MAX_REFERRAL_ID:
        raise TriageError(_("Enter the referral id given by the platform."))
    if referred_on > utcnow().date():
        raise TriageError(_("The referral date cannot be in the future."))
    referral = Referral(
        case=case, platform=platform, referral_id=referral_id, referred_on=referred_on, actor_id=actor.id
    )
    db.session.add(referral)
    event = _event(case, actor, "referral", None, referral_id[:64], None)
    _audit(
        "case.referral",
        case,
        actor,
        event,
        platform=platform,
        referral_id=referral_id,
        referred_on=referred_on.isoformat(),
    )
    if "referred_internally" in next_statuses(case) or case.status == "new":
        old = case.status
        case.status = "referred_internally"
        status_event = _event(case, actor, "status", old, case.status, None)
        _audit("case.status", case, actor, status_event, **{"from": old, "to": case.status, "by": "referral"})
    db.session.commit()
    return referral


# --- reading --------------------------------------------------------------------------------------------------


def history(case: Case) -> list[CaseEvent]:
    """The case's events, oldest first."""
    query = select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.created_at, CaseEvent.id)
    return list(db.session.scalars(query))


def notes(case: Case) -> list[CaseNote]:
    """The case's internal notes, oldest first."""
    query = select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.created_at, CaseNote.id)
    return list(db.session.scalars(query))


def referrals(case: Case) -> list[Referral]:
    """The case's referrals, newest first."""
    query = (
        select(Referral).where(Referral.case_id == case.id).order_by(Referral.referred_on.desc(), Referral.id.desc())
    )
    return list(db.session.scalars(query))


def record_view(case: Case, actor: User) -> None:
    """Every view of a restricted (or still unclassified) case is audited (issue 6, "Security proofs")."""
    if case.is_restricted:
        audit.record(
            "case.view", actor=actor, object_type="case", object_ref=case.reference, details={"queue": case.queue}
        )
        db.session.commit()
