"""The load test (issue 8): submissions through the SMS webhook and the web form from many concurrent clients
against gunicorn + PostgreSQL, a tenth of them sent twice, then checked against the database.

It proves: exactly one case per distinct submission, no 5xx, and every acknowledged reference stored. The web
form is used as a browser does: each client session fetched the page first (session cookie + CSRF token)
and posts the form's idempotency token; a duplicate is the same form sent again (double tap).
"""

from __future__ import annotations

import dataclasses
import http.client
import re
import secrets
import time
from collections.abc import Sequence
from urllib.parse import urlencode

import sqlalchemy as sa

from benchmarks.common import Figure, emit, gunicorn
from benchmarks.intake_bench import corpus_texts, prepare_database, server_env, sms_request
from benchmarks.load import Request, RequestFactory, closed_loop

REFERENCE = re.compile(rb'id="reference">([0-9A-Z]{4}-[0-9A-Z]{4})<')
TWIML_REFERENCE = re.compile(rb"\b([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})\b")
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclasses.dataclass
class Settings:
    """How many submissions, how many clients, what share are sent twice."""

    submissions: int = 20_000
    clients: int = 32
    duplicate_share: float = 0.10
    max_seconds: float = 1_200.0
    workers: int = 4


QUICK = Settings(submissions=2_000, max_seconds=300.0)
FULL = Settings()


def web_sessions(port: int | Sequence[int], count: int) -> list[tuple[str, str]]:
    """`count` browser sessions: (cookie header, CSRF token) from GET /p/bench (from each port in turn)."""
    ports = [port] if isinstance(port, int) else list(port)
    sessions = []
    for k in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", ports[k % len(ports)], timeout=30)
        conn.request("GET", "/p/bench", headers={"Accept-Language": "en"})
        response = conn.getresponse()
        page = response.read().decode("utf-8")
        cookie = (response.getheader("Set-Cookie") or "").split(";", 1)[0]
        match = CSRF.search(page)
        conn.close()
        if not cookie or match is None:
            raise RuntimeError("the feedback page gave no session cookie or CSRF token")
        sessions.append((cookie, match.group(1)))
    return sessions


def plan(settings: Settings) -> list[int]:
    """Which distinct submission each request sends: 0..n-1 once each, a share of them twice, interleaved."""
    distinct = round(settings.submissions / (1 + settings.duplicate_share))
    repeats = settings.submissions - distinct
    order = list(range(distinct))
    step = max(1, distinct // max(1, repeats))
    for k in range(repeats):  # each duplicate follows its original a little later (a Twilio retry, a double tap)
        original = (k * step) % distinct
        order.insert(min(len(order), original + k + 3), original)
    return order


def submission_requests(
    order: list[int],
    texts: list[str],
    sms: RequestFactory,
    sessions: list[tuple[str, str]],
    tokens: list[str],
) -> RequestFactory:
    """Request i sends submission order[i]: even ones by SMS (sms(submission)), odd ones by the web form.

    A duplicate is the same request again: a Twilio retry of the MessageSid, or the same form (session, CSRF and
    idempotency token) posted again.
    """

    def request(index: int) -> Request:
        submission = order[index]
        if submission % 2 == 0:
            return sms(submission)
        cookie, csrf = sessions[submission % len(sessions)]
        form = {
            "csrf_token": csrf,
            "text": texts[submission % len(texts)],
            "contact": "no",
            "submission": tokens[submission],
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Accept-Language": "en"}
        return "POST", "/p/bench", urlencode(form).encode(), headers

    return request


def run(database_url: str, settings: Settings) -> list[Figure]:
    """Push the submissions, then count cases and check every acknowledged reference."""
    from cfm.services.crypto import generate_keys

    keys = generate_keys()
    prepare_database(database_url, keys)
    texts = corpus_texts(seed=11)
    order = plan(settings)
    distinct = len(set(order))
    sms = sms_request(texts, "L3")
    tokens = [secrets.token_urlsafe(18) for _ in range(distinct)]
    figures: list[Figure] = []
    with gunicorn("benchmarks.wsgi:app", server_env(database_url, keys), workers=settings.workers) as server:
        sessions = web_sessions(server.port, settings.clients)
        request = submission_requests(order, texts, sms, sessions, tokens)
        started = time.perf_counter()
        result = closed_loop(
            server.port,
            request,
            clients=settings.clients,
            max_requests=len(order),
            max_seconds=settings.max_seconds,
            keep_bodies=True,
        )
        elapsed = time.perf_counter() - started
    references: set[bytes] = set()
    for body in result.bodies:
        match = REFERENCE.search(body) or TWIML_REFERENCE.search(body)
        if match:
            references.add(match.group(1))
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        cases = conn.execute(sa.text('SELECT count(*) FROM "case"')).scalar_one()
        stored = {row[0] for row in conn.execute(sa.text('SELECT reference FROM "case"'))}
    engine.dispose()
    missing = {ref.decode() for ref in references} - stored
    not_ok = sum(1 for status in result.statuses if status != 200) + result.errors
    figures.append(
        emit(
            Figure(
                "load.requests_per_second",
                result.count / elapsed,
                "req/s",
                note=f"{result.count} requests from {settings.clients} clients, {settings.workers} workers",
            )
        )
    )
    figures.append(emit(Figure("load.p99_latency", result.percentile(99), "ms", note="closed loop, at saturation")))
    figures.append(emit(Figure("load.server_errors", result.server_errors(), "count", floor=0, higher_is_better=False)))
    figures.append(emit(Figure("load.answers_not_200", not_ok, "count", floor=0, higher_is_better=False)))
    figures.append(
        emit(
            Figure(
                "load.cases_minus_distinct_submissions",
                cases - distinct,
                "count",
                floor=0,
                higher_is_better=False,
                note=f"{cases} cases for {distinct} distinct of {len(order)} sent",
            )
        )
    )
    figures.append(emit(Figure("load.missing_cases", distinct - cases, "count", floor=0, higher_is_better=False)))
    figures.append(
        emit(
            Figure(
                "load.acknowledged_not_stored",
                len(missing),
                "count",
                floor=0,
                higher_is_better=False,
                note=f"{len(references)} references acknowledged",
            )
        )
    )
    return figures
