"""Routing: queue, priority and due date from a prediction and the safety net (shared/DESIGN.md)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from flask import current_app

from cfm.models import Programme
from cfm.models.case import QUEUE_GENERAL, QUEUE_RESTRICTED
from classifier.categories import is_restricted

URGENT_CATEGORIES = ("sexual_exploitation_abuse", "safety_protection")
# The web form's "something serious" choice: the person's own word sends the case to the protected team.
SERIOUS_HINT = "serious"


@dataclasses.dataclass(frozen=True)
class Route:
    """Where a case goes and how soon it is due."""

    queue: str
    priority: str
    due_at: datetime


def due_at(programme: Programme, received_at: datetime, *, restricted: bool, category: str | None = None) -> datetime:
    """Due date: received_at plus the service level of the case's category in its queue (due_hours)."""
    return received_at + timedelta(hours=due_hours(programme, restricted=restricted, category=category))


def due_hours(programme: Programme, *, restricted: bool, category: str | None) -> int:
    """Hours to deal with a case (issue 6, shared/DESIGN.md "Case workflow and service levels").

    The programme's level for the category, else the server's DUE_HOURS_BY_CATEGORY, else the queue's level
    (the programme's, else the server's); no category (manual triage) takes the queue's level. A programme's own
    queue level also caps the server's per-category level, so that a programme that shortened its queue's level
    is never given a later date by a server-wide default. A restricted case is never due later than the restricted
    queue's level.
    """
    own = (programme.due_hours_by_category or {}).get(category) if category else None
    return _hours(programme, restricted=restricted, category=category, own=own)


def default_due_hours(programme: Programme, category: str) -> int:
    """The category's level in this programme when the programme sets none for it (the admin page's placeholder)."""
    return _hours(programme, restricted=is_restricted(category), category=category, own=None)


def _hours(programme: Programme, *, restricted: bool, category: str | None, own: int | None) -> int:
    """due_hours() with the programme's own per-category level given."""
    config = current_app.config
    own_queue = programme.due_hours_restricted if restricted else programme.due_hours_general
    queue_hours = int(own_queue or config["DUE_HOURS_RESTRICTED" if restricted else "DUE_HOURS_GENERAL"])
    server = config["DUE_HOURS_BY_CATEGORY"].get(category) if category else None
    if own:
        hours = int(own)
    elif server:
        hours = min(int(server), int(own_queue)) if own_queue else int(server)
    else:
        hours = queue_hours
    return min(hours, queue_hours) if restricted else hours


def route(
    programme: Programme,
    received_at: datetime,
    *,
    category: str | None,
    model_restricted: bool | None,
    safety_net_category: str | None,
    reporter_flagged: bool = False,
) -> Route:
    """Restricted when the model, the safety net or the person says so, or without a prediction (fail closed)."""
    restricted = (
        reporter_flagged
        or category is None
        or model_restricted is None
        or bool(model_restricted)
        or is_restricted(category)
        or safety_net_category is not None
    )
    if not restricted:
        return Route(QUEUE_GENERAL, "normal", due_at(programme, received_at, restricted=False, category=category))
    worst = safety_net_category if safety_net_category else category
    priority = "urgent" if worst in URGENT_CATEGORIES or category in URGENT_CATEGORIES else "high"
    # The sooner of the model's and the safety net's levels (no category: the restricted queue's level, the latest).
    due = min(
        due_at(programme, received_at, restricted=True, category=name) for name in (category, safety_net_category)
    )
    return Route(QUEUE_RESTRICTED, priority, due)
