"""Decision quality as a user meets it: every simulated Test played through `scout serve`.

Each run creates a Test with only a name and variants (every setting at its default), fetches
every decision over HTTP with its context and a request id, and reports each reward by request
id right after its decision, or in batches where the environment delays rewards (`batch`). The
contexts, the click coins and the reward noise are those of `benchmarks.quality.simulate` for
the same seed, so the regret over HTTP pairs, seed by seed, with the libraries' in simulation.

    .venv/bin/python -m benchmarks.http_quality --seeds 4 [--horizon 5000] [environment ...]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence

import httpx
import numpy as np

from benchmarks import quality
from benchmarks.servers import Scout


def play(env: quality.Environment, seed: int, scout: Scout, client: httpx.Client) -> np.ndarray:
    """One seed of one environment over HTTP; answers the regret of each decision."""
    rng = np.random.default_rng(seed)
    contexts = env.draw_contexts(rng, env.horizon)
    coins = rng.uniform(size=env.horizon)  # drawn in simulate's order: the same world
    noise = rng.standard_normal(size=env.horizon)
    test_id = scout.create_test(env.arms)
    regret = np.zeros(env.horizon)
    for start in range(0, env.horizon, env.batch):
        updates = []
        for t in range(start, min(start + env.batch, env.horizon)):
            body = {"cb_model_id": test_id, "context": contexts[t], "request_id": f"r{t}"}
            response = client.post("/api/fetch_recommended_variant", json=body)
            response.raise_for_status()
            arm = response.json()["variant_id"]
            expected = env.probabilities(contexts[t], t)
            reward = (
                float(coins[t] < expected[arm])
                if env.noise_sd is None
                else float(expected[arm] + env.noise_sd * noise[t])
            )
            regret[t] = expected.max() - expected[arm]
            updates.append({"request_id": f"r{t}", "reward": reward})
        response = client.post(f"/api/update_model/{test_id}", json={"updates": updates})
        response.raise_for_status()
        assert response.json()["processed_updates"] == len(updates), response.text
    client.post(f"/api/delete_model/{test_id}")
    return regret


def benchmark(
    *,
    horizon: int,
    seeds: int,
    names: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> dict:
    """Scout over HTTP on each environment and seed, paired with every agent in simulation."""
    chosen = [env for env in quality.environments(horizon) if not names or env.name in names]
    summary: dict = {"horizon": horizon, "seeds": seeds, "environments": []}
    with Scout() as scout, httpx.Client(base_url=scout.url, timeout=30) as client:
        for env in chosen:
            started = time.perf_counter()
            http = np.array([play(env, seed, scout, client).sum() for seed in range(seeds)])
            simulated = [quality.simulate(env, seed) for seed in range(seeds)]
            final = {
                name: np.array([run[name]["cumulative_regret"][-1] for run in simulated])
                for name in simulated[0]
            }
            libraries = {name: final[name] for name in quality.LIBRARIES if name in final}
            best = min(libraries, key=lambda name: float(libraries[name].mean()))
            row = {
                "name": env.name,
                "title": env.title,
                "scout_http_regret": round(float(http.mean()), 1),
                "scout_http_regret_se": round(float(http.std(ddof=1) / np.sqrt(seeds)), 1)
                if seeds > 1
                else None,
                "scout_simulated_regret": round(float(final[quality.ScoutAgent.name].mean()), 1),
                "agents": {name: round(float(value.mean()), 1) for name, value in final.items()},
                "best_library": best,
                "best_library_regret": round(float(libraries[best].mean()), 1),
                **quality.verdict(http, libraries[best]),
                "http_seconds": round(time.perf_counter() - started, 1),
            }
            summary["environments"].append(row)
            log(
                f"  {env.name:14} Scout over HTTP {row['scout_http_regret']:7.1f}"
                f" (in simulation {row['scout_simulated_regret']:7.1f})"
                f"  best library {best} {row['best_library_regret']:7.1f}: {row['verdict']}"
            )
    return summary


def table(summary: dict) -> str:
    """The summary as a Markdown table: Scout over HTTP, in simulation, and the best library."""
    lines = [
        "| environment | Scout over HTTP | Scout in simulation | best library (regret) "
        "| Scout − library, paired by seed (± s.e.) | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in summary["environments"]:
        lines.append(
            f"| {row['name']} | {row['scout_http_regret']} | {row['scout_simulated_regret']} "
            f"| {row['best_library']} ({row['best_library_regret']}) "
            f"| {row['difference']:+} ± {row['difference_se']} | {row['verdict']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("environments", nargs="*", help="environment names (default: all)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=5_000)
    parser.add_argument("--output", help="write the summary as JSON to this file")
    options = parser.parse_args()
    summary = benchmark(horizon=options.horizon, seeds=options.seeds, names=options.environments)
    print(table(summary))
    if options.output:
        with open(options.output, "w") as handle:
            json.dump(summary, handle, indent=1)


if __name__ == "__main__":
    main()
