"""Past one machine (issue 9): two app processes and two `cfm worker` processes on one PostgreSQL and one Redis.

10,000 submissions (SMS webhook with valid Twilio signatures and the web form, a tenth of them sent again: Twilio
retries of the same MessageSid, web re-posts of the same form token) go round-robin through both app processes;
then, once the workers have drained the queue: one case per distinct submission, each classified exactly once
(Case.classification_attempts, no failed or retried job), every acknowledged reference stored on the case of its
submission and answered by STATUS, no 5xx. Sessions (console and public form) and rate limits must not live in one
process's memory: a sign-in on one process holds on the other, a sign-out on one ends it on both, failed
sign-ins count across both. Everything here is started on 127.0.0.1 and stopped (also on failure), in a PostgreSQL
schema and a Redis database of the test's own.

The run is CPU-bound: it prints its rate and the CPU seconds each part used (app processes, `cfm worker`s,
PostgreSQL, this client), which say where a slow run spent its time. The time bounds below only catch a hang.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import pytest
import requests
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from twilio.request_validator import RequestValidator

from benchmarks.common import REPO, Server, gunicorn, pg_schema
from benchmarks.intake_bench import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, PUBLIC_BASE_URL, corpus_texts, server_env
from benchmarks.intake_bench import sms_request as signed_sms
from benchmarks.load import closed_loop
from benchmarks.load_bench import CSRF, REFERENCE, TWIML_REFERENCE, Settings, plan, submission_requests, web_sessions
from tests.conftest import POSTGRES_URL

# A Redis database of this test's own (flushed at start and end): 15 is the unit tests', 14 the benchmarks'.
REDIS_URL = os.environ.get("CFM_TEST_SCALE_REDIS_URL", "redis://127.0.0.1:6379/13")
SUBMISSIONS = 10_000  # the figure, duplicates included
CLIENTS = 16
APP_PROCESSES = 2
GUNICORN_WORKERS = 2  # per app process: 4 in all on this 2-core machine, beside 2 RQ workers and PostgreSQL
RQ_WORKERS = 2
MAX_LOAD_SECONDS = 1200.0
MAX_DRAIN_SECONDS = 300.0
RUN = "S9"  # MessageSids SMS9..., senders +25479... (benchmarks.intake_bench.sms_request)
CLASSIFY_JOB = "cfm.jobs.classify_case"
APPLICATION_NAME = "cfm_scale_out"  # names this test's PostgreSQL connections (CPU accounting)
OFFICER = "scale.officer@example.org"
PASSWORD = "correct horse battery staple"  # noqa: S105  (a throw-away account in a schema dropped at the end)
LIMITS = {
    # On, in Redis (RATELIMIT_STORAGE_URI follows REDIS_URL), and high enough for one test client to send
    # thousands of forms from 127.0.0.1; the sign-in limit keeps its default (5 failures per account).
    "CFM_RATELIMIT_ENABLED": "true",
    "CFM_CONSOLE_COOKIE_SECURE": "false",  # plain HTTP to 127.0.0.1 (cfm/console/views.py); TLS ends at a proxy
    "CFM_PUBLIC_SUBMIT_LIMIT_PER_ADDRESS": "100000 per hour",
    "CFM_PUBLIC_SUBMIT_LIMIT_PER_SESSION": "100000 per day",
}


@dataclasses.dataclass
class Cluster:
    """What the fixture started: the app processes, the workers, the database and Redis."""

    servers: list[Server]
    workers: list[subprocess.Popen[bytes]]
    worker_log: Path
    database_url: str
    redis: Redis
    queue: Queue

    @property
    def ports(self) -> list[int]:
        """The app processes' ports."""
        return [server.port for server in self.servers]

    def url(self, k: int, path: str) -> str:
        """The URL of path on app process k."""
        return f"http://127.0.0.1:{self.ports[k % len(self.ports)]}{path}"

    def cpu_seconds(self, engine: sa.Engine) -> dict[str, float]:
        """CPU time used so far by the app processes, the workers and their PostgreSQL backends (from /proc)."""
        with engine.connect() as conn:
            backends = conn.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"), {"name": APPLICATION_NAME}
            ).scalars()
            postgres = [int(pid) for pid in backends]
        apps = [pid for server in self.servers for pid in (server.process.pid, *server.worker_pids())]
        return {
            "app processes": cpu_seconds(apps),
            "cfm workers": cpu_seconds([worker.pid for worker in self.workers]),
            "postgresql": cpu_seconds(postgres),
            "test client": sum(os.times()[:2]),
        }

    def log_tail(self, lines: int = 30) -> str:
        """The end of the workers' output, for a failure message."""
        text = self.worker_log.read_text(errors="replace") if self.worker_log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of running processes (utime and stime in /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def own_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped at the end; yields the URL that selects it."""
    with pg_schema(POSTGRES_URL, prefix="cfm_scale") as url:
        yield f"{url}&application_name={APPLICATION_NAME}"


def prepare(database_url: str, keys: dict[str, str]) -> None:
    """Tables, the programme the Twilio number selects (also the default for the web form), an officer."""
    from cfm import create_app
    from cfm.extensions import db
    from cfm.services.admin import create_programme, create_user

    app = create_app({"DATABASE_URL": database_url, "REDIS_URL": None, **keys})
    with app.app_context():
        try:
            db.create_all()
            create_programme("bench", "Scale-out programme", [OUR_NUMBER], language="en", is_default=True)
            create_user(OFFICER, PASSWORD, ["officer"], ["bench"])
        finally:
            db.session.remove()
            db.engine.dispose()


@contextlib.contextmanager
def cfm_worker(env: dict[str, str], log: IO[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """`cfm worker` in a process group of its own (RQ's scheduler is a child), stopped with the whole group."""
    command = shutil.which("cfm", path=str(Path(sys.executable).parent))
    assert command is not None, "the `cfm` console script is not installed beside this Python (pip install -e .)"
    process = subprocess.Popen(
        [command, "worker"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # RQ's warm shutdown: the current job ends first
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever the group left behind (the scheduler)


@contextlib.contextmanager
def start_cluster(log_dir: Path) -> Iterator[Cluster]:
    """Two gunicorn app processes and two `cfm worker` processes on a fresh schema and a flushed Redis database."""
    from cfm.services.crypto import generate_keys

    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    worker_log = log_dir / "workers.log"
    with contextlib.ExitStack() as stack:
        stack.callback(redis.close)
        stack.callback(redis.flushdb)
        database_url = stack.enter_context(own_schema())
        keys = generate_keys()
        prepare(database_url, keys)
        env = server_env(database_url, keys, CFM_REDIS_URL=REDIS_URL, **LIMITS)
        servers = [
            stack.enter_context(gunicorn("cfm:create_app()", env, workers=GUNICORN_WORKERS))
            for _ in range(APP_PROCESSES)
        ]
        log = stack.enter_context(worker_log.open("ab"))
        workers = [stack.enter_context(cfm_worker(env, log)) for _ in range(RQ_WORKERS)]
        queue = Queue("cfm", connection=redis)  # JOB_QUEUE's default
        yield Cluster(servers, workers, worker_log, database_url, redis, queue)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster, for every test of this module; stopped and cleaned up also when a test fails."""
    with start_cluster(tmp_path_factory.mktemp("scale_out")) as started:
        yield started


# --- sessions and rate limits -----------------------------------------------------------------------------------


def csrf_token(page: requests.Response) -> str:
    """The CSRF token of a form page."""
    match = CSRF.search(page.text)
    assert match is not None, f"no CSRF token on {page.url} ({page.status_code})"
    return match.group(1)


def test_a_console_session_holds_and_ends_on_every_app_process(cluster: Cluster) -> None:
    # One cookie jar for 127.0.0.1 whichever process answers, as behind a load balancer.
    with requests.Session() as browser, requests.Session() as thief:
        token = csrf_token(browser.get(cluster.url(0, "/console/login"), timeout=30))
        signed_in = browser.post(
            cluster.url(1, "/console/login"),
            data={"csrf_token": token, "email": OFFICER, "password": PASSWORD},
            allow_redirects=False,
            timeout=30,
        )
        assert signed_in.status_code == 302 and "/console/login" not in signed_in.headers["Location"]
        queue_page = browser.get(cluster.url(0, "/console/"), timeout=30)  # the other process
        assert queue_page.status_code == 200 and "/console/queue/" in queue_page.url
        thief.cookies.update(browser.cookies)

        signed_out = browser.post(
            cluster.url(0, "/console/logout"),
            data={"csrf_token": csrf_token(queue_page)},
            allow_redirects=False,
            timeout=30,
        )
        assert signed_out.status_code == 302
        # The server-side session is gone for every process: the copied cookie opens nothing on the other one.
        replay = thief.get(cluster.url(1, "/console/"), allow_redirects=False, timeout=30)
        assert replay.status_code == 302 and "/console/login" in replay.headers["Location"]


def test_failed_sign_ins_are_counted_across_app_processes(cluster: Cluster) -> None:
    with requests.Session() as browser:
        token = csrf_token(browser.get(cluster.url(0, "/console/login"), timeout=30))
        form = {"csrf_token": token, "email": "nobody@example.org", "password": "not the password at all"}
        codes = [
            browser.post(cluster.url(k, "/console/login"), data=form, allow_redirects=False, timeout=30).status_code
            for k in range(6)
        ]
    # 5 failures per account (the default), 3 on each process: counted in Redis, so the sixth is refused.
    assert codes == [401] * 5 + [429]


# --- 10,000 submissions -----------------------------------------------------------------------------------------


def status_request(reference: str, k: int) -> tuple[dict[str, str], dict[str, str]]:
    """A signed STATUS <reference> SMS (form, headers)."""
    form = {
        "MessageSid": f"SM{RUN}ST{k:022d}",
        "AccountSid": ACCOUNT_SID,
        "From": f"+25478{k:07d}",
        "To": OUR_NUMBER,
        "Body": f"STATUS {reference}",
        "NumMedia": "0",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + "/sms/twilio", form)
    return form, {"X-Twilio-Signature": signature}


def wait_until_drained(cluster: Cluster, engine: sa.Engine) -> float:
    """Poll (bounded) until no case waits for classification and no job is queued or running; the seconds taken."""
    started = time.monotonic()
    pending = -1
    while time.monotonic() - started < MAX_DRAIN_SECONDS:
        with engine.connect() as conn:
            pending = conn.execute(
                sa.text("SELECT count(*) FROM \"case\" WHERE classification_status = 'pending'")
            ).scalar_one()
        busy = len(cluster.queue) + StartedJobRegistry(queue=cluster.queue).count
        if pending == 0 and busy == 0:
            return time.monotonic() - started
        assert all(worker.poll() is None for worker in cluster.workers), cluster.log_tail()
        time.sleep(0.5)
    raise AssertionError(f"{pending} case(s) still unclassified after {MAX_DRAIN_SECONDS:.0f} s\n{cluster.log_tail()}")


def classify_jobs(cluster: Cluster, registry: Any) -> list[Job]:
    """The classification jobs in an RQ registry."""
    jobs = Job.fetch_many(registry.get_job_ids(), connection=cluster.redis)
    return [job for job in jobs if job is not None and job.func_name == CLASSIFY_JOB]


def test_ten_thousand_submissions_through_two_app_processes_and_two_workers(cluster: Cluster) -> None:
    texts = corpus_texts(seed=9)
    order = plan(Settings(submissions=SUBMISSIONS, clients=CLIENTS, duplicate_share=0.10))
    distinct = len(set(order))
    tokens = [secrets.token_urlsafe(18) for _ in range(distinct)]
    provider_ids = {s: f"SM{RUN}{s:024d}" if s % 2 == 0 else tokens[s] for s in range(distinct)}
    # Browser sessions (cookie + CSRF token) fetched from both processes; each form is posted to either.
    sessions = web_sessions(cluster.ports, CLIENTS)
    requests_of = submission_requests(order, texts, signed_sms(texts, RUN), sessions, tokens)

    result = closed_loop(
        cluster.ports,
        requests_of,
        clients=CLIENTS,
        max_requests=len(order),
        max_seconds=MAX_LOAD_SECONDS,
        keep_bodies=True,
    )
    print(
        f"\nscale-out: {len(order)} requests ({distinct} distinct) in {result.elapsed:.1f} s, "
        f"{result.rate:.0f} req/s, p99 {result.percentile(99):.0f} ms"
    )
    answers, errors = result.count, result.errors
    assert answers + errors == len(order), f"{answers} answered within {MAX_LOAD_SECONDS:.0f} s"
    assert errors == 0, "connection errors"
    statuses = collections.Counter(status for _index, status, _body in result.answers)
    assert statuses == {200: len(order)}  # no 5xx, and no 429 either: the limits hold thousands from one address

    answered: dict[int, set[str]] = collections.defaultdict(set)
    for index, _status, body in result.answers:
        match = REFERENCE.search(body) or TWIML_REFERENCE.search(body)
        assert match is not None, f"request {index}: no reference in the answer"
        answered[order[index]].add(match.group(1).decode())
    assert len(answered) == distinct
    # A retry or a re-post, on whichever process, is answered with the reference of the one case.
    assert [s for s, references in answered.items() if len(references) != 1] == []

    engine = sa.create_engine(cluster.database_url)
    try:
        drained = wait_until_drained(cluster, engine)
        cpu = cluster.cpu_seconds(engine)
        print(f"scale-out: queue drained {drained:.1f} s after the last answer")
        print("scale-out: CPU seconds " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in cpu.items()))
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT m.provider_id, c.id, c.reference, c.classification_status, c.classification_attempts "
                    "FROM message m JOIN \"case\" c ON c.id = m.case_id WHERE m.direction = 'inbound'"
                )
            ).all()
            cases = conn.execute(sa.text('SELECT count(*) FROM "case"')).scalar_one()
    finally:
        engine.dispose()

    by_provider_id = collections.defaultdict(list)
    for provider_id, case_id, reference, status, attempts in rows:
        by_provider_id[provider_id].append((case_id, reference, status, attempts))
    # Exactly one case per distinct submission, each holding exactly its one message.
    assert cases == distinct
    assert sorted(by_provider_id) == sorted(provider_ids.values())
    assert [pid for pid, stored in by_provider_id.items() if len(stored) != 1] == []
    assert len({stored[0][0] for stored in by_provider_id.values()}) == distinct
    # Every acknowledged reference is the case of that submission.
    wrong = [s for s, pid in provider_ids.items() if by_provider_id[pid][0][1] not in answered[s]]
    assert wrong == []
    # Classified exactly once: every case done at its first attempt (classification_attempts counts the runs that
    # classify; a job finding its case done changes nothing), no job failed, no retry waiting. RQ's finished-job
    # registry cannot tell: it forgets a job result_ttl (500 s) after it ends, sooner than a slow run lasts.
    assert [stored for stored in by_provider_id.values() if stored[0][2:] != ("done", 1)] == []
    assert classify_jobs(cluster, FailedJobRegistry(queue=cluster.queue)) == []
    assert classify_jobs(cluster, ScheduledJobRegistry(queue=cluster.queue)) == []  # no retry waiting

    # And retrievable by the person: STATUS <reference> on either process names the case's stage.
    sample = [sorted(answered[s])[0] for s in range(0, distinct, distinct // 20 | 1)]  # SMS and web alike
    for k, reference in enumerate(sample):
        form, headers = status_request(reference, k)
        answer = requests.post(
            cluster.url(k, "/sms/twilio"),
            data=urlencode(form),
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            timeout=30,
        )
        assert answer.status_code == 200
        # The stage in the case's language; an unknown code would be "We could not find ..." (programme: English).
        assert reference in answer.text and "could not find" not in answer.text, answer.text
