"""Intake under gunicorn: the full Twilio webhook against a baseline that inserts one row and commits.

The webhook request is what Twilio sends: a signed form (twilio's RequestValidator), a unique MessageSid, a
realistic text from the corpus; the server checks the signature, identifies the language, classifies, routes,
commits and answers TwiML, inline (no Redis). The baseline endpoint runs in the same server on the same
database, so the ratio says what the webhook costs over the database write it cannot avoid.

Both are measured warm, as a long-running worker serves: the warm-up requests load the model, the language
identifier and the safety-net patterns the texts need (each compiled on first use) in both workers first.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from benchmarks.common import Figure, emit, gunicorn, rss_mb
from benchmarks.load import Request, closed_loop, open_loop

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105  (a benchmark's own, never a real account)
PUBLIC_BASE_URL = "http://bench.cfm.invalid"
OUR_NUMBER = "+254700000001"
ACCOUNT_SID = "AC" + "b" * 32


@dataclasses.dataclass
class Settings:
    """How long and how hard to push."""

    warmup: int = 400  # per worker about half: model, language id and most safety-net patterns loaded
    clients: int = 8
    max_seconds: float = 10.0
    max_requests: int = 20_000
    latency_seconds: float = 10.0


QUICK = Settings(warmup=400, clients=8, max_seconds=8.0, max_requests=4_000, latency_seconds=6.0)
FULL = Settings(warmup=1_000, clients=16, max_seconds=30.0, max_requests=50_000, latency_seconds=30.0)


def server_env(database_url: str, keys: dict[str, str], **extra: str) -> dict[str, str]:
    """The CFM_* environment of the benchmark's server."""
    return {
        "CFM_DATABASE_URL": database_url,
        "CFM_SECRET_KEY": keys["SECRET_KEY"],
        "CFM_ENCRYPTION_KEYS": keys["ENCRYPTION_KEYS"],
        "CFM_LOOKUP_KEY": keys["LOOKUP_KEY"],
        "CFM_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CFM_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CFM_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "CFM_RATELIMIT_ENABLED": "false",
        "CFM_SESSION_COOKIE_SECURE": "false",
        **extra,
    }


def prepare_database(database_url: str, keys: dict[str, str]) -> None:
    """Migrate the schema, create the programme the webhook's number selects, and the baseline table."""
    from benchmarks.baseline import create_baseline_table
    from cfm import create_app
    from cfm.extensions import db
    from cfm.services.admin import create_programme, upgrade_schema

    app = create_app({"DATABASE_URL": database_url, **keys})
    with app.app_context():
        upgrade_schema()
        create_programme("bench", "Benchmark programme", [OUR_NUMBER], language="en", is_default=True)
        create_baseline_table(db.engine)
        db.session.remove()
        db.engine.dispose()


def corpus_texts(seed: int = 7) -> list[str]:
    """Corpus texts in a fixed shuffled order (all languages, all categories)."""
    from channels.sms import parse_keyword
    from classifier.data import load_corpus

    # An SMS keyword (STOP, СТОП, STATUS ...) is a command, not feedback: by SMS it never makes a case.
    texts = [example.text for example in load_corpus() if parse_keyword(example.text) is None]
    random.Random(seed).shuffle(texts)
    return texts


def sms_request(texts: list[str], run: str) -> Callable[[int], Request]:
    """Request factory: Twilio's inbound webhook, signed; unique MessageSid and sender per (run, index)."""
    validator = RequestValidator(AUTH_TOKEN)
    url = PUBLIC_BASE_URL + "/sms/twilio"

    def make(index: int) -> Request:
        form = {
            "MessageSid": f"SM{run}{index:024d}",
            "AccountSid": ACCOUNT_SID,
            "From": f"+2547{int(run[1:]) * 10**7 + index:08d}",
            "To": OUR_NUMBER,
            "Body": texts[index % len(texts)],
            "NumMedia": "0",
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, form),
        }
        return "POST", "/sms/twilio", urlencode(form).encode(), headers

    return make


def shared_and_private_mb(pid: int) -> tuple[float, float]:
    """(PSS, USS) of a process in MB: its share of shared pages, and the pages only it holds (smaps_rollup)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, value = line.partition(":")
        fields[name] = int(value.split()[0]) if value.split() else 0
    return fields.get("Pss", 0) / 1024, (fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)) / 1024


def durability(database_url: str) -> str:
    """How the app's commits reach the disk (the baseline commits on the same engine): for the figure's note."""
    from cfm import create_app
    from cfm.extensions import db

    app = create_app({"DATABASE_URL": database_url, "KEYS_REQUIRED": False})
    with app.app_context():
        with db.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                modes = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
                journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                synchronous = modes.get(conn.exec_driver_sql("PRAGMA synchronous").scalar(), "?")
                text = f"journal_mode={journal} synchronous={synchronous}"
            else:
                text = f"synchronous_commit={conn.exec_driver_sql('SHOW synchronous_commit').scalar()}"
        db.engine.dispose()
    return text


def minimal_request(index: int) -> Request:
    """Request factory: the baseline endpoint."""
    return "POST", "/_bench/minimal", b"", {"Content-Length": "0"}


def run(backend: str, database_url: str, settings: Settings) -> list[Figure]:
    """Max requests/s of the webhook and the baseline, the ratio, p99 at half the max rate, worker memory."""
    from cfm.services.crypto import generate_keys

    keys = generate_keys()
    prepare_database(database_url, keys)
    texts = corpus_texts()
    figures: list[Figure] = []
    with gunicorn("benchmarks.wsgi:app", server_env(database_url, keys), workers=2) as server:
        closed_loop(server.port, sms_request(texts, "w0"), clients=4, max_requests=settings.warmup, max_seconds=120)
        closed_loop(server.port, minimal_request, clients=4, max_requests=settings.warmup, max_seconds=60)
        common: dict[str, Any] = {
            "clients": settings.clients,
            "max_requests": settings.max_requests,
            "max_seconds": settings.max_seconds,
        }
        baseline = closed_loop(server.port, minimal_request, **common)
        webhook = closed_loop(server.port, sms_request(texts, "m1"), **common)
        bad = webhook.errors + sum(1 for status in webhook.statuses if status != 200)
        note = durability(database_url)
        figures.append(emit(Figure(f"intake.{backend}.baseline_insert_commit", baseline.rate, "req/s", note=note)))
        figures.append(
            emit(
                Figure(
                    f"intake.{backend}.twilio_webhook",
                    webhook.rate,
                    "req/s",
                    baseline=baseline.rate,
                    ratio_floor=0.6,
                    note=f"{webhook.count} requests, {bad} not 200",
                    failures=bad,
                )
            )
        )
        half = max(1.0, webhook.rate / 2)
        paced = open_loop(server.port, sms_request(texts, "p2"), rate=half, seconds=settings.latency_seconds)
        figures.append(
            emit(
                Figure(
                    f"intake.{backend}.webhook_p99_at_half_max",
                    paced.percentile(99),
                    "ms",
                    floor=100,
                    higher_is_better=False,
                    note=f"{half:.0f} req/s for {settings.latency_seconds:.0f} s, p50 {paced.percentile(50):.1f} ms",
                    failures=paced.errors + sum(1 for status in paced.statuses if status != 200),
                )
            )
        )
        workers = server.worker_pids()
        rss, pid = max(((rss_mb(pid), pid) for pid in workers), default=(0.0, 0))
        pss, uss = shared_and_private_mb(pid) if pid else (0.0, 0.0)
        figures.append(
            emit(
                Figure(
                    f"memory.{backend}.worker_rss_after_intake",
                    rss,
                    "MB",
                    floor=250,
                    higher_is_better=False,
                    note=f"that worker: PSS {pss:.0f} MB, USS {uss:.0f} MB",
                )
            )
        )
    return figures
