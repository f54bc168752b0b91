"""The shared log stream in Redis: every worker and host appends its log entries to one
stream, `P:logs`, capped near SCOUT_LOG_STREAM_MAXLEN entries. Fields: `l` (numeric level), `t`
(Test id or empty) and `d` (the entry as JSON). `/logs/stream` reads it (core.observability.stream).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from redis import Redis

from core.redis_client import connection, dedicated_to, key, measured


def _logs() -> str:
    return key("logs")


# Stream entries, (id, fields), as the clients here return them: bytes, since they do not
# decode responses. redis-py's type hints also allow the str of a decoding client.
_Entries = list[tuple[bytes, dict[bytes, bytes]]]


@measured
def append_logs(entries: Sequence[tuple[int, str, str]]) -> None:
    """Append (level number, Test id or "", entry JSON) records in one pipeline.

    The stream is trimmed approximately (`MAXLEN ~`), which lets Redis drop whole nodes: cheap,
    and it never holds much more than the cap.
    """
    pipe = connection().pipeline(transaction=False)
    for level, test_id, data in entries:
        pipe.xadd(
            _logs(),
            {"l": level, "t": test_id, "d": data},
            maxlen=settings.SCOUT_LOG_STREAM_MAXLEN,
            approximate=True,
        )
    pipe.execute()


@dataclass(frozen=True)
class LogEntry:
    id: str
    level: int
    test_id: str
    data: str  # the entry as JSON


def log_reader(block_seconds: float) -> Redis:
    """A connection of its own for one live stream, closed by the caller when the stream ends.

    A blocking read holds its connection for up to `block_seconds`, so it must not come from
    (or starve) the pool the hot path uses, and its read timeout must outlast the block.
    """
    timeout = settings.SCOUT_REDIS_TIMEOUT_SECONDS
    return dedicated_to(
        _logs(),
        socket_timeout=block_seconds + timeout,
        client_name=f"{settings.SCOUT_REDIS_KEY_PREFIX}:log-stream",
    )


def last_log_id(client: Redis) -> str:
    """The id of the newest entry held ("0-0" when the stream is empty)."""
    newest = cast(_Entries | None, client.xrevrange(_logs(), count=1))
    return newest[0][0].decode() if newest else "0-0"


def read_logs(client: Redis, after: str, *, block_seconds: float, count: int) -> list[LogEntry]:
    """Entries after the id `after`, oldest first; waits up to `block_seconds` for new ones."""
    reply = cast(
        # RESP2's reply: [(stream name, entries)] for the one stream read.
        list[tuple[bytes, _Entries]],
        client.xread({_logs(): after}, count=count, block=max(1, int(block_seconds * 1000))),
    )
    if not reply:
        return []
    return [
        LogEntry(
            id=entry_id.decode(),
            level=int(fields.get(b"l", 0)),
            test_id=fields.get(b"t", b"").decode(),
            data=fields.get(b"d", b"{}").decode(),
        )
        for entry_id, fields in reply[0][1]
    ]
