"""The Prometheus metrics of the plumbing (HTTP, Redis, logs), defined once; the Test
domain's own are in bandit.metrics.

Under `scout serve` the Prometheus client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR is
set before anything imports it), so each worker writes its values to files and one scrape of
`/metrics` adds up the whole host. Recording a value is an in-memory increment: nothing here
costs a network round trip on the hot path.

The hot path does not even write the files: `count` and `observe` queue the write, and one
thread per worker (`start_writing`) makes the queued writes every WRITE_INTERVAL_SECONDS. A
multiprocess value takes one process-wide lock per write; eight threads answering requests
queue on it, and at a thousand decisions a second that cost more than the Thompson sample. A
scrape therefore sees the other workers' values as they were at most that long ago (the
scraping worker writes its own first); a worker killed outright loses what it had not written
yet. Until `start_writing` is called (outside `scout serve`), writes happen at once.
"""

from __future__ import annotations

import atexit
import bisect
import functools
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

logger = logging.getLogger(__name__)

# --- Writes off the request path ------------------------------------------------------------
WRITE_INTERVAL_SECONDS = 0.5
Metric = Counter | Histogram
# (metric, its label values, the amount to add or the value observed, whether it is a
# histogram); deque's append and popleft are atomic, so request threads never wait for one
# another here.
_queued: deque[tuple[Metric, tuple[str, ...], float, bool]] = deque()
_writer: threading.Thread | None = None
_queuing = False  # set by start_writing


def count(metric: Counter, *labels: str, amount: float = 1.0) -> None:
    """Add `amount` to a counter (with these label values)."""
    if _queuing:
        _queued.append((metric, labels, amount, False))
    else:
        (metric.labels(*labels) if labels else metric).inc(amount)


def observe(metric: Histogram, value: float, *labels: str) -> None:
    """Observe `value` in a histogram (with these label values)."""
    if _queuing:
        _queued.append((metric, labels, value, True))
    else:
        (metric.labels(*labels) if labels else metric).observe(value)


def write_queued() -> int:
    """Make the writes queued so far, added up first (a counter's increments, a histogram's
    observations per bucket); answer how many were queued."""
    counters: dict[tuple[Metric, tuple[str, ...]], float] = {}
    histograms: dict[tuple[Metric, tuple[str, ...]], list[float]] = {}
    taken = 0
    while True:
        try:
            metric, labels, amount, is_histogram = _queued.popleft()
        except IndexError:
            break
        taken += 1
        if is_histogram:
            histograms.setdefault((metric, labels), []).append(amount)
        else:
            counters[(metric, labels)] = counters.get((metric, labels), 0.0) + amount
    for (metric, labels), total in counters.items():
        (metric.labels(*labels) if labels else metric).inc(total)  # type: ignore[union-attr]
    for (metric, labels), values in histograms.items():
        _observe_all(metric.labels(*labels) if labels else metric, values)  # type: ignore[arg-type]
    return taken


def _observe_all(histogram: Histogram, values: list[float]) -> None:
    """Observe many values with one write per bucket: prometheus_client offers no public way,
    so this adds to the histogram's own sum and bucket values as its `observe` does."""
    bounds = getattr(histogram, "_upper_bounds", None)
    if bounds is None:  # not the layout this was written for: one observation at a time
        for value in values:
            histogram.observe(value)
        return
    histogram._sum.inc(sum(values))
    per_bucket = [0] * len(bounds)
    for value in values:
        per_bucket[bisect.bisect_left(bounds, value)] += 1  # the first bound >= value
    for bucket, observed in zip(histogram._buckets, per_bucket, strict=True):
        if observed:
            bucket.inc(observed)


def start_writing() -> None:
    """Queue the request path's metric writes from now on, and write them from a thread of
    this process (one per worker, started after the fork)."""
    global _writer, _queuing
    if _writer is not None and _writer.is_alive():
        return
    _queuing = True

    def run() -> None:
        while True:
            time.sleep(WRITE_INTERVAL_SECONDS)
            try:
                write_queued()
            except Exception:  # a metric must never take the worker down
                logger.exception("Writing queued metrics failed")

    _writer = threading.Thread(target=run, name="scout-metrics", daemon=True)
    _writer.start()
    atexit.register(write_queued)  # a worker that stops writes what it still holds


# --- HTTP -----------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request (to the first byte of a streamed answer).",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# --- Redis ----------------------------------------------------------------------------------
REDIS_OPERATIONS = Counter(
    "redis_operations", "Operations on Scout's Redis state, by operation.", ["operation"]
)
REDIS_OPERATION_ERRORS = Counter(
    "redis_operation_errors",
    "Operations on Scout's Redis state that raised an error, by operation.",
    ["operation"],
)
REDIS_OPERATION_DURATION = Histogram(
    "redis_operation_duration_seconds",
    "Duration of an operation on Scout's Redis state (one round trip or pipeline).",
    ["operation"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1),
)

# --- Logs ---------------------------------------------------------------------------------
LOG_RECORDS_DROPPED = Counter(
    "scout_log_records_dropped",
    "Log records that could not reach the shared log stream (queue full or Redis unavailable).",
)
LOG_STREAMS_OPEN = Gauge(
    "scout_log_streams_open",
    "Live log streams (/logs/stream) currently open on this host.",
    multiprocess_mode="livesum",
)


P = ParamSpec("P")
R = TypeVar("R")


def redis_operation(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count and time every call of a function that talks to Redis, under `name`."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def measured(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            except Exception:
                count(REDIS_OPERATION_ERRORS, name)
                raise
            finally:
                observe(REDIS_OPERATION_DURATION, time.perf_counter() - started, name)
                count(REDIS_OPERATIONS, name)

        return measured

    return decorate


# --- Route templates ------------------------------------------------------------------------
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?:[^()]|\([^()]*\))*\)")


@functools.lru_cache(maxsize=1024)
def route_template(pattern: str) -> str:
    """Turn a resolved URL pattern into a readable, bounded label.

    `api/^model_details/(?P<cb_model_id>[^/]+)/?$` becomes `/api/model_details/{cb_model_id}`:
    the label names the route, never the id a client sent, so series stay few.
    """
    text = _GROUP.sub(lambda match: "{" + match["name"] + "}", pattern)
    text = text.replace("^", "").replace("$", "").replace("/?", "")
    text = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)  # path() converters: <uuid:id> -> {id}
    return "/" + text.lstrip("/")
