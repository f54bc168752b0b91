"""The decision log streams in constant memory: the resident memory of the worker that exports
a Test's log of `decisions` decisions (half of them rewarded), while it streams it, against the
same worker exporting a log of 1,000.

    .venv/bin/python -m benchmarks.export [--decisions 300000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx

from benchmarks.footprint import _rss_mb
from benchmarks.servers import ROOT, Scout


def _prefill(scout: Scout, test_id: str, count: int) -> None:
    env = {**scout.env(), "DJANGO_SETTINGS_MODULE": "project.settings"}
    subprocess.run(
        [sys.executable, "-m", "benchmarks.prefill", "log", test_id, "0", str(count)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _export(client: httpx.Client, test_id: str, worker: int, fmt: str) -> dict:
    """Stream the log to nowhere, sampling the worker's memory as it goes."""
    peak = [_rss_mb(worker)]
    streaming = threading.Event()
    streaming.set()

    def sample() -> None:
        while streaming.is_set():
            peak.append(_rss_mb(worker))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    before = _rss_mb(worker)
    started = time.monotonic()
    sampler.start()
    size = lines = 0
    with client.stream("GET", f"/api/decision_log/{test_id}", params={"format": fmt}) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    streaming.clear()
    sampler.join()
    return {
        "format": fmt,
        "lines": lines,
        "megabytes": round(size / 1e6, 1),
        "seconds": round(time.monotonic() - started, 1),
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(max(peak), 1),
    }


def benchmark(*, decisions: int, log: Callable[[str], None]) -> dict:
    with Scout(extra_env={"SCOUT_WORKERS": "1"}) as scout:
        (worker,) = scout.worker_pids()
        small, large = scout.create_test(3), scout.create_test(3)
        _prefill(scout, small, 1_000)
        _prefill(scout, large, decisions)
        with httpx.Client(base_url=scout.url, timeout=600) as client:
            runs = [_export(client, small, worker, "jsonl")]
            runs += [_export(client, large, worker, fmt) for fmt in ("jsonl", "csv")]
    for run in runs:
        log(
            f"  {run['lines']:,} lines of {run['format']} ({run['megabytes']} MB) in "
            f"{run['seconds']} s: worker RSS {run['rss_before_mb']} MB before, "
            f"{run['rss_peak_mb']} MB at most while streaming"
        )
    return {"decisions": decisions, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=300_000)
    args = parser.parse_args()
    print(json.dumps(benchmark(decisions=args.decisions, log=print), indent=2))


if __name__ == "__main__":
    main()
