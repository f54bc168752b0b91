"""Scout's hot state in Redis. The only module that knows key names and scripts.

Every key of a Test shares the hash tag `{<test id>}`, so a Redis Cluster keeps a Test in one
slot and the scripts below stay atomic. Keys (P is SCOUT_REDIS_KEY_PREFIX, T the tag):

- `P:T:meta`        hash: marks that the Test exists; `rollout` holds a rolled-out variant id.
- `P:T:stats`       hash of display counters: `n` decisions, `p:<v>` decisions per variant,
                    `lp` time of the last decision, `exploit`/`explore`/`rollout` decision kinds.
- `P:T:learn`       hash of additive sufficient statistics, written only by rewards:
                    `u` rewards, `lu` time of the last reward, per variant `u:<v>` rewards,
                    `s:<v>` reward sum, `q:<v>` sum of squares, and for contexts `c:<v>:<i>`
                    (sum of x_i), `b:<v>:<i>` (sum of x_i * reward), `A:<v>:<i>:<j>` (sum of
                    x_i * x_j, i <= j); `nb` counts rewards other than 0 and 1.
- `P:T:vocab`       hash: feature name -> index (1-based; 0 is the bias), at most
                    SCOUT_MAX_FEATURES entries; `P:T:stats` field `overflow` counts the rest.
- `P:T:fa`          hash: per variant and feature index, decisions `p:<v>:<i>`, rewards
                    `u:<v>:<i>` and reward sums `s:<v>:<i>` (the context feature analysis).
- `P:T:c:<request>` string `<variant>|<context JSON>` for the context TTL, or `<variant>|r`
                    once its reward was counted (a later reward is a duplicate).
- `P:T:tp:<bucket>` and `P:T:tu:<bucket>`: the prediction and reward trails, one hash per time
                    bucket, expiring after the Test's trail window.

The meta, stats, learn, vocab and fa hashes are checkpointed to the database (bandit.checkpoints)
and written back by `restore_test` when Redis lost them.

System keys: `P:lock:<name>` leases periodic work to one worker; `P:config:version` changes
whenever an operator changes the system configuration (protection, tokens, defaults, Redis), so
every worker reloads its cached copy on its next request.

Log keys: `P:logs` is a stream of log entries from every worker and host, capped near
SCOUT_LOG_STREAM_MAXLEN: fields `l` (numeric level), `t` (Test id or empty) and `d` (the entry as
JSON). `/logs/stream` reads it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import numpy as np
from django.conf import settings
from redis import Redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from bandit.policy import LearnedStats
from project.observability.metrics import FEATURE_OVERFLOW, redis_operation

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)

_client: Redis | None = None
_client_url: str | None = None

# After a failed call, Redis is left alone for this long: requests meanwhile fail at once (and
# decisions fall back to the worker's snapshot) instead of each waiting for a timeout. One
# request then tries again, so Scout recovers by itself within a second of Redis returning.
BREAK_SECONDS = 0.5
_broken_until = 0.0


class RedisUnavailable(RedisConnectionError):
    """Redis failed moments ago; not tried again yet."""


P = ParamSpec("P")
R = TypeVar("R")


def guarded(function: Callable[P, R]) -> Callable[P, R]:
    """Fail fast while Redis is known to be down (see BREAK_SECONDS); count and time each call
    in the Redis metrics under the function's name."""

    measured = redis_operation(function.__name__)(function)

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        global _broken_until
        if time.monotonic() < _broken_until:
            raise RedisUnavailable("Redis is unavailable; Scout retries it shortly.")
        try:
            return measured(*args, **kwargs)
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


def use_redis(url: str) -> None:
    """Switch this process to another Redis (an operator changed the Redis configuration)."""
    global _client, _client_url, _broken_until
    if url == _client_url:
        return
    old, _client, _client_url = _client, client_for(url), url
    _broken_until = 0.0
    _registered.clear()
    if old is not None:
        old.close()


def probe(url: str) -> None:
    """Connect to a Redis and PING it; raise RedisError with the reason when it fails."""
    candidate = client_for(url)
    try:
        candidate.ping()
    finally:
        candidate.close()


def _config_version_key() -> str:
    return f"{settings.SCOUT_REDIS_KEY_PREFIX}:config:version"


@guarded
def config_version() -> int:
    value = connection().get(_config_version_key())
    return int(value) if value is not None else 0


def publish_config_version(version: int, client: Redis | None = None) -> None:
    """Tell every worker that the configuration changed: a worker reloads its copy when it
    sees a version it does not have."""
    (client or connection()).set(_config_version_key(), version)


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


def _measured(function: F) -> F:
    """Count and time each call in the Redis metrics, under the function's name."""
    return redis_operation(function.__name__)(function)


class ConfigMoved(Exception):
    """The operator configuration is newer than the worker's copy; the script wrote nothing."""

    def __init__(self, published: int) -> None:
        super().__init__(f"configuration version {published} is published")
        self.published = published


class TestMissing(Exception):
    """Redis holds no state for this Test (deleted, or Redis lost its data)."""

    __test__ = False


def _tag(test_id: str) -> str:
    return f"{settings.SCOUT_REDIS_KEY_PREFIX}:{{{test_id}}}"


def _meta(test_id: str) -> str:
    return f"{_tag(test_id)}:meta"


def _stats(test_id: str) -> str:
    return f"{_tag(test_id)}:stats"


def _learn(test_id: str) -> str:
    return f"{_tag(test_id)}:learn"


def _vocab(test_id: str) -> str:
    return f"{_tag(test_id)}:vocab"


def _analysis(test_id: str) -> str:
    return f"{_tag(test_id)}:fa"


def _context(test_id: str, request_id: str) -> str:
    return f"{_tag(test_id)}:c:{request_id}"


def _trail(test_id: str, kind: str, bucket: int) -> str:
    return f"{_tag(test_id)}:{kind}:{bucket}"


@_measured
def ping() -> None:
    """Raise unless Redis answers (readiness)."""
    connection().ping()


# --- Lifecycle ------------------------------------------------------------------------------


@guarded
def create_test(test_id: str) -> None:
    connection().hset(_meta(test_id), "created", int(time.time()))


@guarded
def delete_test(test_id: str) -> int:
    """Remove every key of a Test, stored contexts and trails included."""
    client = connection()
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{_tag(test_id)}:*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            removed += client.unlink(*batch)
            batch.clear()
    if batch:
        removed += client.unlink(*batch)
    return removed


@guarded
def set_rollout(test_id: str, variant_id: int | None) -> None:
    if variant_id is None:
        connection().hdel(_meta(test_id), "rollout")
    else:
        connection().hset(_meta(test_id), "rollout", variant_id)


# --- Decisions ------------------------------------------------------------------------------

# Store the decision and its context, count it, and answer the rolled-out variant instead when
# a rollout is in force, so that a rollout holds from the very next request on every worker.
# A request id that already names a decision gets that decision back (retries are idempotent).
_DECIDE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, 0, 0} end
local rollout = redis.call('HGET', KEYS[1], 'rollout')
local stored = redis.call('GET', KEYS[5])
if stored then
  local v = string.sub(stored, 1, string.find(stored, '|', 1, true) - 1)
  return {tonumber(v), (rollout == v) and 1 or 0, 1, 0}
end
local v = ARGV[1]
local kind = ARGV[2]
if rollout then v = rollout; kind = 'rollout' end
redis.call('SET', KEYS[5], v .. '|' .. ARGV[7], 'EX', ARGV[4])
redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('HINCRBY', KEYS[2], 'p:' .. v, 1)
redis.call('HINCRBY', KEYS[2], kind, 1)
redis.call('HSET', KEYS[2], 'lp', ARGV[3])
redis.call('HINCRBY', KEYS[6], v, 1)
local n_keys = tonumber(ARGV[8])
for i = 1, n_keys do redis.call('HSET', KEYS[6], v .. '|' .. ARGV[8 + i], 1) end
redis.call('EXPIRE', KEYS[6], ARGV[5])
local max_features = tonumber(ARGV[6])
local overflow = 0
for i = 9 + n_keys, #ARGV do
  local index = redis.call('HGET', KEYS[3], ARGV[i])
  if not index then
    local size = redis.call('HLEN', KEYS[3])
    if size < max_features then
      index = size + 1
      redis.call('HSET', KEYS[3], ARGV[i], index)
    else
      redis.call('HINCRBY', KEYS[2], 'overflow', 1)
      overflow = overflow + 1
    end
  end
  if index then redis.call('HINCRBY', KEYS[4], 'p:' .. v .. ':' .. index, 1) end
end
return {tonumber(v), rollout and 1 or 0, 0, overflow}
"""


@dataclass(frozen=True)
class Decision:
    variant_id: int
    is_global_rollout: bool
    replayed: bool  # the request id already named a decision; this is that decision


def _bucket(now: float, granularity: int) -> int:
    return int(now // granularity) * granularity


@guarded
def record_decision(
    test_id: str,
    *,
    config_version: int,
    variant_id: int,
    exploit: bool,
    request_id: str,
    context_json: str,
    context_keys: Sequence[str],
    features: Iterable[str],
    context_ttl_seconds: int,
    trail_window_seconds: int,
    trail_granularity_seconds: int,
) -> Decision:
    """One round trip: store the decision and its context, count it, honour a rollout.

    Raises ConfigMoved, having written nothing, when the worker's configuration is stale.
    """
    now = time.time()
    keys = [
        _meta(test_id),
        _stats(test_id),
        _vocab(test_id),
        _analysis(test_id),
        _context(test_id, request_id),
        _trail(test_id, "tp", _bucket(now, trail_granularity_seconds)),
    ]
    args = [
        variant_id,
        "exploit" if exploit else "explore",
        f"{now:.6f}",
        context_ttl_seconds,
        trail_window_seconds + trail_granularity_seconds,
        settings.SCOUT_MAX_FEATURES,
        context_json,
        len(context_keys),
        *context_keys,
        *features,
    ]
    variant, rollout, replayed, overflow = _run(_DECIDE, keys, args, config_version)
    if variant == -1:
        raise TestMissing(test_id)
    if overflow:
        FEATURE_OVERFLOW.inc(overflow)
    return Decision(int(variant), bool(rollout), bool(replayed))


# --- Rewards --------------------------------------------------------------------------------

_REWARD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local now, ttl, trail_ttl = ARGV[1], ARGV[2], ARGV[3]
local max_features = tonumber(ARGV[4])
local learn, stats_acc, analysis, trail = {}, {}, {}, {}
local function add(tbl, field, delta) tbl[field] = (tbl[field] or 0) + delta end
local function admit(name)
  local index = redis.call('HGET', KEYS[3], name)
  if index then return index end
  local size = redis.call('HLEN', KEYS[3])
  if size >= max_features then add(stats_acc, 'overflow', 1); return nil end
  redis.call('HSET', KEYS[3], name, size + 1)
  return tostring(size + 1)
end
local results = {}
local applied = 0
local pos = 6
for entry = 1, tonumber(ARGV[5]) do
  local key_index = tonumber(ARGV[pos])
  local v = ARGV[pos + 1]
  local y = tonumber(ARGV[pos + 2])
  local n_features = tonumber(ARGV[pos + 3])
  local features_at = pos + 4
  local n_keys = tonumber(ARGV[features_at + 2 * n_features])
  local keys_at = features_at + 2 * n_features + 1
  pos = keys_at + n_keys
  local status = 1
  if key_index > 0 then
    local key = KEYS[5 + key_index]
    local stored = redis.call('GET', key)
    if stored and string.sub(stored, string.find(stored, '|', 1, true) + 1) == 'r' then
      status = 2
    elseif stored then
      redis.call('SET', key, v .. '|r', 'KEEPTTL')
    else
      redis.call('SET', key, v .. '|r', 'EX', ttl)
    end
  end
  if status == 1 then
    applied = applied + 1
    add(learn, 'u', 1)
    add(learn, 'u:' .. v, 1)
    add(learn, 's:' .. v, y)
    add(learn, 'q:' .. v, y * y)
    if y ~= 0 and y ~= 1 then add(learn, 'nb', 1) end
    add(trail, v, 1)
    add(trail, 's:' .. v, y)
    for k = 0, n_keys - 1 do trail[v .. '|' .. ARGV[keys_at + k]] = 1 end
    local index, value = {}, {}
    for f = 0, n_features - 1 do
      local i = admit(ARGV[features_at + 2 * f])
      if i then
        table.insert(index, tonumber(i))
        table.insert(value, tonumber(ARGV[features_at + 2 * f + 1]))
      end
    end
    for a = 1, #index do
      local ia, xa = index[a], value[a]
      add(learn, 'c:' .. v .. ':' .. ia, xa)
      add(learn, 'b:' .. v .. ':' .. ia, xa * y)
      add(analysis, 'u:' .. v .. ':' .. ia, 1)
      add(analysis, 's:' .. v .. ':' .. ia, y)
      for b = 1, #index do
        local ib = index[b]
        if ia <= ib then add(learn, 'A:' .. v .. ':' .. ia .. ':' .. ib, xa * value[b]) end
      end
    end
  end
  results[entry] = status
end
local function flush(key, tbl)
  for field, delta in pairs(tbl) do
    if delta == 1 and field:find('|', 1, true) then
      redis.call('HSET', key, field, 1)
    else
      redis.call('HINCRBYFLOAT', key, field, string.format('%.17g', delta))
    end
  end
end
flush(KEYS[2], learn)
flush(KEYS[4], analysis)
flush(KEYS[5], trail)
if applied > 0 then
  redis.call('HSET', KEYS[2], 'lu', now)
  redis.call('EXPIRE', KEYS[5], trail_ttl)
end
for field, delta in pairs(stats_acc) do redis.call('HINCRBY', KEYS[#KEYS], field, delta) end
results[#results + 1] = stats_acc['overflow'] or 0
return results
"""


@dataclass(frozen=True)
class Reward:
    """One reward to count, already validated and resolved to a variant and its features."""

    variant_id: int
    reward: float
    request_id: str | None
    features: dict[str, float]
    context_keys: Sequence[str]


APPLIED, DUPLICATE = 1, 2


@guarded
def stored_decisions(test_id: str, request_ids: Sequence[str]) -> list[str | None]:
    """The stored `<variant>|<context>` for each request id (None when unknown or expired)."""
    if not request_ids:
        return []
    values = connection().mget([_context(test_id, rid) for rid in request_ids])
    return [value.decode() if value is not None else None for value in values]


def parse_stored(value: str) -> tuple[int, str | None]:
    """Split a stored decision into its variant and its context JSON ('r' once rewarded)."""
    variant, _, rest = value.partition("|")
    return int(variant), rest


@guarded
def record_rewards(
    test_id: str,
    rewards: Sequence[Reward],
    *,
    config_version: int,
    context_ttl_seconds: int,
    trail_window_seconds: int,
    trail_granularity_seconds: int,
) -> list[int]:
    """Apply a batch of rewards atomically; answer APPLIED or DUPLICATE per reward.

    Raises ConfigMoved, having written nothing, when the worker's configuration is stale.
    """
    now = time.time()
    context_keys: list[str] = []
    args: list[object] = [
        f"{now:.6f}",
        context_ttl_seconds,
        trail_window_seconds + trail_granularity_seconds,
        settings.SCOUT_MAX_FEATURES,
        len(rewards),
    ]
    for reward in rewards:
        if reward.request_id is not None:
            context_keys.append(_context(test_id, reward.request_id))
            args.append(len(context_keys))
        else:
            args.append(0)
        args += [reward.variant_id, repr(float(reward.reward)), len(reward.features)]
        for name, value in reward.features.items():
            args += [name, repr(float(value))]
        args.append(len(reward.context_keys))
        args += list(reward.context_keys)
    keys = [
        _meta(test_id),
        _learn(test_id),
        _vocab(test_id),
        _analysis(test_id),
        _trail(test_id, "tu", _bucket(now, trail_granularity_seconds)),
        *context_keys,
        _stats(test_id),
    ]
    results = _run(_REWARD, keys, args, config_version)
    if results == [-1]:
        raise TestMissing(test_id)
    *statuses, overflow = results  # the script appends the features it had to ignore
    if overflow:
        FEATURE_OVERFLOW.inc(overflow)
    return [int(status) for status in statuses]


# --- Learned statistics ---------------------------------------------------------------------


@dataclass(frozen=True)
class Learned:
    stats: LearnedStats
    version: str | None  # changes whenever a reward is counted
    rollout: int | None  # the rolled-out variant when this was read


@guarded
def learned_version(test_id: str) -> str | None:
    """A cheap token that changes whenever a reward is counted (the reward total)."""
    value = connection().hget(_learn(test_id), "u")
    return value.decode() if value is not None else None


@guarded
def load_learned(test_id: str, variant_ids: list[int]) -> Learned:
    """Read a Test's sufficient statistics into arrays for the policy, and its rollout (one
    round trip)."""
    pipe = connection().pipeline(transaction=False)
    pipe.hgetall(_learn(test_id))
    pipe.hgetall(_vocab(test_id))
    pipe.hget(_meta(test_id), "rollout")
    raw_learn, raw_vocab, rollout = pipe.execute()
    learn = {key.decode(): float(value) for key, value in raw_learn.items()}
    position = {variant: i for i, variant in enumerate(variant_ids)}
    stats = LearnedStats.empty(variant_ids)
    stats.non_binary_rewards = int(learn.get("nb", 0))
    pairs: list[tuple[int, int, int, float]] = []
    vectors: list[tuple[str, int, int, float]] = []
    dims = 1
    for field, value in learn.items():
        kind, _, rest = field.partition(":")
        if not rest:
            continue
        parts = rest.split(":")
        row = position.get(int(parts[0]))
        if row is None:
            continue
        if kind == "u":
            stats.updates[row] = value
        elif kind == "s":
            stats.reward_sum[row] = value
        elif kind == "q":
            stats.reward_sq_sum[row] = value
        elif kind in ("c", "b"):
            vectors.append((kind, row, int(parts[1]), value))
            dims = max(dims, int(parts[1]) + 1)
        elif kind == "A":
            pairs.append((row, int(parts[1]), int(parts[2]), value))
            dims = max(dims, int(parts[2]) + 1)
    if vectors:
        count = len(variant_ids)
        xtx = np.zeros((count, dims, dims))
        xty = np.zeros((count, dims))
        xtx[:, 0, 0] = stats.updates
        xty[:, 0] = stats.reward_sum
        for kind, row, i, value in vectors:
            if kind == "c":
                xtx[row, 0, i] = xtx[row, i, 0] = value
            else:
                xty[row, i] = value
        for row, i, j, value in pairs:
            xtx[row, i, j] = xtx[row, j, i] = value
        stats.xtx, stats.xty = xtx, xty
    stats.feature_index = {
        key.decode(): int(value) for key, value in raw_vocab.items() if int(value) < dims
    }
    version = raw_learn.get(b"u")
    return Learned(
        stats,
        version.decode() if version is not None else None,
        int(rollout) if rollout is not None else None,
    )


# --- Checkpoints ----------------------------------------------------------------------------

# The hashes that hold what a Test learned and counted. Contexts and trails are left out: they
# expire anyway, and copying them would cost more than they are worth.
_DURABLE = ("meta", "stats", "learn", "vocab", "fa")


@guarded
def export_tests(test_ids: Sequence[str]) -> dict[str, dict[str, dict[str, str]]]:
    """The durable hashes of each Test that Redis has (one round trip for all of them)."""
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        for name in _DURABLE:
            pipe.hgetall(f"{_tag(test_id)}:{name}")
    replies = iter(pipe.execute())
    exported = {}
    for test_id in test_ids:
        hashes = {
            name: {k.decode(): v.decode() for k, v in next(replies).items()} for name in _DURABLE
        }
        if hashes["meta"]:
            exported[test_id] = hashes
    return exported


@guarded
def missing(test_ids: Sequence[str]) -> set[str]:
    """The Tests among these that Redis has no state for, in one round trip."""
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        pipe.exists(_meta(test_id))
    replies = pipe.execute() if test_ids else []
    return {test_id for test_id, exists in zip(test_ids, replies, strict=True) if not exists}


@guarded
def totals(test_ids: Sequence[str]) -> dict[str, tuple[int, int] | None]:
    """Each Test's rewards and decisions counted so far, in one round trip; None for a Test
    that Redis does not have."""
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        pipe.exists(_meta(test_id))
        pipe.hget(_learn(test_id), "u")
        pipe.hget(_stats(test_id), "n")
    replies = pipe.execute() if test_ids else []
    answer: dict[str, tuple[int, int] | None] = {}
    for i, test_id in enumerate(test_ids):
        exists, updates, predictions = replies[3 * i : 3 * i + 3]
        answer[test_id] = (int(float(updates or 0)), int(predictions or 0)) if exists else None
    return answer


_RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local pos = 1
for k = 1, #KEYS do
  local count = tonumber(ARGV[pos])
  pos = pos + 1
  for i = 0, count - 1 do
    redis.call('HSET', KEYS[k], ARGV[pos + 2 * i], ARGV[pos + 2 * i + 1])
  end
  pos = pos + 2 * count
end
return 1
"""


@guarded
def restore_test(test_id: str, hashes: dict[str, dict[str, str]], rollout: int | None) -> bool:
    """Refill a Test that Redis lost, unless another worker already did (atomic)."""
    meta = dict(hashes.get("meta") or {"created": str(int(time.time()))})
    meta.pop("rollout", None)
    if rollout is not None:
        meta["rollout"] = str(rollout)
    filled = {**hashes, "meta": meta}
    args: list[object] = []
    for name in _DURABLE:
        fields = filled.get(name) or {}
        args.append(len(fields))
        for field, value in fields.items():
            args += [field, value]
    keys = [f"{_tag(test_id)}:{name}" for name in _DURABLE]
    return bool(_run(_RESTORE, keys, args))


@guarded
def try_lock(name: str, seconds: float) -> bool:
    """A lease held by one worker of all hosts for a while (for periodic work)."""
    key = f"{settings.SCOUT_REDIS_KEY_PREFIX}:lock:{name}"
    return bool(connection().set(key, "1", nx=True, px=max(1, int(seconds * 1000))))


# --- Read side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    """What the list and details pages show of a Test's activity."""

    predictions: dict[int, int]
    updates: dict[int, int]
    reward_sums: dict[int, float]
    last_prediction_at: float | None
    last_update_at: float | None
    kinds: dict[str, int]  # exploit / explore / rollout decisions
    overflow: int

    @property
    def total_predictions(self) -> int:
        return sum(self.predictions.values())

    @property
    def total_updates(self) -> int:
        return sum(self.updates.values())


def _counters(stats: dict[bytes, bytes], learn: dict[bytes, bytes]) -> Counters:
    predictions: dict[int, int] = {}
    kinds: dict[str, int] = {}
    for key, value in stats.items():
        field = key.decode()
        if field.startswith("p:"):
            predictions[int(field[2:])] = int(value)
        elif field in ("exploit", "explore", "rollout"):
            kinds[field] = int(value)
    updates: dict[int, int] = {}
    sums: dict[int, float] = {}
    for key, value in learn.items():
        field = key.decode()
        if field.startswith("u:"):
            updates[int(field[2:])] = int(float(value))
        elif field.startswith("s:"):
            sums[int(field[2:])] = float(value)
    last_prediction = stats.get(b"lp")
    last_update = learn.get(b"lu")
    return Counters(
        predictions=predictions,
        updates=updates,
        reward_sums=sums,
        last_prediction_at=float(last_prediction) if last_prediction else None,
        last_update_at=float(last_update) if last_update else None,
        kinds=kinds,
        overflow=int(stats.get(b"overflow", 0)),
    )


@guarded
def counters(test_ids: Sequence[str]) -> dict[str, Counters]:
    """Counters of many Tests in one round trip."""
    if not test_ids:
        return {}
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        pipe.hgetall(_stats(test_id))
        pipe.hgetall(_learn(test_id))
    replies = pipe.execute()
    return {
        test_id: _counters(replies[2 * i], replies[2 * i + 1]) for i, test_id in enumerate(test_ids)
    }


@dataclass(frozen=True)
class TrailBucket:
    start: int  # epoch seconds at the start of the bucket
    counts: dict[int, int]
    reward_sums: dict[int, float]
    context_keys: dict[int, list[str]]


@guarded
def trails(
    test_id: str, *, window_seconds: int, granularity_seconds: int
) -> tuple[list[TrailBucket], list[TrailBucket]]:
    """The prediction and reward trails over the window, oldest bucket first."""
    now = time.time()
    last = _bucket(now, granularity_seconds)
    first = _bucket(now - window_seconds, granularity_seconds) + granularity_seconds
    starts = list(range(first, last + 1, granularity_seconds))
    pipe = connection().pipeline(transaction=False)
    for kind in ("tp", "tu"):
        for start in starts:
            pipe.hgetall(_trail(test_id, kind, start))
    replies = pipe.execute()

    def parse(start: int, raw: dict[bytes, bytes]) -> TrailBucket:
        counts: dict[int, int] = {}
        sums: dict[int, float] = {}
        keys: dict[int, list[str]] = {}
        for key, value in raw.items():
            field = key.decode()
            if "|" in field:
                variant, _, context_key = field.partition("|")
                keys.setdefault(int(variant), []).append(context_key)
            elif field.startswith("s:"):
                sums[int(field[2:])] = float(value)
            else:
                counts[int(field)] = int(float(value))
        return TrailBucket(start, counts, sums, {v: sorted(k) for v, k in keys.items()})

    size = len(starts)
    predictions = [parse(starts[i], replies[i]) for i in range(size) if replies[i]]
    rewards = [parse(starts[i], replies[size + i]) for i in range(size) if replies[size + i]]
    return predictions, rewards


@guarded
def feature_analysis(test_id: str) -> tuple[dict[str, int], dict[str, float]]:
    """The vocabulary (name -> index) and the per variant, per feature counters."""
    pipe = connection().pipeline(transaction=False)
    pipe.hgetall(_vocab(test_id))
    pipe.hgetall(_analysis(test_id))
    vocab, analysis = pipe.execute()
    return (
        {key.decode(): int(value) for key, value in vocab.items()},
        {key.decode(): float(value) for key, value in analysis.items()},
    )


# --- Log stream -----------------------------------------------------------------------------


def _logs() -> str:
    return f"{settings.SCOUT_REDIS_KEY_PREFIX}:logs"


@_measured
def append_logs(entries: Sequence[tuple[int, str, str]]) -> None:
    """Append (level number, Test id or "", entry JSON) records in one pipeline.

    The stream is trimmed approximately (`MAXLEN ~`), which lets Redis drop whole nodes: cheap,
    and it never holds much more than the cap.
    """
    pipe = connection().pipeline(transaction=False)
    for level, test_id, data in entries:
        pipe.xadd(
            _logs(),
            {"l": level, "t": test_id, "d": data},
            maxlen=settings.SCOUT_LOG_STREAM_MAXLEN,
            approximate=True,
        )
    pipe.execute()


@dataclass(frozen=True)
class LogEntry:
    id: str
    level: int
    test_id: str
    data: str  # the entry as JSON


def log_reader(block_seconds: float) -> Redis:
    """A connection of its own for one live stream, closed by the caller when the stream ends.

    A blocking read holds its connection for up to `block_seconds`, so it must not come from
    (or starve) the pool the hot path uses, and its read timeout must outlast the block.
    """
    timeout = settings.SCOUT_REDIS_TIMEOUT_SECONDS
    return Redis.from_url(
        current_url(),
        socket_connect_timeout=timeout,
        socket_timeout=block_seconds + timeout,
        client_name=f"{settings.SCOUT_REDIS_KEY_PREFIX}:log-stream",
    )


def last_log_id(client: Redis) -> str:
    """The id of the newest entry held ("0-0" when the stream is empty)."""
    newest = client.xrevrange(_logs(), count=1)
    return newest[0][0].decode() if newest else "0-0"


def read_logs(client: Redis, after: str, *, block_seconds: float, count: int) -> list[LogEntry]:
    """Entries after the id `after`, oldest first; waits up to `block_seconds` for new ones."""
    reply = client.xread({_logs(): after}, count=count, block=max(1, int(block_seconds * 1000)))
    if not reply:
        return []
    return [
        LogEntry(
            id=entry_id.decode(),
            level=int(fields.get(b"l", 0)),
            test_id=fields.get(b"t", b"").decode(),
            data=fields.get(b"d", b"{}").decode(),
        )
        for entry_id, fields in reply[0][1]
    ]


# --- Scripts --------------------------------------------------------------------------------

_registered: dict[tuple[str, bool], Script] = {}

# Put before a script that writes on behalf of an API caller. The caller was let in under the
# worker's copy of the operator configuration (protection, tokens); if an operator has changed
# it since, the script writes nothing and answers the published version, and the worker checks
# the caller again under the new configuration. This spares the hot path a Redis round trip
# per request for the version, yet a revoked token is refused from the very next request.
# (Under Redis Cluster the version key sits in another slot than the Test's keys.)
_CONFIG_CHECK = """
local published = tonumber(redis.call('GET', KEYS[1]) or '0')
if published > tonumber(ARGV[1]) then return {-2, published} end
table.remove(KEYS, 1)
table.remove(ARGV, 1)
"""


def _run(
    source: str, keys: list[str], args: list[object], config_version: int | None = None
) -> list:
    """Run a Lua script by its SHA; redis-py loads it again when a (restarted or new) Redis does
    not know it. With `config_version`, the script first checks that it is current."""
    checked = config_version is not None
    if checked:
        keys = [_config_version_key(), *keys]
        args = [config_version, *args]
    client = connection()
    script = _registered.get((source, checked))
    if script is None:
        full = _CONFIG_CHECK + source if checked else source
        script = _registered[(source, checked)] = client.register_script(full)
    result = script(keys=keys, args=args, client=client)
    if config_version is not None and len(result) == 2 and result[0] == -2:
        raise ConfigMoved(int(result[1]))
    return result
