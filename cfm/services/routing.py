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


def due_at(programme: Programme, received_at: datetime, *, restricted: bool) -> datetime:
    """Due date from the programme's service levels, or the configured defaults."""
    if restricted:
        hours = programme.due_hours_restricted or current_app.config["DUE_HOURS_RESTRICTED"]
    else:
        hours = programme.due_hours_general or current_app.config["DUE_HOURS_GENERAL"]
    return received_at + timedelta(hours=int(hours))


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
        return Route(QUEUE_GENERAL, "normal", due_at(programme, received_at, restricted=False))
    worst = safety_net_category if safety_net_category else category
    priority = "urgent" if worst in URGENT_CATEGORIES or category in URGENT_CATEGORIES else "high"
    return Route(QUEUE_RESTRICTED, priority, due_at(programme, received_at, restricted=True))
