"""Queue listing: filters, search, keyset pagination and tab counts, all built on access.visible_cases()."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from flask import url_for
from sqlalchemy import Select, and_, func, literal, or_, select, tuple_, union_all
from sqlalchemy.orm import defer
from werkzeug.datastructures import MultiDict

from cfm.console import labels
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
# A word search first walks the queue in order, testing each case (about 15 us a case on PostgreSQL), before it
# falls back to the set of every match from the full-text indexes (queue_page, _walk): WALK_FIRST cases, then as
# many as the share of matches so far says a page needs, up to WALK_MOST (a word in 1 case of 100 or more). A word
# in none of the first WALK_FIRST cases costs those tests (about 5 ms) and is answered from its few index entries.
WALK_FIRST = 300
WALK_MOST = 6000


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


def _in_order(query: Select[Any], sort: str, cursor: tuple[datetime, int] | None) -> Select[Any]:
    """The query in keyset order (due date soonest first, or received newest first), after the cursor."""
    if sort == "received":
        if cursor:
            stamp, ident = cursor
            query = query.where(or_(Case.received_at < stamp, and_(Case.received_at == stamp, Case.id < ident)))
        return query.order_by(Case.received_at.desc(), Case.id.desc())
    key = queue_sort_key()
    if cursor:
        stamp, ident = cursor
        query = query.where(or_(key > stamp, and_(key == stamp, Case.id > ident)))
    return query.order_by(key.asc(), Case.id.asc())


def _sort_columns(sort: str) -> tuple[Any, Any]:
    """The keyset's columns: (time, id)."""
    return (Case.received_at if sort == "received" else queue_sort_key()), Case.id


def partitions(user: User, tab: str, filters: Filters) -> list[tuple[str, int]]:
    """The (queue, programme) pairs a page of this tab can hold for this user: each is one range of the queue
    indexes (queue, programme_id, due...), read in order. A user of every programme (an empty list) has them all.

    This only splits the work: every query still starts from visible_cases(user), which decides what is seen.
    """
    programmes = list(user.programmes) or list(db.session.scalars(select(Programme)))
    if filters.programme:
        programmes = [p for p in programmes if p.slug == filters.programme]
    return [(queue, p.id) for queue in TABS[tab] for p in sorted(programmes, key=lambda p: p.id)]


def _merged(query: Select[tuple[Case]], parts: list[tuple[str, int]], sort: str, cursor: Any) -> Select[tuple[Case]]:
    """The query narrowed to the first page-and-one of each (queue, programme) pair, for the caller to order.

    PostgreSQL and SQLite read one index range in order and stop after a page; across an IN list of programmes or
    queues they cannot, and sort every open case instead (1 s at a million cases for an officer of every
    programme, issue 9). One LIMITed branch per pair reads a page from each range; the outer query orders those
    few rows. Each branch is the caller's query (visible_cases and the filters) with one more condition.
    """
    branches = [
        select(
            _in_order(query.where(Case.queue == queue, Case.programme_id == programme_id), sort, cursor)
            .with_only_columns(Case.id)
            .limit(PAGE_SIZE + 1)
            .subquery()
        )
        for queue, programme_id in parts
    ]
    ids = union_all(*branches).subquery("page_ids")
    return query.where(Case.id.in_(select(ids.c[0])))


def page(
    query: Select[tuple[Case]], sort: str, after: str | None, parts: list[tuple[str, int]] | None = None
) -> tuple[list[Case], str | None]:
    """One page in keyset order: due date soonest first, or received newest first; and the next cursor.

    `parts`: the (queue, programme) pairs the query can return (partitions()); with more than one, each is read
    on its own and the pages merged (_merged).
    """
    cursor = decode_cursor(after)
    if parts is not None and len(parts) > 1:
        query = _merged(query, parts, sort, cursor)
    rows = cast(list[Case], list(db.session.scalars(_in_order(query, sort, cursor).limit(PAGE_SIZE + 1))))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, encode_cursor(rows[-1], sort) if more and rows else None


def _settled(found: list[tuple[Any, int]], known: dict[tuple[str, int], Any], descending: bool) -> list[int] | None:
    """The ids of the page (and one more) if the walk so far decides it, else None.

    Each pair is known up to a point (None: to its end); matches before the earliest such point are all found.
    """
    rows = sorted(found, reverse=descending)
    edges = [edge for edge in known.values() if edge is not None]
    if edges:
        limit = max(edges) if descending else min(edges)
        rows = [row for row in rows if (row >= limit if descending else row <= limit)]
        if len(rows) <= PAGE_SIZE:
            return None
    return [ident for _key, ident in rows[: PAGE_SIZE + 1]]


def _each(selects: list[Select[Any]]) -> Select[Any]:
    """One statement that runs each (ordered, LIMITed) select and returns all their rows."""
    if len(selects) == 1:
        return selects[0]
    return select(union_all(*(select(part.subquery()) for part in selects)).subquery())


def _walk(
    base: Select[tuple[Case]], parts: list[tuple[str, int]], filters: Filters, tab: str, after: str | None
) -> tuple[list[Case], str | None] | None:
    """The page of a word search found by walking each (queue, programme) in order and testing every case against
    the words (search.row_condition); None when a bounded walk does not settle it (issue 9).

    The walk first reads WALK_FIRST cases (spread over the pairs): a word in none of them is rare, and its few index
    entries answer faster (the caller falls back). Otherwise the share of matches so far tells how many more cases
    a page needs: read them, unless that would take the walk past WALK_MOST (the caller falls back then too).
    """
    if not parts:
        return None
    cursor = decode_cursor(after)
    key, ident = _sort_columns(filters.sort)
    descending = filters.sort == "received"
    condition = search.row_condition(filters.q, words=tab == "general")
    position: dict[tuple[str, int], tuple[datetime, int] | None] = dict.fromkeys(parts, cursor)
    known: dict[tuple[str, int], Any] = {}
    found: list[tuple[Any, int]] = []
    walked, window = 0, WALK_FIRST
    while position:
        live = [part for part in parts if part in position]
        size = max(window // len(live), 1)
        pairs = [
            _in_order(
                base.where(Case.queue == queue, Case.programme_id == programme),
                filters.sort,
                position[(queue, programme)],
            )
            for queue, programme in live
        ]
        # Where each pair's window ends (its size-th case), all pairs in one statement; none: the pair ends first.
        ends = [
            pair.with_only_columns(literal(n), key, ident).offset(size - 1).limit(1) for n, pair in enumerate(pairs)
        ]
        edges: dict[int, tuple[Any, int]] = {row[0]: (row[1], row[2]) for row in db.session.execute(_each(ends))}
        walks = []
        for n, pair in enumerate(pairs):
            walk = pair.where(condition)
            if n in edges:
                bound, edge = tuple_(key, ident), tuple_(*edges[n])
                walk = walk.where(bound >= edge if descending else bound <= edge)
            walks.append(walk.with_only_columns(literal(n), key, ident).limit(PAGE_SIZE + 1))
        matches: dict[int, list[tuple[Any, int]]] = {n: [] for n in range(len(live))}
        for row in db.session.execute(_each(walks)):
            matches[row[0]].append((row[1], row[2]))
        for n, part in enumerate(live):
            rows = sorted(matches[n], reverse=descending)
            found += rows
            if len(rows) > PAGE_SIZE or n not in edges:  # a page of its own, or read to its end: done with this pair
                known[part] = rows[-1] if len(rows) > PAGE_SIZE else None
                del position[part]
            else:
                known[part] = position[part] = edges[n]
        ids = _settled(found, known, descending)
        if ids is not None:
            return page(base.where(Case.id.in_(ids)), filters.sort, after)
        walked += size * len(live)
        if not found:
            return None
        needed = walked * (PAGE_SIZE + 1) * 1.25 / len(found)  # cases a page takes at the share of matches so far
        if needed > WALK_MOST:
            return None
        window = max(int(needed) - walked, WALK_FIRST)
    return None  # every pair done: _settled above has already answered


def queue_page(user: User, tab: str, filters: Filters, after: str | None) -> tuple[list[Case], str | None]:
    """The page the queue view shows: every query built on filtered(), so on visible_cases(user).

    Without a search, one page from each (queue, programme) merged (page with parts). With a search on
    PostgreSQL, first a walk in order (_walk), bounded; if it does not settle the page, the set of every match.
    """
    parts = partitions(user, tab, filters)

    def listed(filters: Filters) -> Select[tuple[Case]]:
        """filtered(); a restricted row shows its reasons, never its text: that stays sealed, not decrypted."""
        query = filtered(user, tab, filters)
        return query.options(defer(Case.text_sealed), defer(Case.text_plain)) if tab == "restricted" else query

    if not filters.q:
        return page(listed(filters), filters.sort, after, parts)
    if db.session.get_bind().dialect.name == "postgresql":
        walked = _walk(listed(dataclasses.replace(filters, q="")), parts, filters, tab, after)
        if walked is not None:
            return walked
    return page(listed(filters), filters.sort, after)


@dataclasses.dataclass(slots=True)
class Due:
    """A row's due date as the queue shows it."""

    late: bool
    iso: str
    title: str
    delta: str


@dataclasses.dataclass(slots=True)
class Row:
    """One case of a queue page with its labels and dates ready: the template only places them (issue 9)."""

    case: Case
    url: str
    due: Due | None
    category: str
    priority: str
    status: str
    channel: str
    reasons: list[str]
    received: str
    assignee: str | None


def page_rows(cases: list[Case], now: datetime) -> list[Row]:
    """The rows of a queue page, as the console's macros (due, the chips) and label() would show them."""
    formats = labels.PageFormats()
    label = formats.label
    shown = []
    for case in cases:
        due = None
        if case.due_at:
            late = case.due_at < now and case.status != "closed"
            due = Due(
                late=late,
                iso=case.due_at.isoformat(),
                title=formats.datetime(case.due_at, "medium"),
                delta=formats.timedelta(now - case.due_at if late else case.due_at - now, "hour"),
            )
        shown.append(
            Row(
                case=case,
                url=url_for("console.case_view", reference=case.reference),
                due=due,
                category=label(labels.CATEGORY_LABELS, case.category),
                priority=label(labels.PRIORITY_LABELS, case.priority),
                status=label(labels.STATUS_LABELS, case.status),
                channel=label(labels.CHANNEL_LABELS, case.channel),
                reasons=[label(labels.REASON_LABELS, reason) for reason in case.restricted_reasons or []],
                received=formats.datetime(case.received_at, "short"),
                assignee=case.assignee.email.split("@")[0] if case.assignee else None,
            )
        )
    return shown


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
