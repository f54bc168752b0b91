"""Decision throughput with live log streams open, against none.

Open `/logs/stream` connections each hold a worker thread for as long as they stay open; this
measures what that costs the API. It starts a real `scout serve` (embedded Redis and SQLite in
a temporary directory), creates a staff user and a Test, then alternates rounds of decisions
with 0 and with N streams open and reports decisions per second and the ratio of the medians.

    .venv/bin/python -m benchmarks.log_streams [--workers 2] [--streams 5] [--seconds 5]
        [--rounds 3] [--clients 16] [--debug]

`--debug` logs every decision at DEBUG, so that every stream carries every decision too.
Run it from the repository root after `bash scripts/install test`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import threading
import time
import uuid

import httpx

from tests.live import Backends, ScoutServer


def _load(url: str, test_id: str, threads: int, seconds: float, results: multiprocessing.Queue):
    """One load process: `threads` keep-alive clients asking for decisions for `seconds`."""
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def run(slot: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            body = {"cb_model_id": test_id, "context": {"device": "mobile", "visits": 3}}
            while time.monotonic() < deadline:
                if client.post("/api/fetch_recommended_variant", json=body).status_code == 200:
                    counts[slot] += 1

    workers = [threading.Thread(target=run, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(sum(counts))


def decisions_per_second(url: str, test_id: str, clients: int, seconds: float) -> float:
    processes = max(1, min(clients, multiprocessing.cpu_count()))
    per_process = max(1, clients // processes)
    results: multiprocessing.Queue = multiprocessing.Queue()
    jobs = [
        multiprocessing.Process(target=_load, args=(url, test_id, per_process, seconds, results))
        for _ in range(processes)
    ]
    for job in jobs:
        job.start()
    total = sum(results.get() for _ in jobs)
    for job in jobs:
        job.join()
    return total / seconds


class Streams:
    """N open log streams, each read to the end by a thread of its own."""

    def __init__(self, url: str, auth: tuple[str, str], count: int) -> None:
        self.url, self.auth, self.count = url, auth, count
        self.stop = threading.Event()
        self.opened = threading.Semaphore(0)
        self.events = 0
        self.threads = [threading.Thread(target=self._read) for _ in range(count)]

    def _read(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(30.0)) as client:
            while True:  # a worker at its stream limit answers 503: try again
                with client.stream("GET", f"{self.url}/logs/stream", auth=self.auth) as response:
                    if response.status_code != 200:
                        time.sleep(0.1)
                        continue
                    self.opened.release()
                    for line in response.iter_lines():
                        if line.startswith("id: "):
                            self.events += 1
                        if self.stop.is_set():
                            return

    def __enter__(self) -> Streams:
        for thread in self.threads:
            thread.start()
        for _ in range(self.count):
            if not self.opened.acquire(timeout=30):
                raise RuntimeError("log streams did not open")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--streams", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--debug", action="store_true", help="log (and stream) every decision")
    options = parser.parse_args()

    backends = Backends()
    env = {"SCOUT_LOG_STREAM_HEARTBEAT_SECONDS": "1"}
    if options.debug:
        env["SCOUT_DEBUG"] = "true"
    server = ScoutServer(backends, workers=options.workers, extra_env=env).start()
    try:
        auth = ("bench-" + uuid.uuid4().hex[:8], "bench-password-1")
        server.create_user(*auth, staff=True)
        test_id = httpx.post(
            f"{server.url}/api/create_model",
            json={"name": "Streams benchmark", "variants": {"0": "a", "1": "b", "2": "c"}},
        ).json()["cb_model_id"]
        decisions_per_second(server.url, test_id, options.clients, 1.0)  # warm up
        without, with_streams = [], []
        for round_ in range(options.rounds):
            without.append(
                decisions_per_second(server.url, test_id, options.clients, options.seconds)
            )
            with Streams(server.url, auth, options.streams) as streams:
                with_streams.append(
                    decisions_per_second(server.url, test_id, options.clients, options.seconds)
                )
            print(
                f"round {round_ + 1}: {without[-1]:8.0f} decisions/s with 0 streams, "
                f"{with_streams[-1]:8.0f} with {options.streams} "
                f"(they carried {streams.events} events)",
                flush=True,
            )
        ratio = statistics.median(with_streams) / statistics.median(without)
        print(
            f"workers={options.workers} clients={options.clients} debug={options.debug}: "
            f"median {statistics.median(without):.0f} vs {statistics.median(with_streams):.0f} "
            f"decisions/s; with {options.streams} streams open: {ratio:.1%} of the throughput"
        )
    finally:
        server.stop()
        backends.cleanup()


if __name__ == "__main__":
    main()
