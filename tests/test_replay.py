"""Learning settings replayed on a log (bandit.replay), in this process: simulated logs of a
uniform logging policy whose true rates are known (also rates that swap half-way, and rates
that depend on the context), so that what a replayed setting would have chosen, and what that
is worth, can be checked against the truth."""

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


@pytest.mark.parametrize(
    "setting", replay.settings(), ids=lambda s: f"{s.sampling}-{s.prior}-{s.forgetting}"
)
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
    setting = replay.Setting(policy.FOCUSED, policy.POOLED, policy.ON_CHANGE)
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
        replay.Setting(policy.STANDARD, policy.FLAT, policy.NEVER),
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
        replay.Setting(policy.OPTIMISTIC, policy.POOLED, policy.ON_CHANGE),
        [0, 1],
        chosen,
        rewards,
        minimum_updates=20,
        minimum_share=0.0,
    )
    assert distribution[-1, 1] > 0.99


def coverage(logs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, float]:
    """How often the IPS and SNIPS intervals cover the truth, over (target probability of the
    logged variant, reward, true value) per simulated log of a uniform logging policy."""
    covered = {"ips": 0, "snips": 0}
    for target, rewards, truth in logs:
        logged = np.full(len(rewards), 1 / 3)
        for name, estimator in (("ips", estimators.ips), ("snips", estimators.snips)):
            found = estimator(rewards, logged, target)
            assert found is not None
            covered[name] += found.low <= float(truth) <= found.high
    return {name: count / len(logs) for name, count in covered.items()}


SWAP_BEFORE, SWAP_AFTER = np.array([0.1, 0.2, 0.6]), np.array([0.6, 0.2, 0.1])


def swap_log(seed: int, decisions: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform decisions among three variants whose best and worst swap half-way."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(3, size=decisions)
    rates = np.where(np.arange(decisions)[:, None] < decisions // 2, SWAP_BEFORE, SWAP_AFTER)
    rewards = (rng.random(decisions) < rates[np.arange(decisions), chosen]).astype(float)
    return chosen, rewards, rates


def test_forgetting_on_a_change_follows_a_swap_that_never_forgetting_unlearns_slowly():
    replayed = {}
    logs: dict[str, list] = {policy.ON_CHANGE: [], policy.NEVER: []}
    for seed in range(SEEDS):
        chosen, rewards, rates = swap_log(seed)
        for forgetting in policy.FORGETTING:
            distribution = replay.probabilities(
                replay.Setting(policy.FOCUSED, policy.POOLED, forgetting),
                [0, 1, 2],
                chosen,
                rewards,
                minimum_updates=50,
                minimum_share=0.0,
            )
            truth = (distribution * rates).sum(axis=1).mean()
            target = distribution[np.arange(len(chosen)), chosen]
            logs[forgetting].append((target, rewards, truth))
            replayed.setdefault(forgetting, []).append(truth)
            if forgetting == policy.ON_CHANGE:
                # Learned the swap within a few hundred decisions of it.
                assert distribution[-1, 0] > 0.9, seed
    # Forgetting earned more after the swap than keeping every reward did, on every log.
    assert all(
        a > b for a, b in zip(replayed[policy.ON_CHANGE], replayed[policy.NEVER], strict=True)
    )
    for forgetting, simulated in logs.items():
        for name, share in coverage(simulated).items():
            assert share >= 0.88, (forgetting, name, share)


def test_the_replays_recent_sums_are_the_reward_scripts():
    """Each reward weighs RECENT_DECAY ** (its variant's rewards after it): the replay's
    batch of a block equals the reward script's one reward at a time."""
    rng = np.random.default_rng(4)
    chosen, rewards = rng.integers(-1, 3, size=700), rng.normal(size=700)
    evidence = replay.Evidence([0, 1, 2], 0, policy.ON_CHANGE)
    for start in range(0, 700, 97):
        evidence.learn(chosen[start : start + 97], rewards[start : start + 97], None)
    assert evidence.recent is not None
    decay = policy.RECENT_DECAY
    for i in range(3):
        w = sy = sq = ww = 0.0
        for y in rewards[chosen == i]:
            w, sy, sq, ww = decay * w + 1, decay * sy + y, decay * sq + y * y, decay**2 * ww + 1
        assert evidence.recent.weight[i] == pytest.approx(w)
        assert evidence.recent.reward_sum[i] == pytest.approx(sy)
        assert evidence.recent.reward_sq_sum[i] == pytest.approx(sq)
        assert evidence.recent.weight_sq[i] == pytest.approx(ww)
        assert evidence.updates[i] == np.count_nonzero(chosen == i)


def test_a_change_makes_a_variant_forget_what_it_learned_before():
    chosen, rewards, _ = swap_log(1, decisions=4000)
    evidence = replay.Evidence([0, 1, 2], 0, policy.ON_CHANGE)
    forgot_at = None
    for start in range(0, 4000, 50):
        stats = evidence.stats()
        if forgot_at is None and stats.forgotten_updates:
            forgot_at = start
        evidence.learn(chosen[start : start + 50], rewards[start : start + 50], None)
    assert forgot_at is not None and 2000 < forgot_at < 2600
    stats = evidence.stats()
    assert stats.total_updates == 4000  # every reward counted, forgotten or not
    assert stats.updates.sum() < 4000  # the model uses fewer
    assert evidence.recent is not None and evidence.recent.changes[[0, 2]].min() >= 1
    # What the variant now knows is mostly its rewards since the swap (0.6): its all-time
    # mean is 0.35.
    assert stats.reward_sum[0] / stats.updates[0] > 0.45


# Three segments, each with its own best variant (one-hot features after the bias).
SEGMENT_RATES = np.array([[0.6, 0.2, 0.1], [0.1, 0.6, 0.2], [0.2, 0.1, 0.6]])
SEGMENTS = replay.Contexts(np.hstack([np.ones((3, 1)), np.eye(3)]), np.zeros(0, np.intp))


def segment_log(seed: int, decisions: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    segment, chosen = rng.integers(3, size=decisions), rng.integers(3, size=decisions)
    rewards = (rng.random(decisions) < SEGMENT_RATES[segment, chosen]).astype(float)
    return segment, chosen, rewards


@pytest.mark.parametrize("sampling", policy.SAMPLING_RULES)
def test_a_contextual_replay_learns_each_contexts_best_and_its_value_is_estimated(sampling):
    simulated = []
    for seed in range(SEEDS):
        segment, chosen, rewards = segment_log(seed, decisions=1500)
        contexts = replay.Contexts(SEGMENTS.distinct, segment)
        distribution = replay.probabilities(
            replay.Setting(sampling, policy.POOLED, policy.ON_CHANGE),
            [0, 1, 2],
            chosen,
            rewards,
            minimum_updates=50,
            minimum_share=0.0,
            contexts=contexts,
        )
        assert np.allclose(distribution.sum(axis=1), 1.0)
        truth = (distribution * SEGMENT_RATES[segment]).sum(axis=1).mean()
        target = distribution[np.arange(len(chosen)), chosen]
        simulated.append((target, rewards, truth))
        for s in range(3):  # the last decision of each segment goes to its best variant
            last = np.flatnonzero(segment == s)[-1]
            assert distribution[last, s] > 0.8, (seed, s)
    for name, share in coverage(simulated).items():
        assert share >= 0.88, (name, share)
    # Far above what any one variant for everyone earns (0.3): it served each segment its best.
    assert np.mean([truth for _, _, truth in simulated]) > 0.45


def test_a_contextual_replay_on_numeric_features_prefers_the_variant_each_number_calls_for():
    rng = np.random.default_rng(8)
    n = 4000
    x = rng.normal(size=n)
    chosen = rng.integers(2, size=n)
    # Variant 1 earns more where x > 0, variant 0 where x < 0.
    rewards = rng.normal(np.where(chosen == 1, x, -x), 0.5)
    contexts = replay.Contexts(np.column_stack([np.ones(n), x]), np.arange(n))
    distribution = replay.probabilities(
        replay.Setting(policy.FOCUSED, policy.POOLED, policy.NEVER),
        [0, 1],
        chosen,
        rewards,
        minimum_updates=20,
        minimum_share=0.0,
        contexts=contexts,
    )
    late = np.arange(n) > n // 2
    clear = late & (np.abs(x) > 0.5)
    assert (distribution[clear & (x > 0), 1] > 0.9).mean() > 0.95
    assert (distribution[clear & (x < 0), 0] > 0.9).mean() > 0.95


def test_settings_that_cannot_differ_share_a_replay():
    """A contextual model has no prior and does not forget: one replay per sampling rule."""
    keys = {replay.alike_key(s, contextual=True) for s in replay.settings()}
    assert keys == {(rule,) for rule in policy.SAMPLING_RULES}
    assert len({replay.alike_key(s, contextual=False) for s in replay.settings()}) == 12
