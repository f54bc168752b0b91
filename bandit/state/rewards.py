"""Rewards: one script that counts a batch atomically, finding each entry's decision itself (and
closes reward windows with the default reward, so that a decision counts exactly once), and one
that makes variants forget what they learned before a detected change."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from django.conf import settings

from bandit.metrics import FEATURE_OVERFLOW
from bandit.state import keys, log
from core.observability.metrics import count
from core.redis_client import connection, guarded
from core.scripts import Guard, beside

_REWARD = beside(__file__, "reward.lua")
_FORGET = beside(__file__, "forget.lua")

# What became of each entry (reward.lua says the same).
APPLIED = 1  # counted
DUPLICATE = 2  # its request id's reward was counted before
OTHER_VARIANT = 3  # it names another variant than the one served for its request id
APPLIED_INLINE = 4  # counted with its own context: the decision was gone (expired or unknown)
GONE_WITHOUT_CONTEXT = 5  # the decision is gone, and the entry carries no context
GONE_WITHOUT_VARIANT = 6  # the decision is gone, and the entry names no variant
LATE = 7  # the decision's reward window closed before the reward came: the default counts
DEFAULTED = 8  # (closing a window) the decision got no reward in time: the default counted
NOTHING_TO_CLOSE = 9  # (closing a window) its reward came first, or it is not due yet
RANKED_WITHOUT_VARIANT = 10  # its request id names a ranked decision: the entry must name one
NOT_RANKED = 11  # the variant it names is not in the ranking its request id names
COUNTED = frozenset({APPLIED, APPLIED_INLINE})


@dataclass(frozen=True)
class Reward:
    """One reward to count, already validated. An entry with a request id teaches what its
    stored decision holds (the variant served and its context's features); `variant_id`,
    `features` and `context_keys` are the entry's own, used without a request id, when the
    entry says so (`use_stored_context` False), or when the decision is gone and the entry
    carries a context (`inline`)."""

    variant_id: int | None
    reward: float
    request_id: str | None
    features: dict[str, float]
    context_keys: Sequence[str]
    use_stored_context: bool = True
    inline: bool = False


@dataclass(frozen=True)
class Outcome:
    status: int
    variant_id: int  # the variant counted, or served for the request id (-1: none)


@guarded
def record_rewards(
    test_id: str,
    rewards: Sequence[Reward],
    *,
    guard: Guard | None,
    context_ttl_seconds: int,
    trail_window_seconds: int,
    trail_granularity_seconds: int,
    recent_decay: float = 0.0,
    definition_version: int = 0,
) -> list[Outcome]:
    """Apply a batch of rewards atomically, in one round trip; answer each one's Outcome.

    `recent_decay` above 0 also keeps each variant's recent sums with that decay (see
    bandit.policy.ON_CHANGE).

    Raises ConfigMoved, having written nothing, when the guard finds the worker's configuration
    stale; DefinitionMoved, having written nothing, when the Test's variants changed since
    `definition_version`; NotStarted, having written nothing, when the Test waits for its
    scheduled start; and TestMissing when Redis has no state for the Test.
    """
    now = time.time()
    context_keys: list[str] = []
    args = _header(
        str(definition_version),
        now,
        context_ttl_seconds,
        trail_window_seconds + trail_granularity_seconds,
        recent_decay,
    )
    args.append(len(rewards))
    for reward in rewards:
        args.append("r")
        if reward.request_id is not None:
            context_keys.append(keys.context(test_id, reward.request_id))
            args.append(len(context_keys))
        else:
            args.append(0)
        args += [
            "" if reward.variant_id is None else reward.variant_id,
            repr(float(reward.reward)),
            int(reward.use_stored_context),
            int(reward.inline),
            len(reward.features),
        ]
        for name, value in reward.features.items():
            args += [name, repr(float(value))]
        args.append(len(reward.context_keys))
        args += list(reward.context_keys)
    return _run(test_id, now, trail_granularity_seconds, context_keys, args, guard)


def _header(
    definition_version: str,
    now: float,
    context_ttl_seconds: int,
    trail_ttl_seconds: int,
    recent_decay: float,
) -> list[object]:
    """The script's arguments before its entries (reward.lua)."""
    return [
        definition_version,
        f"{now:.6f}",
        context_ttl_seconds,
        trail_ttl_seconds,
        settings.SCOUT_MAX_FEATURES,
        repr(float(recent_decay)),
        log.backlog(),
    ]


def _run(
    test_id: str,
    now: float,
    trail_granularity_seconds: int,
    context_keys: Sequence[str],
    args: list[object],
    guard: Guard | None,
) -> list[Outcome]:
    script_keys = [
        keys.meta(test_id),
        keys.learn(test_id),
        keys.vocab(test_id),
        keys.analysis(test_id),
        keys.trail(test_id, "tu", keys.bucket(now, trail_granularity_seconds)),
        keys.due(test_id),
        keys.log(test_id),
        *context_keys,
        keys.stats(test_id),
    ]
    results = _REWARD(script_keys, args, guard)
    if results == [-1]:
        raise keys.TestMissing(test_id)
    if results == [-3]:
        raise keys.DefinitionMoved(test_id)
    if results == [-4]:
        raise keys.NotStarted(test_id)
    log.appended(test_id)
    *pairs, overflow = results  # the script appends the features it had to ignore
    if overflow:
        count(FEATURE_OVERFLOW, amount=overflow)
    return [
        Outcome(int(status), int(variant))
        for status, variant in zip(pairs[::2], pairs[1::2], strict=True)
    ]


@dataclass(frozen=True)
class Waiting:
    """A decision waiting for its reward (a Test with a reward window)."""

    variant_id: int
    request_id: str


@guarded
def due_decisions(test_id: str, limit: int) -> tuple[list[Waiting], float | None]:
    """Up to `limit` decisions of the Test whose reward window has closed by this host's
    clock (the script that closes them checks again by the clock of Redis), and when the
    first window of the rest closes (None: no decision waits). One round trip."""
    now = f"{time.time():.6f}"
    pipe = connection().pipeline(transaction=False)
    pipe.zrangebyscore(keys.due(test_id), "-inf", now, start=0, num=limit)
    pipe.zrangebyscore(keys.due(test_id), f"({now}", "+inf", start=0, num=1, withscores=True)
    members, following = pipe.execute()
    due = []
    for member in members:
        variant, _, request_id = member.decode().partition("|")
        due.append(Waiting(int(variant), request_id))
    return due, (float(following[0][1]) if following else None)


@guarded
def close_windows(
    test_id: str,
    waiting: Sequence[Waiting],
    *,
    context_ttl_seconds: int,
    trail_window_seconds: int,
    trail_granularity_seconds: int,
    recent_decay: float = 0.0,
) -> list[Outcome]:
    """Count each of these decisions once with the Test's default reward, unless its reward
    was counted first or its window is not closed yet (reward.lua); answer each one's Outcome
    (DEFAULTED or NOTHING_TO_CLOSE)."""
    now = time.time()
    args = _header(
        "", now, context_ttl_seconds, trail_window_seconds + trail_granularity_seconds, recent_decay
    )
    args.append(len(waiting))
    context_keys = []
    for decision in waiting:
        context_keys.append(keys.context(test_id, decision.request_id))
        args += ["c", len(context_keys), decision.variant_id, "0", 1, 0, 0, 0]
    return _run(test_id, now, trail_granularity_seconds, context_keys, args, None)


@guarded
def forget(test_id: str, changed: Sequence[tuple[int, int]]) -> int:
    """Make each variant of `changed` (its id, and the changes detected for it so far as the
    caller read them) forget what it learned before its recent rewards (forget.lua); a
    variant whose change another worker acted on first is left. Answers how many forgot."""
    args: list[object] = [f"{time.time():.6f}"]
    for variant_id, changes in changed:
        args += [variant_id, changes]
    forgot = cast(int, _FORGET([keys.learn(test_id)], args))  # the script answers a number
    return int(forgot)
