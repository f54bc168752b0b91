"""The live log stream: Server-Sent Events read from the shared Redis stream of log entries.

Each open stream holds one worker thread and one Redis connection of its own. It reads with a
short blocking XREAD, writes a comment heartbeat when it has had nothing to say for
SCOUT_LOG_STREAM_HEARTBEAT_SECONDS (a write to a closed client fails, which is how the server
notices the client left), and frees the thread, the connection and its slot when it ends.
A worker accepts at most SCOUT_LOG_STREAMS_PER_WORKER streams, so streams can never take all
of its threads from the API.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from core.errors import InvalidInput, Unavailable
from core.observability import logstream
from core.observability.metrics import LOG_STREAMS_OPEN

logger = logging.getLogger(__name__)

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
# Longest wait in Redis between two looks at the client and at a shutdown (seconds).
_POLL_SECONDS = 1.0
_BATCH = 500
RETRY_MILLISECONDS = 3000

# Set when the worker is asked to stop gracefully (see `scout serve`): open streams end within
# a second instead of holding the shutdown for its whole grace period.
SHUTTING_DOWN = threading.Event()


@dataclass(frozen=True)
class StreamQuery:
    after: str | None  # resume after this entry id; None starts with the next entry
    min_level: int
    test_id: str | None


def parse_query(
    *, last_event_id: str | None, level: str | None, test_id: str | None
) -> StreamQuery:
    """Validate the resume point and the filters; bad values are a 400 that says why."""
    after = (last_event_id or "").strip() or None
    if after is not None and not _EVENT_ID.match(after):
        raise InvalidInput(
            "Last-Event-ID must be an event id this stream sent, like 1700000000000-0."
        )
    min_level = 0
    if level:
        name = level.strip().upper()
        if name not in LEVELS:
            raise InvalidInput(f"level must be one of {', '.join(LEVELS)}; got {level[:20]!r}.")
        min_level = LEVELS[name]
    clean_test = (test_id or "").strip() or None
    if clean_test is not None and len(clean_test) > 64:
        raise InvalidInput("test_id is a Test id (a UUID).")
    return StreamQuery(after=after, min_level=min_level, test_id=clean_test)


class _Slots:
    """How many streams this worker holds open, against its limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0

    def take(self) -> bool:
        with self._lock:
            if self.open >= settings.SCOUT_LOG_STREAMS_PER_WORKER:
                return False
            self.open += 1
        LOG_STREAMS_OPEN.inc()
        return True

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1
        LOG_STREAMS_OPEN.dec()


_slots = _Slots()


class LogStream:
    """An iterable of SSE chunks that owns a slot and a Redis connection until `close()`.

    Django calls `close()` when the response ends, even if the body was never iterated, so
    nothing taken here can leak.
    """

    def __init__(self, query: StreamQuery, *, user: str) -> None:
        if not _slots.take():
            raise Unavailable(
                "Too many live log streams are open on this worker; retry shortly.",
                limit_per_worker=settings.SCOUT_LOG_STREAMS_PER_WORKER,
            )
        self._closed = False
        self.query = query
        self.user = user
        self.heartbeat = settings.SCOUT_LOG_STREAM_HEARTBEAT_SECONDS
        self.block = min(self.heartbeat, _POLL_SECONDS)
        self._client = logstream.log_reader(self.block)
        try:
            self.after = query.after or logstream.last_log_id(self._client)
        except RedisError as exc:
            self.close()
            raise Unavailable(
                "Redis is unavailable; retry shortly.", reason=str(exc)[:200]
            ) from None
        logger.info(
            "Log stream opened",
            extra={"user": user, "level_filter": query.min_level, "test_filter": query.test_id},
        )

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n: connected\n\n".encode()
            last_write = time.monotonic()
            while not SHUTTING_DOWN.is_set():
                try:
                    entries = logstream.read_logs(
                        self._client, self.after, block_seconds=self.block, count=_BATCH
                    )
                except RedisError as exc:
                    # The browser reconnects by itself and resumes from the last id it saw.
                    reason = json.dumps({"detail": "Redis is unavailable.", "reason": str(exc)})
                    yield f"event: unavailable\ndata: {reason}\n\n".encode()
                    return
                chunk = []
                for item in entries:
                    self.after = item.id
                    if item.level < self.query.min_level:
                        continue
                    if self.query.test_id is not None and item.test_id != self.query.test_id:
                        continue
                    chunk.append(f"id: {item.id}\ndata: {item.data}\n\n")
                now = time.monotonic()
                if chunk:
                    yield "".join(chunk).encode()
                    last_write = now
                elif now - last_write >= self.heartbeat:
                    yield b": keep-alive\n\n"
                    last_write = now
        finally:
            self.close()

    def close(self) -> None:
        """Free the Redis connection and the slot (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close()
        finally:
            _slots.give_back()
        logger.info("Log stream closed", extra={"user": self.user})
