"""One environment through the real server's HTTP API, beside the same run in simulation.

The two-colour Test is played against `scout serve`: each visitor is a fetch with its context,
each outcome a reward by request id, reported in batches like a client would. The same seed in
the simulation (Scout's policy code on Scout's sums) should learn alike: similar mean reward,
similar regret, and the same preferred variant per colour at the end. One seed's regret is
noisy, so the simulation also runs several seeds: the HTTP run should fall within their spread.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np

from benchmarks import quality
from benchmarks.servers import Scout

SIMULATED_SEEDS = 8  # the HTTP run is one seed; the simulation's spread over seeds is its scale
CURVE_EVERY = 10  # cumulative regret kept every this many decisions in results.json


def benchmark(*, horizon: int, seed: int = 0, log: Callable[[str], None] = print) -> dict:
    env = quality.two_colour(horizon)
    rng = np.random.default_rng(seed)
    contexts = env.draw_contexts(rng, horizon)
    coins = rng.uniform(size=horizon)
    best = np.array([env.probabilities(c, t).max() for t, c in enumerate(contexts)])
    regret = np.zeros(horizon)
    rewards = np.zeros(horizon)
    chosen = np.zeros(horizon, dtype=int)
    with Scout() as scout, httpx.Client(base_url=scout.url, timeout=30) as client:
        test_id = scout.create_test(env.arms)
        for start in range(0, horizon, env.batch):
            updates = []
            for t in range(start, min(start + env.batch, horizon)):
                body = {"cb_model_id": test_id, "context": contexts[t], "request_id": f"e2e-{t}"}
                response = client.post("/api/fetch_recommended_variant", json=body)
                response.raise_for_status()
                arm = response.json()["variant_id"]
                p = env.probabilities(contexts[t], t)[arm]
                chosen[t], rewards[t], regret[t] = arm, float(coins[t] < p), best[t] - p
                updates.append({"request_id": f"e2e-{t}", "reward": int(rewards[t])})
            response = client.post(f"/api/update_model/{test_id}", json={"updates": updates})
            response.raise_for_status()
            assert response.json()["processed_updates"] == len(updates)
    runs = [
        quality.simulate(env, s, scout_only=True)[quality.ScoutAgent.name]
        for s in range(seed, seed + SIMULATED_SEEDS)
    ]
    simulated = runs[0]
    regrets = np.array([run["cumulative_regret"][-1] for run in runs])
    late = slice(horizon // 2, horizon)
    colours = np.array([c["colour"] for c in contexts])
    best_arm = {"red": 0, "blue": 1}
    optimal_late = np.mean(
        [chosen[t] == best_arm[colours[t]] for t in range(late.start, late.stop)]
    )
    result = {
        "environment": env.name,
        "horizon": horizon,
        "seed": seed,
        "http": {
            "mean_reward": round(float(rewards.mean()), 4),
            "regret": round(float(regret.sum()), 1),
            "optimal_share_second_half": round(float(optimal_late), 3),
        },
        "simulation": {
            "mean_reward": round(float(simulated["rewards"].mean()), 4),
            "regret": round(float(simulated["cumulative_regret"][-1]), 1),
            "seeds": SIMULATED_SEEDS,
            "mean_reward_over_seeds": round(float(np.mean([r["rewards"].mean() for r in runs])), 4),
            "regret_over_seeds": round(float(regrets.mean()), 1),
            "regret_sd_over_seeds": round(float(regrets.std()), 1),
        },
        "uniform_regret_expected": round(
            float(sum(best[t] - env.probabilities(c, t).mean() for t, c in enumerate(contexts))),
            1,
        ),
        "curve_every": CURVE_EVERY,
        "curve_http": np.cumsum(regret)[::CURVE_EVERY].round(2).tolist(),
        "curve_simulation": simulated["cumulative_regret"][::CURVE_EVERY].round(2).tolist(),
    }
    log(
        f"  HTTP: mean reward {result['http']['mean_reward']:.4f}, regret "
        f"{result['http']['regret']:.1f}, best variant in the second half "
        f"{100 * optimal_late:.0f}% | simulation: mean reward "
        f"{result['simulation']['mean_reward']:.4f}, regret {result['simulation']['regret']:.1f} "
        f"(over {SIMULATED_SEEDS} seeds {regrets.mean():.1f} ± {regrets.std():.1f})"
    )
    return result
