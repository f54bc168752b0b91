"""Scout's gunicorn worker: gunicorn's threaded worker, which hands a connection to a thread only
once its request has arrived whole.

gunicorn's own threaded worker gives a connection to a thread as soon as it is readable, and the
thread then reads the request with blocking calls: a client that sends half a request and stops,
or trickles it a byte at a time, holds that thread, and a few of them hold up every decision.
Here the worker's event loop reads each request (headers, and the body its headers announce,
whether by Content-Length or chunked) without blocking, beside all the other connections, and
the threads only ever parse bytes already in memory. A request must arrive whole within
SCOUT_CLIENT_TIMEOUT_SECONDS of its first byte: a stalled body then gets a 408, stalled headers
a closed connection. A connection that sends nothing is closed after the keep-alive timeout.

The cost is memory, bounded: at most worker_connections connections per worker, each holding
at most its headers and a body up to SCOUT_MAX_BODY_BYTES (a larger announced body is handed
over at once and answered 413 without being read).
"""

from __future__ import annotations

import contextlib
import json
import re
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from gunicorn import http
from gunicorn.workers.gthread import ThreadWorker

READ_SIZE = 65536
# Longest header block read ahead; a longer one is handed to gunicorn's parser, which refuses it.
MAX_HEAD_BYTES = 65536
HEAD_END = b"\r\n\r\n"
_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*([0-9]+)[ \t]*\r?$")
_ENCODING = re.compile(rb"(?im)^transfer-encoding[ \t]*:(.*)$")
_EXPECT_CONTINUE = re.compile(rb"(?im)^expect[ \t]*:[ \t]*100-continue[ \t]*\r\n")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
TIMED_OUT = json.dumps({"detail": "The request body did not arrive in time."}).encode()


@dataclass
class Progress:
    """How far a request's bytes were found whole, so that each read looks at new bytes only
    (a chunked body of many tiny chunks would otherwise be parsed again on every read)."""

    chunk_at: int = 0  # where the first chunk not yet seen whole starts (0: not known yet)


@dataclass
class _Arriving:
    """A connection whose next request is being read by the event loop."""

    conn: Any
    idle_deadline: float
    data: bytearray = field(default_factory=bytearray)
    deadline: float | None = None  # set by the request's first byte
    continued: bool = False  # whether its `Expect: 100-continue` was answered
    progress: Progress = field(default_factory=Progress)
    watched: bool = False  # registered with the poller


def request_is_whole(
    data: bytes | bytearray, body_limit: int, progress: Progress | None = None
) -> bool:
    """Whether `data` holds a whole HTTP/1.x request, or as much of one as a thread should read
    before answering (a header block too long, a body over `body_limit`, or bytes gunicorn's
    parser will refuse: it answers those at once). `progress` carries what earlier calls on
    the same, growing, `data` found."""
    head_end = data.find(HEAD_END)
    if head_end < 0:
        return len(data) > MAX_HEAD_BYTES
    head = bytes(data[:head_end])
    body_start = head_end + len(HEAD_END)
    encoding = _ENCODING.search(head)
    if encoding is not None and b"chunked" in encoding.group(1).lower():
        return _chunked_body_is_whole(data, body_start, body_limit, progress or Progress())
    length = _LENGTH.search(head)
    if length is None:
        return True
    declared = int(length.group(1))
    return declared > body_limit or len(data) - body_start >= declared


def _chunked_body_is_whole(
    data: bytes | bytearray, start: int, body_limit: int, progress: Progress
) -> bool:
    position = max(start, progress.chunk_at)
    while True:
        progress.chunk_at = position
        if position - start > body_limit + READ_SIZE:
            return True  # over the limit: the application reads just past it and answers 413
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return len(data) - position > 1024  # a chunk-size line that long is malformed
        size_field = bytes(data[position:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            return True  # malformed: gunicorn's parser answers it
        if size == 0:  # the last chunk, then trailers up to an empty line
            trailers = line_end + 2
            return data[trailers : trailers + 2] == b"\r\n" or data.find(HEAD_END, line_end) >= 0
        position = line_end + 2 + size + 2
        if position - start > body_limit + READ_SIZE:
            return True  # a chunk that takes the body past the limit: no need to wait for it
        if position > len(data):
            return False


class ScoutThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, reading each request whole before a thread sees it."""

    def init_process(self) -> None:
        self._arriving: dict[int, _Arriving] = {}
        self._reads_ahead = not self.cfg.is_ssl and "h2" not in self.cfg.http_protocols
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        """Read the connection's next request in the event loop; a thread gets it when whole."""
        if conn.parser is None:  # a new connection (the option stays set on the socket)
            self._bound_thread_reads(conn)
        if not self._reads_ahead:
            super().enqueue_req(conn)
            return
        now = time.monotonic()
        arriving = _Arriving(conn, idle_deadline=now + self.cfg.keepalive)
        if conn.parser is not None:  # bytes a client pipelined behind its previous request
            arriving.data += conn.parser.unreader.take_buffered()
        if arriving.data:
            arriving.deadline = now + settings.SCOUT_CLIENT_TIMEOUT_SECONDS
        conn.sock.setblocking(False)
        self._arriving[id(conn)] = arriving
        # A keep-alive client's next request is usually there already: read it before asking
        # the poller to watch the socket (two system calls fewer per request).
        if self._read(arriving):
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
            arriving.watched = True

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        arriving = self._arriving.get(id(conn))
        if arriving is not None:
            self._read(arriving)

    def _read(self, arriving: _Arriving) -> bool:
        """Read what has arrived; answer whether the connection still waits for its request
        (False once it was handed to a thread or closed)."""
        conn = arriving.conn
        try:
            received = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            received = None
        except OSError:
            self._drop(arriving)
            return False
        if received == b"":  # the client closed its end
            self._drop(arriving)
            return False
        if received:
            if arriving.deadline is None:
                arriving.deadline = time.monotonic() + settings.SCOUT_CLIENT_TIMEOUT_SECONDS
            arriving.data += received
        limit = settings.SCOUT_MAX_BODY_BYTES
        if arriving.data and request_is_whole(arriving.data, limit, arriving.progress):
            self._hand_over(arriving)
            return False
        if not arriving.continued:
            self._answer_expect_continue(arriving)
        return True

    def _answer_expect_continue(self, arriving: _Arriving) -> None:
        """A client that sent `Expect: 100-continue` waits for a 100 before it sends its body
        (curl for a second, others longer): answer it here, where the body is awaited, and drop
        the expectation so that gunicorn does not answer it a second time."""
        head_end = arriving.data.find(HEAD_END)
        if head_end < 0:
            return
        arriving.continued = True
        head = bytes(arriving.data[: head_end + 2])
        if not head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.1"):
            return  # HTTP/1.0 ignores the expectation (RFC 9110, 10.1.1)
        without = _EXPECT_CONTINUE.sub(b"", head)
        if without == head:
            return
        arriving.data[: head_end + 2] = without
        arriving.progress = Progress()  # the body moved: find its chunks afresh
        with contextlib.suppress(OSError):
            arriving.conn.sock.send(CONTINUE)

    def _hand_over(self, arriving: _Arriving) -> None:
        conn = self._forget(arriving)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.initialized = True
        conn.parser.unreader.unread(bytes(arriving.data))
        conn.data_ready = True
        super().enqueue_req(conn)

    def _forget(self, arriving: _Arriving) -> Any:
        conn = arriving.conn
        del self._arriving[id(conn)]
        if arriving.watched:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
        return conn

    def _drop(self, arriving: _Arriving, answer: bytes | None = None) -> None:
        conn = self._forget(arriving)
        if answer is not None:
            with contextlib.suppress(OSError):
                conn.sock.send(answer)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also close connections whose request did not arrive in time (408 for a body that
        stalled after its headers), and idle ones past the keep-alive timeout; a stopping
        worker closes idle ones at once."""
        super().murder_pending()
        now = time.monotonic()
        for arriving in list(self._arriving.values()):
            if arriving.deadline is None:
                if now > arriving.idle_deadline or not self.alive:
                    self._drop(arriving)
            elif now > arriving.deadline:
                headers_arrived = arriving.data.find(HEAD_END) >= 0
                self._drop(arriving, _timed_out() if headers_arrived else None)

    @staticmethod
    def _bound_thread_reads(conn: Any) -> None:
        """A receive timeout on the socket, so that no read in a thread can block for longer
        than a client may take (gunicorn's drain of an unread body, for instance)."""
        seconds = settings.SCOUT_CLIENT_TIMEOUT_SECONDS
        whole = int(seconds)
        timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
        with contextlib.suppress(OSError):  # the client already left; gunicorn will notice
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)


def _timed_out() -> bytes:
    return (
        b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(TIMED_OUT)).encode() + b"\r\n\r\n"
    ) + TIMED_OUT
