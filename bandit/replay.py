"""Learning settings replayed on a Test's decision log: how each choice of `sampling`, `prior`
and `forgetting` would have chosen on the Test's own traffic, for bandit.evaluation to
estimate what it would have earned.

A replay goes through the logged decisions oldest first and learns from each one's reward as
if it came at the end of its block: the log is cut into at most BLOCKS blocks, and for each
block the setting's posterior is built from the rewards of the blocks before it; its
probability of choosing each variant there (policy.choice_probabilities, with the Test's
minimum rewards and minimum share) is what the estimators weigh the block's decisions by.
It learns from the rewards the Test's own policy collected, as replay does: a setting that
would have explored elsewhere learns what the log shows.

What a replay learns is kept as Scout keeps it (`Evidence`): every reward, each variant's
recent rewards as the reward script weighs them, and what a detected change made a variant
forget, checked between blocks (policy.ON_CHANGE; Scout checks whenever a worker rebuilds its
snapshot, so a replay acts on a change up to a block later). A Test that learns from a
context is replayed on each decision's own context (policy.contextual_choice_probabilities,
CONTEXTUAL_DRAWS draws per decision); such a model has no prior to choose and does not
forget, so settings that differ only there choose alike (`alike_key`).
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
# Draws per decision of a contextual replay, whose contexts seldom repeat: each decision's
# probability has a standard error of at most 0.5 / sqrt(127) = 0.044, which averages out over
# a log's decisions, at a quarter of the cost of a served decision's PROPENSITY_DRAWS.
CONTEXTUAL_DRAWS = 127
# A fixed seed keeps the estimates still between two reads of the same log.
SEED = 20261203


@dataclass(frozen=True)
class Contexts:
    """Each logged decision's context as a dense feature vector (bias first): the distinct
    ones (u, dims) and which of them each decision had (n,), since contexts repeat."""

    distinct: np.ndarray
    of_decision: np.ndarray

    @property
    def dims(self) -> int:
        return int(self.distinct.shape[1])

    def of(self, decisions: slice) -> np.ndarray:
        return self.distinct[self.of_decision[decisions]]


@dataclass(frozen=True)
class Setting:
    sampling: str
    prior: str
    forgetting: str


def describe(alike: list[Setting]) -> str:
    """Settings that choose alike, in words."""
    samplings = sorted({s.sampling for s in alike}, key=policy.SAMPLING_RULES.index)
    priors = sorted({s.prior for s in alike}, key=policy.PRIORS.index)
    forgetting = sorted({s.forgetting for s in alike}, key=policy.FORGETTING.index)
    return (
        f"Sampling {' or '.join(samplings)}, {' or '.join(priors)} prior, forgetting "
        f"{' or '.join(forgetting)}, replayed on the log"
        + (" (they choose alike here)." if len(alike) > 1 else ".")
    )


def settings() -> list[Setting]:
    """Every combination of the learning settings that are replayed."""
    return [
        Setting(sampling, prior, forgetting)
        for sampling in policy.SAMPLING_RULES
        for prior in policy.PRIORS
        for forgetting in policy.FORGETTING
    ]


def alike_key(setting: Setting, contextual: bool) -> tuple[str, ...]:
    """Settings with the same key choose alike by construction, and need one replay: a
    contextual model has no prior (policy.build_posterior) and never forgets
    (policy.changed_variants)."""
    if contextual:
        return (setting.sampling,)
    return (setting.sampling, setting.prior, setting.forgetting)


class Evidence:
    """What a replayed setting has learned so far, kept as Scout keeps it in Redis: the sums of
    every reward taught, what detected changes made variants forget, each variant's recent
    rewards (policy.Recent, as the reward script weighs them) and, for a contextual Test, the
    regression's sums."""

    def __init__(self, variants: list[int], dims: int, forgetting: str) -> None:
        k = len(variants)
        self.variants = variants
        self.updates, self.sums, self.squares = np.zeros(k), np.zeros(k), np.zeros(k)
        self.forgot = np.zeros((3, k))  # updates, sums and squares no longer used
        self.non_binary = 0
        self.xtx = np.zeros((k, dims, dims)) if dims else None
        self.xty = np.zeros((k, dims)) if dims else None
        forgets = forgetting == policy.ON_CHANGE and not dims
        self.recent = policy.Recent.empty(k) if forgets else None

    def stats(self) -> policy.LearnedStats:
        """The statistics a snapshot would read now, after acting on any change they show."""
        stats = self._read()
        changed = policy.changed_variants(stats) if self.recent is not None else []
        if changed:
            assert self.recent is not None
            policy.forget_before_change(stats, changed)
            used = np.stack([stats.updates, stats.reward_sum, stats.reward_sq_sum])
            self.forgot = np.stack([self.updates, self.sums, self.squares]) - used
            self.recent.changes[changed] += 1
            stats = self._read()
        return stats

    def _read(self) -> policy.LearnedStats:
        recent = self.recent
        return policy.LearnedStats(
            self.variants,
            self.updates - self.forgot[0],
            self.sums - self.forgot[1],
            self.squares - self.forgot[2],
            non_binary_rewards=self.non_binary,
            xtx=None if self.xtx is None else self.xtx.copy(),
            xty=None if self.xty is None else self.xty.copy(),
            recent=None
            if recent is None
            else policy.Recent(
                recent.weight.copy(),
                recent.reward_sum.copy(),
                recent.reward_sq_sum.copy(),
                recent.weight_sq.copy(),
                recent.changes.copy(),
            ),
            forgotten_updates=float(self.forgot[0].sum()),
        )

    def learn(self, chosen: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        """Count a block's rewards in order (`chosen`: variant positions, -1 teaches nothing;
        `contexts`: the block's dense feature vectors, for a contextual Test)."""
        taught = chosen >= 0
        chosen, rewards = chosen[taught], rewards[taught]
        np.add.at(self.updates, chosen, 1.0)
        np.add.at(self.sums, chosen, rewards)
        np.add.at(self.squares, chosen, rewards * rewards)
        self.non_binary += int(np.count_nonzero((rewards != 0.0) & (rewards != 1.0)))
        if self.xtx is not None and self.xty is not None and contexts is not None:
            rows = contexts[taught]
            for i in np.unique(chosen):
                mine = rows[chosen == i]
                self.xtx[i] += mine.T @ mine
                self.xty[i] += mine.T @ rewards[chosen == i]
        if self.recent is not None:
            self._learn_recent(chosen, rewards)

    def _learn_recent(self, chosen: np.ndarray, rewards: np.ndarray) -> None:
        """Each reward weighs RECENT_DECAY ** (its variant's rewards counted after it)."""
        recent, decay = self.recent, policy.RECENT_DECAY
        assert recent is not None
        for i in np.unique(chosen):
            earned = rewards[chosen == i]
            m = len(earned)
            weights = decay ** np.arange(m - 1, -1, -1, dtype=float)
            recent.weight[i] = recent.weight[i] * decay**m + weights.sum()
            recent.reward_sum[i] = recent.reward_sum[i] * decay**m + weights @ earned
            recent.reward_sq_sum[i] = recent.reward_sq_sum[i] * decay**m + weights @ earned**2
            recent.weight_sq[i] = recent.weight_sq[i] * decay ** (2 * m) + (weights**2).sum()


def probabilities(
    setting: Setting,
    variants: list[int],
    chosen: np.ndarray,
    rewards: np.ndarray,
    *,
    minimum_updates: int,
    minimum_share: float,
    contexts: Contexts | None = None,
) -> np.ndarray:
    """Per logged decision (oldest first), the replayed setting's probability of each variant
    in service (n, k). `chosen`: each decision's variant as a position among `variants` (-1
    for one no longer in service, whose reward teaches nothing here). `contexts`: for a Test
    that learns from a context, each decision's, oldest first."""
    n, k = len(rewards), len(variants)
    dims = 0 if contexts is None else contexts.dims
    answer = np.zeros((n, k))
    evidence = Evidence(variants, dims, setting.forgetting)
    block = max(MINIMUM_BLOCK, math.ceil(n / BLOCKS))
    rng = np.random.default_rng(SEED)
    for start in range(0, n, block):
        here = slice(start, start + block)
        learned = evidence.stats()
        posterior = policy.build_posterior(learned, setting.prior)
        uniform = learned.total_updates < minimum_updates
        if contexts is None:
            answer[here] = policy.choice_probabilities(
                posterior,
                {},
                rng,
                uniform=uniform,
                variants=k,
                sampling=setting.sampling,
                minimum_share=minimum_share,
            )
        else:
            assert isinstance(posterior, policy.LinearRegression)
            # Once per distinct context of the block: segments repeat, numbers seldom do.
            distinct, of_decision = np.unique(contexts.of_decision[here], return_inverse=True)
            answer[here] = policy.contextual_choice_probabilities(
                posterior,
                contexts.distinct[distinct],
                rng,
                uniform=uniform,
                sampling=setting.sampling,
                minimum_share=minimum_share,
                draws=CONTEXTUAL_DRAWS,
            )[of_decision]
        evidence.learn(chosen[here], rewards[here], None if contexts is None else contexts.of(here))
    return answer
