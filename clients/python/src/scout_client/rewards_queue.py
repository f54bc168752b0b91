"""Rewards queued in memory and sent in the background, in batches per Test.

A product reports a reward where it happens (a click, a purchase), often in a request that
should not wait for Scout. `queue_reward` only appends to a bounded buffer; a worker (a daemon
thread for `Client`, an asyncio task for `AsyncClient`) sends each Test's entries in batches of
up to `batch_size`, every `flush_interval` seconds or as soon as a batch is full, each batch
with the client's retry policy.

What becomes of an entry:
- Scout counts it (or reports it a duplicate of one it already counted): it is done. Nothing
  leaves the buffer before Scout has answered for it, so nothing Scout acknowledged is lost and
  nothing it did not acknowledge is forgotten while the client runs.
- Scout refuses it (an unknown or expired request_id, a Test that was deleted, a bad value):
  it is handed to `on_rejected` (or logged at WARNING) and never sent again.
- Scout cannot be reached, or answers 5xx, after the retries: the batch goes back to the front
  of the buffer and is tried again on the next round; while closing it is rejected instead, so
  that `close()` ends.
- The buffer is full (`max_size` entries, 10,000 by default): the oldest entry is dropped to
  make room, and counted in `stats().dropped`. Dropping the oldest keeps the newest, whose
  decisions' contexts are still stored by Scout; `queue_reward` itself never blocks or raises
  for it, since it runs in the caller's request path.

Every entry carries a `request_id`, so sending a batch again is always safe: Scout counts a
request_id once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scout_client.errors import ScoutError
from scout_client.models import JsonObject, RewardResult

logger = logging.getLogger("scout_client")


@dataclass(frozen=True)
class RejectedReward:
    """A queued reward that will not be counted, and why: Scout's reason for the entry
    (`status_code` None), for the whole batch (`status_code` of its answer), or why it could
    not be sent before the client closed."""

    test_id: str
    entry: Mapping[str, Any]
    reason: str
    status_code: int | None = None


@dataclass(frozen=True)
class QueueOptions:
    """How the reward queue batches. `batch_size` must not exceed Scout's
    SCOUT_MAX_UPDATES_PER_BATCH (1,000 by default). `on_rejected` is called for each rejected
    entry, from the queue's worker (its thread, or its task), and must not block for long."""

    max_size: int = 10_000
    batch_size: int = 1_000
    flush_interval: float = 1.0
    on_rejected: Callable[[RejectedReward], None] | None = None

    def __post_init__(self) -> None:
        if self.max_size < 1 or self.batch_size < 1:
            raise ValueError("max_size and batch_size must be at least 1.")
        if self.flush_interval <= 0:
            raise ValueError("flush_interval must be positive.")


@dataclass(frozen=True)
class QueueStats:
    """Counts since the queue started: entries waiting now, counted by Scout, duplicates of
    ones already counted, rejected (see RejectedReward), dropped because the queue was full."""

    queued: int
    sent: int
    duplicates: int
    rejected: int
    dropped: int


_Item = tuple[int, JsonObject]  # (arrival order, entry)


class _Pending:
    """The entries waiting, by Test, oldest first; never more than `max_size` in all."""

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._by_test: dict[str, deque[_Item]] = {}
        self._count = 0
        self._order = itertools.count()

    def __len__(self) -> int:
        return self._count

    def add(self, test_id: str, entry: JsonObject) -> int:
        """Append; answer how many of the oldest entries were dropped to make room."""
        self._by_test.setdefault(test_id, deque()).append((next(self._order), entry))
        self._count += 1
        return self._trim()

    def put_back(self, test_id: str, items: list[_Item]) -> int:
        """Return a batch that could not be sent to the front, in its order; answer how many
        of the oldest entries were dropped for it (entries queued meanwhile took its room)."""
        self._by_test.setdefault(test_id, deque()).extendleft(reversed(items))
        self._count += len(items)
        return self._trim()

    def has_full_batch(self, batch_size: int) -> bool:
        return any(len(entries) >= batch_size for entries in self._by_test.values())

    def take(self, batch_size: int) -> tuple[str, list[_Item]] | None:
        """Up to `batch_size` entries of the Test whose entry has waited longest."""
        test_id = self._oldest_test()
        if test_id is None:
            return None
        entries = self._by_test[test_id]
        items = [entries.popleft() for _ in range(min(batch_size, len(entries)))]
        if not entries:
            del self._by_test[test_id]
        self._count -= len(items)
        return test_id, items

    def _oldest_test(self) -> str | None:
        if not self._by_test:
            return None
        return min(self._by_test, key=lambda test_id: self._by_test[test_id][0][0])

    def _trim(self) -> int:
        dropped = 0
        while self._count > self._max_size:
            test_id = self._oldest_test()
            assert test_id is not None  # the count is positive
            entries = self._by_test[test_id]
            entries.popleft()
            if not entries:
                del self._by_test[test_id]
            self._count -= 1
            dropped += 1
        return dropped


class _QueueBookkeeping:
    """What both queues share: the buffer, the counts, and what becomes of an answer.

    Its methods change state only; they answer the rejected entries for the worker to report
    once it holds no lock (a callback may be slow, or queue a reward itself)."""

    def __init__(self, options: QueueOptions) -> None:
        self.options = options
        self._pending = _Pending(options.max_size)
        self._in_flight = 0
        self._closing = False
        self._sent = self._duplicates = self._rejected = self._dropped = 0
        self._dropping = False

    def _add(self, test_id: str, entry: JsonObject) -> None:
        if self._closing:
            raise RuntimeError("The client is closed: it no longer queues rewards.")
        self._count_dropped(self._pending.add(test_id, entry))

    def _count_dropped(self, dropped: int) -> None:
        if dropped and not self._dropping:
            logger.warning(
                "The reward queue is full (%d entries): dropping the oldest rewards.",
                self.options.max_size,
            )
        self._dropping = self._dropping or dropped > 0
        self._dropped += dropped

    def _idle(self) -> bool:
        return len(self._pending) == 0 and self._in_flight == 0

    def _take(self) -> tuple[str, list[_Item]] | None:
        batch = self._pending.take(self.options.batch_size)
        if batch is not None:
            self._in_flight += 1
        return batch

    def _answered(
        self, test_id: str, items: list[_Item], result: RewardResult
    ) -> list[RejectedReward]:
        self._in_flight -= 1
        self._sent += result.processed
        self._duplicates += result.duplicated
        self._dropping = False
        rejected = [
            RejectedReward(test_id, items[error.index][1], error.reason)
            for error in result.errors
            if 0 <= error.index < len(items)
        ]
        self._rejected += len(rejected)
        return rejected

    def _failed(
        self, test_id: str, items: list[_Item], error: ScoutError, *, closing: bool
    ) -> list[RejectedReward]:
        """A batch Scout did not count: tried again later when that may help, else rejected."""
        self._in_flight -= 1
        if error.transient and not closing:
            self._count_dropped(self._pending.put_back(test_id, items))
            return []
        reason = error.detail
        if error.transient:
            reason = f"Not sent before the client closed: {error.detail}"
        rejected = [RejectedReward(test_id, entry, reason, error.status_code) for _, entry in items]
        self._rejected += len(rejected)
        return rejected

    def _broken(self, test_id: str, items: list[_Item], exc: Exception) -> list[RejectedReward]:
        """A batch whose sending failed in an unexpected way: rejected, not tried for ever."""
        logger.error("Sending rewards failed unexpectedly", exc_info=exc)
        self._in_flight -= 1
        reason = f"The client could not send it: {exc!r}"
        rejected = [RejectedReward(test_id, entry, reason) for _, entry in items]
        self._rejected += len(rejected)
        return rejected

    def _report(self, rejected: list[RejectedReward]) -> None:
        for entry in rejected:
            if self.options.on_rejected is None:
                logger.warning(
                    "Scout did not count a reward for Test %s (request_id %s): %s",
                    entry.test_id,
                    entry.entry.get("request_id"),
                    entry.reason,
                )
                continue
            try:
                self.options.on_rejected(entry)
            except Exception:
                logger.exception("on_rejected raised; the rejected reward is dropped")

    def _stats(self) -> QueueStats:
        return QueueStats(
            queued=len(self._pending),
            sent=self._sent,
            duplicates=self._duplicates,
            rejected=self._rejected,
            dropped=self._dropped,
        )


Send = Callable[[str, list[JsonObject]], RewardResult]


class RewardQueue(_QueueBookkeeping):
    """The sync client's queue: its worker is a daemon thread, started with the first entry."""

    def __init__(self, send: Send, options: QueueOptions) -> None:
        super().__init__(options)
        self._send = send
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._flush_asked = False

    def put(self, test_id: str, entry: JsonObject) -> None:
        with self._condition:
            self._add(test_id, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="scout-client-rewards", daemon=True
                )
                self._thread.start()
            if self._pending.has_full_batch(self.options.batch_size):
                self._condition.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; answer whether the queue was emptied within `timeout`
        (None: wait as long as it takes; while Scout is unreachable that is until it is back)."""
        with self._condition:
            self._flush_asked = True
            self._condition.notify_all()
            return self._condition.wait_for(self._idle, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued (once, with the retry policy; what still fails is rejected)
        and stop the worker. Rewards queued after this raise RuntimeError."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def stats(self) -> QueueStats:
        with self._condition:
            return self._stats()

    def _run(self) -> None:
        interval, batch_size = self.options.flush_interval, self.options.batch_size
        while True:
            with self._condition:
                self._condition.wait_for(
                    lambda: (
                        self._flush_asked
                        or self._closing
                        or self._pending.has_full_batch(batch_size)
                    ),
                    interval,
                )
                self._flush_asked = False
                closing = self._closing
            try:
                self._drain(closing)
            except Exception:  # never let the worker die: the queue would fill for ever
                logger.exception("The reward queue's worker failed; it carries on")
            if closing:
                return

    def _drain(self, closing: bool) -> None:
        """Send batch after batch until none is left, or until one fails and must wait."""
        while True:
            with self._condition:
                batch = self._take()
                if batch is None:
                    self._condition.notify_all()
                    return
            test_id, items = batch
            waits = False
            try:
                result = self._send(test_id, [entry for _, entry in items])
            except ScoutError as error:
                with self._condition:
                    rejected = self._failed(test_id, items, error, closing=closing)
                    self._condition.notify_all()
                waits = error.transient and not closing
            except Exception as exc:
                with self._condition:
                    rejected = self._broken(test_id, items, exc)
                    self._condition.notify_all()
            else:
                with self._condition:
                    rejected = self._answered(test_id, items, result)
                    self._condition.notify_all()
            self._report(rejected)
            if waits:
                return


AsyncSend = Callable[[str, list[JsonObject]], Awaitable[RewardResult]]


class AsyncRewardQueue(_QueueBookkeeping):
    """The async client's queue: its worker is an asyncio task of the loop that queued the
    first entry. It must be closed (`AsyncClient.close`, or leaving `async with`) before that
    loop ends: there is no exit hook for a loop."""

    def __init__(self, send: AsyncSend, options: QueueOptions) -> None:
        super().__init__(options)
        self._send = send
        self._wake = asyncio.Event()
        self._emptied = asyncio.Event()
        self._emptied.set()
        self._task: asyncio.Task[None] | None = None

    def put(self, test_id: str, entry: JsonObject) -> None:
        self._add(test_id, entry)
        self._emptied.clear()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        if self._pending.has_full_batch(self.options.batch_size):
            self._wake.set()

    async def flush(self, timeout: float | None = None) -> bool:
        if self._idle():
            return True
        self._wake.set()
        try:
            await asyncio.wait_for(self._emptied.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    def stats(self) -> QueueStats:
        return self._stats()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # a round every flush_interval
                await asyncio.wait_for(self._wake.wait(), self.options.flush_interval)
            self._wake.clear()
            closing = self._closing
            try:
                await self._drain(closing)
            except Exception:
                logger.exception("The reward queue's worker failed; it carries on")
            if closing:
                return

    async def _drain(self, closing: bool) -> None:
        while (batch := self._take()) is not None:
            test_id, items = batch
            try:
                result = await self._send(test_id, [entry for _, entry in items])
            except ScoutError as error:
                self._report(self._failed(test_id, items, error, closing=closing))
                if error.transient and not closing:
                    return
            except Exception as exc:
                self._report(self._broken(test_id, items, exc))
            else:
                self._report(self._answered(test_id, items, result))
            finally:
                if self._idle():
                    self._emptied.set()
        if self._idle():
            self._emptied.set()
