"""Reward windows: a decision that gets no reward within its Test's window counts once with the
Test's default reward.

A product backend that reports a reward only when a visitor converts never reports the visits
that did not: without a window, Scout would learn that every variant converts every time. With
one, each decision waits in its Test's due set in Redis (bandit.state.keys) until its reward
comes or its window closes, and the reward script decides which of the two counts, atomically:
the first to run takes the decision out of the set, so it counts its real reward or the default,
never both and never neither, whichever worker or host runs either, and however often.

Closing is the work of a background thread in every worker. Each round, one worker of all hosts
(a Redis lease decides) looks at the Tests with a window, and only at those whose first waiting
decision is due: each look remembers when the next one closes, and a decision made later closes
later still (its window starts then). So the work is in proportion to the decisions that close,
not to the decisions that wait, and no key is ever scanned. A worker that stops between two
rounds loses nothing: the decisions wait in Redis for the next round, on any worker.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from bandit import metrics, policy, snapshots
from bandit.models import Test
from bandit.state import keys, rewards
from core import periodic
from core.observability.metrics import count, observe
from system import config

logger = logging.getLogger(__name__)

# Bounds of a Test's reward window: a second to thirty days.
REWARD_WINDOW_SECONDS = (1, 30 * 86_400)
# A window turned off still closes the decisions made while it was on: its Test is looked at
# for the old window and this long after.
CLOSE_BY_MARGIN_SECONDS = 60
# Decisions closed by one script run: a round trip of a bounded size.
BATCH = 500


@dataclass
class _Looked:
    """What the last look at a Test's due set found."""

    at: float
    next_closes: float | None  # when its first waiting decision closes (None: none waits)

    def due(self, now: float, window_seconds: int | None) -> bool:
        first = self.next_closes if self.next_closes is not None else math.inf
        # A decision made after the look closes a window after it: the Test's window now,
        # which an operator may have shortened since.
        if window_seconds is not None:
            first = min(first, self.at + window_seconds)
        return now >= first


_looked: dict[str, _Looked] = {}


def _tests_with_windows() -> list[Test]:
    return list(
        Test.objects.filter(
            Q(reward_window_seconds__isnull=False) | Q(reward_windows_close_by__gt=timezone.now())
        ).only(
            "id",
            "variants",
            "reward_window_seconds",
            "default_reward",
            "forgetting",
            "trail_time_window_minutes",
            "trail_bucket_granularity_seconds",
        )
    )


def close_due() -> int:
    """Close every reward window that is due, of every Test; answer how many decisions
    counted the default reward."""
    tests = _tests_with_windows()
    known = {str(test.id) for test in tests}
    for test_id in list(_looked):
        if test_id not in known:
            del _looked[test_id]
    defaulted = 0
    for test in tests:
        test_id = str(test.id)
        looked = _looked.get(test_id)
        if looked is not None and not looked.due(time.time(), test.reward_window_seconds):
            continue
        try:
            defaulted += close_test(test)
        except keys.TestMissing:
            _looked.pop(test_id, None)  # deleted meanwhile, or Redis lost it: nothing waits
    return defaulted


def close_test(test: Test) -> int:
    """Close the Test's reward windows that are due; answer how many decisions counted the
    default reward."""
    test_id = str(test.id)
    defaulted = 0
    while True:
        looked_at = time.time()
        waiting, next_closes = rewards.due_decisions(test_id, BATCH)
        if waiting:
            outcomes = rewards.close_windows(
                test_id,
                waiting,
                context_ttl_seconds=config.cached().context_ttl_seconds,
                trail_window_seconds=test.trail_time_window_minutes * 60,
                trail_granularity_seconds=test.trail_bucket_granularity_seconds,
                recent_decay=policy.RECENT_DECAY if test.forgetting == policy.ON_CHANGE else 0.0,
            )
            closed = [o for o in outcomes if o.status == rewards.DEFAULTED]
            if closed:
                _counted(test, closed)
                defaulted += len(closed)
        if len(waiting) < BATCH:
            _looked[test_id] = _Looked(looked_at, next_closes)
            return defaulted


def _counted(test: Test, closed: list[rewards.Outcome]) -> None:
    """Tell the metrics and this worker's snapshot of the defaults counted."""
    test_id = str(test.id)
    labels = metrics.variant_labels(test.variant_ids())
    for outcome in closed:
        variant = labels.get(outcome.variant_id, metrics.OTHER_VARIANTS)
        count(metrics.MODEL_UPDATES, test_id, variant)
        observe(metrics.MODEL_REWARD, test.default_reward, test_id)
    snapshots.learned_more(test_id)
    count(metrics.DEFAULT_REWARDS, test_id, amount=len(closed))
    logger.debug("Reward windows closed", extra={"test_id": test_id, "defaulted": len(closed)})


def start_background() -> None:
    """Start this worker's thread that closes reward windows (once per process)."""
    periodic.start("reward-windows", settings.SCOUT_REWARD_WINDOW_CHECK_SECONDS, close_due)
