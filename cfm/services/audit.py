"""Append-only, hash-chained audit log: every sensitive read and every state change."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, text

from cfm.extensions import db
from cfm.models import AuditEvent, User
from cfm.models.types import utcnow

GENESIS = "0" * 64


def _digest(prev_hash: str, event: AuditEvent) -> str:
    """Hash of the previous hash and this event's canonical content."""
    body = json.dumps(
        {
            "at": event.created_at.isoformat(),
            "actor_id": event.actor_id,
            "actor": event.actor,
            "action": event.action,
            "object_type": event.object_type,
            "object_ref": event.object_ref,
            "details": event.details,
        },
        sort_keys=True,
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


def record(
    action: str,
    *,
    actor: User | None = None,
    object_type: str | None = None,
    object_ref: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the chain in the current transaction (the caller commits)."""
    if db.session.get_bind().dialect.name == "postgresql":
        # Serialise writers so that two transactions cannot chain onto the same previous event.
        db.session.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
    prev = db.session.scalars(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)).first()
    event = AuditEvent(
        created_at=utcnow().replace(microsecond=0),
        actor_id=actor.id if actor else None,
        actor=actor.email if actor else None,
        action=action,
        object_type=object_type,
        object_ref=object_ref,
        details=details,
    )
    event.prev_hash = prev or GENESIS
    event.hash = _digest(event.prev_hash, event)
    db.session.add(event)
    db.session.flush()
    return event


def verify_chain() -> int | None:
    """Id of the first event whose hash does not match the chain, or None when the log is intact."""
    prev = GENESIS
    for event in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).yield_per(1000):
        if event.prev_hash != prev or _digest(prev, event) != event.hash:
            return event.id
        prev = event.hash
    return None
