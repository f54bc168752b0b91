"""Reading a Test's sufficient statistics into the arrays the policy works on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from bandit.policy import LearnedStats
from bandit.state import keys
from core.redis_client import connection, guarded


@dataclass(frozen=True)
class Learned:
    stats: LearnedStats
    version: str | None  # changes whenever a reward is counted
    rollout: int | None  # the rolled-out variant when this was read


@guarded
def learned_version(test_id: str) -> str | None:
    """A cheap token that changes whenever a reward is counted (the reward total)."""
    # bytes: the connection does not decode responses (redis-py's hints also allow str).
    value = cast(bytes | None, connection().hget(keys.learn(test_id), "u"))
    return value.decode() if value is not None else None


@guarded
def load_learned(test_id: str, variant_ids: list[int]) -> Learned:
    """Read a Test's sufficient statistics into arrays for the policy, and its rollout (one
    round trip)."""
    pipe = connection().pipeline(transaction=False)
    pipe.hgetall(keys.learn(test_id))
    pipe.hgetall(keys.vocab(test_id))
    pipe.hget(keys.meta(test_id), "rollout")
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
        elif kind in ("c", "b", "n", "y"):
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
        for row, i, j, value in pairs:
            xtx[row, i, j] = xtx[row, j, i] = value
        # A feature's rewards at value 1 are counted (n) and summed (y) only (see keys):
        # each adds 1 to its sum of x and of x * x, and its reward to its sum of x * reward.
        for kind, row, i, value in vectors:
            if kind in ("c", "n"):
                xtx[row, 0, i] += value
                xtx[row, i, 0] = xtx[row, 0, i]
                if kind == "n":
                    xtx[row, i, i] += value
            else:
                xty[row, i] += value
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
