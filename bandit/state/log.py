"""Each Test's stream of decisions and rewards in Redis, on their way to the decision log in
the database (bandit.decision_log).

The decision and reward scripts append to the stream in the same atomic step that stores the
decision or counts the reward (decide.lua, reward.lua), so an entry exists exactly when the
client was answered, and the request path never writes to the database. An entry's id is the
time Redis appended it (milliseconds) and a sequence number; the stream keeps at most
SCOUT_DECISION_LOG_BACKLOG entries, the oldest going first, for a database that cannot take
them for a while.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings

from bandit.state import keys
from core.redis_client import connection, guarded


def backlog() -> int:
    """What the scripts are told: the most entries a stream keeps, or 0 for no log."""
    if settings.SCOUT_DECISION_LOG_DAYS <= 0:
        return 0
    return int(settings.SCOUT_DECISION_LOG_BACKLOG)


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
