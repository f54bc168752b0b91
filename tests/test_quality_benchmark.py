"""The decision-quality simulation that the README's learning figures come from."""

from __future__ import annotations

import numpy as np

from bandit import policy
from benchmarks import quality


def test_a_noisy_environment_has_one_best_variant_and_the_policy_finds_it():
    env = quality.noisy(3000, 3)
    assert env.name == "noisy3" and quality.environment("noisy3", 3000).arms == 3
    np.testing.assert_allclose(env.probabilities({}, 0), [0.04, 0.04, 0.05])
    agent = quality.ScoutAgent(env, np.random.default_rng(1))
    outcome = quality.simulate(env, 0, agents=[agent])
    regret = outcome[agent.name]["cumulative_regret"]
    # Never more than choosing a 4% variant every time; positive, as no policy knows upfront.
    assert 0 < regret[-1] <= 0.01 * env.horizon + 1e-9


def test_a_noisy_contextual_environment_has_contexts_that_say_nothing():
    env = quality.environment("noisyctx2", 1000)
    contexts = env.draw_contexts(np.random.default_rng(2), 50)
    assert env.name == "noisyctx2" and env.arms == 2 and env.numeric == quality.NUMERIC_FEATURES
    assert all(set(c) == {*quality.NUMERIC_FEATURES, "segment"} for c in contexts)
    assert all(np.array_equal(env.probabilities(c, 0), [0.04, 0.05]) for c in contexts)


def test_the_command_line_explains_itself():
    import subprocess
    import sys

    shown = subprocess.run(
        [sys.executable, "-m", "benchmarks.quality", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "noisyctxK" in shown.stdout and "--forgetting" in shown.stdout


def test_settings_change_how_the_simulated_policy_learns():
    """The same seed with the defaults and with the former defaults: with 50 variants the
    defaults spend less, which the README's table reports over 64 seeds."""
    env = quality.environment("many_variants", 5000)
    regrets = {}
    for sampling, prior in ((policy.FOCUSED, policy.POOLED), (policy.OPTIMISTIC, policy.FLAT)):
        agent = quality.ScoutAgent(env, np.random.default_rng(4000), sampling, prior)
        regrets[sampling] = quality.simulate(env, 0, agents=[agent])[agent.name][
            "cumulative_regret"
        ][-1]
    assert regrets[policy.FOCUSED] < regrets[policy.OPTIMISTIC]


def test_the_policy_cost_benchmark_times_every_rule_and_prior(monkeypatch):
    from benchmarks import policy_cost

    monkeypatch.setattr(policy_cost, "CALLS", 50)
    row = policy_cost.costs(10)
    assert set(row) == {
        "choose: optimistic",
        "choose: focused",
        "build: flat prior",
        "build: pooled prior",
        "build: change check",
        "propensities (once per posterior)",
    }
    assert all(value > 0 for value in row.values())


def test_the_replay_cost_benchmark_times_every_kind_of_log():
    from benchmarks import replay_cost

    for kind in replay_cost.KINDS:
        assert replay_cost.seconds(kind, decisions=2_000) > 0
