"""Every Prometheus metric Scout exposes, defined once.

Under `scout serve` the Prometheus client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR is
set before anything imports it), so each worker writes its values to files and one scrape of
`/metrics` adds up the whole host. Recording a value is an in-memory increment: nothing here
costs a network round trip on the hot path.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

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

# --- Tests (the contract calls them models) ------------------------------------------------
MODEL_PREDICTIONS = Counter(
    "model_predictions",
    "Decisions served (idempotent replays of a stored decision are not counted again).",
    ["model_id", "variant"],
)
MODEL_UPDATES = Counter(
    "model_updates", "Rewards counted into a Test's statistics.", ["model_id", "variant"]
)
MODEL_REWARDS = Counter(
    "model_rewards",
    "Reward entries received, whatever their outcome (counted, duplicate or failed).",
    ["model_id"],
)
MODEL_REWARD = Histogram(
    "model_reward",
    "Values of the rewards counted.",
    ["model_id"],
    buckets=(0, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 100, 1000),  # OpenMetrics: none below 0
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

# --- Health signals -------------------------------------------------------------------------
CONTEXTS_STORED = Counter(
    "scout_contexts_stored", "Decisions whose context was stored under their request_id."
)
CONTEXTS_EXPIRED = Counter(
    "scout_contexts_expired",
    "Rewards naming a request_id with no stored decision: expired after the context TTL, or "
    "never issued (Redis cannot tell the two apart). `outcome` says whether the reward still "
    "taught the Test with its inline context or failed.",
    ["outcome"],
)
DUPLICATE_REWARDS = Counter(
    "scout_duplicate_rewards",
    "Rewards for a request_id whose reward was already counted (reported, not counted again).",
)
DEGRADED_DECISIONS = Counter(
    "scout_degraded_decisions",
    "Decisions answered from a worker's snapshot while Redis was unavailable.",
)
STATE_RESTORES = Counter(
    "scout_state_restores",
    "Tests refilled from their checkpoint after Redis lost their state.",
)
FEATURE_OVERFLOW = Counter(
    "scout_feature_overflow",
    "Context features ignored because a Test's feature vocabulary was full (SCOUT_MAX_FEATURES).",
)
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


class ActiveModelsCollector:
    """`active_models`, read from the database at scrape time.

    Computed rather than kept as a gauge, so that every worker and host agrees and a restart
    never shows a stale count.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError

        from bandit.models import Test

        try:
            count = Test.objects.filter(global_variant_rollout__isnull=True).count()
        except DatabaseError as exc:
            # The rest of the scrape is still worth having; /readyz reports the database.
            logger.warning("active_models left out of the scrape: %s", exc)
            return
        family = GaugeMetricFamily(
            "active_models", "Tests that are learning (no global rollout in force)."
        )
        family.add_metric([], count)
        yield family
