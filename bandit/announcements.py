"""What a Test's changes tell the webhooks that listen (webhooks.events), and the periodic
check that announces a Test's winner when one is found.

Each announcement is made inside the transaction of its change, so that it is sent if and
only if the change was kept.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bandit import snapshots, winners
from bandit.models import Test
from bandit.state import reads
from core import periodic
from core.time import iso
from system import audit
from webhooks import events

logger = logging.getLogger(__name__)


def announce(type: str, test: Test, actor: audit.Actor | None = None, **data: Any) -> None:
    """Put a Test's event in the webhooks' outbox: the Test's id and name, what changed, and
    who changed it."""
    told: dict[str, Any] = {"test_id": str(test.id), "name": test.name, **data}
    if actor is not None:
        told["by"] = actor.name
    events.emit(type, told, subject=str(test.id))


# Who the audit log and the webhooks name for what a schedule did (bandit.schedules).
SCHEDULE = audit.Actor("schedule")


def started(test: Test) -> None:
    """A scheduled Test's start, audited and announced (TEST_STARTED)."""
    audit.record(SCHEDULE, "test_started", str(test.id), starts_at=iso(test.starts_at))
    announce(
        events.TEST_STARTED,
        test,
        SCHEDULE,
        starts_at=iso(test.starts_at),
        started_at=iso(test.started_at),
    )


def label_of(test: Test, variant_id: int) -> Any:
    return test.variants.get(str(variant_id))


# --- Winners --------------------------------------------------------------------------------

# The rewards each Test had when its winner was last looked for, in this process: a Test
# that learned nothing since is not looked at again.
_rewards_seen: dict[str, int] = {}


def check_winners() -> int:
    """Look for a winner in each Test that learned since the last look; store it and announce
    WINNER_FOUND when it is found or changes. Answers how many were announced."""
    tests = {str(test.id): test for test in Test.objects.all()}
    counts = reads.reward_counts(list(tests))
    announced = 0
    for test_id, test in tests.items():
        rewards = counts[test_id]
        if rewards < settings.SCOUT_WINNER_MINIMUM_REWARDS or _rewards_seen.get(test_id) == rewards:
            continue
        _rewards_seen[test_id] = rewards
        snapshot = snapshots.get(test_id)
        found = winners.winner(snapshot, rewards=rewards) if snapshot is not None else None
        if found is None or found["variant_id"] == test.winner_variant:
            continue
        with transaction.atomic():
            changed = Test.objects.filter(pk=test.pk, winner_variant=test.winner_variant).update(
                winner_variant=found["variant_id"], winner_found_at=timezone.now()
            )
            if changed:
                announce(events.WINNER_FOUND, test, **found)
                announced += 1
                logger.info("Winner found", extra={"test_id": test_id, **found})
    for gone in set(_rewards_seen) - set(tests):
        del _rewards_seen[gone]
    return announced


def start_background() -> None:
    """Start this worker's winner check (once per process)."""
    periodic.start("winners", settings.SCOUT_WINNER_CHECK_SECONDS, check_winners)
