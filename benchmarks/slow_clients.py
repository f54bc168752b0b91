"""Slow clients: does a decision wait for somebody else's slow connection?

Paced decisions (a steady rate from a few connections, as a product's traffic arrives) are
timed three ways against each server: alone; beside 16 connections that sent half a request
and then nothing; beside 200 connections that send their headers a byte a second. Scout (its
worker reads requests whole in its event loop before a thread sees them) is compared with the
baseline, which runs gunicorn's stock threaded worker with the same workers and threads.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict

from benchmarks.servers import Baseline, Scout, Server
from benchmarks.serving import Run, run_wrk

RATE = 200  # decisions per second, offered by CONNECTIONS connections together
CONNECTIONS = 8
STALLED = 16
TRICKLING = 200
HALF_A_REQUEST = (
    b"POST /api/fetch_recommended_variant HTTP/1.1\r\nHost: localhost\r\n"
    b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"cb'
)
SLOW_HEADERS = b"GET /api/models HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"x" * 4000


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


@contextlib.contextmanager
def stalled(server: Server) -> Iterator[None]:
    """STALLED connections that sent half a request and wait (reconnecting when cut off)."""
    stop = threading.Event()

    def hold() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError), _connect(server) as sock:
                sock.sendall(HALF_A_REQUEST)
                sock.settimeout(0.5)
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        if sock.recv(4096) == b"":
                            break  # the server gave up on it: come back, as an attacker would

    threads = [threading.Thread(target=hold, daemon=True) for _ in range(STALLED)]
    yield from _running(threads, stop)


@contextlib.contextmanager
def trickling(server: Server) -> Iterator[None]:
    """TRICKLING connections sending their headers a byte a second each."""
    stop = threading.Event()

    def drip() -> None:
        sockets: list[socket.socket | None] = [None] * TRICKLING
        position = [0] * TRICKLING
        while not stop.is_set():
            for index in range(TRICKLING):
                if sockets[index] is None:
                    with contextlib.suppress(OSError):
                        sockets[index], position[index] = _connect(server), 0
                sock = sockets[index]
                if sock is None:
                    continue
                try:
                    sock.send(SLOW_HEADERS[position[index] : position[index] + 1])
                    position[index] += 1
                except OSError:  # cut off: reconnect on the next pass
                    sock.close()
                    sockets[index] = None
            stop.wait(1.0)
        for sock in sockets:
            if sock is not None:
                sock.close()

    yield from _running([threading.Thread(target=drip, daemon=True)], stop)


def _running(threads: list[threading.Thread], stop: threading.Event) -> Iterator[None]:
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # every slow connection has reached a worker
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


def benchmark(*, seconds: float, log: Callable[[str], None] = print) -> dict:
    """Paced decisions alone, beside stalled and beside trickling clients, on both servers."""
    conditions: dict[str, Callable[[Server], contextlib.AbstractContextManager[None]]] = {
        "alone": lambda server: contextlib.nullcontext(),
        f"{STALLED} stalled": stalled,
        f"{TRICKLING} trickling": trickling,
    }
    runs: list[dict] = []
    for make in (Scout, Baseline):
        with make() as server:
            test_id = server.create_test(3)
            run_wrk(server, test_id, "mixed", 8, 2)  # warm every worker up
            for condition, hurt in conditions.items():
                with hurt(server):
                    run: Run = run_wrk(server, test_id, "decide", CONNECTIONS, seconds, RATE)
                runs.append({"condition": condition, **asdict(run)})
                log(
                    f"  {run.server:8} {condition:13} {run.rps:7.1f} req/s  p50 "
                    f"{run.p50_ms:8.2f} ms  p99 {run.p99_ms:8.2f} ms  errors {run.errors}"
                )
    return {
        "offered_rps": RATE,
        "connections": CONNECTIONS,
        "seconds_per_run": seconds,
        "stalled_connections": STALLED,
        "trickling_connections": TRICKLING,
        "runs": runs,
    }


def table(result: dict) -> str:
    lines = [
        f"Paced decisions ({result['offered_rps']} offered per second from "
        f"{result['connections']} connections, {result['seconds_per_run']} s per run).",
        "",
        "| server | beside | decisions answered/s | p50 ms | p99 ms | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['server']} | {run['condition']} | {run['rps']:.0f} | {run['p50_ms']:.1f} "
            f"| {run['p99_ms']:.1f} | {run['errors']} |"
        )
    lines += [
        "",
        "Latencies count the decisions that were answered; a server that answers fewer than it "
        "is offered kept the rest waiting (wrk stops waiting at the end of the run).",
    ]
    return "\n".join(lines)
