"""Storing a decision: one script stores its context, counts it and honours a rollout."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings

from bandit.metrics import FEATURE_OVERFLOW
from bandit.state import keys, log
from core.observability.metrics import count
from core.redis_client import guarded
from core.scripts import Guard, beside

_DECIDE = beside(__file__, "decide.lua")


@dataclass(frozen=True)
class Decision:
    variant_id: int
    is_global_rollout: bool
    replayed: bool  # the request id already named a decision; this is that decision
    learned_version: str | None  # the Test's reward count now (see learned.learned_version)
    ranking: list[int] | None = None  # a ranked decision's variants, best first
    # The probability with which the variant answered was chosen (None: a decision stored
    # before propensities were, replayed), and whether it was a holdout decision.
    propensity: float | None = None
    holdout: bool = False


@guarded
def record_decision(
    test_id: str,
    *,
    guard: Guard | None,
    variant_id: int,
    exploit: bool,
    propensity: float,
    holdout: bool,
    request_id: str,
    context: Mapping[str, Any],
    learning: str,
    context_keys: Sequence[str],
    features: Mapping[str, float],
    context_ttl_seconds: int,
    trail_window_seconds: int,
    trail_granularity_seconds: int,
    definition_version: int = 0,
    unit_id: str | None = None,
    eligible_ids: Sequence[int] | None = None,
    ranking: Sequence[int] | None = None,
) -> Decision:
    """One round trip: store the decision and its context (the context's keys and features,
    which are what its reward will teach), count it, honour a rollout, and
    tell the Test's reward count, so the worker learns for free whether its snapshot is behind.
    `unit_id` names the visitor for a Test's sticky assignment, and `eligible_ids` the
    variants this decision may serve (decide.lua). With a `ranking` (best first, the first
    being `variant_id`), the decision is a ranked one and answers its ranking as stored.
    `propensity` and `holdout` say how the worker chose `variant_id`; a decision that serves
    another one (a rollout, a unit's assignment, a replay) answers that one's. The decision
    goes into the Test's decision log with its `context` and `learning` settings (JSON).

    Raises ConfigMoved, having written nothing, when the guard finds the worker's configuration
    stale; DefinitionMoved, having written nothing, when the Test's variants changed since
    `definition_version`; and TestMissing when Redis has no state for the Test.
    """
    now = time.time()
    script_keys = [
        keys.meta(test_id),
        keys.stats(test_id),
        keys.vocab(test_id),
        keys.analysis(test_id),
        keys.context(test_id, request_id),
        keys.trail(test_id, "tp", keys.bucket(now, trail_granularity_seconds)),
        keys.learn(test_id),
        keys.due(test_id),
        keys.unit(test_id, unit_id or ""),
        keys.units(test_id),
        keys.log(test_id),
    ]
    args = [
        repr(float(propensity)),
        "1" if holdout else "0",
        log.backlog(),
        orjson.dumps(context),
        learning,
        definition_version,
        unit_id or "",
        "" if eligible_ids is None else "," + ",".join(map(str, eligible_ids)) + ",",
        settings.SCOUT_MAX_STICKY_UNITS,
        "" if ranking is None else ",".join(map(str, ranking)),
        variant_id,
        "exploit" if exploit else "explore",
        f"{now:.6f}",
        context_ttl_seconds,
        trail_window_seconds + trail_granularity_seconds,
        settings.SCOUT_MAX_FEATURES,
        len(context_keys),
        *context_keys,
    ]
    for name, value in features.items():
        args += [name, repr(float(value))]
    variant, rollout, replayed, overflow, learned, ranked, chosen_with, held_out = _DECIDE(
        script_keys, args, guard
    )
    if variant == -1:
        raise keys.TestMissing(test_id)
    if variant == -3:
        raise keys.DefinitionMoved(test_id)
    log.appended(test_id)
    if overflow:
        count(FEATURE_OVERFLOW, amount=overflow)
    version = learned.decode() if isinstance(learned, bytes) else None  # Lua false: none yet
    order = [int(v) for v in ranked.decode().split(",")] if isinstance(ranked, bytes) else None
    return Decision(
        int(variant),
        bool(rollout),
        bool(replayed),
        version,
        order,
        float(chosen_with) if chosen_with else None,
        held_out == b"1",
    )
