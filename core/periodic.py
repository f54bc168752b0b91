"""Periodic work of a worker, done by one worker of all hosts at a time (or by every worker,
for work of its own).

Each worker runs such work in a thread of its own; every round, a Redis lease lets one of them
do it, so that a host or a worker that stops hands the work to the others without anything to
coordinate. A round that fails is logged and the next one tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import DatabaseError, close_old_connections
from redis.exceptions import RedisError

from core.redis_client import try_lock

logger = logging.getLogger(__name__)

_started: set[str] = set()


def start(name: str, interval: float, work: Callable[[], object], *, leased: bool = True) -> None:
    """Run `work` every `interval` seconds under the lease `name`, or in every worker when not
    `leased` (once per process; an interval of 0 or less runs nothing)."""
    if name in _started or interval <= 0:
        return
    _started.add(name)
    threading.Thread(
        target=_loop, args=(name, interval, work, leased), name=f"scout-{name}", daemon=True
    ).start()


def _loop(name: str, interval: float, work: Callable[[], object], leased: bool) -> None:
    while True:
        time.sleep(interval)
        try:
            if not leased or try_lock(name, interval * 0.9):
                work()
        except (RedisError, DatabaseError) as exc:
            logger.warning("%s skipped this round: %s", name, exc)
        except Exception:  # the loop must outlive any one bad round
            logger.exception("%s failed", name)
        finally:
            close_old_connections()
