"""The read side's view of a Test in Redis: counters, trails and the feature analysis."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from bandit.state import keys
from core.redis_client import connection, guarded


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
    forgotten: dict[int, float]  # rewards the model stopped using after a detected change
    changes: dict[int, int]  # changes detected per variant
    last_change_at: float | None
    defaults: dict[int, int]  # decisions counted with the default reward (reward windows)
    waiting: int  # decisions waiting for their reward (a Test with a reward window)
    outcomes: dict[int, int]  # rewards sent, per outcome (reward.lua's statuses)

    @property
    def total_predictions(self) -> int:
        return sum(self.predictions.values())

    @property
    def total_updates(self) -> int:
        return sum(self.updates.values())


def _counters(stats: dict[bytes, bytes], learn: dict[bytes, bytes], waiting: int) -> Counters:
    predictions: dict[int, int] = {}
    defaults: dict[int, int] = {}
    kinds: dict[str, int] = {}
    outcomes: dict[int, int] = {}
    for key, value in stats.items():
        field = key.decode()
        if field.startswith("p:"):
            predictions[int(field[2:])] = int(value)
        elif field.startswith("o:"):
            outcomes[int(field[2:])] = int(value)
        elif field.startswith("d:"):
            defaults[int(field[2:])] = int(value)
        elif field in ("exploit", "explore", "rollout"):
            kinds[field] = int(value)
    updates: dict[int, int] = {}
    sums: dict[int, float] = {}
    forgotten: dict[int, float] = {}
    changes: dict[int, int] = {}
    for key, value in learn.items():
        field = key.decode()
        if field.startswith("u:"):
            updates[int(field[2:])] = int(float(value))
        elif field.startswith("s:"):
            sums[int(field[2:])] = float(value)
        elif field.startswith("fu:"):
            forgotten[int(field[3:])] = float(value)
        elif field.startswith("k:"):
            changes[int(field[2:])] = int(value)
    last_prediction = stats.get(b"lp")
    last_update = learn.get(b"lu")
    last_change = learn.get(b"lk")
    return Counters(
        predictions=predictions,
        updates=updates,
        reward_sums=sums,
        last_prediction_at=float(last_prediction) if last_prediction else None,
        last_update_at=float(last_update) if last_update else None,
        kinds=kinds,
        overflow=int(stats.get(b"overflow", 0)),
        forgotten=forgotten,
        changes=changes,
        last_change_at=float(last_change) if last_change else None,
        defaults=defaults,
        waiting=waiting,
        outcomes=outcomes,
    )


@guarded
def counters(test_ids: Sequence[str]) -> dict[str, Counters]:
    """Counters of many Tests in one round trip."""
    if not test_ids:
        return {}
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        pipe.hgetall(keys.stats(test_id))
        pipe.hgetall(keys.learn(test_id))
        pipe.zcard(keys.due(test_id))
    replies = pipe.execute()
    return {test_id: _counters(*replies[3 * i : 3 * i + 3]) for i, test_id in enumerate(test_ids)}


@guarded
def reward_counts(test_ids: Sequence[str]) -> dict[str, int]:
    """Each Test's count of rewards (what `Counters.total_updates` adds up), in one round
    trip of one field per Test: what a periodic look at every Test can afford."""
    if not test_ids:
        return {}
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        pipe.hget(keys.learn(test_id), "u")
    replies = pipe.execute()
    return {
        test_id: int(float(reply)) if reply else 0
        for test_id, reply in zip(test_ids, replies, strict=True)
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
    last = keys.bucket(now, granularity_seconds)
    first = keys.bucket(now - window_seconds, granularity_seconds) + granularity_seconds
    starts = list(range(first, last + 1, granularity_seconds))
    pipe = connection().pipeline(transaction=False)
    for kind in ("tp", "tu"):
        for start in starts:
            pipe.hgetall(keys.trail(test_id, kind, start))
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
    """The vocabulary (name -> index) and the per variant, per feature counters: decisions
    `p:<v>:<i>`, rewards `u:<v>:<i>` and reward sums `s:<v>:<i>`, whatever the feature's value
    (rewards of a feature at value 1 are kept among the learned statistics, see keys)."""
    pipe = connection().pipeline(transaction=False)
    pipe.hgetall(keys.vocab(test_id))
    pipe.hgetall(keys.analysis(test_id))
    pipe.hgetall(keys.learn(test_id))
    vocab, raw_analysis, learn = pipe.execute()
    analysis = {key.decode(): float(value) for key, value in raw_analysis.items()}
    for key, value in learn.items():
        field = key.decode()
        kind, at = field[:2], field[2:]
        if kind in ("n:", "y:"):
            counter = ("u:" if kind == "n:" else "s:") + at
            analysis[counter] = analysis.get(counter, 0.0) + float(value)
    return ({key.decode(): int(value) for key, value in vocab.items()}, analysis)
