"""Where a Test's variants stand: each one's credible interval and probability of being the
best over all visitors, and the winner, once one is found (a probability of being best of at
least SCOUT_WINNER_PROBABILITY, over at least SCOUT_WINNER_MINIMUM_REWARDS rewards)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

from bandit import policy, snapshots

# Monte Carlo draws behind the credible intervals and the probability of being best. A fixed
# seed keeps the numbers still between refreshes while nothing was learned.
DRAWS = 4000
SEED = 20240607


@dataclass(frozen=True)
class Standing:
    """Per variant in service (in the order of the snapshot's variants)."""

    low: np.ndarray
    high: np.ndarray
    probability_best: np.ndarray
    stats: policy.LearnedStats  # the evidence the model uses now


def marginal(snapshot: snapshots.Snapshot) -> tuple[policy.Posterior, policy.LearnedStats]:
    """Each variant's posterior of its mean reward over all visitors, and the statistics it
    comes from (the evidence the model uses now).

    For a contextual Test the sampler's posterior is per context; the question here is "which
    variant earns most overall", so the same sums are read without the features.
    """
    stats = dataclasses.replace(snapshot.stats, feature_index={}, xtx=None, xty=None)
    return policy.build_posterior(stats, snapshot.definition.prior), stats


def standing(snapshot: snapshots.Snapshot) -> Standing:
    posterior, stats = marginal(snapshot)
    rng = np.random.default_rng(SEED)
    low, high, wins = policy.credible_interval(posterior, {0: 1.0}, rng, draws=DRAWS)
    return Standing(low, high, wins, stats)


def winner(snapshot: snapshots.Snapshot, *, rewards: int) -> dict[str, Any] | None:
    """The variant found best, or None: too few rewards yet, or none likely enough."""
    if rewards < settings.SCOUT_WINNER_MINIMUM_REWARDS:
        return None
    wins = standing(snapshot).probability_best
    best = int(np.argmax(wins))
    if wins[best] < settings.SCOUT_WINNER_PROBABILITY:
        return None
    variant = snapshot.definition.variant_ids[best]
    return {
        "variant_id": variant,
        "variant_label": snapshot.definition.labels[variant],
        "probability_best": float(wins[best]),
        "rewards": rewards,
    }
