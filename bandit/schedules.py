"""A Test's schedule firing: its start, its end, and what it does at its end.

A Test with a `starts_at` in the future waits: it serves its first variant in service to
everyone (`is_active: false`) and counts no reward (its reward script refuses them while `ns`
is in its meta hash). At `ends_at` it does what `on_end` says (services.Schedule): it goes on
learning, or rolls out a variant through the rollout service (audited and announced like an
operator's rollout).

Every SCOUT_SCHEDULE_CHECK_SECONDS one worker of all hosts (a Redis lease) looks for the
starts and ends that are due. Each fires in a transaction that locks its Test and finds it not
fired yet, so it fires once whichever host and worker look; one that was due while Scout was
down fires at the first check after it is back. The change is in Redis before the
transaction commits, and every decision's and reward's script reads it: it holds from the
next request on, on every worker.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bandit import announcements, changes, snapshots, winners
from bandit.announcements import SCHEDULE, announce
from bandit.models import Test
from bandit.services import Schedule
from bandit.state import lifecycle
from core import periodic
from core.time import iso
from system import audit
from webhooks import events

logger = logging.getLogger(__name__)


def fire_due() -> int:
    """Fire every start and end that is due; answer how many fired."""
    now = timezone.now()
    fired = 0
    due_starts = Test.objects.filter(started_at__isnull=True, starts_at__lte=now)
    for test_id in due_starts.values_list("pk", flat=True):
        fired += start(str(test_id))
    due_ends = Test.objects.filter(
        ended_at__isnull=True, ends_at__lte=now, started_at__isnull=False
    )
    for test_id in due_ends.values_list("pk", flat=True):
        fired += end(str(test_id))
    return fired


def _unfired(test_id: str, field: str) -> Test | None:
    """The Test locked until the transaction ends, if `field` has not fired yet."""
    return Test.objects.select_for_update().filter(pk=test_id, **{f"{field}__isnull": True}).first()


def start(test_id: str) -> bool:
    """Start a Test that waits for its start (False: it started already, or is gone)."""
    with transaction.atomic():
        test = _unfired(test_id, "started_at")
        if test is None:
            return False
        test.started_at = timezone.now()
        test.save(update_fields=["started_at"])
        late = (test.started_at - test.starts_at).total_seconds() if test.starts_at else 0.0
        announcements.started(test)
        lifecycle.set_started(test_id, test.served_rollout)
    snapshots.forget(test_id)
    logger.info("Test started", extra={"test_id": test_id, "late_seconds": round(late, 3)})
    return True


def end(test_id: str) -> bool:
    """End a running Test as its `on_end` says (False: it ended already, or is gone)."""
    with transaction.atomic():
        test = _unfired(test_id, "ended_at")
        if test is None or test.started_at is None:
            return False
        test.ended_at = timezone.now()
        test.save(update_fields=["ended_at"])
        told: dict[str, Any] = {"ends_at": iso(test.ends_at), "on_end": test.on_end}
        variant = _variant_at_end(test)
        if variant is not None:
            # The rollout service locks the same row in this transaction, audits and announces.
            _, variant = changes.rollout(test_id, variant, SCHEDULE)
            told.update(variant_id=variant, variant_label=test.variants.get(str(variant)))
        audit.record(SCHEDULE, "test_ended", test_id, **told)
        announce(events.TEST_ENDED, test, SCHEDULE, ended_at=iso(test.ended_at), **told)
    logger.info("Test ended", extra={"test_id": test_id, **told})
    return True


def _variant_at_end(test: Test) -> int | None:
    """The variant to roll out at the end, or None to go on learning."""
    if test.on_end == Schedule.VARIANT:
        return test.on_end_variant
    if test.on_end == Schedule.ROLLOUT_BEST:
        return most_likely_best(test)
    return None


def most_likely_best(test: Test) -> int:
    """The variant in service with the highest probability of being best over all visitors
    (bandit.winners), however few rewards it has: the operator asked for one at the end."""
    snapshot = snapshots.get(str(test.id))
    if snapshot is None:  # deleted meanwhile: the caller's lock says otherwise
        return test.variants_in_service()[0]
    standing = winners.standing(snapshot)
    return snapshot.definition.variant_ids[int(np.argmax(standing.probability_best))]


def start_background() -> None:
    """Start this worker's schedule check (once per process)."""
    periodic.start("schedules", settings.SCOUT_SCHEDULE_CHECK_SECONDS, fire_due)
