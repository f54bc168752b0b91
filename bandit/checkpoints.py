"""Checkpoints of what Tests learned, from Redis to the database, and their restore.

Every SCOUT_CHECKPOINT_SECONDS one worker (of all workers and hosts: a Redis lease decides)
copies each Test's durable hashes into its `Checkpoint` row, and adds the snapshots of the
Tests' metric history that are due (bandit.history). When Redis turns out to have lost a
Test (its marker is missing but the database knows the Test), the first request that notices
writes the checkpoint back. At most the activity since the last checkpoint is lost.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bandit import history, metrics
from bandit.models import Checkpoint, MetricSnapshot, Test, lock_existing
from bandit.state import durable, lifecycle
from core import periodic

logger = logging.getLogger(__name__)


# Tests exported and written at a time. Copying every Test at once held all their hashes in
# memory together: with 1,000 Tests the worker's resident memory grew by 30-50 MB that the heap
# never gave back. A chunk bounds that to what a hundred Tests need.
CHUNK = 100


def _totals(hashes: dict[str, dict[str, str]]) -> tuple[int, int]:
    return int(float(hashes["learn"].get("u", 0))), int(hashes["stats"].get("n", 0))


@dataclass(frozen=True)
class _Written:
    """What the database holds of a Test: its checkpoint's totals, and its last history
    snapshot's totals and time."""

    checkpoint: tuple[int, int] | None
    history: tuple[int, int]
    history_at: dt.datetime | None


COPY_FIELDS = ["data", "taken_at", "total_updates", "total_predictions"]
HISTORY_FIELDS = ["history_at", "history_updates", "history_predictions"]


def _upsert(rows: list[Checkpoint], fields: list[str]) -> None:
    """Write a chunk's checkpoints in one statement (INSERT ... ON CONFLICT DO UPDATE of
    `fields`): with 10,000 Tests decided for, a round writes 10,000 checkpoints, and two
    statements for each took the checkpointing worker's time from its requests."""
    if rows:
        Checkpoint.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["test"], update_fields=fields
        )


def checkpoint_all() -> int:
    """Copy every Test that changed since its last checkpoint, and add a history snapshot
    (bandit.history) for every Test whose totals moved since its last one, once that is
    SCOUT_HISTORY_SECONDS old; answer how many checkpoints were written.

    Whether a Test changed is told by its two totals (rewards and decisions counted), read for
    all Tests in one round trip; only changed Tests are exported, a chunk at a time.
    """
    tests = {str(pk): pk for pk in Test.objects.values_list("pk", flat=True)}
    written_before = {
        str(row[0]): _Written((row[1], row[2]), (row[3], row[4]), row[5])
        for row in Checkpoint.objects.values_list(
            "test_id",
            "total_updates",
            "total_predictions",
            "history_updates",
            "history_predictions",
            "history_at",
        )
    }
    never = _Written(None, (0, 0), None)
    now = timezone.now()
    changed, historic = set(), set()
    for test_id, totals in durable.totals(list(tests)).items():
        if totals is None:
            continue
        before = written_before.get(test_id, never)
        if before.checkpoint != totals:
            changed.add(test_id)
        if before.history != totals and history.due(before.history_at, now):
            historic.add(test_id)
    exporting = sorted(changed | historic)
    for start in range(0, len(exporting), CHUNK):
        exported = durable.export_tests(exporting[start : start + CHUNK])
        now = timezone.now()
        with transaction.atomic():
            existing = {str(pk) for pk in lock_existing(list(exported))}
            snapshots = []
            copies: dict[bool, list[Checkpoint]] = {False: [], True: []}  # by historic
            for test_id, hashes in exported.items():
                if test_id not in existing:  # deleted meanwhile
                    continue
                updates, predictions = _totals(hashes)
                copy = Checkpoint(
                    test_id=tests[test_id],
                    data=hashes,
                    taken_at=now,
                    total_updates=updates,
                    total_predictions=predictions,
                )
                if test_id in historic:
                    copy.history_at = now
                    copy.history_updates, copy.history_predictions = updates, predictions
                    snapshots.append(
                        MetricSnapshot(
                            test_id=tests[test_id], taken_at=now, totals=history.totals_of(hashes)
                        )
                    )
                copies[test_id in historic].append(copy)
            for historic_too, rows in copies.items():
                _upsert(rows, COPY_FIELDS + (HISTORY_FIELDS if historic_too else []))
            MetricSnapshot.objects.bulk_create(snapshots)
    history.purge_if_due()
    return len(changed)


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
