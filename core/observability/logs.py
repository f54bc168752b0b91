"""Structured log records: JSON lines on stdout, and one capped Redis stream for `/logs/stream`.

Every record becomes one JSON object: `timestamp` (ISO 8601, UTC, with a Z), `level`, `message`,
`service` (logger, module and line), `host` and `pid`, and the structured fields the code passed
with `extra=` (test_id, request_id, variant_id, user...). The same object is printed to stdout
for log shippers and appended to the shared stream, so a viewer sees every worker and host.

Nothing that looks like a credential is ever written: `redact` masks the values of query
parameters named like one (token, key, password, secret, auth...) and Bearer or Basic
credentials, in the message, in every structured field and in tracebacks; a Django request
passed as a field (Django's own request logger does that) is logged as its method and redacted
path, never as its repr.

Shipping to Redis never blocks or fails a request: `emit` only puts the entry on a bounded
in-memory queue, a background thread per process sends batches with one pipeline, and whatever
cannot be sent (queue full, Redis down) is dropped and counted.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import socket
import sys
import threading
import time
from typing import Any

from django.http import HttpRequest

from core.observability import logstream
from core.observability.metrics import LOG_RECORDS_DROPPED
from core.time import iso

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    | {"message", "asctime", "taskName"}
)
_HOST = socket.gethostname()


REDACTED = "[REDACTED]"
# A query parameter (or form field) whose name says it holds a credential: its value goes.
_SECRET_PARAMETER = re.compile(
    r"(?i)((?:^|[?&;\s\"'])[\w.\-\[\]]*?"
    r"(?:token|key|password|passwd|pwd|secret|auth|authorization|credential|signature|session)s?"
    r"(?:[_.\-\[\]][\w.\-\[\]]*)?=)[^&;\s\"']*"
)
# An Authorization header's value, whatever its scheme; and a Bearer credential anywhere.
_AUTHORIZATION = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?+)[^\s\"',;<][^\s\"',;]*"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*")


def redact(text: str) -> str:
    """`text` with every credential-looking value replaced by [REDACTED]."""
    text = _AUTHORIZATION.sub(rf"\1{REDACTED}", text)
    if "=" in text:
        text = _SECRET_PARAMETER.sub(rf"\1{REDACTED}", text)
    return _BEARER.sub(rf"\1{REDACTED}", text)


def _safe(value: Any) -> Any:
    """A field's value as it may be logged: requests summarised, strings redacted, containers
    kept as they are with their strings redacted."""
    if isinstance(value, HttpRequest):
        return redact(f"{value.method} {value.get_full_path()}")
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(key): _safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(item) for item in value]
    return redact(str(value))


def entry(record: logging.LogRecord) -> dict[str, Any]:
    """The JSON-ready form of a record, structured fields included, credentials redacted."""
    data: dict[str, Any] = {
        "timestamp": iso(record.created),
        "level": record.levelname,
        "message": redact(record.getMessage()),
        "service": f"{record.name}:{record.module}:{record.lineno}",
        "host": _HOST,
        "pid": record.process,
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_") and key not in data:
            data[key] = _safe(value)
    if record.exc_info:
        data["exception"] = redact(logging.Formatter().formatException(record.exc_info))
    return data


def dumps(data: dict[str, Any]) -> str:
    """One line of JSON; values JSON does not know (UUIDs, datetimes...) become strings."""
    return json.dumps(data, default=str, ensure_ascii=False, separators=(",", ":"))


def as_json(record: logging.LogRecord) -> str:
    """The record's entry as one line of JSON, built once however many handlers want it."""
    cached = record.__dict__.get("_scout_json")
    if cached is None:
        cached = record.__dict__["_scout_json"] = dumps(entry(record))
    return cached


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON line (for the stdout handler)."""

    def format(self, record: logging.LogRecord) -> str:
        return as_json(record)


class RedisStreamHandler(logging.Handler):
    """Queues records for the shared Redis stream; a thread per process sends them in batches.

    The thread starts with the first record of each process (gunicorn forks workers after the
    logging configuration ran), and a fork gives the child a fresh queue and lock, so a lock
    held by the parent at fork time can never deadlock a worker.
    """

    BATCH = 500
    RETRY_AFTER_SECONDS = 1.0
    REPORT_EVERY_SECONDS = 60.0

    def __init__(self, capacity: int = 10_000) -> None:
        super().__init__()
        self.capacity = capacity
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._queue: queue.Queue[tuple[int, str, str]] = queue.Queue(self.capacity)
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dropped = 0
        self._reported_at = -self.REPORT_EVERY_SECONDS

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread() is self._thread:
            return  # never feed the stream with what sending to it logs
        try:
            test_id = record.__dict__.get("test_id")
            item = (record.levelno, str(test_id) if test_id else "", as_json(record))
        except Exception:
            self.handleError(record)
            return
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            LOG_RECORDS_DROPPED.inc()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._ship, name="log-stream", daemon=True)
                self._thread.start()

    def _ship(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                logstream.append_logs(batch)
            except Exception as exc:  # Redis down or refusing: drop, say so, retry later
                LOG_RECORDS_DROPPED.inc(len(batch))
                self._report_drop(len(batch), exc)
                time.sleep(self.RETRY_AFTER_SECONDS)

    def _report_drop(self, count: int, exc: Exception) -> None:
        """Say on stderr (as a JSON line) that records were dropped, at most every so often."""
        self._dropped += count
        now = time.monotonic()
        if now - self._reported_at < self.REPORT_EVERY_SECONDS:
            return
        warning = logging.LogRecord(
            __name__,
            logging.WARNING,
            __file__,
            0,
            "Log stream unavailable; %d records dropped: %s",
            (self._dropped, exc),
            None,
        )
        print(dumps(entry(warning)), file=sys.stderr, flush=True)
        self._dropped, self._reported_at = 0, now


class RedactFilter(logging.Filter):
    """Redacts a record in place, for handlers that do not format through `entry` (the web
    server's own error log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
