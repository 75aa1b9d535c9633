"""Background work: inline when REDIS_URL is unset, RQ queues on Redis when it is set."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, has_app_context

log = logging.getLogger(__name__)
_worker_app: Flask | None = None


@contextmanager
def app_context() -> Iterator[None]:
    """An app context for job code: the caller's when run inline, a fresh one per job in a worker.

    In a worker (`cfm worker` runs jobs in its own process, one after another) each job gets its own context, so
    its database session is removed when it ends and no job sees another's objects or an aborted transaction.
    """
    from rq import get_current_job

    global _worker_app
    if has_app_context():
        if get_current_job() is None:
            yield  # inline: the caller's session sees at once what the job wrote
            return
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    else:
        if _worker_app is None:
            from cfm import create_app

            _worker_app = create_app()
        app = _worker_app
    with app.app_context():
        yield


def warm_up() -> None:
    """Load the model and compile the whole safety-net lexicon now, once per worker process, not per job."""
    from cfm.services.classification import get_model
    from classifier import safety_net

    safety_net.warm(all_patterns=True)
    get_model()


def redis_connection() -> Any:
    """This process's Redis client for the configured REDIS_URL (one connection pool per URL, kept).

    Issue 9: a client per call opened a new connection (TCP plus the client's handshake) for every enqueue, a
    third of the cost of a submission under load. redis-py's pool is thread-safe and starts afresh after a fork.
    """
    from redis import Redis

    url = current_app.config["REDIS_URL"]
    clients: dict[str, Any] = current_app.extensions.setdefault("cfm_redis", {})
    client = clients.get(url)
    if client is None:
        client = clients[url] = Redis.from_url(url)
    return client


def queue() -> Any:
    """The app's RQ queue."""
    from rq import Queue

    return Queue(current_app.config["JOB_QUEUE"], connection=redis_connection())


def enqueue(func: Callable[..., Any], *args: Any, retries: int = 0) -> Any:
    """Run func(*args) inline, or enqueue it on RQ with retries and backoff; inline again if Redis is down."""
    if not current_app.config.get("REDIS_URL"):
        return _run_inline(func, args, retries)
    from redis.exceptions import RedisError
    from rq import Retry

    try:
        intervals = list(current_app.config["JOB_RETRY_INTERVALS"])
        retry = Retry(max=retries, interval=intervals[:retries]) if retries else None
        return queue().enqueue(func, *args, retry=retry)
    except RedisError:
        log.error("job queue unreachable; running %s inline", func.__name__)
        return _run_inline(func, args, retries)


def _run_inline(func: Callable[..., Any], args: tuple[Any, ...], retries: int) -> Any:
    """Call func, retrying up to `retries` more times; the last error propagates."""
    for _ in range(retries):
        try:
            return func(*args)
        except Exception:  # noqa: S112 - retried; the final attempt below lets the error out
            continue
    return func(*args)


def classify_case(case_id: int) -> None:
    """Job: classify and route one case (see cfm.services.classification)."""
    from cfm.services.classification import classify_case as classify

    with app_context():
        classify(case_id)


# --- issue 6: overdue reminders on a schedule -------------------------------------------------------------------
REMINDER_JOB = "cfm.jobs.remind_overdue"


def schedule_reminders(*, now: bool = True) -> bool:
    """Put the next reminder run on RQ (now, or in REMIND_EVERY_MINUTES) unless one is already waiting.

    `cfm worker` calls this at start and runs its scheduler (with_scheduler=True); each run schedules the next,
    so one chain of runs exists however many workers start. False when REDIS_URL or the period is unset (then
    run `cfm remind` from cron).
    """
    minutes = int(current_app.config.get("REMIND_EVERY_MINUTES") or 0)
    if not minutes or not current_app.config.get("REDIS_URL"):
        return False
    from datetime import timedelta

    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    jobs = queue()
    waiting = ScheduledJobRegistry(queue=jobs).get_job_ids() + jobs.get_job_ids()
    if any(job is not None and job.func_name == REMINDER_JOB for job in Job.fetch_many(waiting, jobs.connection)):
        return True
    if now:
        jobs.enqueue(remind_overdue)
    else:
        jobs.enqueue_in(timedelta(minutes=minutes), remind_overdue)
    return True


def remind_overdue() -> None:
    """Job: one reminder run (cfm.services.reminders), then schedule the next one."""
    from cfm.services.reminders import run

    with app_context():
        try:
            result = run()
            log.info("reminders: %s", result.as_dict())
        finally:
            schedule_reminders(now=False)
