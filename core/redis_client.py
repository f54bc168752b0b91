"""The one Redis connection of each process, and the circuit breaker in front of it.

Modules that keep state in Redis own their key names and scripts; this module owns only the
connection, the key prefix (`SCOUT_REDIS_KEY_PREFIX`, so deployments can share a Redis), the
breaker and the leases that give periodic work to one worker of all hosts.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from django.conf import settings
from redis import Redis, RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, RedisClusterException, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from core.observability.metrics import redis_operation

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_client: Redis | None = None
_client_url: str | None = None

# The circuit breaker. After a failed call Redis is left alone for BREAK_SECONDS: calls meanwhile
# fail at once (decisions fall back to the worker's snapshot) instead of each waiting for a
# timeout. Then one call at a time is let through to see whether Redis is back (the probe);
# the others keep failing at once until it answers, so a hung Redis holds at most one thread
# of each worker, for one timeout, rather than every request. The first answer closes the
# breaker, so Scout works normally again within BREAK_SECONDS of Redis answering.
BREAK_SECONDS = 0.1
_broken_until = 0.0  # monotonic; 0.0 while the breaker is closed
_probing_since: float | None = None  # when the probe in flight started
_breaker = threading.Lock()
# A thread that waited out a failed call (a timeout, not a refusal, which costs nothing) does not
# probe for this long after it, so that the calls one request makes in a row wait for a Redis
# that does not answer once in all, however late the thread runs again.
SAME_REQUEST_SECONDS = 0.5
_thread = threading.local()


# What a Redis Cluster answers while part of it is out of service (a master died and no replica
# took over yet, slots being moved): for Scout, Redis is unavailable, as when it is down.
CLUSTER_UNAVAILABLE = (ClusterDownError, TryAgainError, RedisClusterException)


class RedisUnavailable(RedisConnectionError):
    """Redis failed moments ago; not tried again yet."""


def key(*parts: str) -> str:
    """A key under this deployment's prefix: `key("lock", "checkpoint")` is `P:lock:checkpoint`."""
    return ":".join((settings.SCOUT_REDIS_KEY_PREFIX, *parts))


def measured(function: Callable[P, R]) -> Callable[P, R]:
    """Count and time each call in the Redis metrics, under the function's name."""
    return redis_operation(function.__name__)(function)


def _let_through() -> bool:
    """Whether a call may go to Redis now: answer True if it is the probe, False if the breaker
    is closed; raise RedisUnavailable if it must fail at once."""
    global _probing_since
    if _broken_until == 0.0:
        return False
    now = time.monotonic()
    if now - getattr(_thread, "failed_at", -SAME_REQUEST_SECONDS) < SAME_REQUEST_SECONDS:
        raise RedisUnavailable("Redis is unavailable; Scout retries it shortly.")
    with _breaker:
        if _broken_until == 0.0:
            return False
        # A probe that outlived its timeouts (a connect, then a reply) no longer holds the turn.
        probe_lapses = 2 * settings.SCOUT_REDIS_TIMEOUT_SECONDS + BREAK_SECONDS
        if now < _broken_until or (
            _probing_since is not None and now - _probing_since < probe_lapses
        ):
            raise RedisUnavailable("Redis is unavailable; Scout retries it shortly.")
        _probing_since = now
        return True


def _answered() -> None:
    """Redis answered a call: close the breaker."""
    global _broken_until, _probing_since
    if _broken_until != 0.0:
        with _breaker:
            _broken_until, _probing_since = 0.0, None


def _failed(exc: Exception, probe: bool, started: float) -> None:
    """Redis failed a call: open the breaker (again) for BREAK_SECONDS."""
    global _broken_until, _probing_since
    now = time.monotonic()
    if now - started >= settings.SCOUT_REDIS_TIMEOUT_SECONDS / 2:
        _thread.failed_at = now
    with _breaker:
        if _broken_until == 0.0:
            logger.warning("Redis is unavailable: %s", exc)
        _broken_until = time.monotonic() + BREAK_SECONDS
        if probe:
            _probing_since = None


def guarded(function: Callable[P, R]) -> Callable[P, R]:
    """Fail fast while Redis is known to be down (the circuit breaker above); count and time
    each call in the Redis metrics under the function's name."""

    timed = measured(function)

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        probe = _let_through()
        started = time.monotonic()
        try:
            result = timed(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            _failed(exc, probe, started)
            raise
        except CLUSTER_UNAVAILABLE as exc:  # a slot without a master, a cluster out of reach
            _failed(exc, probe, started)
            raise RedisConnectionError(f"Redis Cluster: {exc}") from exc
        except Exception:
            # Redis answered: with an error of the call's own, or a reply the call refuses
            # (a script that found the configuration moved or the Test missing).
            _answered()
            raise
        _answered()
        return result

    return wrapper


def client_for(url: str, **options: Any) -> Redis:
    """A client with short timeouts: a call waits at most SCOUT_REDIS_TIMEOUT_SECONDS for a
    Redis that does not answer, and a decision makes at most one such call (the breaker fails
    the next ones at once).

    With SCOUT_REDIS_CLUSTER, redis-py's cluster client, from any node the URL names: it finds
    the others, sends each command to the master of its key's slot, and follows the cluster
    when a replica takes over. It answers the commands Scout uses as a single Redis's client
    does, and Scout's scripts and pipelines touch the keys of one slot each (a Test's keys
    share a hash tag; system.config keeps the configuration version in every slot)."""
    timeout = settings.SCOUT_REDIS_TIMEOUT_SECONDS
    # One immediate retry reconnects a pooled connection that a Redis restart broke (the error
    # is then a ConnectionError, at once), or follows a cluster that moved a slot or lost a
    # master. A timeout is not retried: a Redis that did not answer within the timeout would
    # only make the caller wait once more. No health-check PING either: it costs a round trip
    # before commands and on every new connection, and a broken connection shows itself at
    # once anyway.
    retried: tuple[type[Exception], ...] = (RedisConnectionError,)
    if settings.SCOUT_REDIS_CLUSTER:
        retried = (RedisConnectionError, ClusterDownError)
    arguments: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=retried),
        **options,
    }
    if settings.SCOUT_REDIS_CLUSTER:
        try:  # the cluster client asks a node for the slots' map at once
            return cast(Redis, RedisCluster.from_url(url, **arguments))
        except RedisClusterException as exc:
            raise RedisConnectionError(f"Redis Cluster at {url}: {exc}") from exc
    return Redis.from_url(url, **arguments)


def dedicated_to(key_name: str, **options: Any) -> Redis:
    """A client of its own (a pool the hot path does not use) for commands on `key_name`:
    on a Redis Cluster, a plain client of the master that serves the key's slot now, so that
    closing it closes its one connection."""
    if not settings.SCOUT_REDIS_CLUSTER:
        return client_for(current_url(), **options)
    try:
        node = cast(RedisCluster, connection()).get_node_from_key(key_name)
    except CLUSTER_UNAVAILABLE as exc:
        raise RedisConnectionError(f"Redis Cluster: {exc}") from exc
    timeout = settings.SCOUT_REDIS_TIMEOUT_SECONDS
    arguments: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        **options,
    }
    return Redis(host=node.host, port=node.port, **arguments)


def connection() -> Redis:
    """This process's client (one connection pool per worker process)."""
    global _client, _client_url
    if _client is None:
        _client, _client_url = client_for(settings.REDIS_URL), settings.REDIS_URL
    return _client


def for_this_thread() -> Redis:
    """The process's client, for a thread that calls Redis on every request: on a single
    Redis, a client that keeps one connection of the process's pool for this thread, so that
    a call does not check a connection out of the pool and back in (redis-py checks each one
    for unread data, a system call, a few percent of a decision's time). On a cluster, the
    process's client. A new one after a fork or a switch to another Redis."""
    client = connection()
    if settings.SCOUT_REDIS_CLUSTER:
        return client
    owned = getattr(_thread, "client", None)
    if owned is not None and owned[0] is client and owned[1] == os.getpid():
        return cast(Redis, owned[2])
    # Connecting is part of creating it: a Redis that is down raises here, as a call would.
    single = Redis(connection_pool=client.connection_pool, single_connection_client=True)
    _thread.client = (client, os.getpid(), single)
    return single


def current_url() -> str:
    connection()
    return _client_url or settings.REDIS_URL


def use_redis(url: str) -> None:
    """Switch this process to another Redis (an operator changed the Redis configuration)."""
    global _client, _client_url, _broken_until, _probing_since
    if url == _client_url:
        return
    old, _client, _client_url = _client, client_for(url), url
    _broken_until, _probing_since = 0.0, None
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
    try:
        connection().ping()
    except CLUSTER_UNAVAILABLE as exc:
        raise RedisConnectionError(f"Redis Cluster: {exc}") from exc


def server_health() -> dict[str, object]:
    """Facts about the Redis in use, for operators; raises RedisError when it is down."""
    try:
        return _server_health()
    except CLUSTER_UNAVAILABLE as exc:
        raise RedisConnectionError(f"Redis Cluster: {exc}") from exc


def _server_health() -> dict[str, object]:
    client = connection()
    started = time.perf_counter()
    client.ping()
    round_trip = time.perf_counter() - started
    if not settings.SCOUT_REDIS_CLUSTER:
        info = client.info()
        return {
            "redis_total_keys": int(client.dbsize()),
            "redis_version": info.get("redis_version"),
            "redis_used_memory_bytes": info.get("used_memory"),
            "redis_used_memory_human": info.get("used_memory_human"),
            "redis_round_trip_ms": round(round_trip * 1000, 3),
            "redis_uptime_seconds": info.get("uptime_in_seconds"),
        }
    # A cluster: its masters' figures added up (keys, memory), the youngest master's uptime.
    masters = cast(RedisCluster, client)
    infos = list(masters.info(target_nodes=RedisCluster.PRIMARIES).values())
    sizes = masters.dbsize(target_nodes=RedisCluster.PRIMARIES)
    memory = sum(int(info.get("used_memory", 0)) for info in infos)
    return {
        "redis_total_keys": int(sum(sizes.values()) if isinstance(sizes, dict) else sizes),
        "redis_version": infos[0].get("redis_version") if infos else None,
        "redis_used_memory_bytes": memory,
        "redis_used_memory_human": f"{memory / 1_048_576:.2f}M",
        "redis_round_trip_ms": round(round_trip * 1000, 3),
        "redis_uptime_seconds": min((i.get("uptime_in_seconds", 0) for i in infos), default=0),
        "redis_cluster_masters": len(infos),
    }


@guarded
def try_lock(name: str, seconds: float) -> bool:
    """A lease held by one worker of all hosts for a while (for periodic work)."""
    lease = key("lock", name)
    return bool(connection().set(lease, "1", nx=True, px=max(1, int(seconds * 1000))))
