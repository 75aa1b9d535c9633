"""The one access rule: which cases a user may list, search, count, export or open.

Every path that reads cases goes through visible_cases(); tests named after the property they guard prove
each path refuses the wrong role (shared/DESIGN.md, "The restricted queue is a security boundary").
"""

from __future__ import annotations

from typing import Literal, cast

from sqlalchemy import Select, false, select

from cfm.extensions import db
from cfm.models import Case, User
from cfm.models.case import QUEUE_GENERAL, QUEUE_PENDING, QUEUE_RESTRICTED
from cfm.services.reference import normalise_reference

Purpose = Literal["read", "aggregate"]
GENERAL_READERS = ("officer", "supervisor")
RESTRICTED_READERS = ("focal_point",)


def visible_cases(user: User | None, *, purpose: Purpose = "read") -> Select[tuple[Case]]:
    """A select() of the cases this user may see: the only query any code uses to list cases.

    Officers and supervisors: the general queue of their programmes. Focal points: the restricted queue and the
    cases still pending classification (fail closed) of their programmes. Admins: nothing unless they also hold
    one of those roles (segregation of duties). Report viewers: general cases, and only for aggregates.
    """
    query = select(Case)
    if user is None or not user.active:
        return query.where(false())
    roles = set(user.roles or [])
    queues: set[str] = set()
    if roles & set(GENERAL_READERS):
        queues.add(QUEUE_GENERAL)
    if roles & set(RESTRICTED_READERS):
        queues.update((QUEUE_RESTRICTED, QUEUE_PENDING))
    if purpose == "aggregate" and "report_viewer" in roles:
        queues.add(QUEUE_GENERAL)
    if not queues:
        return query.where(false())
    query = query.where(Case.queue.in_(sorted(queues)))
    if user.programmes:  # none means all programmes
        query = query.where(Case.programme_id.in_([programme.id for programme in user.programmes]))
    return query


def get_visible_case(user: User | None, reference: str) -> Case | None:
    """The case with this reference if the user may open it; None otherwise (the view answers 404, never 403)."""
    canonical = normalise_reference(reference)
    if canonical is None:
        return None
    return cast(Case | None, db.session.scalars(visible_cases(user).where(Case.reference == canonical)).first())


def can_see_restricted(user: User | None) -> bool:
    """True for active focal points."""
    return bool(user and user.active and set(user.roles or []) & set(RESTRICTED_READERS))
