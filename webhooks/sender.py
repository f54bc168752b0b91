"""The background sender: posts the outbox's deliveries to their webhooks, and announces Redis
going away and coming back.

- One sender per host: every worker starts one, and a lock on a file in the data directory
  lets one of them run (another takes over within seconds if that worker stops).
- Across hosts, a delivery is sent by the host that claims it: a conditional UPDATE in the
  database takes it for CLAIM_SECONDS, so two hosts never both send it; a host that stops
  while sending hands it on when the claim lapses. The sender needs no Redis: it must run
  while Redis is down, to say so.
- Order: a webhook gets one subject's events (a Test's) in the order they were committed; a
  delivery is sent once every older delivery of its subject to that webhook is delivered or
  given up.
- Each webhook's deliveries are sent by a thread of a pool, one webhook at a time per thread:
  a receiver that hangs (until the timeout) or fails holds up its own deliveries only (with
  more receivers hanging at once than the pool's 8 threads, the others wait up to one timeout).
- A failed delivery (no 2xx answer in time; a redirect is a failure, not followed) is retried
  after SCOUT_WEBHOOK_FIRST_RETRY_SECONDS (10 s), then twice as long each time up to an hour,
  until SCOUT_WEBHOOK_RETRY_HOURS (24) after its event; then it is marked failed.
- At least once: a receiver may see an event twice (after a timeout that the receiver did
  answer, or a host stopped mid-send) and drops repeats by `uuid`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import IO

import httpx
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from redis.exceptions import RedisError

from core import redis_client
from core.observability.stream import SHUTTING_DOWN
from webhooks import events, signing
from webhooks.models import Delivery, Event, RedisStatus

logger = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 3600.0
# A webhook's deliveries sent in one go at most, and the claim that covers them all.
PER_WEBHOOK = 10
# Deliveries looked at in one round, over all webhooks.
ROUND_LIMIT = 500
# Redis is announced unavailable after this many failed pings in a row, one a second.
REDIS_FAILURES = 2
PURGE_SECONDS = 600.0
LOCK_RETRY_SECONDS = 5.0


def claim_seconds() -> float:
    return PER_WEBHOOK * settings.SCOUT_WEBHOOK_TIMEOUT_SECONDS + 10.0


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt, after `attempts` failed ones (a tenth either way, so
    that many deliveries that failed together do not all come back together)."""
    first = settings.SCOUT_WEBHOOK_FIRST_RETRY_SECONDS
    delay = min(first * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    return delay * random.uniform(0.9, 1.1)


# --- Claiming -------------------------------------------------------------------------------


def claim(busy: set[int], token: str) -> dict[int, list[Delivery]]:
    """Take the deliveries that are due and first of their subject, at most PER_WEBHOOK per
    webhook, for the webhooks not in `busy` (sending already); answer them by webhook."""
    now = timezone.now()
    older = Delivery.objects.filter(
        webhook=OuterRef("webhook"),
        subject=OuterRef("subject"),
        state=Delivery.PENDING,
        id__lt=OuterRef("id"),
    )
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    candidates = (
        Delivery.objects.filter(free, state=Delivery.PENDING, next_attempt_at__lte=now)
        .exclude(webhook_id__in=busy)
        .filter(~Exists(older))
        .order_by("id")
        .values_list("id", "webhook_id")[:ROUND_LIMIT]
    )
    chosen: list[int] = []
    taken: dict[int, int] = {}
    for delivery_id, webhook_id in candidates:
        if taken.get(webhook_id, 0) < PER_WEBHOOK:
            taken[webhook_id] = taken.get(webhook_id, 0) + 1
            chosen.append(delivery_id)
    if not chosen:
        return {}
    until = now + timedelta(seconds=claim_seconds())
    Delivery.objects.filter(free, pk__in=chosen, state=Delivery.PENDING).update(
        claimed_until=until, claimed_by=token
    )
    runs: dict[int, list[Delivery]] = {}
    for delivery in (
        Delivery.objects.filter(pk__in=chosen, claimed_by=token, state=Delivery.PENDING)
        .select_related("webhook", "event")
        .order_by("id")
    ):
        runs.setdefault(delivery.webhook_id, []).append(delivery)
    return runs


def release(deliveries: list[Delivery], token: str) -> None:
    """Hand back deliveries taken and not tried, for any sender's next round."""
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries], claimed_by=token).update(
        claimed_until=None, claimed_by=""
    )


# --- Sending --------------------------------------------------------------------------------


def attempt(client: httpx.Client, delivery: Delivery) -> tuple[int | None, str]:
    """Post one delivery; answer the receiver's status (None without one) and an error ("" on
    a 2xx)."""
    body = signing.body_of(delivery.event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Scout-Webhooks",
        signing.HEADER: signing.signature(delivery.webhook.secret, body, int(time.time())),
    }
    try:
        response = client.post(delivery.webhook.url, content=body, headers=headers)
    except httpx.TimeoutException:
        return None, f"No answer within {settings.SCOUT_WEBHOOK_TIMEOUT_SECONDS:g} s."
    except httpx.HTTPError as exc:
        return None, f"{exc.__class__.__name__}: {exc}"[:500]
    if response.is_success:
        return response.status_code, ""
    if response.is_redirect:
        where = response.headers.get("Location", "")
        return response.status_code, f"HTTP {response.status_code} to {where} (not followed)."
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


def record(delivery: Delivery, token: str, status: int | None, error: str) -> bool:
    """Store how an attempt went; answer whether it was delivered."""
    now = timezone.now()
    attempts = delivery.attempts + 1
    fields: dict[str, object] = {
        "attempts": attempts,
        "last_attempt_at": now,
        "last_status": status,
        "last_error": error[:500],
        "claimed_until": None,
        "claimed_by": "",
    }
    if not error:
        fields.update(state=Delivery.DELIVERED, delivered_at=now)
    elif now - delivery.event.time >= timedelta(hours=settings.SCOUT_WEBHOOK_RETRY_HOURS):
        fields.update(state=Delivery.FAILED)
        logger.warning(
            "Webhook delivery given up",
            extra={"webhook_url": delivery.webhook.url, "event": str(delivery.event.uuid)},
        )
    else:
        fields.update(next_attempt_at=now + timedelta(seconds=retry_delay(attempts)))
    Delivery.objects.filter(pk=delivery.pk, claimed_by=token).update(**fields)
    return not error


class Sender:
    """Sends the outbox's deliveries, a pool thread per webhook at a time."""

    def __init__(self, threads: int = 8) -> None:
        timeout = httpx.Timeout(settings.SCOUT_WEBHOOK_TIMEOUT_SECONDS)
        # One client per TLS setting; redirects are never followed (httpx's default).
        self._clients = {
            verify: httpx.Client(timeout=timeout, verify=verify, follow_redirects=False)
            for verify in (True, False)
        }
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scout-webhook")
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self._woken = threading.Event()
        self.token = uuid.uuid4().hex

    def round(self) -> int:
        """Claim what is due and start sending it; answer how many deliveries were taken."""
        with self._lock:
            busy = set(self._busy)
        runs = claim(busy, self.token)
        for webhook_id, deliveries in runs.items():
            with self._lock:
                self._busy.add(webhook_id)
            self._pool.submit(self._send_run, webhook_id, deliveries)
        return sum(len(deliveries) for deliveries in runs.values())

    def _send_run(self, webhook_id: int, deliveries: list[Delivery]) -> None:
        try:
            for at, delivery in enumerate(deliveries):
                if SHUTTING_DOWN.is_set():
                    release(deliveries[at:], self.token)
                    return
                client = self._clients[delivery.webhook.verify_tls]
                status, error = attempt(client, delivery)
                if not record(delivery, self.token, status, error):
                    # The receiver is failing: what is left waits for the next round.
                    release(deliveries[at + 1 :], self.token)
                    return
        except Exception:
            logger.exception("Webhook deliveries failed", extra={"webhook_id": webhook_id})
        finally:
            with self._lock:
                self._busy.discard(webhook_id)
            self._woken.set()
            close_old_connections()

    def wait(self, seconds: float) -> None:
        """Sleep until the next round: `seconds`, or less when a webhook's run ended (it may
        have more due)."""
        self._woken.wait(seconds)
        self._woken.clear()

    def idle(self, seconds: float) -> bool:
        """Wait for every run to end, for at most `seconds`; answer whether they did."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if not self._busy:
                    return True
            time.sleep(0.02)
        return False


# --- Redis, announced -----------------------------------------------------------------------


class RedisWatch:
    """Pings Redis once a second; announces it unavailable after REDIS_FAILURES failures in a
    row and available at its first answer after that. The announcement is a conditional
    UPDATE of one row, in the transaction of the event: of all hosts, one announces."""

    def __init__(self) -> None:
        self.failures = 0
        self.seen_up: bool | None = None

    def check(self) -> None:
        try:
            redis_client.ping()
        except (RedisError, OSError) as exc:
            self.failures += 1
            if self.failures >= REDIS_FAILURES and self.seen_up is not False:
                self.seen_up = False
                self._announce(False, {"error": str(exc) or exc.__class__.__name__})
            return
        self.failures = 0
        if self.seen_up is not True:
            self.seen_up = True
            self._announce(True, {})

    def _announce(self, available: bool, data: dict[str, object]) -> None:
        now = timezone.now()
        with transaction.atomic():
            status, _ = RedisStatus.objects.get_or_create(pk=1)
            changed = RedisStatus.objects.filter(pk=1, available=not available).update(
                available=available, changed_at=now
            )
            if not changed:
                return
            if available:
                down = (now - status.changed_at).total_seconds()
                data = {**data, "unavailable_seconds": round(down, 3)}
            type = events.REDIS_RECOVERED if available else events.REDIS_UNAVAILABLE
            events.emit(type, {**data, "redis": _where()}, subject=events.REDIS)
        logger.warning("Redis announced %s", "available" if available else "unavailable")


def _where() -> str:
    """The Redis in use, without credentials."""
    url = redis_client.current_url()
    return url.split("@")[-1] if "@" in url else url


# --- Housekeeping ---------------------------------------------------------------------------


def purge() -> int:
    """Delete finished deliveries older than SCOUT_WEBHOOK_KEEP_DAYS, and events that have
    none left; answer how many deliveries went."""
    before = timezone.now() - timedelta(days=settings.SCOUT_WEBHOOK_KEEP_DAYS)
    done = [Delivery.DELIVERED, Delivery.FAILED]
    deleted, _ = Delivery.objects.filter(state__in=done, event__time__lt=before).delete()
    Event.objects.filter(time__lt=before).exclude(
        Exists(Delivery.objects.filter(event=OuterRef("pk")))
    ).delete()
    return deleted


# --- The sender's thread --------------------------------------------------------------------


@contextlib.contextmanager
def host_lock() -> Iterator[IO[str] | None]:
    """This host's sender lock, if this process got it (else None)."""
    path = settings.DATA_DIR / "webhook-sender.lock"
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        yield None
        return
    try:
        yield handle
    finally:
        handle.close()  # closing the file releases the lock


def run_forever() -> None:
    """Send until the worker stops: the thread of the worker that holds this host's lock."""
    while not SHUTTING_DOWN.is_set():
        with host_lock() as held:
            if held is not None:
                _send_while_running()
                return
        SHUTTING_DOWN.wait(LOCK_RETRY_SECONDS)


def _watch_redis() -> None:
    """A thread of its own: a Redis that hangs until its timeout delays no delivery."""
    watch = RedisWatch()
    while not SHUTTING_DOWN.wait(1.0):
        try:
            watch.check()
        except DatabaseError as exc:
            logger.warning("Redis's state could not be announced: %s", exc)
        except Exception:
            logger.exception("Watching Redis failed")
        finally:
            close_old_connections()


def _send_while_running() -> None:
    threading.Thread(target=_watch_redis, name="scout-redis-watch", daemon=True).start()
    sender = Sender()
    purged_at = 0.0
    interval = settings.SCOUT_WEBHOOK_POLL_SECONDS
    logger.info("Webhook sender started")
    while not SHUTTING_DOWN.is_set():
        try:
            sender.round()
            if time.monotonic() - purged_at > PURGE_SECONDS:
                purged_at = time.monotonic()
                purge()
        except DatabaseError as exc:
            logger.warning("Webhook sender skipped a round: %s", exc)
        except Exception:  # the sender must outlive any one bad round
            logger.exception("Webhook sender round failed")
        finally:
            close_old_connections()
        sender.wait(interval)
    sender.idle(settings.SCOUT_WEBHOOK_TIMEOUT_SECONDS)


_started = False


def start_background() -> None:
    """Start this worker's sender thread (once per process; SCOUT_WEBHOOK_POLL_SECONDS of 0
    turns sending off)."""
    global _started
    if _started or settings.SCOUT_WEBHOOK_POLL_SECONDS <= 0:
        return
    _started = True
    threading.Thread(target=run_forever, name="scout-webhooks", daemon=True).start()
