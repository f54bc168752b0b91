"""Learning settings replayed on a Test's decision log: how each choice of `sampling` and
`prior` would have chosen on the Test's own traffic, for bandit.evaluation to estimate what it
would have earned.

A replay goes through the logged decisions oldest first and learns from each one's reward as
if it came at the end of its block: the log is cut into at most BLOCKS blocks, and for each
block the setting's posterior is built from the rewards of the blocks before it; its
probability of choosing each variant there (policy.choice_probabilities, with the Test's
minimum rewards and minimum share) is what the estimators weigh the block's decisions by.
It learns from the rewards the Test's own policy collected, as replay does: a setting that
would have explored elsewhere learns what the log shows. Forgetting is not replayed (every
replay keeps every reward). Tests with a context are not replayed: their probabilities depend
on each decision's context, a posterior projection per decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bandit import policy

# Posteriors built per replay, at most, whatever the log's size; a block holds at least
# MINIMUM_BLOCK decisions.
BLOCKS = 100
MINIMUM_BLOCK = 50
# A fixed seed keeps the estimates still between two reads of the same log.
SEED = 20261203


@dataclass(frozen=True)
class Setting:
    sampling: str
    prior: str


def describe(alike: list[Setting]) -> str:
    """Settings that choose alike, in words."""
    samplings = sorted({s.sampling for s in alike}, key=policy.SAMPLING_RULES.index)
    priors = sorted({s.prior for s in alike}, key=policy.PRIORS.index)
    return (
        f"Sampling {' or '.join(samplings)}, {' or '.join(priors)} prior, replayed on the log"
        + (" (they choose alike here)." if len(alike) > 1 else ".")
    )


def settings() -> list[Setting]:
    """Every combination of the learning settings that are replayed."""
    return [
        Setting(sampling, prior) for sampling in policy.SAMPLING_RULES for prior in policy.PRIORS
    ]


def probabilities(
    setting: Setting,
    variants: list[int],
    chosen: np.ndarray,
    rewards: np.ndarray,
    *,
    minimum_updates: int,
    minimum_share: float,
) -> np.ndarray:
    """Per logged decision (oldest first), the replayed setting's probability of each variant
    in service (n, k). `chosen`: each decision's variant as a position among `variants` (-1
    for one no longer in service, whose reward teaches nothing here)."""
    n, k = len(rewards), len(variants)
    answer = np.zeros((n, k))
    updates, sums, squares = np.zeros(k), np.zeros(k), np.zeros(k)
    non_binary = 0
    block = max(MINIMUM_BLOCK, math.ceil(n / BLOCKS))
    rng = np.random.default_rng(SEED)
    for start in range(0, n, block):
        learned = policy.LearnedStats(
            variants, updates.copy(), sums.copy(), squares.copy(), non_binary_rewards=non_binary
        )
        answer[start : start + block] = policy.choice_probabilities(
            policy.build_posterior(learned, setting.prior),
            {},
            rng,
            uniform=learned.total_updates < minimum_updates,
            variants=k,
            sampling=setting.sampling,
            minimum_share=minimum_share,
        )
        taught = chosen[start : start + block]
        earned = rewards[start : start + block][taught >= 0]
        taught = taught[taught >= 0]
        np.add.at(updates, taught, 1.0)
        np.add.at(sums, taught, earned)
        np.add.at(squares, taught, earned * earned)
        non_binary += int(np.count_nonzero((earned != 0.0) & (earned != 1.0)))
    return answer
