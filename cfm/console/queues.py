"""Queue listing: filters, search, keyset pagination and tab counts, all built on access.visible_cases()."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import Select, and_, func, literal, or_, select, union_all
from werkzeug.datastructures import MultiDict

from cfm.extensions import db
from cfm.models import Case, Programme, User
from cfm.models.case import (
    PRIORITIES,
    QUEUE_GENERAL,
    QUEUE_PENDING,
    QUEUE_RESTRICTED,
    STATUSES,
    is_open,
    queue_sort_key,
)
from cfm.models.types import utcnow
from cfm.services import search
from cfm.services.access import GENERAL_READERS, RESTRICTED_READERS, visible_cases
from channels.base import CHANNELS
from classifier.categories import CATEGORIES, LANGUAGES

PAGE_SIZE = 50
TABS: dict[str, tuple[str, ...]] = {"general": (QUEUE_GENERAL,), "restricted": (QUEUE_RESTRICTED, QUEUE_PENDING)}
SORTS = ("due", "received")
MAX_QUERY = 200


def readable_tabs(user: User) -> list[str]:
    """The queue tabs this user's roles open, in display order."""
    roles = set(user.roles or [])
    tabs = []
    if roles & set(GENERAL_READERS):
        tabs.append("general")
    if roles & set(RESTRICTED_READERS):
        tabs.append("restricted")
    return tabs


@dataclasses.dataclass
class Filters:
    """What the officer asked for; unknown or malformed values are dropped, never an error."""

    programme: str = ""
    channel: str = ""
    language: str = ""
    category: str = ""
    status: str = "open"
    priority: str = ""
    assignee: str = ""
    overdue: bool = False
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    sort: str = "due"

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> Filters:
        """Parse the query string."""

        def pick(name: str, allowed: tuple[str, ...] | list[str], default: str = "") -> str:
            value = args.get(name, default)
            return value if value in allowed else default

        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(args.get(name, ""))
            except ValueError:
                return None

        assignee = args.get("assignee", "")
        return cls(
            programme=args.get("programme", "")[:64],
            channel=pick("channel", CHANNELS),
            language=args.get("language", "")[:16],
            category=pick("category", CATEGORIES),
            status=pick("status", ("open", "all", *STATUSES), "open"),
            priority=pick("priority", PRIORITIES),
            assignee=assignee if assignee in ("me", "none") or assignee.isdigit() else "",
            overdue=args.get("overdue") in ("1", "on", "true"),
            date_from=day("from"),
            date_to=day("to"),
            q=args.get("q", "").strip()[:MAX_QUERY],
            sort=pick("sort", SORTS, "due"),
        )

    def args(self, **override: Any) -> dict[str, str]:
        """Query-string arguments that differ from the defaults (for links and the next page)."""
        values = {
            "programme": self.programme,
            "channel": self.channel,
            "language": self.language,
            "category": self.category,
            "status": "" if self.status == "open" else self.status,
            "priority": self.priority,
            "assignee": self.assignee,
            "overdue": "1" if self.overdue else "",
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "q": self.q,
            "sort": "" if self.sort == "due" else self.sort,
        }
        values.update({k: str(v) for k, v in override.items()})
        return {k: v for k, v in values.items() if v}

    @property
    def active(self) -> bool:
        """True when anything narrows the list beyond the default."""
        return bool({k: v for k, v in self.args().items() if k != "sort"})


def _search(query: Select[tuple[Case]], text: str, tab: str) -> Select[tuple[Case]]:
    """Reference everywhere; words (full-text, cfm.services.search) only in the general queue, stored in clear.

    Restricted text is sealed (encrypted at rest) so the database cannot search it: there the search covers the
    reference only, and the page says so (issue 6).
    """
    return search.search(query, text, words=tab == "general")


def filtered(user: User, tab: str, filters: Filters) -> Select[tuple[Case]]:
    """visible_cases(user) narrowed to the tab and the filters (no order, no limit)."""
    query = visible_cases(user).where(Case.queue.in_(TABS[tab]))
    if filters.programme:
        query = query.where(Case.programme_id.in_(select(Programme.id).where(Programme.slug == filters.programme)))
    if filters.channel:
        query = query.where(Case.channel == filters.channel)
    if filters.language:
        query = query.where(Case.language == filters.language)
    if filters.category:
        query = query.where(Case.category == filters.category)
    if filters.status == "open":
        query = query.where(is_open())
    elif filters.status != "all":
        query = query.where(Case.status == filters.status)
    if filters.priority:
        query = query.where(Case.priority == filters.priority)
    if filters.assignee == "me":
        query = query.where(Case.assignee_id == user.id)
    elif filters.assignee == "none":
        query = query.where(Case.assignee_id.is_(None))
    elif filters.assignee:
        query = query.where(Case.assignee_id == int(filters.assignee))
    if filters.overdue:
        query = query.where(Case.due_at < utcnow(), is_open())
    if filters.date_from:
        query = query.where(Case.received_at >= datetime.combine(filters.date_from, time(), UTC))
    if filters.date_to:
        query = query.where(Case.received_at < datetime.combine(filters.date_to + timedelta(days=1), time(), UTC))
    if filters.q:
        query = _search(query, filters.q, tab)
    return query


def encode_cursor(case: Case, sort: str) -> str:
    """The keyset position after this case."""
    key = case.received_at if sort == "received" else (case.due_at or case.received_at)
    return f"{key.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%f')}~{case.id}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    """The (time, id) of a cursor, or None when there is none or it is malformed."""
    if not value or "~" not in value:
        return None
    stamp, _sep, ident = value.partition("~")
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC), int(ident)
    except ValueError:
        return None


def page(query: Select[tuple[Case]], sort: str, after: str | None) -> tuple[list[Case], str | None]:
    """One page in keyset order: due date soonest first, or received newest first; and the next cursor."""
    cursor = decode_cursor(after)
    if sort == "received":
        if cursor:
            stamp, ident = cursor
            query = query.where(or_(Case.received_at < stamp, and_(Case.received_at == stamp, Case.id < ident)))
        query = query.order_by(Case.received_at.desc(), Case.id.desc())
    else:
        key = queue_sort_key()
        if cursor:
            stamp, ident = cursor
            query = query.where(or_(key > stamp, and_(key == stamp, Case.id > ident)))
        query = query.order_by(key.asc(), Case.id.asc())
    rows = cast(list[Case], list(db.session.scalars(query.limit(PAGE_SIZE + 1))))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, encode_cursor(rows[-1], sort) if more and rows else None


def count(query: Select[tuple[Case]]) -> int:
    """Rows a query would return."""
    return int(db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


def tab_counts(user: User) -> dict[str, int]:
    """Open cases per tab the user may read; a tab the user cannot open is absent, not zero (issue 6)."""
    return {tab: count(filtered(user, tab, Filters())) for tab in readable_tabs(user)}


def languages_seen(query: Select[tuple[Case]], queues: tuple[str, ...], programme_ids: list[int]) -> set[str]:
    """The languages of the cases `query` selects in these queues and programmes, by a loose index scan.

    For each (queue, programme) a recursive query steps from one language to the next one up, each step one probe
    of ix_case_queue_programme_language (min(language) above the last one): a dozen probes per queue and
    programme however many cases there are, where SELECT DISTINCT reads every case's entry (issue 9).
    """
    pairs = [(queue, programme_id) for queue in queues for programme_id in programme_ids]
    if not pairs:
        return set()
    starts = union_all(
        *(
            select(literal(queue).label("queue"), literal(programme_id).label("programme_id"))
            for queue, programme_id in pairs
        )
    ).subquery("starts")

    def first(queue: Any, programme_id: Any, after: Any = None) -> Any:
        """The smallest language of the pair's cases (above `after`)."""
        step = query.where(Case.queue == queue, Case.programme_id == programme_id, Case.language.is_not(None))
        if after is not None:
            step = step.where(Case.language > after)
        return step.with_only_columns(func.min(Case.language)).scalar_subquery()

    seen = select(starts.c.queue, starts.c.programme_id, first(starts.c.queue, starts.c.programme_id).label("language"))
    steps = seen.cte("languages_seen", recursive=True)
    last = steps.alias("last")
    steps = steps.union_all(
        select(last.c.queue, last.c.programme_id, first(last.c.queue, last.c.programme_id, last.c.language)).where(
            last.c.language.is_not(None)
        )
    )
    return set(db.session.scalars(select(steps.c.language).where(steps.c.language.is_not(None)).distinct()))


def filter_choices(user: User, tab: str) -> dict[str, list[Any]]:
    """Options of the filter form: the user's programmes, languages seen, people who can be assigned."""
    programmes = list(user.programmes) or list(db.session.scalars(select(Programme).order_by(Programme.name)))
    languages = languages_seen(visible_cases(user), TABS[tab], [p.id for p in programmes])
    ordered = [lang for lang in LANGUAGES if lang in languages] + sorted(languages - set(LANGUAGES))
    return {"programmes": sorted(programmes, key=lambda p: p.name), "languages": ordered}
