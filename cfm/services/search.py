"""Full-text search over a case's text and thread (issue 6), narrowing a select() it is given.

PostgreSQL: `to_tsvector('simple', coalesce(text_plain, ''))` with expression GIN indexes on case and message
(the 'simple' configuration: no stemming, so Arabic, Dari, Amharic, Tigrinya... are matched as written), queried
with a `to_tsquery` built from sanitised words, each a prefix (`'word':*`). SQLite: FTS5 external-content tables
case_fts and message_fts (rowid = case.id / message.id) kept in sync by triggers, with the trigram tokenizer
(substring match) when the library has it, else unicode61 with prefix queries.

Only text_plain is indexed: restricted text is sealed (encrypted at rest) and never reaches an index, so a search
never matches it. References are matched everywhere. The search only filters: it never widens the query it is
given (which comes from access.visible_cases), and it leaves ordering and pagination to the caller.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    column,
    exists,
    false,
    func,
    intersect,
    literal_column,
    or_,
    select,
    table,
    union,
    union_all,
)
from sqlalchemy import text as sql_text

from cfm.extensions import db
from cfm.models.case import FTS_CONFIG, FTS_TABLES, TRIGRAM, Case, Message, search_vector
from cfm.services.reference import normalise_reference

MAX_TERMS = 8  # words kept from one query (a bound on the SQL it builds)
MAX_TERM_CHARS = 64
# Only what could be part of a reference code (Crockford base32 and the hyphen) is looked up as one: a word with
# I, L, O or U cannot be, and skipping it spares the database a LIKE scan beside the full-text index.
REFERENCE_FRAGMENT = re.compile(r"[0-9A-HJKMNP-TV-Z-]{1,9}")
# FTS5 keeps each index in shadow tables named after it; Alembic must not see any of them as unknown tables.
_FTS_SHADOW_SUFFIXES = ("", "_data", "_idx", "_docsize", "_config", "_content")


def is_fts_table(name: str | None) -> bool:
    """True for the SQLite FTS5 tables of the search and their shadow tables (kept out of Alembic's diff)."""
    return bool(name) and any(name == base + suffix for base in FTS_TABLES for suffix in _FTS_SHADOW_SUFFIXES)


def terms(text: str) -> list[list[str]]:
    """The query as OR-groups of words; every character that is not a letter, mark or digit separates words.

    Operators and punctuation of either engine (quotes, `*`, `:`, `&`, `|`, `!`, parentheses, NEAR(...)) can
    therefore never reach the database as syntax; the word OR (upper case, between words) separates groups.
    """
    groups: list[list[str]] = [[]]
    count = 0
    for raw in text.split():
        if raw == "OR" and groups[-1]:
            groups.append([])
            continue
        for word in "".join(ch if unicodedata.category(ch)[0] in "LMN" else " " for ch in raw).split():
            if count < MAX_TERMS:
                groups[-1].append(word[:MAX_TERM_CHARS].lower())
                count += 1
    return [group for group in groups if group]


def _like(value: str) -> str:
    """A LIKE pattern that matches the value literally anywhere."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _sqlite_ids(fts_name: str, word: str) -> Select[Any]:
    """Rowids of an FTS5 table whose text holds the word (trigram: as a substring; unicode61: as a prefix).

    The word is one FTS5 string (letters, marks and digits only, so never syntax). The trigram tokenizer cannot
    match fewer than three characters: a shorter word uses LIKE on the FTS table (its text is text_plain).
    """
    fts = table(fts_name, column("rowid"), column("text_plain"))
    if TRIGRAM and len(word) < 3:
        return select(fts.c.rowid).where(fts.c.text_plain.like(_like(word), escape="\\"))
    phrase = f'"{word}"' if TRIGRAM else f'"{word}" *'
    return select(fts.c.rowid).where(literal_column(fts_name).op("MATCH")(phrase))


def _word_case_ids(word: str) -> Select[Any]:
    """Ids of cases whose clear text, or a clear message of whose thread, holds the word (or a word it begins)."""
    if db.session.get_bind().dialect.name == "postgresql":
        # 'word':* is a prefix query; the word is quoted and holds no quote, so to_tsquery reads no operator.
        tsquery = func.to_tsquery(sql_text(f"'{FTS_CONFIG}'::regconfig"), f"'{word}':*")
        in_case = select(Case.id).where(search_vector(Case.text_plain).op("@@")(tsquery))
        in_thread = select(Message.case_id).where(search_vector(Message.text_plain).op("@@")(tsquery))
    else:
        in_case = _sqlite_ids("case_fts", word)
        in_thread = select(Message.case_id).where(Message.id.in_(_sqlite_ids("message_fts", word)))
    # A UNION, not an OR: each branch is answered by its own index.
    ids = union_all(in_case, in_thread).subquery()
    return select(ids.c[0])


def _union(selects: list[Select[Any]]) -> Select[Any]:
    """One select of the ids any of these selects returns."""
    if len(selects) == 1:
        return selects[0]
    either = union(*selects).subquery()
    return select(either.c[0])


def text_case_ids(groups: list[list[str]]) -> Select[Any] | None:
    """Ids of cases whose text and thread, taken together, hold every word of at least one group."""
    selects: list[Select[Any]] = []
    for group in groups:
        words = [_word_case_ids(word) for word in dict.fromkeys(group)]
        if len(words) == 1:
            selects.append(words[0])
        else:
            both = intersect(*words).subquery()
            selects.append(select(both.c[0]))
    return _union(selects) if selects else None


def text_matches(groups: list[list[str]]) -> ColumnElement[bool]:
    """Cases whose text and thread, taken together, hold every word of at least one group."""
    ids = text_case_ids(groups)
    return false() if ids is None else Case.id.in_(ids)


def _clean(text: str) -> str:
    """The query without control characters (NUL and friends: never to the database)."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cc")


def _by_reference(text: str) -> ColumnElement[bool] | None:
    """A whole reference (any spelling normalise_reference accepts) matches that case; a fragment of one matches
    references containing it; None when the text cannot be part of a reference."""
    reference = normalise_reference(text)
    compact = text.upper().replace(" ", "")
    if reference is not None:
        # An eight-letter word ("briefing", "shelters") also reads as a reference: match it both ways.
        return Case.reference == reference
    if compact and REFERENCE_FRAGMENT.fullmatch(compact):
        return Case.reference.like(_like(compact), escape="\\")
    return None


def search(query: Select[tuple[Case]], text: str, *, words: bool = True) -> Select[tuple[Case]]:
    """Narrow `query` to cases whose reference, or (when `words`) clear text or thread, match `text`.

    A whole reference (any spelling normalise_reference accepts) matches that case; a fragment of one matches
    references containing it; words match the full-text index. `words=False` (the restricted queue, whose text
    is sealed) matches references only.
    """
    text = _clean(text)
    by_reference = _by_reference(text)
    if not words:
        return query.where(false() if by_reference is None else by_reference)
    selects = [select(Case.id).where(by_reference)] if by_reference is not None else []
    by_text = text_case_ids(terms(text))
    if by_text is not None:
        selects.append(by_text)
    # Ids from a UNION rather than an OR, so that the planner can answer each part from its own index.
    return query.where(Case.id.in_(_union(selects)) if selects else false())


def _word_in_row(word: str) -> ColumnElement[bool]:
    """The case's clear text, or a clear message of its thread, holds the word (or a word it begins): PostgreSQL."""
    tsquery = func.to_tsquery(sql_text(f"'{FTS_CONFIG}'::regconfig"), f"'{word}':*")
    in_thread = (
        select(Message.id)
        .where(Message.case_id == Case.id, search_vector(Message.text_plain).op("@@")(tsquery))
        # OFFSET 0 keeps this EXISTS a probe of the case's own messages (ix_message_case_id): without it PostgreSQL
        # may turn it into a hashed set of every matching message, the whole-table work a walk is there to avoid.
        .offset(0)
    )
    return or_(search_vector(Case.text_plain).op("@@")(tsquery), exists(in_thread))


def row_condition(text: str, *, words: bool = True) -> ColumnElement[bool]:
    """search()'s match as a condition on each case row, for PostgreSQL (issue 9).

    search() builds the set of every matching case from the full-text indexes, then the caller orders it: for a
    word in most cases ("the") that is tens of thousands of rows before the first page. This condition instead
    lets a query walk the queue in index order and test each case until a page is found; the same cases match.
    """
    text = _clean(text)
    by_reference = _by_reference(text)
    conditions = [by_reference] if by_reference is not None else []
    if words:
        for group in terms(text):
            conditions.append(and_(*(_word_in_row(word) for word in dict.fromkeys(group))))
    return or_(*conditions) if conditions else false()
