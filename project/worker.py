"""Scout's gunicorn worker: gunicorn's threaded worker with a deadline on slow clients.

A client that sends its request (headers or body) slower than SCOUT_CLIENT_TIMEOUT_SECONDS
between two packets would otherwise hold one of the worker's threads for as long as it likes;
a few such clients could starve the API. A receive timeout on each connection's socket bounds
that: a stalled body gets a 408 (see project.middleware), stalled headers a closed connection.
"""

from __future__ import annotations

import contextlib
import socket
import struct

from django.conf import settings
from gunicorn.workers.gthread import ThreadWorker


class ScoutThreadWorker(ThreadWorker):
    def enqueue_req(self, conn) -> None:  # noqa: ANN001 - gunicorn's connection object
        seconds = settings.SCOUT_CLIENT_TIMEOUT_SECONDS
        whole = int(seconds)
        timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
        with contextlib.suppress(OSError):  # the client already left; gunicorn will notice
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        super().enqueue_req(conn)
