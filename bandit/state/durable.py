"""What checkpoints copy of a Test (its DURABLE hashes), and the refill of a lost Test."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bandit.state import keys
from bandit.state.lifecycle import FROM_DATABASE
from core.redis_client import connection, guarded
from core.scripts import beside

_RESTORE = beside(__file__, "restore.lua")


@guarded
def export_tests(test_ids: Sequence[str]) -> dict[str, dict[str, dict[str, str]]]:
    """The durable hashes of each Test that Redis has (one round trip for all of them)."""
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        for name in keys.DURABLE:
            pipe.hgetall(keys.durable(test_id, name))
    replies = iter(pipe.execute())
    exported = {}
    for test_id in test_ids:
        hashes = {
            name: {k.decode(): v.decode() for k, v in next(replies).items()}
            for name in keys.DURABLE
        }
        if hashes["meta"]:
            exported[test_id] = hashes
    return exported


@guarded
def missing(test_ids: Sequence[str]) -> set[str]:
    """The Tests among these that Redis has no state for, in one round trip."""
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        pipe.exists(keys.meta(test_id))
    replies = pipe.execute() if test_ids else []
    return {test_id for test_id, exists in zip(test_ids, replies, strict=True) if not exists}


@guarded
def totals(test_ids: Sequence[str]) -> dict[str, tuple[int, int] | None]:
    """Each Test's rewards and decisions counted so far, in one round trip; None for a Test
    that Redis does not have."""
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        pipe.exists(keys.meta(test_id))
        pipe.hget(keys.learn(test_id), "u")
        pipe.hget(keys.stats(test_id), "n")
    replies = pipe.execute() if test_ids else []
    answer: dict[str, tuple[int, int] | None] = {}
    for i, test_id in enumerate(test_ids):
        exists, updates, predictions = replies[3 * i : 3 * i + 3]
        answer[test_id] = (int(float(updates or 0)), int(predictions or 0)) if exists else None
    return answer


@guarded
def restore_test(
    test_id: str, hashes: dict[str, dict[str, str]], definition: dict[str, str | None]
) -> bool:
    """Refill a Test that Redis lost, unless another worker already did (atomic). The meta
    fields that mirror the database (lifecycle.FROM_DATABASE) are taken from `definition`
    (lifecycle.meta_fields), not from the checkpoint, which may be older."""
    meta = dict(hashes.get("meta") or {"created": str(int(time.time()))})
    for name in FROM_DATABASE:
        meta.pop(name, None)
    meta.update({name: value for name, value in definition.items() if value is not None})
    filled = {**hashes, "meta": meta}
    args: list[object] = []
    for name in keys.DURABLE:
        fields = filled.get(name) or {}
        args.append(len(fields))
        for field, value in fields.items():
            args += [field, value]
    hash_keys = [keys.durable(test_id, name) for name in keys.DURABLE]
    return bool(_RESTORE(hash_keys, args))
