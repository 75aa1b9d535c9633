"""An HTTP load generator for 127.0.0.1: closed loop (as fast as N clients can go) and open loop (a fixed rate).

Each client thread keeps one keep-alive connection. Open-loop latency is measured from the moment a request
was due, not from when it was sent, so a server that falls behind cannot hide it (coordinated omission).
Every run is bounded by a request count and a duration.
"""

from __future__ import annotations

import dataclasses
import http.client
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Sequence

# What a request is: method, path, body, headers.
Request = tuple[str, str, bytes, dict[str, str]]
RequestFactory = Callable[[int], Request]


@dataclasses.dataclass
class Result:
    """What a load run saw."""

    statuses: list[int]
    latencies: list[float]  # seconds
    elapsed: float
    bodies: list[bytes] = dataclasses.field(default_factory=list)
    errors: int = 0  # connection errors
    # With keep_bodies: (request index, status, body) of every answered request, in request order.
    answers: list[tuple[int, int, bytes]] = dataclasses.field(default_factory=list)

    @property
    def count(self) -> int:
        """Requests answered."""
        return len(self.statuses)

    @property
    def rate(self) -> float:
        """Requests answered per second."""
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile latency in milliseconds."""
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=1000, method="inclusive")[round(q * 10) - 1] * 1000

    def server_errors(self) -> int:
        """Answers with a 5xx status, plus connection errors."""
        return sum(1 for status in self.statuses if status >= 500) + self.errors


class _Client:
    """One keep-alive connection to each 127.0.0.1 port, reopened after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: dict[int, http.client.HTTPConnection] = {}

    def send(self, request: Request, port: int | None = None) -> tuple[int, bytes]:
        """Send one request (to `port`, else the client's own) and read the whole answer."""
        method, path, body, headers = request
        port = self.port if port is None else port
        for attempt in range(2):
            conn = self.conns.get(port)
            if conn is None:
                conn = self.conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                del self.conns[port]
                if attempt:
                    raise
        raise AssertionError("unreachable")


class _Recorder:
    """What the client threads share: the next request's index and what the answers were."""

    def __init__(self, keep_bodies: bool = False) -> None:
        self.lock = threading.Lock()
        self.counter = itertools.count()
        self.statuses: list[int] = []
        self.latencies: list[float] = []
        self.bodies: list[tuple[int, int, bytes]] = []
        self.errors = 0
        self.keep_bodies = keep_bodies

    def next_index(self) -> int:
        """The index of the next request to send."""
        with self.lock:
            return next(self.counter)

    def send(self, client: _Client, index: int, request: Request, since: float, port: int | None = None) -> None:
        """Send one request and record its status and latency (from `since`), or a connection error."""
        try:
            status, body = client.send(request, port)
        except (http.client.HTTPException, OSError):
            with self.lock:
                self.errors += 1
            return
        took = time.perf_counter() - since
        with self.lock:
            self.statuses.append(status)
            self.latencies.append(took)
            if self.keep_bodies:
                self.bodies.append((index, status, body))

    def result(self, elapsed: float) -> Result:
        """The run's result, bodies in request order."""
        answers = sorted(self.bodies, key=lambda answer: answer[0])
        return Result(self.statuses, self.latencies, elapsed, [body for *_, body in answers], self.errors, answers)


def _run_threads(clients: int, work: Callable[[], None], timeout: float) -> None:
    """Start `clients` threads on `work` and wait for them (bounded)."""
    threads = [threading.Thread(target=work, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)


def closed_loop(
    port: int | Sequence[int],
    factory: RequestFactory,
    *,
    clients: int,
    max_requests: int,
    max_seconds: float,
    keep_bodies: bool = False,
) -> Result:
    """`clients` threads send requests back to back until max_requests are sent or max_seconds pass.

    Several ports (several app processes behind one address, issue 9): request i goes to ports[i % len(ports)].
    """
    ports = [port] if isinstance(port, int) else list(port)
    recorder = _Recorder(keep_bodies)
    deadline = time.monotonic() + max_seconds

    def work() -> None:
        client = _Client(ports[0])
        while time.monotonic() < deadline:
            index = recorder.next_index()
            if index >= max_requests:
                return
            request = factory(index)
            recorder.send(client, index, request, time.perf_counter(), ports[index % len(ports)])

    started = time.perf_counter()
    _run_threads(clients, work, max_seconds + 120)
    return recorder.result(time.perf_counter() - started)


def open_loop(port: int, factory: RequestFactory, *, rate: float, seconds: float, clients: int = 16) -> Result:
    """Requests due at a fixed rate for `seconds`; latency counted from when each was due."""
    total = max(1, int(rate * seconds))
    start = time.perf_counter() + 0.05
    recorder = _Recorder()

    def work() -> None:
        client = _Client(port)
        while (index := recorder.next_index()) < total:
            due = start + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            recorder.send(client, index, factory(index), due)

    _run_threads(clients, work, seconds + 120)
    return recorder.result(time.perf_counter() - start)
