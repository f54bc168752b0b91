"""Marking a Test in Redis, removing all of its keys, and the settings its scripts read from
its meta hash (a rollout, a reward window), which the database owns and Redis mirrors."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bandit.state import keys
from core.redis_client import connection, guarded

# The fields of a Test's meta hash that mirror its definition in the database.
FROM_DATABASE = ("rollout", "rw", "dr", "dv", "st", "ret", "ns")


def meta_fields(
    *,
    rollout: int | None,
    reward_window_seconds: int | None,
    default_reward: float,
    definition_version: int = 0,
    sticky_seconds: int | None = None,
    retired: Sequence[int] = (),
    not_started: bool = False,
) -> dict[str, str | None]:
    """What a Test's meta hash says of its definition (None: the field is absent; an absent
    `dv` is version 0). `sticky_seconds`: None when sticky assignment is off; `not_started`:
    the Test waits for its scheduled start, and its reward script counts nothing (`ns`)."""
    return {
        "ns": "1" if not_started else None,
        "st": None if sticky_seconds is None else str(sticky_seconds),
        "ret": retired_field(retired),
        "rollout": None if rollout is None else str(rollout),
        "rw": None if reward_window_seconds is None else str(reward_window_seconds),
        "dr": repr(float(default_reward)),
        "dv": str(definition_version) if definition_version else None,
    }


@guarded
def create_test(test_id: str, fields: dict[str, str | None] | None = None) -> None:
    """Mark a Test in Redis, with the meta fields of its definition (meta_fields)."""
    marked: list[str | int] = ["created", int(time.time())]
    for name, value in (fields or {}).items():
        if value is not None:
            marked += [name, value]
    connection().hset(keys.meta(test_id), items=marked)


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


@guarded
def set_started(test_id: str, rollout: int | None) -> None:
    """The Test's scheduled start: from the next request on, on every worker, its rewards
    count and it serves `rollout` (None: it learns and samples)."""
    pipe = connection().pipeline(transaction=True)
    pipe.hdel(keys.meta(test_id), "ns")
    if rollout is None:
        pipe.hdel(keys.meta(test_id), "rollout")
    else:
        pipe.hset(keys.meta(test_id), "rollout", rollout)
    pipe.execute()


@guarded
def set_reward_window(test_id: str, seconds: int | None, default_reward: float) -> None:
    """From the next decision on, on every worker: decisions wait `seconds` for their reward
    (None: for ever); a window that closes counts `default_reward`."""
    pipe = connection().pipeline(transaction=True)
    if seconds is None:
        pipe.hdel(keys.meta(test_id), "rw")
    else:
        pipe.hset(keys.meta(test_id), "rw", seconds)
    pipe.hset(keys.meta(test_id), "dr", repr(float(default_reward)))
    pipe.execute()


def retired_field(retired: Sequence[int]) -> str | None:
    """The retired variants as decide.lua looks them up: ",1,5," (None for none)."""
    return "," + ",".join(map(str, sorted(retired))) + "," if retired else None


@guarded
def set_definition_version(test_id: str, version: int, retired: Sequence[int]) -> None:
    """From the next request on, every worker whose copy of the Test's variants is older than
    `version` reads them again (decide.lua and reward.lua check), and the units assigned to a
    retired variant are assigned anew."""
    pipe = connection().pipeline(transaction=True)
    pipe.hset(keys.meta(test_id), "dv", version)
    field = retired_field(retired)
    if field is None:
        pipe.hdel(keys.meta(test_id), "ret")
    else:
        pipe.hset(keys.meta(test_id), "ret", field)
    pipe.execute()


@guarded
def definition_version(test_id: str) -> int:
    """The version of the Test's variants in service that Redis holds (0 when none is set)."""
    return int(connection().hget(keys.meta(test_id), "dv") or 0)
