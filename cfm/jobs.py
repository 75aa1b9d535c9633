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
    """An app context for job code: the current one, or one app per worker process."""
    global _worker_app
    if has_app_context():
        yield
        return
    if _worker_app is None:
        from cfm import create_app

        _worker_app = create_app()
    with _worker_app.app_context():
        yield


def redis_connection() -> Any:
    """A Redis connection for the configured REDIS_URL."""
    from redis import Redis

    return Redis.from_url(current_app.config["REDIS_URL"])


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
