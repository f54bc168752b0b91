"""What the policy costs a decision, in process: `policy.choose` per sampling rule and
`policy.build_posterior` per prior, and the check for a change that a snapshot's build runs
(`policy.changed_variants`), and the estimate of every variant's propensity that a worker
makes once per posterior and context (`policy.choice_probabilities`), for Tests of 3, 10 and
50 variants with 0/1 rewards.

    .venv/bin/python -m benchmarks.policy_cost
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

import numpy as np

from bandit import policy

CALLS = 20_000
VARIANTS = (3, 10, 50)


def microseconds(call: Callable[[], object], calls: int | None = None) -> float:
    """The best of five timings of `calls` calls (CALLS unless given), per call: the least
    disturbed by the machine."""
    number = calls or CALLS
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def costs(variants: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    stats = policy.LearnedStats(
        list(range(variants)),
        np.full(variants, 100.0),
        np.full(variants, 5.0),
        np.full(variants, 5.0),
    )
    posterior = policy.build_posterior(stats)
    result = {}
    for rule in (policy.OPTIMISTIC, policy.FOCUSED):
        result[f"choose: {rule}"] = microseconds(
            lambda rule=rule: policy.choose(
                posterior, {}, rng, uniform=False, variants=variants, sampling=rule
            )
        )
    result["propensities (once per posterior)"] = microseconds(
        lambda: policy.choice_probabilities(posterior, {}, rng, uniform=False, variants=variants),
        calls=200,
    )
    for prior in (policy.FLAT, policy.POOLED):
        result[f"build: {prior} prior"] = microseconds(
            lambda prior=prior: policy.build_posterior(stats, prior)
        )
    # Every variant testable (recent and earlier evidence above the minimum), none changed.
    stats.recent = policy.Recent(
        np.full(variants, 60.0),
        np.full(variants, 3.0),
        np.full(variants, 3.0),
        np.full(variants, 40.0),
        np.zeros(variants),
    )
    assert not policy.changed_variants(stats)
    result["build: change check"] = microseconds(lambda: policy.changed_variants(stats))
    return result


def main() -> None:
    rows = {variants: costs(variants) for variants in VARIANTS}
    columns = list(rows[VARIANTS[0]])
    print("| variants | " + " | ".join(columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for variants, row in rows.items():
        print(f"| {variants} | " + " | ".join(f"{row[c]:.1f} us" for c in columns) + " |")


if __name__ == "__main__":
    main()
