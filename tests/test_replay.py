"""Learning settings replayed on a log (bandit.replay), in this process: simulated logs of a
uniform logging policy whose true rates are known, so that what a replayed setting would
have chosen, and what that is worth, can be checked against the truth."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import estimators, policy, replay

RATES = np.array([0.2, 0.5, 0.3])


def uniform_log(seed: int, decisions: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    chosen = rng.integers(len(RATES), size=decisions)
    rewards = (rng.random(decisions) < RATES[chosen]).astype(float)
    return chosen, rewards


SEEDS = 60


@pytest.mark.parametrize("setting", replay.settings(), ids=lambda s: f"{s.sampling}-{s.prior}")
def test_a_replayed_setting_learns_the_best_variant_and_its_value_is_estimated(setting):
    """Over many simulated logs, the estimators' 95% intervals cover what the replayed
    setting's choices are worth under the true rates (each block's probabilities come from
    the rewards before it, so a decision's own reward does not shape its weight)."""
    covered = {"ips": 0, "snips": 0}
    truths = []
    for seed in range(SEEDS):
        chosen, rewards = uniform_log(seed, decisions=1500)
        distribution = replay.probabilities(
            setting, [0, 1, 2], chosen, rewards, minimum_updates=50, minimum_share=0.0
        )
        assert distribution.shape == (1500, 3)
        assert np.allclose(distribution.sum(axis=1), 1.0)
        assert np.allclose(distribution[:50], 1 / 3)  # uniform until 50 rewards
        truth = float((distribution * RATES).sum(axis=1).mean())
        truths.append(truth)
        target = distribution[np.arange(len(chosen)), chosen]
        logged = np.full(len(chosen), 1 / 3)
        for name, estimator in (("ips", estimators.ips), ("snips", estimators.snips)):
            found = estimator(rewards, logged, target)
            assert found is not None
            covered[name] += found.low <= truth <= found.high
    for name, count in covered.items():
        assert count / SEEDS >= 0.88, (name, count)
    assert np.mean(truths) > 0.42  # far above a plain split's 1/3: it learned the best
    assert distribution[-1, 1] > 0.8


def test_the_minimum_share_and_the_minimum_rewards_hold_in_the_replay():
    chosen, rewards = uniform_log(3)
    setting = replay.Setting(policy.FOCUSED, policy.POOLED)
    floored = replay.probabilities(
        setting, [0, 1, 2], chosen, rewards, minimum_updates=0, minimum_share=0.1
    )
    assert floored.min() >= 0.1 - 1e-12
    never = replay.probabilities(
        setting, [0, 1, 2], chosen, rewards, minimum_updates=10**9, minimum_share=0.0
    )
    assert np.allclose(never, 1 / 3)


def test_a_variant_no_longer_in_service_teaches_nothing_and_blocks_are_bounded():
    chosen, rewards = uniform_log(5, decisions=20_000)
    chosen = np.where(chosen == 2, -1, chosen)  # variant 2 was retired since
    distribution = replay.probabilities(
        replay.Setting(policy.STANDARD, policy.FLAT),
        [0, 1],
        chosen,
        rewards,
        minimum_updates=0,
        minimum_share=0.0,
    )
    assert distribution.shape == (20_000, 2)
    # At most BLOCKS posteriors: the probabilities change between blocks only.
    changes = np.count_nonzero(np.any(np.diff(distribution, axis=0) != 0, axis=1))
    assert changes < replay.BLOCKS
    assert distribution[-1, 1] > 0.95


def test_real_valued_rewards_replay_with_a_normal_model():
    rng = np.random.default_rng(11)
    chosen = rng.integers(2, size=2000)
    rewards = rng.normal(np.where(chosen == 1, 3.0, 1.0), 1.0)
    distribution = replay.probabilities(
        replay.Setting(policy.OPTIMISTIC, policy.POOLED),
        [0, 1],
        chosen,
        rewards,
        minimum_updates=20,
        minimum_share=0.0,
    )
    assert distribution[-1, 1] > 0.99
