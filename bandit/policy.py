"""Thompson sampling, as pure numpy: no Django, no Redis, unit-testable alone.

Everything the policy needs is a set of additive sufficient statistics per variant (counts,
sums, sums of squares and, for contextual Tests, X^T X and X^T y over an encoded context). Sums
are what make lock-free learning across workers possible: each reward adds to them atomically in
Redis, and every worker rebuilds its posterior from the same sums.

Models:
- Non-contextual, 0/1 rewards: Beta-Bernoulli, with a prior centred on the Test's pooled rate
  (POOLED) or Beta(1, 1) (FLAT).
- Non-contextual, real-valued rewards: Normal with an unknown mean per variant
  (Normal-Inverse-Gamma prior).
- Contextual: Bayesian linear regression per variant over a bias plus the encoded context, with
  a Normal-Inverse-Gamma prior and the full posterior covariance. For one decision only the
  predicted reward x^T beta matters, whose posterior is a scaled Student-t; we draw it directly
  instead of drawing all of beta.

Both Normal models give the variants one noise variance, learned from all of them. With a
variance per variant, a variant whose first rewards were all 0 (no click yet, no purchase yet)
estimates its noise as nearly 0, its posterior collapses onto its low mean and it is never
tried again: in a two-colour simulation, one seed in 32 stayed on the worse variant for all
10,000 decisions. The noise of a reward is a property of what is measured, shared by variants.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# Priors. Rewards on any scale work: the data dominate after a handful of observations.
NIG_MEAN = 0.0  # prior mean of a variant's reward (non-contextual, real-valued)
NIG_KAPPA = 1.0  # weight of that prior mean, in observations
NIG_ALPHA = 1.0  # shape of the Inverse-Gamma prior on the noise variance
NIG_BETA = 0.25  # scale of that prior (0.25 is the largest variance of a 0/1 reward)
RIDGE = 1.0  # precision of the prior on each regression weight (in units of the noise)

ContextValue = str | int | float | bool | None


def feature_name(key: str, value: ContextValue) -> tuple[str, float] | None:
    """Encode one context entry as (feature name, value), or None when it carries nothing.

    Strings and booleans are one-hot ("colour is red" is a feature of its own, with value 1);
    numbers are used as they are. Names are JSON so that no key or value can collide with
    another: ["colour", "red"] for a category, ["age"] for a number.
    """
    if value is None:
        return None
    if isinstance(value, bool | str):
        return _category_name(key, value), 1.0
    return _number_name(key), float(value)


# Contexts repeat (a few keys, a few values each), and every decision encodes each of its
# entries: remembering the names spares a JSON encoding per entry. `typed` keeps True and 1
# apart. Bounded, so a stream of distinct values cannot grow a worker's memory.
@functools.lru_cache(maxsize=4096, typed=True)
def _category_name(key: str, value: str | bool) -> str:
    return json.dumps([key, value], ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=1024)
def _number_name(key: str) -> str:
    return json.dumps([key], ensure_ascii=False, separators=(",", ":"))


def encode_context(context: Mapping[str, ContextValue] | None) -> dict[str, float]:
    """All features of a context, by name. Any key counts, whatever it is called."""
    features: dict[str, float] = {}
    for key, value in (context or {}).items():
        encoded = feature_name(key, value)
        if encoded is not None:
            features[encoded[0]] = encoded[1]
    return features


@dataclass
class LearnedStats:
    """The sufficient statistics of one Test, as read from Redis.

    `xtx[v]` and `xty[v]` are over the feature vector [1 (bias), x_1, ..., x_{d-1}], where feature
    `i` is named by `feature_index`; they are None for a Test that never saw a context.
    `updates`, `reward_sum` and `reward_sq_sum` are the evidence the model uses: all of a
    variant's rewards, less what a detected change made it forget (see ON_CHANGE).
    """

    variant_ids: list[int]
    updates: np.ndarray
    reward_sum: np.ndarray
    reward_sq_sum: np.ndarray
    non_binary_rewards: int = 0
    feature_index: dict[str, int] = field(default_factory=dict)
    xtx: np.ndarray | None = None
    xty: np.ndarray | None = None
    recent: Recent | None = None  # kept for Tests that forget on a change (ON_CHANGE)
    forgotten_updates: float = 0.0  # rewards counted that the model no longer uses

    @functools.cached_property
    def total_updates(self) -> int:
        """Every reward counted, forgotten or not: what the uniform start waits for. Asked by
        every decision; the statistics of a snapshot never change once read."""
        return round(float(self.updates.sum()) + self.forgotten_updates)

    @property
    def contextual(self) -> bool:
        return self.xtx is not None

    @classmethod
    def empty(cls, variant_ids: list[int]) -> LearnedStats:
        zeros = np.zeros(len(variant_ids))
        return cls(variant_ids, zeros.copy(), zeros.copy(), zeros.copy())


@dataclass
class Recent:
    """Each variant's recent rewards, every reward weighing RECENT_DECAY ** (the number of
    the variant's rewards counted after it): the weights' sum, the weighted sums of rewards and
    of squared rewards, and the sum of the squared weights (for the effective sample size)."""

    weight: np.ndarray
    reward_sum: np.ndarray
    reward_sq_sum: np.ndarray
    weight_sq: np.ndarray
    changes: np.ndarray  # how many changes were detected per variant

    @classmethod
    def empty(cls, variants: int) -> Recent:
        return cls(*(np.zeros(variants) for _ in range(5)))


# Up to this many variants, Gamma draws are taken one by one: numpy's array form costs a fixed
# ~20 us a call, several times what a few scalar draws cost on a decision's hot path.
SCALAR_DRAWS_UP_TO = 6


def standard_gamma(shapes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One Gamma(shape, 1) draw per element."""
    if len(shapes) <= SCALAR_DRAWS_UP_TO:
        return np.array([rng.standard_gamma(shape) for shape in shapes.tolist()])
    return rng.standard_gamma(shapes)


class Posterior:
    """The posterior over each variant's expected reward, for a given context."""

    def sample(self, x: dict[int, float], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def mean(self, x: dict[int, float]) -> np.ndarray:
        raise NotImplementedError

    def sample_and_mean(
        self, x: dict[int, float], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """One draw and the posterior mean, which every decision needs together."""
        return self.sample(x, rng), self.mean(x)

    def sample_many(self, x: dict[int, float], rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` independent draws at once, one row each: what a decision's propensity is
        estimated from (see `propensity`)."""
        return np.stack([self.sample(x, rng) for _ in range(n)])


# The prior of a 0/1 reward's rate (Beta-Bernoulli).
#
# FLAT is Beta(1, 1): every rate equally likely. Where rates are low (clicks, purchases: a few
# percent), it holds every variant near 50% until it has failed a dozen times or more, and with
# many variants that is most of a Test's traffic: with 50 variants whose rates lie between 1%
# and 6%, 5,000 decisions spent four fifths of what choosing at random spends (110 and 134).
# POOLED centres the prior on the rate of the whole Test (every variant's rewards pooled, plus
# one success and one failure), as flat as a Beta with that mean can be: both parameters at
# least 1, so that its density has no peak at 0 or 1 and a variant that was unlucky early is
# not written off. For a pooled rate m below one half that is Beta(1, (1 - m) / m), worth 1/m
# observations, of which one a success; above one half its mirror image. How much the other
# variants say about one of them grows with their number (an empirical-Bayes estimate of the
# prior from three variants is mostly noise), so the prior moves from FLAT towards the pooled
# one by the weight 1 - FEW_VARIANTS / k: FLAT up to three variants, 94% pooled with 50.
# Centred fully on the pooled rate, three variants with rates of 10, 12 and 15% kept the
# wrong one for most of 5,000 decisions in 2 runs of 128 (the worst spent 161 where the flat
# prior's worst spent 68).
FEW_VARIANTS = 3
POOLED = "pooled"
FLAT = "flat"
PRIORS = (POOLED, FLAT)


def pooled_beta_prior(stats: LearnedStats) -> tuple[float, float]:
    """The POOLED prior's Beta(a, b) for a Test's statistics."""
    rate = (float(stats.reward_sum.sum()) + 1.0) / (float(stats.updates.sum()) + 2.0)
    pooled_a, pooled_b = max(1.0, rate / (1.0 - rate)), max(1.0, (1.0 - rate) / rate)
    weight = max(0.0, 1.0 - FEW_VARIANTS / len(stats.updates))
    return 1.0 + weight * (pooled_a - 1.0), 1.0 + weight * (pooled_b - 1.0)


class BetaBernoulli(Posterior):
    def __init__(self, stats: LearnedStats, prior: str = POOLED) -> None:
        prior_alpha, prior_beta = pooled_beta_prior(stats) if prior == POOLED else (1.0, 1.0)
        self.alpha = prior_alpha + stats.reward_sum
        self.beta = prior_beta + stats.updates - stats.reward_sum

    def sample(self, x: dict[int, float], rng: np.random.Generator) -> np.ndarray:
        # Beta(a, b) is X / (X + Y) for X ~ Gamma(a), Y ~ Gamma(b): one cheap batch of draws.
        draws = standard_gamma(np.concatenate([self.alpha, self.beta]), rng)
        x_draws = draws[: len(self.alpha)]
        return x_draws / (x_draws + draws[len(self.alpha) :])

    def mean(self, x: dict[int, float]) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)

    def sample_many(self, x: dict[int, float], rng: np.random.Generator, n: int) -> np.ndarray:
        draws = rng.standard_gamma(
            np.concatenate([self.alpha, self.beta]), size=(n, 2 * len(self.alpha))
        )
        x_draws = draws[:, : len(self.alpha)]
        return x_draws / (x_draws + draws[:, len(self.alpha) :])


class NormalInverseGamma(Posterior):
    """An unknown mean per variant and one unknown noise variance sigma^2 for all of them.

    Prior: mean_v | sigma^2 ~ N(NIG_MEAN, sigma^2 / NIG_KAPPA), sigma^2 ~ IG(NIG_ALPHA, NIG_BETA).
    The posterior of sigma^2 is IG(alpha, beta) with every variant's evidence summed in.
    """

    def __init__(self, stats: LearnedStats) -> None:
        n = stats.updates
        mean_y = np.divide(stats.reward_sum, n, out=np.zeros_like(n), where=n > 0)
        spread = np.maximum(stats.reward_sq_sum - n * mean_y**2, 0.0)
        self.kappa = NIG_KAPPA + n
        self.mu = (NIG_KAPPA * NIG_MEAN + stats.reward_sum) / self.kappa
        self.alpha = NIG_ALPHA + n.sum() / 2.0
        self.beta = NIG_BETA + float(
            np.sum(0.5 * spread + NIG_KAPPA * n * (mean_y - NIG_MEAN) ** 2 / (2.0 * self.kappa))
        )

    def sample(self, x: dict[int, float], rng: np.random.Generator) -> np.ndarray:
        variance = self.beta / rng.standard_gamma(self.alpha)  # sigma^2 ~ IG(alpha, beta)
        return self.mu + np.sqrt(variance / self.kappa) * rng.standard_normal(len(self.mu))

    def mean(self, x: dict[int, float]) -> np.ndarray:
        return self.mu

    def sample_many(self, x: dict[int, float], rng: np.random.Generator, n: int) -> np.ndarray:
        variance = self.beta / rng.standard_gamma(self.alpha, size=(n, 1))
        return self.mu + np.sqrt(variance / self.kappa) * rng.standard_normal((n, len(self.mu)))


# Measured and not kept: exploring a contextual variant in full at its typical visitor (its
# mean context) and what the context changes beyond it at a share of the posterior's variance.
# With five numeric features and a segment it cut the regret from 72.8 to 52.4 (a share of
# 0.1; MABWiser's LinTS spends 50.2), but where a category decides which variant wins (two
# colours, each variant better for one, real-valued rewards) a run locked onto the wrong
# variant for one colour and spent 758 where the full posterior's worst run spends 66:
# categories repeat, so no visitor tries a variant where it looks worse for free. Keeping the
# full width beyond ten or twenty times the typical spread did not stop it; shrinking only the
# numeric features gave 59.3 (benchmarks/quality.py, 24 runs of 5,000 decisions each).
class LinearRegression(Posterior):
    """Bayesian linear regression per variant with a Normal-Inverse-Gamma prior.

    Prior: beta_v | s2 ~ N(0, s2 / RIDGE * I), s2 ~ IG(NIG_ALPHA, NIG_BETA), one s2 for all
    variants. With A_v = RIDGE * I + X_v^T X_v and m_v = A_v^-1 X_v^T y_v, the posterior is
    beta_v | s2 ~ N(m_v, s2 A_v^-1) and
    s2 ~ IG(NIG_ALPHA + sum_v n_v / 2, NIG_BETA + sum_v (y_v^T y_v - m_v^T A_v m_v) / 2).
    """

    def __init__(self, stats: LearnedStats) -> None:
        assert stats.xtx is not None and stats.xty is not None
        dims = stats.xtx.shape[1]
        precision = stats.xtx + RIDGE * np.eye(dims)
        self.covariance = np.linalg.inv(precision)
        self.weights = np.einsum("vij,vj->vi", self.covariance, stats.xty)
        fitted = np.einsum("vi,vi->v", self.weights, stats.xty)  # m^T A m == m^T X^T y
        self.alpha = NIG_ALPHA + stats.updates.sum() / 2.0
        self.beta = NIG_BETA + 0.5 * float(np.maximum(stats.reward_sq_sum - fitted, 0.0).sum())

    def _project(self, x: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
        index = np.array(list(x), dtype=np.intp)
        values = np.array(list(x.values()), dtype=float)
        mean = self.weights.take(index, axis=1) @ values
        # Each variant's block of A^-1 for x's features (take: the cheapest gather here).
        cov = self.covariance.take(index, axis=1).take(index, axis=2)
        spread = (cov @ values) @ values  # x^T A^-1 x per variant
        return mean, spread

    def sample(self, x: dict[int, float], rng: np.random.Generator) -> np.ndarray:
        return self.sample_and_mean(x, rng)[0]

    def mean(self, x: dict[int, float]) -> np.ndarray:
        return self._project(x)[0]

    def sample_and_mean(
        self, x: dict[int, float], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        # One projection serves both: it is most of a contextual decision's numpy time.
        mean, spread = self._project(x)
        variance = self.beta / rng.standard_gamma(self.alpha)
        return mean + np.sqrt(variance * spread) * rng.standard_normal(len(mean)), mean

    def sample_many(self, x: dict[int, float], rng: np.random.Generator, n: int) -> np.ndarray:
        mean, spread = self._project(x)
        variance = self.beta / rng.standard_gamma(self.alpha, size=(n, 1))
        return mean + np.sqrt(variance * spread) * rng.standard_normal((n, len(mean)))

    def means_at(self, contexts: np.ndarray) -> np.ndarray:
        """Each variant's posterior mean for each row of `contexts` (m, dims: dense feature
        vectors, bias first), as (m, variants)."""
        return contexts @ self.weights.T

    def sample_many_at(self, contexts: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` independent draws for each row of `contexts`, as (m, n, variants): for each
        context, what `sample_many` gives. The contexts share the underlying random numbers
        (a draw is the mean plus the context's spread times one standard normal per variant),
        which keeps each context's draws exact and costs one batch of random numbers for all."""
        mean = self.means_at(contexts)
        spread = np.einsum("md,vde,me->mv", contexts, self.covariance, contexts, optimize=True)
        variance = self.beta / rng.standard_gamma(self.alpha, size=(n, 1))
        normal = np.sqrt(variance) * rng.standard_normal((n, mean.shape[1]))
        return mean[:, None, :] + np.sqrt(spread)[:, None, :] * normal[None, :, :]


def build_posterior(stats: LearnedStats, prior: str = POOLED) -> Posterior:
    """Pick the model the data call for: contextual once a context was learned from, else Beta
    for 0/1 rewards (with `prior`, see POOLED) and Normal-Inverse-Gamma as soon as one reward
    is anything else."""
    if stats.contextual:
        return LinearRegression(stats)
    if stats.non_binary_rewards:
        return NormalInverseGamma(stats)
    return BetaBernoulli(stats, prior)


def feature_vector(features: Mapping[str, float], index: Mapping[str, int]) -> dict[int, float]:
    """The sparse vector [bias, features known to the model]; unknown features are ignored."""
    vector = {0: 1.0}
    for name, value in features.items():
        position = index.get(name)
        if position is not None:
            vector[position] = value
    return vector


# How a decision's draws are used.
#
# STANDARD is textbook Thompson sampling: one draw from each variant's posterior, the highest
# wins. Its regret has a heavy tail: when the best variant is unlucky early, or a worse one
# lucky, a draw below a variant's own posterior mean keeps the wrong variant ahead for long
# stretches (with rewards counted after every decision, in a three-variant Test with click
# rates of 10, 12 and 15%, 3 runs in 24 spent 120 to 160 clicks where the median spent 25).
# OPTIMISTIC takes each draw or its variant's posterior mean, whichever is higher (optimistic
# Bayesian sampling, May et al., JMLR 2012): a draw only ever adds the posterior's upside, so
# what is uncertain is explored and what is known is never sampled below its estimate. Over 48
# simulated runs each, with 50 rewards before sampling starts, it cut the regret of the three-
# variant Test from 28.4 to 24.0 (the worst run from 66 to 56), of real-valued rewards by two
# colours from 48.5 to 40.8 and of three categorical features from 73.3 to 65.8; over 20,000
# decisions on noisy Tests (4% against 5%) it spent the same as standard sampling (17.6 and
# 17.9), so it does not trade exploration away (benchmarks/quality.py; the README).
# FOCUSED is OPTIMISTIC for up to FEW_VARIANTS variants. With k more, each variant takes its
# optimistic draw with probability FEW_VARIANTS / k and its posterior mean otherwise, so that
# about three variants compete by their draws in a decision and the rest by their estimates
# (epsilon-exploring Thompson sampling, Jin et al., ICML 2023, shown optimal with a share of
# 1/k). The best of k draws grows with k: with every variant drawing, 50 variants kept
# exploring each other for as long as 5,000 decisions lasted. The paper's share of 1/k was
# measured too, and 1.5/k: less regret with 50 variants, but with two variants (a share of
# 1/2) a noisy Test sometimes stayed on the worse one for 20,000 decisions, and with five the
# tail grew.
OPTIMISTIC = "optimistic"
STANDARD = "standard"
FOCUSED = "focused"
SAMPLING_RULES = (FOCUSED, OPTIMISTIC, STANDARD)


@dataclass(frozen=True)
class Choice:
    index: int  # position in LearnedStats.variant_ids
    exploit: bool  # the choice is also the variant with the best posterior mean


@dataclass(frozen=True)
class Ranking:
    order: list[int]  # positions in LearnedStats.variant_ids, best first
    exploit: bool  # the first is also the variant with the best posterior mean


def choose(
    posterior: Posterior,
    x: dict[int, float],
    rng: np.random.Generator,
    *,
    uniform: bool,
    variants: int,
    sampling: str = FOCUSED,
    among: Sequence[int] | None = None,
    minimum_share: float = 0.0,
) -> Choice:
    """Thompson sampling: draw each variant's reward from its posterior and take the best.

    While `uniform` (too few rewards yet), every variant is equally likely. `sampling` says
    how a draw is used (see OPTIMISTIC and FOCUSED). `among`: the positions of the variants
    to choose from (None: all). `minimum_share`: each of them gets at least that share of the
    decisions, by choosing uniformly among them with probability `minimum_share` times their
    number (at most 1), by Thompson sampling otherwise.
    """
    eligible = _eligible(variants, among)
    if _uniform_now(uniform, minimum_share, len(eligible), rng):
        return Choice(int(eligible[rng.integers(len(eligible))]), exploit=False)
    draws, means = _scores(posterior, x, rng, sampling, eligible)
    best = int(np.argmax(draws))
    return Choice(int(eligible[best]), exploit=bool(means[best] >= means.max()))


def _eligible(variants: int, among: Sequence[int] | None) -> np.ndarray:
    return np.arange(variants) if among is None else np.asarray(among, dtype=np.int64)


def _uniform_now(
    uniform: bool, minimum_share: float, eligible: int, rng: np.random.Generator
) -> bool:
    """Whether this decision is uniform: too few rewards yet, or the minimum share's turn."""
    forced = min(1.0, minimum_share * eligible)
    return uniform or (forced > 0 and rng.random() < forced)


def _scores(
    posterior: Posterior,
    x: dict[int, float],
    rng: np.random.Generator,
    sampling: str,
    eligible: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The eligible variants' draws as the sampling rule uses them, and their means."""
    draws, means = posterior.sample_and_mean(x, rng)
    means = means[eligible]
    return _as_used(draws[eligible], means, sampling, rng), means


def _as_used(
    draws: np.ndarray, means: np.ndarray, sampling: str, rng: np.random.Generator
) -> np.ndarray:
    """Draws (one row per decision, a column per variant; or a batch of such) as the
    sampling rule uses them."""
    variants = means.shape[-1]
    if sampling != STANDARD:
        draws = np.maximum(draws, means)
    if sampling == FOCUSED and variants > FEW_VARIANTS:
        drawing = rng.random(draws.shape) < FEW_VARIANTS / variants
        draws = np.where(drawing, draws, means)
    return draws


def rank(
    posterior: Posterior,
    x: dict[int, float],
    rng: np.random.Generator,
    *,
    uniform: bool,
    variants: int,
    sampling: str = FOCUSED,
    among: Sequence[int] | None = None,
    minimum_share: float = 0.0,
) -> Ranking:
    """Every eligible variant's position, best first: `choose`'s first choice, then the rest
    by the same draws (in a random order while `uniform`, or when the minimum share asks for
    a uniform decision). So the first of a ranking is distributed as a decision is."""
    eligible = _eligible(variants, among)
    if _uniform_now(uniform, minimum_share, len(eligible), rng):
        return Ranking([int(i) for i in rng.permutation(eligible)], exploit=False)
    draws, means = _scores(posterior, x, rng, sampling, eligible)
    order = np.argsort(-draws, kind="stable")
    return Ranking([int(eligible[i]) for i in order], exploit=bool(means[order[0]] >= means.max()))


# A decision's propensity: the probability with which its variant was chosen, in its context,
# at that moment, which is what off-policy evaluation weighs its reward by. Exact where the rule
# is: 1/m of m eligible variants while the Test is uniform. Thompson sampling's is estimated
# from `draws` more independent decisions by the same posterior and rule: with W of n choosing
# a variant, its estimate (W + 1) / (n + m) is never 0, errs by at most 1 / (n + m) on average
# and has a standard error of at most 0.5 / sqrt(n), 0.022 with 511 draws. The estimate is
# worth keeping: a posterior is the same for every decision until the worker learns more, so a
# worker estimates it once per posterior and context (bandit.snapshots).
PROPENSITY_DRAWS = 511


def choice_probabilities(
    posterior: Posterior,
    x: dict[int, float],
    rng: np.random.Generator,
    *,
    uniform: bool,
    variants: int,
    sampling: str = FOCUSED,
    among: Sequence[int] | None = None,
    minimum_share: float = 0.0,
    draws: int = PROPENSITY_DRAWS,
) -> np.ndarray:
    """For each variant position, the probability that `choose`, called with the same
    arguments, chooses it (0 for those not eligible). `rank` puts the same variant first."""
    eligible = _eligible(variants, among)
    m = len(eligible)
    forced = 1.0 if uniform else min(1.0, minimum_share * m)
    probabilities = np.zeros(variants)
    probabilities[eligible] = forced / m
    if forced < 1.0:
        means = posterior.mean(x)[eligible]
        used = _as_used(posterior.sample_many(x, rng, draws)[:, eligible], means, sampling, rng)
        probabilities[eligible] += (1.0 - forced) * _estimated_wins(used)
    return probabilities


def _estimated_wins(used: np.ndarray) -> np.ndarray:
    """From draws as used (..., n draws, m variants), each variant's estimated probability of
    winning: (W + 1) / (n + m), along the last axis."""
    n, m = used.shape[-2:]
    won = np.argmax(used, axis=-1).reshape(-1, n)  # a row of winners per batch
    cell = np.arange(len(won))[:, None] * m + won
    wins = np.bincount(cell.ravel(), minlength=len(won) * m)
    return (wins.reshape(*used.shape[:-2], m) + 1) / (n + m)


def contextual_choice_probabilities(
    posterior: LinearRegression,
    contexts: np.ndarray,
    rng: np.random.Generator,
    *,
    uniform: bool,
    sampling: str = FOCUSED,
    minimum_share: float = 0.0,
    draws: int = PROPENSITY_DRAWS,
) -> np.ndarray:
    """`choice_probabilities` for each row of `contexts` (dense feature vectors, as in
    `LinearRegression.means_at`), every variant eligible: (m, variants). One batch of numpy
    work for many contexts, which is what replaying a contextual Test's log asks for."""
    m, variants = len(contexts), posterior.weights.shape[0]
    forced = 1.0 if uniform else min(1.0, minimum_share * variants)
    probabilities = np.full((m, variants), forced / variants)
    if forced < 1.0 and m:
        means = posterior.means_at(contexts)[:, None, :]
        used = _as_used(posterior.sample_many_at(contexts, rng, draws), means, sampling, rng)
        probabilities += (1.0 - forced) * _estimated_wins(used)
    return probabilities


def credible_interval(
    posterior: Posterior, x: dict[int, float], rng: np.random.Generator, draws: int = 2000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 95% credible interval of each variant's mean reward and its probability of being
    best, by Monte Carlo over the posterior."""
    samples = np.stack([posterior.sample(x, rng) for _ in range(draws)])
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    wins = np.bincount(samples.argmax(axis=1), minlength=samples.shape[1]) / draws
    return low, high, wins


# Forgetting: a Test's world can change (a season, a competitor, a bug fixed), and sums that
# never forget keep yesterday's winner: when the best and the worst of three variants swap
# half-way through 5,000 decisions, Thompson sampling on all-time sums spends its second half
# unlearning the first. Discounting all evidence all the time (a window) costs every Test that
# does not change, since a Test that stops accumulating evidence never stops exploring. So
# ON_CHANGE forgets only when a change is detected, per variant: every variant's recent
# rewards are kept beside its all-time sums (an exponentially weighted sum with a half-life of
# RECENT_HALF_LIFE of its own rewards, updated by the reward script, so it is exact across
# workers and hosts), and when its recent mean and the mean of the rest of its evidence differ
# by more than chance allows (a generalised likelihood ratio above CHANGE_THRESHOLD, Bernoulli
# for 0/1 rewards, Gaussian otherwise), the variant's evidence becomes its recent rewards alone.
# Measured with `python -m benchmarks.quality` over 24 seeds: the swap's regret fell from
# 144.6 to 80.9 (Vowpal Wabbit's SquareCB, the best library there, 91.6), and over 20,000
# decisions three click rates (32.4) and a noisy 5% against 4% Test (21.6 and 21.8) spent the
# same as without it. A lower threshold (6) or a shorter half-life (100) detected the swap
# a little sooner but fired on Tests that do not change (three click rates: 44.3), and a
# false alarm on the best variant, which then looks as bad as its unluckiest stretch, is what
# costs. Contextual Tests do not forget: a variant's marginal rewards shift as the policy learns
# which contexts to serve it, which such a test would take for a change.
ON_CHANGE = "on_change"
NEVER = "never"
FORGETTING = (ON_CHANGE, NEVER)
RECENT_HALF_LIFE = 200  # of a variant's own rewards
RECENT_DECAY = 0.5 ** (1.0 / RECENT_HALF_LIFE)
CHANGE_THRESHOLD = 8.0  # on the log-likelihood ratio (about 4 standard errors apart)
CHANGE_MINIMUM = 30.0  # evidence on each side, recent and the rest, before testing


def bernoulli_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(Bernoulli(p) || Bernoulli(q)), elementwise, with rates kept off 0 and 1."""
    p, q = np.clip(p, 1e-12, 1 - 1e-12), np.clip(q, 1e-12, 1 - 1e-12)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def change_statistic(stats: LearnedStats) -> np.ndarray:
    """Per variant, the log-likelihood ratio of "its recent rewards and the rest of its
    evidence have different means" against "one mean" (0 where either side holds less than
    CHANGE_MINIMUM). The recent side counts as many observations as its weights are worth
    ((sum w)^2 / sum w^2); the rest, whose weights are 1 - w, conservatively as their sum."""
    recent = stats.recent
    if recent is None:
        return np.zeros(len(stats.variant_ids))
    rest = stats.updates - recent.weight
    testable = (recent.weight >= CHANGE_MINIMUM) & (rest >= CHANGE_MINIMUM)
    if not testable.any():
        return np.zeros(len(stats.variant_ids))
    n, weight = np.where(testable, stats.updates, 1.0), np.where(testable, recent.weight, 1.0)
    rest = np.where(testable, rest, 1.0)
    effective = weight**2 / np.where(testable, recent.weight_sq, 1.0)
    mean = stats.reward_sum / n
    recent_mean = recent.reward_sum / weight
    rest_mean = (stats.reward_sum - recent.reward_sum) / rest
    if stats.non_binary_rewards:
        variance = np.maximum(stats.reward_sq_sum / n - mean**2, 1e-12)
        ratio = (effective * (recent_mean - mean) ** 2 + rest * (rest_mean - mean) ** 2) / (
            2 * variance
        )
    else:
        ratio = effective * bernoulli_divergence(recent_mean, mean) + rest * bernoulli_divergence(
            rest_mean, mean
        )
    return np.where(testable, ratio, 0.0)


def changed_variants(stats: LearnedStats) -> list[int]:
    """The positions of the variants whose rewards changed (see ON_CHANGE)."""
    if stats.contextual:
        return []
    return [int(i) for i in np.flatnonzero(change_statistic(stats) > CHANGE_THRESHOLD)]


def forget_before_change(stats: LearnedStats, changed: list[int]) -> None:
    """Make the changed variants' evidence their recent rewards alone, as the state's reset
    does in Redis (`bandit.state.rewards.forget`)."""
    assert stats.recent is not None
    for i in changed:
        stats.forgotten_updates += float(stats.updates[i] - stats.recent.weight[i])
        stats.updates[i] = stats.recent.weight[i]
        stats.reward_sum[i] = stats.recent.reward_sum[i]
        stats.reward_sq_sum[i] = stats.recent.reward_sq_sum[i]


def is_number(value: object, limit: float) -> bool:
    """A JSON number (not a boolean) that is finite and at most `limit` in magnitude.

    Integers are compared as integers: JSON allows 10**400, which no float can hold.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return abs(value) <= limit
    return math.isfinite(value) and abs(value) <= limit
