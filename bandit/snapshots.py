"""Each worker's snapshot of each Test: its definition and its posterior.

A fetch must not load a whole model from Redis, so every worker keeps the posterior it built
from the Test's sufficient statistics. Fresh evidence matters: at hundreds of decisions a
second, a snapshot a second old decides hundreds of times without the rewards that came in
meanwhile. So a snapshot learns that it is behind for free: every decision's script answers
the Test's reward count, and a reward counted by this worker says so too (`note`). A snapshot
known to be behind is rebuilt by the next request, as often as rebuilding costs at most
REBUILD_SHARE of the time (a cheap non-contextual posterior is rebuilt within milliseconds, a
large contextual one less often); one that hears nothing is checked after
SCOUT_SNAPSHOT_MAX_AGE_SECONDS (one HGET). Snapshots are caches: losing one costs a reload,
never data. A definition (the variants in service) is kept until the Test turns out to be gone
or its variants change: every decision's and reward's script checks the worker's version of
them, and a worker whose copy is older reads the Test again (`forget`, then `get`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from redis.exceptions import RedisError

from bandit import metrics, policy
from bandit.models import Test
from bandit.state import learned, rewards

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Definition:
    """The parts of a Test the hot path needs, detached from the ORM."""

    id: str
    variant_ids: list[int]  # the variants in service, which decisions choose among
    labels: dict[int, str | int]  # of every variant, retired ones included
    version: int  # of the variants in service (Test.definition_version)
    minimum_update_requests: int
    sampling: str
    prior: str
    forgetting: str
    minimum_variant_share: float
    holdout_share: float
    # The learning settings each logged decision records (bandit.decision_log), as JSON.
    learning: str
    trail_window_seconds: int
    trail_granularity_seconds: int
    metric_labels: dict[int, str]  # each variant's `variant` label in the metrics

    @classmethod
    def of(cls, test: Test) -> Definition:
        return cls(
            id=str(test.id),
            variant_ids=test.variants_in_service(),
            version=test.definition_version,
            metric_labels=metrics.variant_labels(test.variant_ids()),
            labels={int(key): label for key, label in test.variants.items()},
            minimum_update_requests=test.minimum_update_requests,
            sampling=test.sampling,
            prior=test.prior,
            forgetting=test.forgetting,
            minimum_variant_share=test.minimum_variant_share,
            holdout_share=test.holdout_share,
            learning=json.dumps(learning_settings(test), separators=(",", ":")),
            trail_window_seconds=test.trail_time_window_minutes * 60,
            trail_granularity_seconds=test.trail_bucket_granularity_seconds,
        )


def learning_settings(test: Test) -> dict[str, object]:
    """What decides how a Test chooses: recorded with each of its logged decisions."""
    return {
        "sampling": test.sampling,
        "prior": test.prior,
        "forgetting": test.forgetting,
        "minimum_update_requests": test.minimum_update_requests,
        "minimum_variant_share": test.minimum_variant_share,
        "holdout_share": test.holdout_share,
    }


# A snapshot known to be behind is rebuilt as soon as rebuilding costs no more than this share
# of a worker's time for that Test.
REBUILD_SHARE = 0.02


@dataclass
class Snapshot:
    definition: Definition
    stats: policy.LearnedStats
    posterior: policy.Posterior
    version: str | None
    rollout: int | None  # as of the last read; Redis decides for stored decisions
    checked_at: float
    # What building it took, and estimating its choice probabilities since: a snapshot
    # costs both, and is rebuilt only as often as the two take REBUILD_SHARE of the time.
    build_seconds: float = 0.0
    behind: bool = False  # Redis holds rewards this snapshot has not learned from
    # Each variant's probability of being chosen, by context and eligible variants: estimated
    # once per posterior (policy.choice_probabilities), at most MAX_PROPENSITY_CONTEXTS.
    propensities: dict[object, np.ndarray] = field(default_factory=dict)

    @property
    def uniform(self) -> bool:
        """Whether decisions are still uniform: too few rewards yet."""
        return self.stats.total_updates < self.definition.minimum_update_requests

    def due(self, now: float, told_after: bool = False) -> bool:
        """Whether to rebuild now: behind, and the last build no more than REBUILD_SHARE of
        the time since; or not heard of for SCOUT_SNAPSHOT_MAX_AGE_SECONDS, unless the caller
        will be told right after (`get`)."""
        age = now - self.checked_at
        if self.behind and age * REBUILD_SHARE >= self.build_seconds:
            return True
        return not told_after and age > settings.SCOUT_SNAPSHOT_MAX_AGE_SECONDS


# The contexts whose choice probabilities a snapshot keeps: a Test with numeric contexts sees
# a new one with nearly every decision, and estimates those anew.
MAX_PROPENSITY_CONTEXTS = 256


def choice_probabilities(
    snapshot: Snapshot, x: dict[int, float], among: list[int] | None, rng: np.random.Generator
) -> np.ndarray:
    """Each variant's probability of being chosen in context `x` among `among` (positions;
    None for all), by the snapshot's posterior: estimated once, then kept with it."""
    key = (tuple(x.items()), None if among is None else tuple(among))
    probabilities = snapshot.propensities.get(key)
    if probabilities is None:
        started = time.monotonic()
        definition = snapshot.definition
        probabilities = policy.choice_probabilities(
            snapshot.posterior,
            x,
            rng,
            uniform=snapshot.uniform,
            variants=len(definition.variant_ids),
            sampling=definition.sampling,
            among=among,
            minimum_share=definition.minimum_variant_share,
        )
        if len(snapshot.propensities) < MAX_PROPENSITY_CONTEXTS:
            snapshot.propensities[key] = probabilities
        snapshot.build_seconds += time.monotonic() - started
    return probabilities


_snapshots: dict[str, Snapshot] = {}
_refreshing: set[str] = set()
_lock = threading.Lock()  # guards the refresh bookkeeping only, never a fetch


def _build(definition: Definition) -> Snapshot:
    started = time.monotonic()
    loaded = learned.load_learned(definition.id, definition.variant_ids)
    if definition.forgetting == policy.ON_CHANGE:
        loaded = _forget_changes(definition, loaded)
    posterior = policy.build_posterior(loaded.stats, definition.prior)
    now = time.monotonic()
    return Snapshot(
        definition,
        loaded.stats,
        posterior,
        loaded.version,
        loaded.rollout,
        now,
        build_seconds=now - started,
    )


def _forget_changes(definition: Definition, loaded: learned.Learned) -> learned.Learned:
    """Act on the changes the statistics show (policy.ON_CHANGE): the variants that changed
    forget in Redis, for every worker, and the statistics are read again. Rare: a Test that
    does not change never gets here past the check."""
    changed = policy.changed_variants(loaded.stats)
    if not changed:
        return loaded
    recent = loaded.stats.recent
    assert recent is not None
    ids = loaded.stats.variant_ids
    rewards.forget(definition.id, [(ids[i], int(recent.changes[i])) for i in changed])
    logger.info(
        "Rewards changed: variants forget what they learned before",
        extra={"test_id": definition.id, "variants": [ids[i] for i in changed]},
    )
    return learned.load_learned(definition.id, definition.variant_ids)


def _knowing_nothing(test: Test) -> Snapshot:
    """A Test this worker never saw while Redis is down: uniform choices until Redis is back
    (checked_at 0 makes the next request try to load it again)."""
    definition = Definition.of(test)
    stats = policy.LearnedStats.empty(definition.variant_ids)
    return Snapshot(
        definition,
        stats,
        policy.build_posterior(stats, definition.prior),
        None,
        test.served_rollout,
        0.0,
    )


def get(test_id: str, *, told_after: bool = False) -> Snapshot | None:
    """The worker's snapshot of a Test, refreshed if stale; None if the Test does not exist.

    `told_after`: the caller's Redis script answers the Test's reward count right after (a
    decision does), and the caller passes it to `note`. A snapshot that is only old, not known
    to be behind, then serves as it is, and `note` says whether it was behind: asking Redis
    first would cost a round trip for every decision of a Test this worker seldom sees (with
    10,000 Tests, nearly all of them). When Redis is down, the last snapshot keeps serving
    (decisions are then degraded)."""
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
    if snapshot.due(time.monotonic(), told_after):
        _refresh(snapshot)
    return _snapshots.get(test_id, snapshot)


def note(test_id: str, version: str | None) -> None:
    """Redis says the Test has counted `version` rewards (a decision's script told): a
    snapshot that learned from fewer is behind, one that learned from as many is fresh now."""
    snapshot = _snapshots.get(test_id)
    if snapshot is None:
        return
    if version != snapshot.version:
        snapshot.behind = True
    elif not snapshot.behind:
        snapshot.checked_at = time.monotonic()


def learned_more(test_id: str) -> None:
    """This worker counted rewards for the Test: its snapshot is behind."""
    snapshot = _snapshots.get(test_id)
    if snapshot is not None:
        snapshot.behind = True


def _refresh(snapshot: Snapshot) -> None:
    """Rebuild a stale snapshot; concurrent requests keep using the old one meanwhile."""
    test_id = snapshot.definition.id
    with _lock:
        if test_id in _refreshing:
            return
        _refreshing.add(test_id)
    try:
        if not snapshot.behind and learned.learned_version(test_id) == snapshot.version:
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
