"""A case: one piece of feedback, its classification, routing and workflow state."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    DDL,
    JSON,
    ColumnElement,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.functions import Function

from cfm.extensions import db
from cfm.models.types import Sealed, UTCDateTime, utcnow

if TYPE_CHECKING:
    from cfm.models.programme import Programme
    from cfm.models.reporter import Reporter
    from cfm.models.user import User

QUEUE_PENDING = "pending"  # not yet classified: shown to focal points only (fail closed)
QUEUE_GENERAL = "general"
QUEUE_RESTRICTED = "restricted"
QUEUES = (QUEUE_PENDING, QUEUE_GENERAL, QUEUE_RESTRICTED)

# The IFRC community feedback coding framework's statuses.
STATUSES = (
    "new",
    "under_review",
    "referred_internally",
    "referred_externally",
    "no_action_required",
    "action_taken",
    "closed",
)
PRIORITIES = ("low", "normal", "high", "urgent")
CATEGORY_SOURCES = ("model", "officer", "rule")


class SealableText:
    """Text kept in clear while the case is general (searchable) and sealed otherwise."""

    text_plain: Mapped[str | None]
    text_sealed: Mapped[str | None]

    @property
    def text(self) -> str:
        """The text, whichever column holds it."""
        return self.text_sealed if self.text_sealed is not None else (self.text_plain or "")

    def store_text(self, value: str, *, sealed: bool) -> None:
        """Store the text sealed or in clear, clearing the other column."""
        self.text_sealed, self.text_plain = (value, None) if sealed else (None, value)

    def set_sealed(self, sealed: bool) -> None:
        """Move the text to the sealed or the clear column."""
        if self.text_plain is None and self.text_sealed is None:
            return
        self.store_text(self.text, sealed=sealed)


class Case(SealableText, db.Model):  # type: ignore[name-defined]
    """One submission and everything that happens to it."""

    __tablename__ = "case"
    __table_args__ = (Index("ix_case_queue_status_due", "queue", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(9), unique=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("reporter.id"), index=True, default=None)
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    text_plain: Mapped[str | None] = mapped_column(Text, default=None)
    text_sealed: Mapped[str | None] = mapped_column(Sealed, default=None)
    category_hint: Mapped[str | None] = mapped_column(String(32), default=None)

    category: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    confidence: Mapped[float | None] = mapped_column(default=None)
    category_source: Mapped[str | None] = mapped_column(String(16), default=None)
    predicted_category: Mapped[str | None] = mapped_column(String(32), default=None)
    model_version: Mapped[str | None] = mapped_column(String(64), default=None)
    top_terms: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    restricted_reasons: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    safety_net_category: Mapped[str | None] = mapped_column(String(32), default=None)
    classification_status: Mapped[str] = mapped_column(String(16), default="pending")
    classification_attempts: Mapped[int] = mapped_column(default=0)

    queue: Mapped[str] = mapped_column(String(16), default=QUEUE_PENDING)
    status: Mapped[str] = mapped_column(String(32), default="new")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    closure_method: Mapped[str | None] = mapped_column(String(32), default=None)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)  # last overdue reminder
    # The earliest response to the person: an outbound reply or a status change away from "new" (issue 9). Kept by
    # cfm.services.dashboard.record_response() wherever one is recorded, so that the dashboard's median reads it
    # from an index entry instead of joining every case to its thread and history.
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Set by `cfm purge` once personal data and free text are stripped (cfm/services/retention.py, issue 8).
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Optimistic locking (issue 8): every UPDATE of the row bumps it and is refused (StaleDataError) when the row
    # changed since it was read; officers' forms carry the version they saw (cfm.services.triage.StaleCase).
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    programme: Mapped[Programme] = relationship()
    reporter: Mapped[Reporter | None] = relationship()
    assignee: Mapped[User | None] = relationship()
    messages: Mapped[list[Message]] = relationship(
        back_populates="case", order_by="Message.created_at, Message.id", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_restricted(self) -> bool:
        """True unless the case has been routed to the general queue (pending counts as restricted)."""
        return self.queue != QUEUE_GENERAL


class Message(SealableText, db.Model):  # type: ignore[name-defined]
    """One inbound or outbound message in a case's thread."""

    __tablename__ = "message"
    __table_args__ = (UniqueConstraint("channel", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # inbound | outbound
    channel: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(128), default=None)
    text_plain: Mapped[str | None] = mapped_column(Text, default=None)
    text_sealed: Mapped[str | None] = mapped_column(Sealed, default=None)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), default=None)
    delivery_status: Mapped[str | None] = mapped_column(String(32), default=None)
    media_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="messages")


# --- the console's indexes (issue 9: the queue, its counts and filters at a million cases) --------------------
# The queue's default order and what "open" means are written once here, so that the queries of
# cfm/console/queues.py use exactly the expressions these indexes are built on (an expression index or a partial
# index only serves a query that spells the expression, or the predicate, the same way).


def queue_sort_key() -> ColumnElement[datetime]:
    """The queue's default order: the due date, or the received time when a case has none."""
    return func.coalesce(Case.due_at, Case.received_at)


def is_open() -> ColumnElement[bool]:
    """status <> 'closed' with the literal in the SQL: a bound parameter would hide the partial index from SQLite
    (and from PostgreSQL's generic plans)."""
    return Case.status != literal_column("'closed'")


# Open cases of a queue and programme in due order: the default queue page reads 51 entries of it, the tab count
# counts its entries (an index-only scan); only open cases are in it, a small part of the table in a live system.
Index(
    "ix_case_open_due",
    Case.queue,
    Case.programme_id,
    queue_sort_key(),
    Case.id,
    postgresql_where=is_open(),
    sqlite_where=is_open(),
)
# Every case of a queue and programme in due order: filtered pages ("any status", a category, a channel) read it
# in order and stop after a page instead of sorting every match.
Index("ix_case_queue_programme_due", Case.queue, Case.programme_id, queue_sort_key(), Case.id)
# The languages seen in a queue (the language filter's choices): SQLite skips from one language to the next in
# it, PostgreSQL reads it without touching the table.
Index("ix_case_queue_programme_language", Case.queue, Case.programme_id, Case.language)


# The general cases of a programme received in a date range, with every column the dashboard counts, groups or
# takes a median of (cfm/services/dashboard.py): its figures come from index entries alone, never the table's rows.
# Also the queue's "newest first" order. (It replaces ix_case_queue_programme_received, its first three columns.)
Index(
    "ix_case_queue_programme_received_counts",
    Case.queue,
    Case.programme_id,
    Case.received_at,
    Case.category,
    Case.channel,
    Case.language,
    Case.status,
    Case.closed_at,
    Case.first_response_at,
    Case.id,
)
# Officers' replies by case, in order, without reading the inbound messages (most of the table): the public status
# page's replies (cfm/services/status.py) and the backfill of case.first_response_at (migration f0a47b855c10).
Index("ix_message_direction_case", Message.direction, Message.case_id, Message.created_at)


# --- full-text search (issue 6; queried by cfm/services/search.py) --------------------------------------------
# Only text_plain (general cases) is indexed: sealed text never reaches an index. The migration
# 5e4c1f7a9b21_full_text_search.py creates the same objects on a database built by `cfm init-db`.
FTS_CONFIG = "simple"  # no stemming: multilingual (Arabic, Dari, Amharic... as written)
FTS_TABLES = ("case_fts", "message_fts")
TRIGRAM = sqlite3.sqlite_version_info >= (3, 34)
SQLITE_TOKENIZER = "trigram" if TRIGRAM else "unicode61 remove_diacritics 2"


def search_vector(text_column: Any) -> Function[Any]:
    """The tsvector of the GIN indexes (PostgreSQL); a query must use this same expression to use them."""
    return func.to_tsvector(text(f"'{FTS_CONFIG}'::regconfig"), func.coalesce(text_column, text("''::text")))


def sqlite_fts_ddl(table: str, fts: str, tokenizer: str = SQLITE_TOKENIZER) -> list[str]:
    """FTS5 external-content table over table.text_plain, and the triggers that keep it in sync.

    Rows are indexed only while text_plain holds text; moving text to text_sealed (a case becoming restricted)
    removes it from the index, moving it back adds it again.
    """
    delete = f"INSERT INTO {fts}({fts}, rowid, text_plain) SELECT 'delete', old.id, old.text_plain"
    insert = f"INSERT INTO {fts}(rowid, text_plain) SELECT new.id, new.text_plain"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(text_plain, content='{table}', content_rowid='id', "
        f"tokenize='{tokenizer}')",
        f'CREATE TRIGGER {fts}_ai AFTER INSERT ON "{table}" BEGIN {insert} WHERE new.text_plain IS NOT NULL; END',
        f'CREATE TRIGGER {fts}_ad AFTER DELETE ON "{table}" BEGIN {delete} WHERE old.text_plain IS NOT NULL; END',
        f'CREATE TRIGGER {fts}_au AFTER UPDATE OF id, text_plain ON "{table}" BEGIN '
        f"{delete} WHERE old.text_plain IS NOT NULL; {insert} WHERE new.text_plain IS NOT NULL; END",
    ]


for _model, _fts in ((Case, "case_fts"), (Message, "message_fts")):
    Index(f"ix_{_model.__tablename__}_text_plain_fts", search_vector(_model.text_plain), postgresql_using="gin").ddl_if(
        dialect="postgresql"
    )
    for _statement in sqlite_fts_ddl(_model.__tablename__, _fts):
        event.listen(_model.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
