"""Each Test's stream of decisions and rewards in Redis, on their way to the decision log in
the database (bandit.decision_log).

The decision and reward scripts append to the stream in the same atomic step that stores the
decision or counts the reward (decide.lua, reward.lua), so an entry exists exactly when the
client was answered, and the request path never writes to the database. An entry's id is the
time Redis appended it (milliseconds) and a sequence number; the stream keeps at most
SCOUT_DECISION_LOG_BACKLOG entries, the oldest going first, for a database that cannot take
them for a while.

So that the worker that moves the log reads the streams that have entries, not every Test's,
each worker notes the Tests it appended to (`appended`, in memory, on the request path) and
adds them to one shared set every SCOUT_DECISION_LOG_SECONDS (`share_appended`, one SADD);
the mover takes the set (`take_appended`). A worker that stops before it shares loses nothing
but the note: the mover also reads every stream now and then (bandit.decision_log).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from redis.exceptions import RedisError

from bandit.state import keys
from core.redis_client import connection, guarded

# The Tests whose streams this worker appended to since it last shared them. No lock: adding
# to a set, copying it and removing a copy's members from it are each one step under the GIL.
_appended: set[str] = set()


def backlog() -> int:
    """What the scripts are told: the most entries a stream keeps, or 0 for no log."""
    if settings.SCOUT_DECISION_LOG_DAYS <= 0:
        return 0
    return int(settings.SCOUT_DECISION_LOG_BACKLOG)


def appended(test_id: str) -> None:
    """A decision or reward script ran for the Test and may have appended to its stream."""
    if settings.SCOUT_DECISION_LOG_DAYS > 0:
        _appended.add(test_id)


@guarded
def share_appended() -> int:
    """Add the Tests this worker appended to since it last did to the shared set (one SADD);
    answer how many. Kept for the next time when Redis cannot take them."""
    taken = set(_appended)
    # A Test noted again meanwhile is among those shared now, and its entries are read after.
    _appended.difference_update(taken)
    if not taken:
        return 0
    try:
        mark_appended(taken)
    except RedisError:
        _appended.update(taken)
        raise
    return len(taken)


@guarded
def mark_appended(test_ids: Collection[str]) -> None:
    """Say that these Tests' streams have entries to move."""
    if test_ids:
        connection().sadd(keys.log_appended(), *test_ids)


# Tests taken out of the shared set per command.
_TAKEN_AT_ONCE = 10_000


@guarded
def take_appended() -> list[str]:
    """The Tests whose streams were appended to since the last call, taken out of the shared
    set (SPOP: each member is taken once, whichever worker takes it; one added meanwhile
    stays for the next call)."""
    client, name = connection(), keys.log_appended()
    taken: list[str] = []
    while True:
        members = cast(list[bytes], client.spop(name, _TAKEN_AT_ONCE) or [])
        taken += [member.decode() for member in members]
        if len(members) < _TAKEN_AT_ONCE:
            return sorted(taken)


@dataclass(frozen=True)
class Entry:
    """One entry of a Test's stream: `kind` "d" (a decision) or "r" (a reward), and the fields
    the script wrote (decide.lua, reward.lua)."""

    id: str  # "<milliseconds>-<sequence>"
    kind: str
    fields: dict[str, str]

    @property
    def at(self) -> float:
        """When Redis appended it, in seconds since the epoch."""
        return int(self.id.partition("-")[0]) / 1000.0


@guarded
def read(test_ids: Sequence[str], limit: int) -> dict[str, list[Entry]]:
    """The oldest `limit` entries of each Test's stream (Tests with none are left out), in
    one round trip (a pipeline, also across the slots of a Redis Cluster)."""
    pipe = connection().pipeline(transaction=False)
    for test_id in test_ids:
        pipe.xrange(keys.log(test_id), "-", "+", count=limit)
    found: dict[str, list[Entry]] = {}
    for test_id, entries in zip(test_ids, pipe.execute(), strict=True):
        if entries:
            found[test_id] = [_entry(entry_id, fields) for entry_id, fields in entries]
    return found


def _entry(entry_id: bytes, fields: Mapping[bytes, bytes]) -> Entry:
    decoded = {name.decode(): value.decode() for name, value in fields.items()}
    return Entry(entry_id.decode(), decoded.pop("k", ""), decoded)


@guarded
def trim(written: Mapping[str, str]) -> None:
    """Drop each Test's entries up to and including the entry id given, once they are in the
    database; entries appended meanwhile stay."""
    pipe = connection().pipeline(transaction=False)
    for test_id, last in written.items():
        milliseconds, _, sequence = last.partition("-")
        pipe.xtrim(
            keys.log(test_id), minid=f"{milliseconds}-{int(sequence) + 1}", approximate=False
        )
    pipe.execute()
