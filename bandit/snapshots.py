"""Each worker's snapshot of each Test: its definition and its posterior.

A fetch must not load a whole model from Redis, so every worker keeps the posterior it built
from the Test's sufficient statistics and rebuilds it when the statistics changed and the
snapshot is older than SCOUT_SNAPSHOT_MAX_AGE_SECONDS (checking costs one HGET). Snapshots are
caches: losing one costs a reload, never data. Definitions are immutable once created, so they
are kept until the Test turns out to be gone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from bandit import policy
from bandit.models import Test
from bandit.state import learned


@dataclass(frozen=True)
class Definition:
    """The parts of a Test the hot path needs, detached from the ORM."""

    id: str
    variant_ids: list[int]
    labels: dict[int, str | int]
    minimum_update_requests: int
    trail_window_seconds: int
    trail_granularity_seconds: int

    @classmethod
    def of(cls, test: Test) -> Definition:
        return cls(
            id=str(test.id),
            variant_ids=test.variant_ids(),
            labels={int(key): label for key, label in test.variants.items()},
            minimum_update_requests=test.minimum_update_requests,
            trail_window_seconds=test.trail_time_window_minutes * 60,
            trail_granularity_seconds=test.trail_bucket_granularity_seconds,
        )


@dataclass
class Snapshot:
    definition: Definition
    stats: policy.LearnedStats
    posterior: policy.Posterior
    version: str | None
    rollout: int | None  # as of the last read; Redis decides for stored decisions
    checked_at: float


_snapshots: dict[str, Snapshot] = {}
_refreshing: set[str] = set()
_lock = threading.Lock()  # guards the refresh bookkeeping only, never a fetch


def _build(definition: Definition) -> Snapshot:
    loaded = learned.load_learned(definition.id, definition.variant_ids)
    return Snapshot(
        definition,
        loaded.stats,
        policy.build_posterior(loaded.stats),
        loaded.version,
        loaded.rollout,
        time.monotonic(),
    )


def _knowing_nothing(test: Test) -> Snapshot:
    """A Test this worker never saw while Redis is down: uniform choices until Redis is back
    (checked_at 0 makes the next request try to load it again)."""
    definition = Definition.of(test)
    stats = policy.LearnedStats.empty(definition.variant_ids)
    return Snapshot(
        definition, stats, policy.build_posterior(stats), None, test.global_variant_rollout, 0.0
    )


def get(test_id: str) -> Snapshot | None:
    """The worker's snapshot of a Test, refreshed if stale; None if the Test does not exist.

    When Redis is down, the last snapshot keeps serving (decisions are then degraded)."""
    snapshot = _snapshots.get(test_id)
    if snapshot is None:
        test = Test.objects.filter(pk=test_id).first()
        if test is None:
            return None
        try:
            snapshot = _snapshots[test_id] = _build(Definition.of(test))
        except RedisError:
            return _knowing_nothing(test)
        return snapshot
    if time.monotonic() - snapshot.checked_at > settings.SCOUT_SNAPSHOT_MAX_AGE_SECONDS:
        _refresh(snapshot)
    return _snapshots.get(test_id, snapshot)


def _refresh(snapshot: Snapshot) -> None:
    """Rebuild a stale snapshot; concurrent requests keep using the old one meanwhile."""
    test_id = snapshot.definition.id
    with _lock:
        if test_id in _refreshing:
            return
        _refreshing.add(test_id)
    try:
        if learned.learned_version(test_id) == snapshot.version:
            snapshot.checked_at = time.monotonic()
        else:
            _snapshots[test_id] = _build(snapshot.definition)
    except RedisError:
        pass  # keep serving the last snapshot; the next request tries again
    finally:
        with _lock:
            _refreshing.discard(test_id)


def forget(test_id: str) -> None:
    _snapshots.pop(test_id, None)
