"""Each worker's cached copy of the operator configuration and the valid API tokens.

The hot path must not query the database per request, yet an operator's change (protection, a
new or revoked token, defaults, Redis) must hold from the very next request on every worker and
host. So each change raises `SystemConfig.version` and publishes it in Redis, and a worker
reloads from the database only when the published version moved past its copy's:

- the products' hot path (decisions, rewards) lets the caller in under the worker's copy
  (`known`), and its one Redis script checks the version before writing anything (`guard`,
  core.scripts.ConfigMoved), so it costs no extra round trip;
- every other request reads the version first (`current`), one small GET.

As a safety net for a lost publish, a copy older than MAX_AGE_SECONDS is reloaded too.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from redis import Redis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS as REDIS_CLUSTER_SLOTS
from redis.crc import key_slot
from redis.exceptions import RedisError

from core import redis_client
from core.redis_client import connection, guarded
from core.scripts import Guard
from system.models import ApiToken, SystemConfig

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 30.0


def _version_key() -> str:
    return redis_client.key("config", "version")


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    """A short hash tag for each of Redis Cluster's 16,384 slots: the version is kept once per
    slot, so that a script finds it beside the keys it writes (about 300,000 CRC16s, once)."""
    tags: list[str | None] = [None] * REDIS_CLUSTER_SLOTS
    missing, number = REDIS_CLUSTER_SLOTS, 0
    while missing:
        tag = format(number, "x")
        slot = key_slot(tag.encode())
        if tags[slot] is None:
            tags[slot], missing = tag, missing - 1
        number += 1
    return tuple(tag for tag in tags if tag is not None)


def _slot_version_key(tag: str) -> str:
    return redis_client.key(f"{{{tag}}}", "config-version")


def prepare() -> None:
    """Work a worker does once, before its first request: on a Redis Cluster, the slots'
    hash tags (a quarter of a second), so that no decision waits for them."""
    if settings.SCOUT_REDIS_CLUSTER:
        _slot_tags()


def version_key_near(key: str) -> str:
    """The key holding the published version in the slot of `key`: on a single Redis the one
    version key; on a Redis Cluster its copy in that slot (see `publish_version`)."""
    if not settings.SCOUT_REDIS_CLUSTER:
        return _version_key()
    return _slot_version_key(_slot_tags()[key_slot(key.encode())])


@guarded
def published_version() -> int:
    """The configuration version published in Redis (0 when none is)."""
    value = connection().get(_version_key())
    return int(value) if value is not None else 0


def publish_version(version: int, client: Redis | None = None) -> None:
    """Tell every worker that the configuration changed: a worker reloads its copy when it
    sees a version it does not have. On a Redis Cluster the version is also written into every
    slot, before the change is acknowledged, so that each hot-path script checks it in its own
    slot; a few hundred milliseconds, once per operator change."""
    target = client or connection()
    pipe = target.pipeline(transaction=False)
    pipe.set(_version_key(), version)
    if settings.SCOUT_REDIS_CLUSTER:
        for tag in _slot_tags():
            pipe.set(_slot_version_key(tag), version)
    pipe.execute()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    expires_at: dt.datetime | None

    def valid_now(self) -> bool:
        return self.expires_at is None or self.expires_at > timezone.now()


@dataclass(frozen=True)
class Config:
    version: int
    protected_api: bool
    debug: bool
    host: str
    port: int
    trail_time_window_minutes: int
    trail_bucket_granularity_seconds: int
    minimum_update_requests: int
    context_ttl_seconds: int
    redis_url: str
    redis_host: str | None
    redis_port: int | None
    tokens: dict[str, TokenInfo]  # SHA-256 hex of the token -> what it is
    primary_token_masked: str | None
    loaded_at: float


def redis_url_of(host: str | None, port: int | None) -> str:
    return f"redis://{host}:{port}/0" if host and port else settings.REDIS_URL


def _load() -> Config:
    row = SystemConfig.load()
    now = timezone.now()
    tokens: dict[str, TokenInfo] = {}
    primary = None
    for token in ApiToken.objects.filter(revoked_at__isnull=True):
        if token.expires_at is not None and token.expires_at <= now:
            continue
        tokens[token.token_hash] = TokenInfo(token.id, token.name, token.expires_at)
        if token.is_primary:
            primary = token.masked
    return Config(
        version=row.version,
        protected_api=row.protected_api,
        debug=row.debug or settings.SCOUT_DEBUG,
        host=row.host or settings.SCOUT_HOST,
        port=row.port or settings.SCOUT_PORT,
        trail_time_window_minutes=row.trail_time_window_minutes
        or settings.SCOUT_TRAIL_WINDOW_MINUTES,
        trail_bucket_granularity_seconds=row.trail_bucket_granularity_seconds
        or settings.SCOUT_TRAIL_GRANULARITY_SECONDS,
        minimum_update_requests=(
            row.minimum_update_requests
            if row.minimum_update_requests is not None
            else settings.SCOUT_MIN_UPDATE_REQUESTS
        ),
        context_ttl_seconds=row.context_ttl_seconds or settings.SCOUT_CONTEXT_TTL_SECONDS,
        redis_url=redis_url_of(row.redis_host, row.redis_port),
        redis_host=row.redis_host or None,
        redis_port=row.redis_port,
        tokens=tokens,
        primary_token_masked=primary,
        loaded_at=time.monotonic(),
    )


_cached: Config | None = None
_lock = threading.Lock()


def _apply(config: Config) -> None:
    """Make this worker follow what the configuration says about Redis and logging."""
    redis_client.use_redis(config.redis_url)
    level = logging.DEBUG if config.debug else logging.INFO
    if logging.getLogger().level != level:
        logging.getLogger().setLevel(level)


def _reload() -> Config:
    global _cached
    with _lock:
        config = _load()
        _apply(config)
        _cached = config
    return config


def known() -> Config:
    """The worker's copy, for a request whose Redis script checks the version itself; reloaded
    from the database when older than MAX_AGE_SECONDS."""
    config = _cached
    if config is not None and time.monotonic() - config.loaded_at <= MAX_AGE_SECONDS:
        return config
    try:
        return _reload()
    except DatabaseError:
        if config is None:
            raise
        return config


def adopt(published: int) -> Config:
    """A hot-path script saw `published`: reload, and if the database is behind that (a Redis
    that belonged to another database), publish the database's version instead, so that the
    scripts stop refusing."""
    config = _reload()
    if config.version < published:
        publish_version(config.version)
    return config


def guard(config: Config) -> Guard:
    """What a hot-path script checks before it writes for a caller let in under `config`."""
    return Guard(version_key_near, config.version)


def moved_since(config: Config) -> bool:
    """Whether the configuration published now differs from `config` (one Redis GET)."""
    return current().version != config.version


def cached() -> Config:
    """The worker's copy, without checking for changes (for rules that can wait a request)."""
    return _cached or _reload()


def current() -> Config:
    """The configuration as of now: one Redis GET, and a database read only after a change.

    If Redis or the database cannot answer, the last known copy keeps serving.
    """
    config = _cached
    try:
        if config is None:
            return _reload()
        published = published_version()
        if published > config.version or time.monotonic() - config.loaded_at > MAX_AGE_SECONDS:
            return _reload()
        if published < config.version:  # a Redis that lost the key, or a new Redis
            publish_version(config.version)
    except (RedisError, DatabaseError) as exc:
        if config is None:
            raise
        # Redis or the database is down; their own errors are logged where they happen.
        logger.debug("Could not refresh the configuration: %s", exc)
    return config


def reset() -> None:
    """Drop this worker's copy: the next request loads the configuration again (for a process
    that moved to another database or Redis, such as a test)."""
    global _cached
    with _lock:
        _cached = None


def changed(row: SystemConfig) -> None:
    """Publish a committed change so that every worker reloads on its next request."""
    publish_version(row.version)
    _reload()
