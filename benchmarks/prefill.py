"""Fill a Test's Redis state fast through Scout's own service layer (no HTTP).

Run inside a Scout deployment's environment (SCOUT_DATA_DIR of a running `scout serve`):
`python -m benchmarks.prefill decide|reward TEST_ID START COUNT`, or
`python -m benchmarks.prefill tests IDS_FILE START COUNT` to create COUNT Tests of three
variants, each taught by 20 rewards with contexts, their ids appended to IDS_FILE, or
`python -m benchmarks.prefill log TEST_ID START COUNT` to write COUNT decisions (every other
one rewarded) into a Test's decision log in the database. Decisions
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
    elif kind == "log":
        _logged(test_id, start, count)
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


def _logged(test_id: str, start: int, count: int) -> None:
    """Decisions and rewards straight into the decision log's tables, as the worker that
    moves the log writes them (bandit.decision_log), a batch of 10,000 at a time."""
    from django.db import connection, transaction

    from bandit import decision_log
    from bandit.models import LoggedDecision, LoggedReward, Test

    test = Test._meta.pk.get_db_prep_save(Test.objects.get(pk=test_id).pk, connection)
    learning = json.dumps({"sampling": "focused", "prior": "pooled", "holdout_share": 0.1})
    for first in range(start, start + count, 10_000):
        numbers = range(first, min(first + 10_000, start + count))
        at = decision_log._time(time.time())
        decisions = [
            (
                test,
                f"{n}-0",
                at,
                request_id(n),
                n % 3,
                0.3,
                n % 10 == 0,
                False,
                json.dumps(context(n)),
                learning,
                "",
            )
            for n in numbers
        ]
        rewards = [
            (test, f"{n}-1", at, request_id(n), n % 3, float(n % 3 == 0), False, n % 10 == 0, False)
            for n in numbers
            if n % 2 == 0
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                decision_log._insert(LoggedDecision, decision_log._DECISION_COLUMNS), decisions
            )
            cursor.executemany(
                decision_log._insert(LoggedReward, decision_log._REWARD_COLUMNS), rewards
            )


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
