"""What replaying one learning setting on a decision log costs (bandit.replay), in process:
a log of 100,000 uniform decisions, for Tests without a context (3 and 10 variants), with
three segments, and with five numeric features (contexts that never repeat). The evaluation
replays each distinct setting once: up to 12 without a context, 3 with one.

    .venv/bin/python -m benchmarks.replay_cost
"""

from __future__ import annotations

import time

import numpy as np

from bandit import policy, replay

DECISIONS = 100_000


def log(
    kind: str, decisions: int
) -> tuple[list[int], np.ndarray, np.ndarray, replay.Contexts | None]:
    """Variants, chosen positions, 0/1 rewards and the contexts of a simulated uniform log."""
    rng = np.random.default_rng(0)
    variants = 10 if kind == "10 variants" else 3
    chosen = rng.integers(variants, size=decisions)
    rates = 0.05 + 0.01 * chosen
    contexts = None
    if kind == "three segments":
        segment = rng.integers(3, size=decisions)
        rates = np.where(chosen == segment, 0.1, 0.05)
        contexts = replay.Contexts(np.hstack([np.ones((3, 1)), np.eye(3)]), segment)
    elif kind == "five numbers":
        numbers = rng.normal(size=(decisions, 5))
        rates = np.clip(0.05 + 0.02 * numbers[np.arange(decisions), chosen % 5], 0, 1)
        dense = np.hstack([np.ones((decisions, 1)), numbers])
        contexts = replay.Contexts(dense, np.arange(decisions))
    rewards = (rng.random(decisions) < rates).astype(float)
    return list(range(variants)), chosen, rewards, contexts


def seconds(kind: str, decisions: int = DECISIONS) -> float:
    """The best of three replays of the default setting on the log."""
    variants, chosen, rewards, contexts = log(kind, decisions)
    setting = replay.Setting(policy.FOCUSED, policy.POOLED, policy.ON_CHANGE)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        replay.probabilities(
            setting,
            variants,
            chosen,
            rewards,
            minimum_updates=100,
            minimum_share=0.0,
            contexts=contexts,
        )
        timings.append(time.perf_counter() - started)
    return min(timings)


KINDS = ("3 variants", "10 variants", "three segments", "five numbers")


def main() -> None:
    print(f"| log of {DECISIONS:,} decisions | one setting replayed |")
    print("| --- | --- |")
    for kind in KINDS:
        print(f"| {kind} | {seconds(kind):.2f} s |")


if __name__ == "__main__":
    main()
