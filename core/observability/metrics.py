"""The Prometheus metrics of the plumbing (HTTP, Redis, logs), defined once; the Test
domain's own are in bandit.metrics.

Under `scout serve` the Prometheus client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR is
set before anything imports it), so each worker writes its values to files and one scrape of
`/metrics` adds up the whole host. Recording a value is an in-memory increment: nothing here
costs a network round trip on the hot path.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

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
    operations = REDIS_OPERATIONS.labels(name)
    errors = REDIS_OPERATION_ERRORS.labels(name)
    duration = REDIS_OPERATION_DURATION.labels(name)

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def measured(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            except Exception:
                errors.inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)
                operations.inc()

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
