"""Dashboard figures (issue 6): counts, medians and survey ratings computed by the database, never case by case.

Rules, decided here and tested in tests/cfm/console/test_dashboard.py:
- Every case figure is built on access.visible_cases(user, purpose="aggregate") and then narrowed to the GENERAL
  queue: all breakdowns (week, category, channel, language, programme, status) and both medians are over general
  cases only, so restricted cases never mix into figures that officers or report viewers see.
- The restricted queue appears as one tile, "N open, M overdue" (restricted and awaiting classification, as on
  the queue tab), and only for focal points, of their programmes; it follows the programme filter, not the dates
  (it is the queue's current state). It is never broken down.
- Users who may not open the general cases themselves (report viewers, focal points without an officer role) get
  small-number suppression: a count from 1 to 4 is shown as "<5"; when a breakdown has exactly one such cell, the
  next smallest cell is hidden too, so that it cannot be worked out from the total. Medians over fewer than
  five cases are hidden for them as well.
- Survey results are the distributions of the structured answers of the surveys of the user's programmes: ratings
  (1-5), yes/no and choices, counted per option with the same filters and suppression as the cases; free-text
  answers are never read here (they live in cases, sealed when restricted).
- Roles that read nothing (an admin without a reading role) get an empty dashboard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import DateTime, Select, and_, case, distinct, func, literal, or_, select, true, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from cfm.extensions import db
from cfm.models import Case, Programme, Survey, SurveyResponse, User
from cfm.models.case import QUEUE_GENERAL, QUEUE_PENDING, QUEUE_RESTRICTED, is_open
from cfm.models.types import utcnow
from cfm.services.access import GENERAL_READERS, can_see_restricted, visible_cases
from channels.web import RATING_VALUES, Option, Question, SurveyDefinition

READERS = ("officer", "supervisor", "focal_point", "report_viewer")
SUPPRESS_BELOW = 5
DEFAULT_WEEKS = 12
MAX_DAYS = 5 * 366  # a longer range is cut to this (one chart bar per week stays readable)
DIMENSIONS = ("category", "channel", "language", "programme", "status")
UNKNOWN = "unknown"


# --- dialect helpers -----------------------------------------------------------------------------------------


def _dialect() -> str:
    """The name of the database dialect in use."""
    return str(db.session.get_bind().dialect.name)


def week_start(column: Any, dialect: str | None = None) -> ColumnElement[str]:
    """The Monday (UTC) of the week of a timestamp, as 'YYYY-MM-DD', on PostgreSQL and SQLite alike."""
    if (dialect or _dialect()) == "postgresql":
        return func.to_char(func.date_trunc("week", func.timezone("UTC", column)), "YYYY-MM-DD")
    # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff': 'weekday 0' moves to the coming Sunday (or stays on one).
    return func.date(column, "weekday 0", "-6 days")


def seconds_between(end: Any, start: Any, dialect: str | None = None) -> ColumnElement[float]:
    """end - start in seconds, computed by the database."""
    if (dialect or _dialect()) == "postgresql":
        return func.extract("epoch", end) - func.extract("epoch", start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def median(values: Select[Any], expression: ColumnElement[Any]) -> tuple[float | None, int]:
    """The median of `expression` over the rows of `values` (NULLs left out) and how many rows had one, on SQLite
    (PostgreSQL has percentile_cont: see _medians).

    The rows numbered in order of the value by a window function, and the one or two middle rows averaged, in the
    same statement: one pass, one row comes back.
    """
    rows = values.where(expression.is_not(None)).subquery()
    value = rows.c.value
    ranked = select(
        value.label("value"),
        func.row_number().over(order_by=value).label("rank"),
        func.count().over().label("n"),
    ).subquery()
    n = ranked.c.n
    middle = ranked.c.rank.in_([(n + 1) // 2, (n + 2) // 2])  # the middle row, or the middle two
    result, count = db.session.execute(select(func.avg(ranked.c.value), func.max(n)).where(middle)).one()
    return (float(result) if result is not None else None), int(count or 0)


# --- what the user asked for ---------------------------------------------------------------------------------


def monday(day: date) -> date:
    """The Monday of the week of a day."""
    return day - timedelta(days=day.weekday())


@dataclasses.dataclass(frozen=True)
class DashboardFilters:
    """Programme (slug, '' for all of the user's) and an inclusive date range, by default the last 12 weeks."""

    programme: str
    date_from: date
    date_to: date

    @classmethod
    def from_args(cls, args: Mapping[str, str], today: date | None = None) -> DashboardFilters:
        """Parse the query string; malformed values fall back to the defaults, never an error."""
        today = today or utcnow().date()

        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(str(args.get(name, "")))
            except ValueError:
                return None

        date_to = day("to") or today
        date_from = day("from") or monday(date_to) - timedelta(weeks=DEFAULT_WEEKS - 1)
        if date_from > date_to:
            date_from, date_to = date_to, date_from
        date_from = max(date_from, date_to - timedelta(days=MAX_DAYS))
        return cls(str(args.get("programme", ""))[:64], date_from, date_to)

    def args(self) -> dict[str, str]:
        """Query-string arguments (for links and the form)."""
        values = {"programme": self.programme, "from": self.date_from.isoformat(), "to": self.date_to.isoformat()}
        return {k: v for k, v in values.items() if v}

    @property
    def start(self) -> datetime:
        """First instant of the range (UTC)."""
        return datetime.combine(self.date_from, time(), UTC)

    @property
    def end(self) -> datetime:
        """First instant after the range (UTC)."""
        return datetime.combine(self.date_to + timedelta(days=1), time(), UTC)

    def weeks(self) -> list[str]:
        """Every week (its Monday, ISO) the range touches, so that empty weeks show as 0."""
        first, last = monday(self.date_from), monday(self.date_to)
        return [(first + timedelta(weeks=i)).isoformat() for i in range((last - first).days // 7 + 1)]


# --- results -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cell:
    """One figure; `value` is None when suppressed (the real number never leaves this module then)."""

    key: str
    value: int | None

    @property
    def suppressed(self) -> bool:
        """True when the figure is hidden."""
        return self.value is None

    @property
    def display(self) -> str:
        """The figure as shown: the number, or '<5'."""
        return f"<{SUPPRESS_BELOW}" if self.value is None else str(self.value)


@dataclasses.dataclass(frozen=True)
class Median:
    """A median duration in seconds over `n` cases; value None when there are none (or too few to show)."""

    seconds: float | None
    n: Cell


@dataclasses.dataclass(frozen=True)
class RatingQuestion:
    """The distribution of answers 1-5 to one rating question."""

    id: str
    text: dict[str, str]
    low: dict[str, str]
    high: dict[str, str]
    cells: list[Cell]
    answered: Cell
    mean: float | None


CHOICE_TYPES = ("yes_no", "single_choice", "multiple_choice")
YES_NO = (("yes", True), ("no", False))  # option id on the chart, stored answer


@dataclasses.dataclass(frozen=True)
class ChoiceOption:
    """How many respondents chose one option; `share` of the question's respondents, None when hidden."""

    id: str
    text: dict[str, str]  # empty for yes/no: the console words them in the viewer's language
    count: Cell
    share: float | None


@dataclasses.dataclass(frozen=True)
class ChoiceQuestion:
    """The answers to one yes/no, single- or multiple-choice question, per option in the definition's order.

    `answered` counts respondents (a response without an answer to this question is in no option and not here);
    in a multiple-choice question a respondent counts once in each option chosen, so shares may add up to more
    than 100%.
    """

    id: str
    type: str
    text: dict[str, str]
    options: list[ChoiceOption]
    answered: Cell


@dataclasses.dataclass(frozen=True)
class SurveyResult:
    """The charted questions of one survey (all of the user's programmes that publish it)."""

    slug: str
    title: dict[str, str]
    responses: Cell
    questions: list[RatingQuestion]
    choices: list[ChoiceQuestion] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class RestrictedTile:
    """The restricted queue as a count only (focal points)."""

    open: int
    overdue: int


@dataclasses.dataclass
class Dashboard:
    """Everything the page shows."""

    allowed: bool
    suppressed: bool
    filters: DashboardFilters
    programmes: list[Programme]
    total: Cell = Cell("total", 0)
    weeks: list[Cell] = dataclasses.field(default_factory=list)
    breakdowns: dict[str, list[Cell]] = dataclasses.field(default_factory=dict)
    first_response: Median = Median(None, Cell("n", 0))
    closure: Median = Median(None, Cell("n", 0))
    closed: Cell = Cell("closed", 0)
    surveys: list[SurveyResult] = dataclasses.field(default_factory=list)
    restricted: RestrictedTile | None = None


# --- suppression ---------------------------------------------------------------------------------------------


def suppress(counts: list[tuple[str, int]], *, active: bool) -> list[Cell]:
    """Cells of a breakdown; when active, 1-4 become '<5', plus the next smallest cell when only one is hidden."""
    if not active:
        return [Cell(key, n) for key, n in counts]
    hidden = {i for i, (_key, n) in enumerate(counts) if 0 < n < SUPPRESS_BELOW}
    if len(hidden) == 1:
        others = sorted((n, i) for i, (_key, n) in enumerate(counts) if i not in hidden and n > 0)
        if others:
            hidden.add(others[0][1])
    return [Cell(key, None if i in hidden else n) for i, (key, n) in enumerate(counts)]


def _single(key: str, n: int, *, active: bool) -> Cell:
    """One figure on its own, suppressed when small."""
    return Cell(key, None if active and 0 < n < SUPPRESS_BELOW else n)


# --- the figures ---------------------------------------------------------------------------------------------


def can_read(user: User | None) -> bool:
    """True when the user holds a role the dashboard serves."""
    return bool(user and user.active and set(user.roles or []) & set(READERS))


def needs_suppression(user: User) -> bool:
    """Small numbers are hidden from everyone who may not open the general cases themselves."""
    return not set(user.roles or []) & set(GENERAL_READERS)


def programme_choices(user: User) -> list[Programme]:
    """The programmes the user works on (none assigned = all), by name."""
    programmes = list(user.programmes) or list(db.session.scalars(select(Programme)))
    return sorted(programmes, key=lambda p: p.name)


def _scope(programmes: list[Programme], filters: DashboardFilters) -> list[int]:
    """Ids of the programmes the figures cover: the chosen one if it is the user's, else all the user's."""
    chosen = [p.id for p in programmes if p.slug == filters.programme]
    return chosen or [p.id for p in programmes]


def general_cases(user: User, filters: DashboardFilters, scope: list[int]) -> Select[tuple[Case]]:
    """The general cases the figures count: visible to the user, in the programmes and the date range."""
    return visible_cases(user, purpose="aggregate").where(
        Case.queue == QUEUE_GENERAL,
        Case.programme_id.in_(scope),
        Case.received_at >= filters.start,
        Case.received_at < filters.end,
    )


def _grouped(base: Select[tuple[Case]], column: ColumnElement[Any]) -> list[tuple[Any, int]]:
    """(value, count) rows of one GROUP BY over the base query."""
    query = base.with_only_columns(column.label("key"), func.count().label("n")).group_by(column).order_by(column)
    return [(key, int(n)) for key, n in db.session.execute(query)]


@dataclasses.dataclass
class _Counts:
    """What one or two passes over the general cases of the range give: weekly counts and breakdowns."""

    weeks: dict[str, int]
    breakdowns: dict[str, list[tuple[str, int]]]


def _counts(base: Select[tuple[Case]], programmes: list[Programme], scope: list[int], weeks: list[str]) -> _Counts:
    """Cases per week (`weeks`: the Mondays of the range) and per category, channel, language, programme and status,
    largest first.

    PostgreSQL: one GROUPING SETS query, one pass over the cases' entries in a covering index (see cfm/models/
    case.py) and a few dozen rows back. SQLite, which has no GROUPING SETS: a GROUP BY per week and one GROUP BY
    over the other columns together (one row per combination that occurs, folded here), each a pass over the same
    covering index. With one programme in scope its count is the total: no column is grouped for it.
    """
    names = [name for name in DIMENSIONS if name != "programme" or len(scope) > 1]
    columns = [getattr(Case, "programme_id" if name == "programme" else name) for name in names]
    rows: list[tuple[str, Any, int]] = []  # (dimension, key, count)
    if _dialect() == "postgresql":
        # The week's number in the range: a binary search of the Mondays per case, where date_trunc('week') of the
        # time in UTC costs a time-zone conversion per case (a fifth of the query).
        mondays = [datetime.combine(date.fromisoformat(week), time(), UTC) for week in weeks]
        week = func.width_bucket(Case.received_at, literal(mondays, ARRAY(DateTime(timezone=True))))
        keys = (week, *columns)
        query = base.with_only_columns(*keys, *(func.grouping(key) for key in keys), func.count()).group_by(
            func.grouping_sets(*(tuple_(key) for key in keys))
        )
        for row in db.session.execute(query):
            values, grouped, n = row[: len(keys)], row[len(keys) : 2 * len(keys)], row[-1]
            at = grouped.index(0)
            key = weeks[values[0] - 1] if at == 0 else values[at]  # bucket 1 is the first Monday
            rows.append((("week", *names)[at], key, int(n)))
    else:
        rows += [("week", key, n) for key, n in _grouped(base, week_start(Case.received_at))]
        combinations = base.with_only_columns(*columns, func.count()).group_by(*columns)
        for *values, n in db.session.execute(combinations):
            rows += [(name, value, int(n)) for name, value in zip(names, values, strict=True)]
    total = sum(n for name, _key, n in rows if name == "week")
    if len(scope) == 1 and total:
        rows.append(("programme", scope[0], total))
    slugs = {p.id: p.slug for p in programmes}
    totals: dict[str, dict[str, int]] = {name: {} for name in ("week", *DIMENSIONS)}
    for name, key, n in rows:
        if name == "programme":
            key = slugs.get(key, str(key))
        label = str(key) if key else UNKNOWN
        totals[name][label] = totals[name].get(label, 0) + n
    weeks_counted = totals.pop("week")
    breakdowns = {name: sorted(counts.items(), key=lambda item: (-item[1], item[0])) for name, counts in totals.items()}
    return _Counts(weeks_counted, breakdowns)


def _medians(base: Select[tuple[Case]]) -> tuple[tuple[float | None, int], tuple[float | None, int]]:
    """Median seconds from receipt to first response (the earliest reply or status change), and to closure, with
    how many cases each rests on.

    Both read the cases' entries in the covering index alone: the first response is the case's first_response_at,
    kept by record_response() wherever a response is recorded (issue 9), not a join of the cases to their threads.
    PostgreSQL: both medians in one pass, percentile_cont of the intervals themselves (the seconds taken once from
    each median: extract(epoch) on every case is numeric arithmetic, dearer than the sort).
    """
    if _dialect() == "postgresql":
        waits = (Case.first_response_at - Case.received_at, Case.closed_at - Case.received_at)
        aggregates = [f for wait in waits for f in (func.count(wait), func.percentile_cont(0.5).within_group(wait))]
        n_first, first, n_close, close = db.session.execute(base.with_only_columns(*aggregates)).one()
        return (_seconds(first), int(n_first)), (_seconds(close), int(n_close))
    cases = base.with_only_columns(Case.received_at, Case.first_response_at, Case.closed_at).subquery("cases")
    to_first = seconds_between(cases.c.first_response_at, cases.c.received_at)
    to_close = seconds_between(cases.c.closed_at, cases.c.received_at)
    first_rows = select(to_first.label("value")).select_from(cases)
    close_rows = select(to_close.label("value")).select_from(cases)
    return median(first_rows, to_first), median(close_rows, to_close)


def _seconds(wait: timedelta | None) -> float | None:
    """A duration in seconds (None stays None)."""
    return None if wait is None else wait.total_seconds()


def record_response(case: Case, at: datetime) -> None:
    """Note a response to the person at `at` (an outbound reply, a status change away from "new"): the case's
    first_response_at keeps the earliest one, whatever order they are recorded in.

    One conditional UPDATE of that column alone, in the caller's transaction: the case's version (the stale check
    of officers' forms) and updated_at stay as they were, as a reply leaves them, and two responses recorded at
    the same time still leave the earlier one.
    """
    table = Case.__table__
    column = table.c.first_response_at
    db.session.execute(
        update(table)
        .where(table.c.id == case.id, or_(column.is_(None), column > at))
        .values(first_response_at=at, updated_at=table.c.updated_at)
    )
    if case.first_response_at is None or at < case.first_response_at:
        set_committed_value(case, "first_response_at", at)


def restricted_tile(user: User, scope: list[int]) -> RestrictedTile | None:
    """Open and overdue cases of the restricted queue (with those awaiting classification), for focal points only."""
    if not can_see_restricted(user):
        return None
    now = utcnow()
    query = (
        visible_cases(user, purpose="aggregate")
        .where(
            Case.queue.in_((QUEUE_RESTRICTED, QUEUE_PENDING)),
            Case.programme_id.in_(scope),
            is_open(),
        )
        .with_only_columns(
            func.count().label("open"),
            func.coalesce(func.sum(case((and_(Case.due_at.is_not(None), Case.due_at < now), 1), else_=0)), 0),
        )
    )
    open_count, overdue = db.session.execute(query).one()
    return RestrictedTile(int(open_count or 0), int(overdue or 0))


def _survey_definitions(scope: list[int]) -> dict[str, list[SurveyDefinition]]:
    """The stored definitions of the surveys of these programmes, by slug, newest version first."""
    found: dict[str, list[SurveyDefinition]] = {}
    query = select(Survey.definition).where(Survey.programme_id.in_(scope)).order_by(Survey.slug)
    for raw in db.session.scalars(query):
        try:
            definition = SurveyDefinition.from_dict(raw)
        except ValueError:
            continue  # a definition that no longer parses has no questions to chart
        found.setdefault(definition.slug, []).append(definition)
    for definitions in found.values():
        definitions.sort(key=lambda d: d.version, reverse=True)
    return found


def _charted_questions(definitions: list[SurveyDefinition]) -> dict[str, Question]:
    """Rating and choice questions of every version, by id: the newest words and options first, then options only
    older versions offered (answers to them still count)."""
    merged: dict[str, Question] = {}
    for definition in reversed(definitions):  # newest last: its words win
        for question in definition.questions:
            if question.type != "rating" and question.type not in CHOICE_TYPES:
                continue
            older = merged.get(question.id)
            if older is not None and question.options:
                known = {o.id for o in question.options}
                extra = tuple(o for o in older.options if o.id not in known)
                question = dataclasses.replace(question, options=question.options + extra)
            merged[question.id] = question
    return merged


def _json_path(qid: str) -> str:
    """The SQLite JSON path of one answer (question ids are lower-case letters, digits and underscores)."""
    return f'$."{qid}"'


def _answer_is(qid: str, kind: str) -> ColumnElement[bool]:
    """True where the answer to `qid` is stored as this JSON type: 'number', 'boolean', 'string' or 'array'.

    An answer of another type (a question whose type changed between versions, a row edited by hand) is left out
    instead of cast: on PostgreSQL one bad cast would fail the whole dashboard.
    """
    if _dialect() == "postgresql":
        return func.json_typeof(SurveyResponse.answers[qid]) == kind
    names = {"number": ("integer", "real"), "boolean": ("true", "false"), "string": ("text",), "array": ("array",)}
    return func.json_type(SurveyResponse.answers, _json_path(qid)).in_(names[kind])


def _chosen(qid: str) -> Any:
    """The options of a list answer as rows with a `value` column (json_each / json_array_elements_text)."""
    if _dialect() == "postgresql":
        answer = SurveyResponse.answers[qid]
        # Only arrays reach the function (it fails on a scalar), whatever order the planner evaluates the WHERE in.
        arrays_only = case((func.json_typeof(answer) == "array", answer))
        return func.json_array_elements_text(arrays_only).table_valued("value").render_derived()
    return func.json_each(SurveyResponse.answers, _json_path(qid)).table_valued("value")


def _choice_counts(responses: Select[tuple[SurveyResponse]], question: Question) -> tuple[dict[str, int], int]:
    """Respondents per option id and respondents in all, counted by the database (a few rows come back)."""
    qid = question.id
    if question.type == "yes_no":
        value = SurveyResponse.answers[qid].as_boolean()
        found = dict(_grouped(responses.where(_answer_is(qid, "boolean")), value))
        counts = {key: int(found.get(stored, 0)) for key, stored in YES_NO}
        return counts, sum(counts.values())
    ids = [o.id for o in question.options]
    if question.type == "single_choice":
        value = SurveyResponse.answers[qid].as_string()
        counts = dict(_grouped(responses.where(_answer_is(qid, "string"), value.in_(ids)), value))
        return counts, sum(counts.values())
    # Multiple choice, stored as a list of option ids: one joined row per listed option; counting distinct responses
    # counts each option once per response even if it is listed twice, and each respondent once in `answered`.
    chosen = _chosen(qid)
    picked = responses.join_from(SurveyResponse, chosen, true()).where(
        _answer_is(qid, "array"), chosen.c.value.in_(ids)
    )
    respondents = func.count(distinct(SurveyResponse.id))
    per_option = picked.with_only_columns(chosen.c.value, respondents).group_by(chosen.c.value)
    counts = {str(key): int(n) for key, n in db.session.execute(per_option)}
    answered = int(db.session.scalar(picked.with_only_columns(respondents)) or 0)
    return counts, answered


def _choice_question(responses: Select[tuple[SurveyResponse]], question: Question, *, active: bool) -> ChoiceQuestion:
    """One yes/no or choice question: respondents per option in the definition's order, suppressed like the cases."""
    counts, answered = _choice_counts(responses, question)
    if question.type == "yes_no":
        options = [Option(key, {}) for key, _stored in YES_NO]
    else:
        options = list(question.options)
    cells = suppress([(o.id, counts.get(o.id, 0)) for o in options], active=active)
    return ChoiceQuestion(
        id=question.id,
        type=question.type,
        text=question.text,
        options=[
            ChoiceOption(o.id, o.text, cell, cell.value / answered if cell.value is not None and answered else None)
            for o, cell in zip(options, cells, strict=True)
        ],
        answered=_single("answered", answered, active=active),
    )


def _rating_question(responses: Select[tuple[SurveyResponse]], question: Question, *, active: bool) -> RatingQuestion:
    """One rating question: how many answered 1 to 5, and the mean (hidden with the small numbers)."""
    value = SurveyResponse.answers[question.id].as_integer()
    counts = dict(_grouped(responses.where(_answer_is(question.id, "number"), value.in_(RATING_VALUES)), value))
    answered = sum(counts.values())
    mean = sum(int(k) * n for k, n in counts.items()) / answered if answered else None
    hide_mean = active and answered < SUPPRESS_BELOW
    return RatingQuestion(
        id=question.id,
        text=question.text,
        low=question.low,
        high=question.high,
        cells=suppress([(str(v), counts.get(v, 0)) for v in RATING_VALUES], active=active),
        answered=_single("answered", answered, active=active),
        mean=None if hide_mean else mean,
    )


def survey_results(scope: list[int], filters: DashboardFilters, *, active: bool) -> list[SurveyResult]:
    """Rating distributions and yes/no and choice counts per survey and question, counted by the database."""
    results = []
    for slug, definitions in sorted(_survey_definitions(scope).items()):
        responses = (
            select(SurveyResponse)
            .join(Survey, Survey.id == SurveyResponse.survey_id)
            .where(
                Survey.slug == slug,
                SurveyResponse.programme_id.in_(scope),
                SurveyResponse.received_at >= filters.start,
                SurveyResponse.received_at < filters.end,
            )
        )
        total = int(db.session.scalar(responses.with_only_columns(func.count())) or 0)
        rated, choices = [], []
        for question in _charted_questions(definitions).values():
            if question.type == "rating":
                rated.append(_rating_question(responses, question, active=active))
            else:
                choices.append(_choice_question(responses, question, active=active))
        if rated or choices:
            title = definitions[0].title
            results.append(SurveyResult(slug, title, _single(slug, total, active=active), rated, choices))
    return results


def build(user: User, filters: DashboardFilters) -> Dashboard:
    """The whole dashboard for this user and these filters."""
    if not can_read(user):
        return Dashboard(allowed=False, suppressed=True, filters=filters, programmes=[])
    active = needs_suppression(user)
    programmes = programme_choices(user)
    scope = _scope(programmes, filters)
    base = general_cases(user, filters, scope)
    mondays = filters.weeks()
    counts = _counts(base, programmes, scope, mondays)
    weeks = [(week, counts.weeks.get(week, 0)) for week in mondays]
    total = sum(n for _week, n in weeks)
    (first_s, first_n), (close_s, close_n) = _medians(base)

    def shown(seconds: float | None, n: int) -> Median:
        """A median, hidden from suppressed users when it rests on fewer than five cases."""
        hidden = active and n < SUPPRESS_BELOW
        return Median(None if hidden else seconds, _single("n", n, active=active))

    return Dashboard(
        allowed=True,
        suppressed=active,
        filters=filters,
        programmes=programmes,
        total=_single("total", total, active=active),
        weeks=suppress(weeks, active=active),
        breakdowns={name: suppress(rows, active=active) for name, rows in counts.breakdowns.items()},
        first_response=shown(first_s, first_n),
        closure=shown(close_s, close_n),
        closed=_single("closed", close_n, active=active),
        surveys=survey_results(scope, filters, active=active),
        restricted=restricted_tile(user, scope),
    )


def figures(cells: Iterable[Cell]) -> list[int | None]:
    """The values of cells for a chart (None where suppressed: no bar is drawn)."""
    return [cell.value for cell in cells]
