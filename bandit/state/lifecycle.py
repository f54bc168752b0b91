"""Marking a Test in Redis, removing all of its keys, and its rollout."""

from __future__ import annotations

import time

from bandit.state import keys
from core.redis_client import connection, guarded


@guarded
def create_test(test_id: str) -> None:
    connection().hset(keys.meta(test_id), "created", int(time.time()))


@guarded
def delete_test(test_id: str) -> int:
    """Remove every key of a Test, stored contexts and trails included."""
    client = connection()
    removed = 0
    batch: list[bytes] = []
    for found in client.scan_iter(match=f"{keys.tag(test_id)}:*", count=1000):
        batch.append(found)
        if len(batch) >= 500:
            removed += client.unlink(*batch)
            batch.clear()
    if batch:
        removed += client.unlink(*batch)
    return removed


@guarded
def set_rollout(test_id: str, variant_id: int | None) -> None:
    if variant_id is None:
        connection().hdel(keys.meta(test_id), "rollout")
    else:
        connection().hset(keys.meta(test_id), "rollout", variant_id)
