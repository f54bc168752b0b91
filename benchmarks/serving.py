"""Serving benchmark: the same loads, from `wrk`, against Scout and against the baseline.

Loads (each a closed loop of N connections, bounded in time and in requests):
- decide: one fetch per request, a four-key context and a fresh request id each time;
- reward: one reward per request, by a fresh request id with its context inline;
- mixed: fetches, and for a share of them the reward of that very decision by its request id
  (the client's real flow: Scout looks the stored context up).
Runs alternate between the two servers so that drift on a shared machine hits both alike, and
the throughput ratio is taken per round, between two runs next to each other in time, then the
median over rounds: on a shared machine the speed of a whole run moves by 20% from one minute
to the next, which a ratio of two separate medians would carry whole.

Latency under a closed loop at saturation is mostly queueing (Little's law: 32 connections at
600 req/s wait 53 ms on average, whatever the server does). So decision latency is also
measured paced: 32 connections that together offer half of the baseline's saturated decision
rate, the same rate to both servers, as a product's traffic would arrive.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.servers import Baseline, Scout, Server

LOAD_SCRIPT = Path(__file__).with_name("load.lua")
MAX_REQUESTS_PER_THREAD = 500_000  # the count bound; the time bound normally ends a run first
REWARD_SHARE = 0.5  # share of decisions rewarded in the mixed flow
WRK_THREADS = 2
PACED_SHARE = 0.5  # the paced run offers this share of the baseline's saturated decide rate


@dataclass
class Run:
    server: str
    load: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    server: Server,
    test_id: str,
    load: str,
    concurrency: int,
    seconds: float,
    rate: float | None = None,
) -> Run:
    """One wrk run; the Lua script prints its summary as a JSON line. With `rate`, the
    connections together offer about that many requests per second."""
    pace_ms = 1000.0 * concurrency / rate if rate else 0.0
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--timeout=5s",
        "-s",
        str(LOAD_SCRIPT),
        server.url,
        "--",
        load,
        test_id,
        str(REWARD_SHARE),
        str(MAX_REQUESTS_PER_THREAD),
        f"{pace_ms:.3f}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    summary = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(value for key, value in summary.items() if key.startswith("errors_"))
    duration = summary["duration_us"] / 1e6
    return Run(
        server=server.name,
        load=load,
        concurrency=concurrency,
        requests=summary["requests"],
        seconds=round(duration, 2),
        rps=round(summary["requests"] / duration, 1),
        p50_ms=round(summary["p50_us"] / 1000, 2),
        p99_ms=round(summary["p99_us"] / 1000, 2),
        errors=errors,
    )


def median_run(runs: list[Run]) -> Run:
    """Across repeated rounds: the median of each figure (errors summed)."""
    first = runs[0]
    return Run(
        server=first.server,
        load=first.load,
        concurrency=first.concurrency,
        requests=sum(run.requests for run in runs),
        seconds=round(sum(run.seconds for run in runs), 2),
        rps=round(statistics.median(run.rps for run in runs), 1),
        p50_ms=round(statistics.median(run.p50_ms for run in runs), 2),
        p99_ms=round(statistics.median(run.p99_ms for run in runs), 2),
        errors=sum(run.errors for run in runs),
    )


def benchmark(*, seconds: float, rounds: int, log: Callable[[str], None] = print) -> dict:
    """Every load at concurrency 8 and 32 against both servers; Scout as a ratio of baseline."""
    loads = ("decide", "reward", "mixed")
    concurrencies = (8, 32)
    results: dict[tuple[str, str, int], list[Run]] = {}
    with Scout() as scout, Baseline() as baseline:
        tests = {scout.name: scout.create_test(3), baseline.name: baseline.create_test(3)}
        servers = (scout, baseline)
        # Warm up every worker, and teach Scout's Test so that decisions use the contextual
        # posterior (not the uniform phase before minimum_update_requests rewards).
        for server in servers:
            run_wrk(server, tests[server.name], "mixed", 32, 3)
        for round_index in range(rounds):
            for load in loads:
                for concurrency in concurrencies:
                    for server in servers if round_index % 2 == 0 else servers[::-1]:
                        run = run_wrk(server, tests[server.name], load, concurrency, seconds)
                        results.setdefault((server.name, load, concurrency), []).append(run)
                        log(
                            f"  {run.server:8} {run.load:6} c={run.concurrency:<3} "
                            f"{run.rps:8.1f} req/s  p50 {run.p50_ms:7.2f} ms  "
                            f"p99 {run.p99_ms:7.2f} ms  errors {run.errors}"
                        )
        runs = [median_run(group) for group in results.values()]
        by_key = {(run.server, run.load, run.concurrency): run for run in runs}
        rate = round(PACED_SHARE * by_key[("baseline", "decide", 32)].rps)
        paced: dict[str, list[Run]] = {}
        for round_index in range(rounds):
            for server in servers if round_index % 2 == 0 else servers[::-1]:
                run = run_wrk(server, tests[server.name], "decide", 32, seconds, rate=rate)
                paced.setdefault(server.name, []).append(run)
                log(
                    f"  {run.server:8} paced  c=32  {run.rps:8.1f} req/s  p50 "
                    f"{run.p50_ms:7.2f} ms  p99 {run.p99_ms:7.2f} ms  errors {run.errors}"
                )
    ratios = []
    for load in loads:
        for concurrency in concurrencies:
            mine = by_key[("scout", load, concurrency)]
            base = by_key[("baseline", load, concurrency)]
            per_round = [
                round(a.rps / b.rps, 3)
                for a, b in zip(
                    results[("scout", load, concurrency)],
                    results[("baseline", load, concurrency)],
                    strict=True,
                )
                if b.rps
            ]
            ratios.append(
                {
                    "load": load,
                    "concurrency": concurrency,
                    "scout_rps": mine.rps,
                    "baseline_rps": base.rps,
                    "throughput_ratio": statistics.median(per_round) if per_round else None,
                    "throughput_ratio_per_round": per_round,
                    "scout_p50_ms": mine.p50_ms,
                    "scout_p99_ms": mine.p99_ms,
                    "baseline_p50_ms": base.p50_ms,
                    "baseline_p99_ms": base.p99_ms,
                    "scout_errors": mine.errors,
                    "baseline_errors": base.errors,
                }
            )
    paced_runs = {name: median_run(group) for name, group in paced.items()}
    return {
        "paced_decide": {
            "concurrency": 32,
            "offered_rps": rate,
            "share_of_baseline_saturated": PACED_SHARE,
            **{
                f"{name}_{key}": value
                for name, run in paced_runs.items()
                for key, value in (
                    ("rps", run.rps),
                    ("p50_ms", run.p50_ms),
                    ("p99_ms", run.p99_ms),
                    ("errors", run.errors),
                )
            },
        },
        "seconds_per_run": seconds,
        "rounds": rounds,
        "wrk_threads": WRK_THREADS,
        "max_requests_per_thread": MAX_REQUESTS_PER_THREAD,
        "reward_share_in_mixed": REWARD_SHARE,
        "runs": [asdict(run) for run in runs],
        "comparison": ratios,
    }
