"""The one Redis connection of each process, and the circuit breaker in front of it.

Modules that keep state in Redis own their key names and scripts; this module owns only the
connection, the key prefix (`SCOUT_REDIS_KEY_PREFIX`, so deployments can share a Redis), the
breaker and the leases that give periodic work to one worker of all hosts.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.conf import settings
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from core.observability.metrics import redis_operation

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_client: Redis | None = None
_client_url: str | None = None
_on_switch: list[Callable[[], None]] = []

# After a failed call, Redis is left alone for this long: requests meanwhile fail at once (and
# decisions fall back to the worker's snapshot) instead of each waiting for a timeout. One
# request then tries again, so Scout recovers by itself within a second of Redis returning.
BREAK_SECONDS = 0.5
_broken_until = 0.0


class RedisUnavailable(RedisConnectionError):
    """Redis failed moments ago; not tried again yet."""


def key(*parts: str) -> str:
    """A key under this deployment's prefix: `key("lock", "checkpoint")` is `P:lock:checkpoint`."""
    return ":".join((settings.SCOUT_REDIS_KEY_PREFIX, *parts))


def measured(function: Callable[P, R]) -> Callable[P, R]:
    """Count and time each call in the Redis metrics, under the function's name."""
    return redis_operation(function.__name__)(function)


def guarded(function: Callable[P, R]) -> Callable[P, R]:
    """Fail fast while Redis is known to be down (see BREAK_SECONDS); count and time each call
    in the Redis metrics under the function's name."""

    timed = measured(function)

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        global _broken_until
        if time.monotonic() < _broken_until:
            raise RedisUnavailable("Redis is unavailable; Scout retries it shortly.")
        try:
            return timed(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if not isinstance(exc, RedisUnavailable):
                if _broken_until == 0.0 or time.monotonic() > _broken_until + 5:
                    logger.warning("Redis is unavailable: %s", exc)
                _broken_until = time.monotonic() + BREAK_SECONDS
            raise

    return wrapper


def client_for(url: str) -> Redis:
    """A client with short timeouts: a fetch must never hang on a struggling Redis."""
    timeout = settings.SCOUT_REDIS_TIMEOUT_SECONDS
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        # One immediate retry reconnects a pooled connection that a Redis restart broke;
        # more, with backoff, would hold a request hostage to a Redis that is down.
        retry=Retry(NoBackoff(), 1),
    )


def connection() -> Redis:
    """This process's client (one connection pool per worker process)."""
    global _client, _client_url
    if _client is None:
        _client, _client_url = client_for(settings.REDIS_URL), settings.REDIS_URL
    return _client


def current_url() -> str:
    connection()
    return _client_url or settings.REDIS_URL


def on_switch(callback: Callable[[], None]) -> None:
    """Call `callback` whenever this process moves to another Redis (scripts forget their
    loaded state, for instance)."""
    _on_switch.append(callback)


def use_redis(url: str) -> None:
    """Switch this process to another Redis (an operator changed the Redis configuration)."""
    global _client, _client_url, _broken_until
    if url == _client_url:
        return
    old, _client, _client_url = _client, client_for(url), url
    _broken_until = 0.0
    for callback in _on_switch:
        callback()
    if old is not None:
        old.close()


def probe(url: str) -> None:
    """Connect to a Redis and PING it; raise RedisError with the reason when it fails."""
    candidate = client_for(url)
    try:
        candidate.ping()
    finally:
        candidate.close()


@measured
def ping() -> None:
    """Raise unless Redis answers (readiness)."""
    connection().ping()


def server_health() -> dict[str, object]:
    """Facts about the Redis in use, for operators; raises RedisError when it is down."""
    client = connection()
    started = time.perf_counter()
    client.ping()
    round_trip = time.perf_counter() - started
    info = client.info()
    return {
        "redis_total_keys": int(client.dbsize()),
        "redis_version": info.get("redis_version"),
        "redis_used_memory_bytes": info.get("used_memory"),
        "redis_used_memory_human": info.get("used_memory_human"),
        "redis_round_trip_ms": round(round_trip * 1000, 3),
        "redis_uptime_seconds": info.get("uptime_in_seconds"),
    }


@guarded
def try_lock(name: str, seconds: float) -> bool:
    """A lease held by one worker of all hosts for a while (for periodic work)."""
    lease = key("lock", name)
    return bool(connection().set(lease, "1", nx=True, px=max(1, int(seconds * 1000))))
