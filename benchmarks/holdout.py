"""What `evaluation.holdout` says of a Test played through `scout serve`: three variants that
convert at 4, 5 and 6%, a holdout share of 0.2, every reward reported by request id in batches
of 100. The README's example of reading the lift is one run of this.

    .venv/bin/python -m benchmarks.holdout [--decisions 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import time

import httpx
import numpy as np

from benchmarks.servers import Scout

RATES = (0.04, 0.05, 0.06)
BATCH = 100


def play(client: httpx.Client, test_id: str, decisions: int, rng: np.random.Generator) -> None:
    for start in range(0, decisions, BATCH):
        updates = []
        for t in range(start, min(start + BATCH, decisions)):
            body = {"cb_model_id": test_id, "request_id": f"visit-{t}"}
            answer = client.post("/api/fetch_recommended_variant", json=body).raise_for_status()
            variant = answer.json()["variant_id"]
            updates.append(
                {"request_id": f"visit-{t}", "reward": float(rng.random() < RATES[variant])}
            )
        client.post(f"/api/update_model/{test_id}", json={"updates": updates}).raise_for_status()


def evaluation_once_logged(client: httpx.Client, test_id: str, rewards: int) -> dict:
    """`model_details`' evaluation once the decision log holds every reward."""
    deadline = time.monotonic() + 120
    while True:
        evaluation = client.get(f"/api/model_details/{test_id}").json()["evaluation"]
        if evaluation["logged_rewards"] >= rewards or time.monotonic() > deadline:
            return evaluation
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with Scout() as scout, httpx.Client(base_url=scout.url, timeout=30) as client:
        test_id = scout.create_test(len(RATES), holdout_share=0.2)
        play(client, test_id, args.decisions, rng)
        evaluation = evaluation_once_logged(client, test_id, args.decisions)
    print(json.dumps(evaluation["holdout"], indent=2))


if __name__ == "__main__":
    main()
