"""Checkpoints of what Tests learned, from Redis to the database, and their restore.

Every SCOUT_CHECKPOINT_SECONDS one worker (of all workers and hosts: a Redis lease decides)
copies each Test's durable hashes into its `Checkpoint` row. When Redis turns out to have lost a
Test (its marker is missing but the database knows the Test), the first request that notices
writes the checkpoint back. At most the activity since the last checkpoint is lost.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bandit import metrics
from bandit.models import Checkpoint, Test, lock_existing
from bandit.state import durable, lifecycle
from core import periodic

logger = logging.getLogger(__name__)


# Tests exported and written at a time. Copying every Test at once held all their hashes in
# memory together: with 1,000 Tests the worker's resident memory grew by 30-50 MB that the heap
# never gave back. A chunk bounds that to what a hundred Tests need.
CHUNK = 100


def _totals(hashes: dict[str, dict[str, str]]) -> tuple[int, int]:
    return int(float(hashes["learn"].get("u", 0))), int(hashes["stats"].get("n", 0))


def checkpoint_all() -> int:
    """Copy every Test that changed since its last checkpoint; answer how many were written.

    Whether a Test changed is told by its two totals (rewards and decisions counted), read for
    all Tests in one round trip; only changed Tests are exported, a chunk at a time.
    """
    tests = {str(pk): pk for pk in Test.objects.values_list("pk", flat=True)}
    previous = {
        str(test_id): (updates, predictions)
        for test_id, updates, predictions in Checkpoint.objects.values_list(
            "test_id", "total_updates", "total_predictions"
        )
    }
    changed = [
        test_id
        for test_id, totals in durable.totals(list(tests)).items()
        if totals is not None and previous.get(test_id) != totals
    ]
    written = 0
    for start in range(0, len(changed), CHUNK):
        exported = durable.export_tests(changed[start : start + CHUNK])
        now = timezone.now()
        with transaction.atomic():
            existing = {str(pk) for pk in lock_existing(list(exported))}
            for test_id, hashes in exported.items():
                if test_id not in existing:  # deleted meanwhile
                    continue
                updates, predictions = _totals(hashes)
                Checkpoint.objects.update_or_create(
                    test_id=tests[test_id],
                    defaults={
                        "data": hashes,
                        "taken_at": now,
                        "total_updates": updates,
                        "total_predictions": predictions,
                    },
                )
        written += len(exported)
    return written


def restore(test: Test) -> bool:
    """Refill a Test that Redis lost from its checkpoint (or mark it anew, if it has none)."""
    checkpoint = Checkpoint.objects.filter(test=test).first()
    hashes = checkpoint.data if checkpoint else {}
    definition = lifecycle.meta_fields(
        rollout=test.served_rollout,
        reward_window_seconds=test.reward_window_seconds,
        default_reward=test.default_reward,
        definition_version=test.definition_version,
        sticky_seconds=test.sticky_seconds if test.sticky_assignment else None,
        retired=test.retired_variants,
        not_started=test.waiting_to_start,
    )
    restored = durable.restore_test(str(test.id), hashes, definition)
    if restored:
        metrics.STATE_RESTORES.inc()
        logger.warning(
            "Restored a Test that Redis had lost",
            extra={
                "test_id": str(test.id),
                "checkpoint_taken_at": checkpoint.taken_at.isoformat() if checkpoint else None,
                "restored_updates": checkpoint.total_updates if checkpoint else 0,
            },
        )
    return restored


def start_background() -> None:
    """Start this worker's checkpoint thread (once per process)."""
    periodic.start("checkpoint", settings.SCOUT_CHECKPOINT_SECONDS, checkpoint_all)
