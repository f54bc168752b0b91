"""Rewards: the decisions they name, and one script that counts a batch atomically."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from django.conf import settings

from bandit.metrics import FEATURE_OVERFLOW
from bandit.state import keys
from core.redis_client import connection, guarded
from core.scripts import Guard, beside

_REWARD = beside(__file__, "reward.lua")

APPLIED, DUPLICATE = 1, 2


@dataclass(frozen=True)
class Reward:
    """One reward to count, already validated and resolved to a variant and its features."""

    variant_id: int
    reward: float
    request_id: str | None
    features: dict[str, float]
    context_keys: Sequence[str]


@dataclass(frozen=True)
class StoredDecision:
    """What Redis keeps of a decision under its request id."""

    variant_id: int
    context_json: str  # "" for an empty context
    rewarded: bool  # its reward was counted (the context is then gone)

    @classmethod
    def parse(cls, value: str) -> StoredDecision:
        variant, _, rest = value.partition("|")
        return cls(int(variant), "" if rest == "r" else rest, rest == "r")


@guarded
def stored_decisions(test_id: str, request_ids: Sequence[str]) -> list[StoredDecision | None]:
    """The stored decision of each request id (None when unknown or expired)."""
    if not request_ids:
        return []
    # bytes: the connection does not decode responses (redis-py's hints also allow str).
    values = cast(
        list[bytes | None], connection().mget([keys.context(test_id, rid) for rid in request_ids])
    )
    return [StoredDecision.parse(value.decode()) if value is not None else None for value in values]


@guarded
def record_rewards(
    test_id: str,
    rewards: Sequence[Reward],
    *,
    guard: Guard | None,
    context_ttl_seconds: int,
    trail_window_seconds: int,
    trail_granularity_seconds: int,
) -> list[int]:
    """Apply a batch of rewards atomically; answer APPLIED or DUPLICATE per reward.

    Raises ConfigMoved, having written nothing, when the guard finds the worker's configuration
    stale, and TestMissing when Redis has no state for the Test.
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
            context_keys.append(keys.context(test_id, reward.request_id))
            args.append(len(context_keys))
        else:
            args.append(0)
        args += [reward.variant_id, repr(float(reward.reward)), len(reward.features)]
        for name, value in reward.features.items():
            args += [name, repr(float(value))]
        args.append(len(reward.context_keys))
        args += list(reward.context_keys)
    script_keys = [
        keys.meta(test_id),
        keys.learn(test_id),
        keys.vocab(test_id),
        keys.analysis(test_id),
        keys.trail(test_id, "tu", keys.bucket(now, trail_granularity_seconds)),
        *context_keys,
        keys.stats(test_id),
    ]
    results = _REWARD(script_keys, args, guard)
    if results == [-1]:
        raise keys.TestMissing(test_id)
    *statuses, overflow = results  # the script appends the features it had to ignore
    if overflow:
        FEATURE_OVERFLOW.inc(overflow)
    return [int(status) for status in statuses]
