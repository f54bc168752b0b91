"""Fill a Test's Redis state fast through Scout's own service layer (no HTTP).

Run inside a Scout deployment's environment (SCOUT_DATA_DIR of a running `scout serve`):
`python -m benchmarks.prefill decide|reward TEST_ID START COUNT`, or
`python -m benchmarks.prefill tests IDS_FILE START COUNT` to create COUNT Tests of three
variants, each taught by 20 rewards with contexts, their ids appended to IDS_FILE. Decisions
go through
`services.recommend` (validation, the snapshot, a Thompson sample and the decision script);
rewards through `services.record_rewards` in batches of 1,000 by request id, which is what
`update_model` calls. Only the HTTP layer is skipped, so a million of each takes minutes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

DEVICES, COUNTRIES, PLANS = ("mobile", "desktop", "tablet"), ("de", "fr", "us", "uk"), ("a", "b")


def request_id(n: int) -> str:
    """As long as a typical client's id (a UUID's 32 hex digits)."""
    return f"{n:032x}"


def context(n: int) -> dict[str, object]:
    """Four keys: three categories and a number."""
    return {
        "device": DEVICES[n % 3],
        "country": COUNTRIES[n % 4],
        "plan": PLANS[n % 2],
        "visits": n % 17,
    }


def main() -> None:
    kind, test_id, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from bandit import services
    from bandit.services import RewardInput
    from system import config

    in_force = config.known()
    began = time.perf_counter()
    if kind == "tests":
        with open(test_id, "a") as ids:
            for n in range(start, start + count):
                ids.write(_taught_test(n, in_force) + "\n")
    elif kind == "decide":
        for n in range(start, start + count):
            services.recommend(
                test_id, context=context(n), request_id=request_id(n), settings_in_force=in_force
            )
    else:
        for first in range(start, start + count, 1000):
            last = min(first + 1000, start + count)
            updates = [
                RewardInput(
                    index=n - first,
                    reward=float(n % 3 == 0),
                    variant=None,
                    by_label=False,
                    request_id=request_id(n),
                    context={},
                    inline=False,
                )
                for n in range(first, last)
            ]
            services.record_rewards(test_id, updates, settings_in_force=in_force)
    print(json.dumps({"kind": kind, "count": count, "seconds": time.perf_counter() - began}))


def _taught_test(n: int, in_force: Any) -> str:
    from bandit import defaults, policy, services
    from bandit.services import RewardInput

    test = services.create_test(
        name=f"many-{n}",
        variants={0: "a", 1: "b", 2: "c"},
        test_settings=defaults.current(),
        sampling=policy.OPTIMISTIC,
    )
    updates = [
        RewardInput(
            index=i,
            reward=float((i + n) % 2),
            variant=i % 3,
            by_label=False,
            request_id=None,
            context=context(i),
            inline=True,
        )
        for i in range(20)
    ]
    services.record_rewards(str(test.id), updates, settings_in_force=in_force)
    return str(test.id)


if __name__ == "__main__":
    main()
