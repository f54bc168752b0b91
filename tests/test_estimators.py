"""Off-policy estimates against closed forms, by simulation (pure numpy, no server).

A simulated Test has 3 variants and a context of 3 equally likely values, with a known click
rate for each variant in each context. A fixed stochastic policy, different in each context,
chose the variants, so every propensity is exact. The true mean reward of any policy is then
known in closed form, and over many seeds each 95% interval must cover it at least 90% of the
time. Seeds are fixed: the figures are the same on every run.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from bandit import estimators
from bandit.estimators import Estimate

SEEDS = 300
DECISIONS = 2000
COVERAGE_AT_LEAST = 0.9  # of 95% intervals: room for 300 seeds' noise (sd 0.013)

# The click rate of each variant (column) in each context (row).
RATES = np.array(
    [
        [0.10, 0.20, 0.35],
        [0.30, 0.15, 0.05],
        [0.05, 0.25, 0.12],
    ]
)
CONTEXTS = len(RATES)  # drawn uniformly
# The deployed policy that chose the logged variants: its probabilities in each context. Its
# least likely variant is each context's best, so a greedy policy is the hardest to evaluate.
DEPLOYED = np.array(
    [
        [0.6, 0.3, 0.1],
        [0.1, 0.6, 0.3],
        [0.3, 0.1, 0.6],
    ]
)


def always(variant: int) -> np.ndarray:
    return np.tile(np.eye(3)[variant], (CONTEXTS, 1))


# The evaluated policies: the probability of each variant (column) in each context (row).
POLICIES = {
    "uniform": np.full((CONTEXTS, 3), 1 / 3),
    "variant 0": always(0),
    "variant 1": always(1),
    "variant 2": always(2),
    "deployed": DEPLOYED,
    "greedy": np.eye(3)[RATES.argmax(axis=1)],
}


def true_value(policy: np.ndarray) -> float:
    """Sum over contexts of P(context) * sum over variants of policy(a | x) * rate(x, a)."""
    return float((policy * RATES).sum(axis=1).mean())


@dataclass(frozen=True)
class Log:
    """One simulated Test's logged decisions."""

    seed: int
    contexts: np.ndarray
    variants: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray

    def target(self, policy: np.ndarray) -> np.ndarray:
        """The probability that `policy` picks each decision's logged variant."""
        return policy[self.contexts, self.variants]

    def predicted(self, model: np.ndarray) -> np.ndarray:
        """A reward model's prediction for each decision's logged variant."""
        return model[self.contexts, self.variants]

    def expected(self, policy: np.ndarray, model: np.ndarray) -> np.ndarray:
        """A reward model's expected reward of `policy` in each decision's context."""
        return (policy * model).sum(axis=1)[self.contexts]


def simulate(seed: int, decisions: int = DECISIONS) -> Log:
    rng = np.random.default_rng(seed)
    contexts = rng.integers(CONTEXTS, size=decisions)
    thresholds = DEPLOYED.cumsum(axis=1)[contexts, :-1]
    variants = (rng.random(decisions)[:, None] >= thresholds).sum(axis=1)  # a categorical draw
    rewards = (rng.random(decisions) < RATES[contexts, variants]).astype(float)
    return Log(seed, contexts, variants, rewards, DEPLOYED[contexts, variants])


@functools.cache
def context_blind_model(seed: int) -> np.ndarray:
    """A wrong reward model: each variant's mean logged reward, ignoring the context (and
    confounded by it, since the deployed policy chose by context). Fit on another Test's log
    than the one evaluated, since a doubly robust estimate needs a model fit elsewhere."""
    other = simulate(seed + 100_000)
    means = [other.rewards[other.variants == v].mean() for v in range(3)]
    return np.tile(means, (CONTEXTS, 1))


SHRUNK_MODEL = 0.5 + 0.2 * (RATES - 0.5)  # another wrong model: every rate pulled toward 0.5

Estimator = Callable[[Log, np.ndarray], Estimate | None]

ESTIMATORS: dict[str, Estimator] = {
    "ips": lambda log, policy: estimators.ips(log.rewards, log.propensities, log.target(policy)),
    "snips": lambda log, policy: estimators.snips(
        log.rewards, log.propensities, log.target(policy)
    ),
    "doubly robust, context-blind model": lambda log, policy: doubly_robust(
        log, policy, context_blind_model(log.seed)
    ),
    "doubly robust, shrunk model": lambda log, policy: doubly_robust(log, policy, SHRUNK_MODEL),
}


def doubly_robust(log: Log, policy: np.ndarray, model: np.ndarray) -> Estimate | None:
    return estimators.doubly_robust(
        log.rewards,
        log.propensities,
        log.target(policy),
        log.predicted(model),
        log.expected(policy, model),
    )


@functools.cache
def logs() -> tuple[Log, ...]:
    return tuple(simulate(seed) for seed in range(SEEDS))


@functools.cache
def estimates(estimator: str, policy: str) -> tuple[Estimate, ...]:
    """One estimate per seed, computed once for all the tests that read it."""
    found = [ESTIMATORS[estimator](log, POLICIES[policy]) for log in logs()]
    assert all(estimate is not None for estimate in found)
    return tuple(e for e in found if e is not None)


def coverage(found: tuple[Estimate, ...] | list[Estimate], truth: float) -> float:
    """The share of intervals that contain the truth."""
    return float(np.mean([e.low <= truth <= e.high for e in found]))


def mean_width(found: tuple[Estimate, ...]) -> float:
    return float(np.mean([e.high - e.low for e in found]))


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_intervals_cover_the_true_value(estimator: str, policy: str):
    truth = true_value(POLICIES[policy])
    assert coverage(estimates(estimator, policy), truth) >= COVERAGE_AT_LEAST


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("estimator", ["ips", "doubly robust, shrunk model"])
def test_unbiased_estimators_average_to_the_true_value(estimator: str, policy: str):
    values = np.array([e.value for e in estimates(estimator, policy)])
    standard_error = values.std(ddof=1) / math.sqrt(len(values))
    assert abs(values.mean() - true_value(POLICIES[policy])) < 3.5 * standard_error


def test_a_biased_estimator_fails_the_coverage_check():
    """The harness can fail: IPS that takes the deployed policy for uniform (propensities of
    1/3 instead of the real ones) misses the true value of most policies."""
    for policy in ["variant 0", "variant 2", "greedy", "uniform"]:
        wrong = [
            estimators.ips(log.rewards, np.full(DECISIONS, 1 / 3), log.target(POLICIES[policy]))
            for log in logs()
        ]
        found = [e for e in wrong if e is not None]
        assert coverage(found, true_value(POLICIES[policy])) < 0.5, policy


@pytest.mark.parametrize("policy", POLICIES)
def test_doubly_robust_with_a_perfect_model_is_narrower_than_ips(policy: str):
    perfect = [doubly_robust(log, POLICIES[policy], RATES) for log in logs()]
    found = tuple(e for e in perfect if e is not None)
    assert coverage(found, true_value(POLICIES[policy])) >= COVERAGE_AT_LEAST
    assert mean_width(found) < mean_width(estimates("ips", policy))


def test_snips_of_the_deployed_policy_is_the_mean_reward():
    log = logs()[0]
    snips = estimators.snips(log.rewards, log.propensities, log.target(DEPLOYED))
    plain = estimators.mean_interval(log.rewards)
    assert snips is not None and plain is not None
    assert snips.value == log.rewards.mean()
    assert snips.low == pytest.approx(plain.low, rel=1e-9)
    assert snips.high == pytest.approx(plain.high, rel=1e-9)


def test_policy_value_is_json_of_finite_floats():
    log = logs()[0]
    greedy = POLICIES["greedy"]
    found = estimators.policy_value(
        log.rewards,
        log.propensities,
        log.target(greedy),
        log.predicted(SHRUNK_MODEL),
        log.expected(greedy, SHRUNK_MODEL),
    )
    assert set(found) == {"ips", "snips", "doubly_robust"}
    for estimate in found.values():
        assert estimate is not None
        assert set(estimate) == {"value", "low", "high", "decisions"}
        assert all(type(estimate[key]) is float for key in ("value", "low", "high"))
        assert type(estimate["decisions"]) is int and estimate["decisions"] == DECISIONS
        assert estimate["low"] <= estimate["value"] <= estimate["high"]
    json.dumps(found, allow_nan=False)
    without_model = estimators.policy_value(log.rewards, log.propensities, log.target(greedy))
    assert without_model["doubly_robust"] is None
    assert without_model["ips"] == found["ips"]


def test_mean_interval_covers_the_true_rate():
    rng = np.random.default_rng(1)
    found = [estimators.mean_interval((rng.random(200) < 0.3).astype(float)) for _ in range(SEEDS)]
    assert coverage([e for e in found if e is not None], 0.3) >= COVERAGE_AT_LEAST


def test_mean_interval_of_few_values_is_wide_enough():
    """With 5 values, ±1.96 standard errors cover only 88%: Student's t must widen it."""
    rng = np.random.default_rng(2)
    samples = rng.normal(10.0, 2.0, size=(2000, 5))
    found = [estimators.mean_interval(sample) for sample in samples]
    assert coverage([e for e in found if e is not None], 10.0) >= 0.93
    normal = np.abs(samples.mean(axis=1) - 10.0) <= 1.96 * samples.std(axis=1, ddof=1) / 5**0.5
    assert normal.mean() < 0.9  # what the harness would say of the normal interval


def test_difference_covers_the_true_difference():
    rng = np.random.default_rng(3)
    found = [
        estimators.difference(
            (rng.random(400) < 0.30).astype(float), (rng.random(250) < 0.25).astype(float)
        )
        for _ in range(SEEDS)
    ]
    assert all(e is not None and e.decisions == 650 for e in found)
    assert coverage([e for e in found if e is not None], 0.05) >= COVERAGE_AT_LEAST


def test_difference_of_unequal_spreads_and_sizes_covers_it():
    """Welch's interval, where a pooled variance would be far off: 4 noisy values against 30
    quiet ones."""
    rng = np.random.default_rng(4)
    found = [
        estimators.difference(rng.normal(1.0, 3.0, size=4), rng.normal(0.0, 0.5, size=30))
        for _ in range(2000)
    ]
    assert coverage([e for e in found if e is not None], 1.0) >= 0.93


def test_no_variance_gives_a_zero_width_interval():
    assert estimators.mean_interval(np.ones(5)) == Estimate(1.0, 1.0, 1.0, 5)
    assert estimators.difference(np.ones(3), np.zeros(4)) == Estimate(1.0, 1.0, 1.0, 7)


def test_too_little_data_gives_none():
    empty = np.array([])
    assert estimators.mean_interval(empty) is None
    assert estimators.mean_interval(np.array([1.0])) is None
    assert estimators.difference(np.array([1.0, 0.0]), np.array([1.0])) is None
    assert estimators.difference(empty, np.array([1.0, 0.0])) is None
    assert estimators.ips(empty, empty, empty) is None
    assert estimators.snips(empty, empty, empty) is None
    assert estimators.doubly_robust(empty, empty, empty, empty, empty) is None
    assert estimators.policy_value(empty, empty, empty, empty, empty) == {
        "ips": None,
        "snips": None,
        "doubly_robust": None,
    }
    # a policy that would never have made any of the logged decisions: SNIPS has no weight
    one = np.ones(3)
    assert estimators.snips(one, one / 2, np.zeros(3)) is None


GOOD = np.array([1.0, 0.0, 1.0])
HALF = np.full(3, 0.5)


@pytest.mark.parametrize(
    ("rewards", "propensities", "target", "message"),
    [
        (GOOD, np.full(2, 0.5), HALF, "lengths"),
        (GOOD, HALF, np.full(4, 0.5), "lengths"),
        (GOOD, np.array([0.5, 0.0, 0.5]), HALF, "propensities"),
        (GOOD, np.array([0.5, 1.5, 0.5]), HALF, "propensities"),
        (GOOD, np.array([0.5, -0.1, 0.5]), HALF, "propensities"),
        (GOOD, HALF, np.array([0.5, -0.1, 0.5]), "target"),
        (GOOD, HALF, np.array([0.5, 1.1, 0.5]), "target"),
        (np.array([1.0, np.nan, 0.0]), HALF, HALF, "rewards"),
        (GOOD, np.array([0.5, np.nan, 0.5]), HALF, "propensities"),
        (np.ones((3, 1)), HALF, HALF, "rewards"),
    ],
)
def test_bad_logs_are_refused(
    rewards: np.ndarray, propensities: np.ndarray, target: np.ndarray, message: str
):
    for estimator in (estimators.ips, estimators.snips):
        with pytest.raises(ValueError, match=message):
            estimator(rewards, propensities, target)
    with pytest.raises(ValueError, match=message):
        estimators.doubly_robust(rewards, propensities, target, HALF, HALF)
    with pytest.raises(ValueError, match=message):
        estimators.policy_value(rewards, propensities, target)


def test_bad_predictions_are_refused():
    with pytest.raises(ValueError, match="lengths"):
        estimators.doubly_robust(GOOD, HALF, HALF, np.full(2, 0.5), HALF)
    with pytest.raises(ValueError, match="expected_under_target"):
        estimators.doubly_robust(GOOD, HALF, HALF, HALF, np.array([0.5, np.inf, 0.5]))
    with pytest.raises(ValueError, match="both"):
        estimators.policy_value(GOOD, HALF, HALF, predicted_logged=HALF)
    with pytest.raises(ValueError, match="treated"):
        estimators.difference(np.array([1.0, np.inf]), np.array([1.0, 0.0]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_estimate_too_large_for_json_is_refused():
    with pytest.raises(ValueError, match="overflows"):
        estimators.ips(GOOD, np.array([1e-320, 0.5, 0.5]), np.ones(3))
