"""Footprints: latency with a long history, Redis memory per stored decision, worker memory."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks import serving
from benchmarks.servers import ROOT, Scout

PROCESSES = 2  # prefill processes in parallel, one per core


def _prefill(scout: Scout, kind: str, test_id: str, total: int) -> float:
    """Run the prefill in parallel processes; answer the wall time."""
    share = total // PROCESSES
    env = {**scout.env(), "DJANGO_SETTINGS_MODULE": "project.settings"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.prefill", kind, test_id, str(i * share), str(share)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    outputs = [json.loads(proc.communicate()[0]) for proc in procs]
    if any(proc.returncode for proc in procs):
        raise RuntimeError("prefill failed")
    return max(output["seconds"] for output in outputs)


def history(*, decisions: int, seconds: float, rounds: int, log: Callable[[str], None]) -> dict:
    """p50 of decisions on a Test with `decisions` decisions and rewards behind it, against a
    fresh Test on the same server; and Redis memory per stored decision (four-key context)."""
    with Scout() as scout:
        old, fresh = scout.create_test(3), scout.create_test(3)
        client = scout.redis()
        before = client.info("memory")["used_memory"]
        decide_seconds = _prefill(scout, "decide", old, decisions)
        after = client.info("memory")["used_memory"]
        sample = [
            client.memory_usage(key)
            for key, _ in zip(
                client.scan_iter(match="*:c:*", count=1000), range(2000), strict=False
            )
        ]
        log(
            f"  {decisions} decisions stored in {decide_seconds:.0f}s: "
            f"{(after - before) / decisions:.0f} bytes each"
        )
        reward_seconds = _prefill(scout, "reward", old, decisions)
        log(f"  {decisions} rewards applied in {reward_seconds:.0f}s")
        # The fresh Test learns a little first, so both use the contextual posterior.
        serving.run_wrk(scout, fresh, "mixed", 8, 3)
        serving.run_wrk(scout, old, "decide", 8, 2)
        p50: dict[str, list[float]] = {"fresh": [], "history": []}
        for round_index in range(rounds):
            order = [("fresh", fresh), ("history", old)]
            for name, test_id in order if round_index % 2 == 0 else order[::-1]:
                run = serving.run_wrk(scout, test_id, "decide", 8, seconds)
                p50[name].append(run.p50_ms)
                log(f"  {name:8} p50 {run.p50_ms:.2f} ms ({run.rps:.0f} req/s)")
        # Per round, the two runs next to each other in time; the median over rounds (as for
        # the serving ratio: the machine's speed drifts more between rounds than within one).
        per_round = [
            round(old_p50 / fresh_p50, 3)
            for fresh_p50, old_p50 in zip(p50["fresh"], p50["history"], strict=True)
        ]
        return {
            "decisions_and_rewards": decisions,
            "prefill": "services.recommend and services.record_rewards (batches of 1,000), "
            f"{PROCESSES} processes, no HTTP",
            "prefill_seconds": {"decisions": decide_seconds, "rewards": reward_seconds},
            "p50_ms_fresh": p50["fresh"],
            "p50_ms_history": p50["history"],
            "p50_ratio": round(statistics.median(per_round), 3),
            "p50_ratio_per_round": per_round,
            "redis_bytes_per_decision": round((after - before) / decisions, 1),
            "memory_usage_per_context_key": round(statistics.mean(sample), 1),
        }


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def worker_memory(*, tests: int, variants: int, log: Callable[[str], None]) -> dict:
    """RSS of one worker that has loaded `tests` contextual Tests of `variants` variants."""
    with Scout(extra_env={"SCOUT_WORKERS": "1"}) as scout:
        (worker,) = scout.worker_pids()
        idle = _rss_mb(worker)
        with httpx.Client(base_url=scout.url, timeout=30) as client:
            ids = [scout.create_test(variants) for _ in range(tests)]
            for n, test_id in enumerate(ids):
                updates = [
                    {
                        "variant_id": i % variants,
                        "reward": (i + n) % 2,
                        "context": {"device": ("mobile", "desktop")[i % 2], "plan": "a", "n": i},
                    }
                    for i in range(20)
                ]
                client.post(f"/api/update_model/{test_id}", json={"updates": updates})
            for test_id in ids:
                body = {"cb_model_id": test_id, "context": {"device": "mobile", "plan": "a"}}
                response = client.post("/api/fetch_recommended_variant", json=body)
                response.raise_for_status()
            loaded = _rss_mb(worker)
            scrape = _scrape(client)
        log(f"  worker RSS {idle:.0f} MB idle, {loaded:.0f} MB with {tests} Tests loaded")
        log(
            f"  /metrics with {tests} Tests: {scrape['series']:,} series, "
            f"{scrape['bytes'] / 1e6:.1f} MB, {scrape['seconds_median']:.2f} s (median of 3)"
        )
        return {
            "tests": tests,
            "variants": variants,
            "idle_mb": idle,
            "loaded_mb": loaded,
            "scrape": scrape,
        }


def many_tests(*, tests: int, seconds: float, rounds: int, log: Callable[[str], None]) -> dict:
    """Decisions per second spread over `tests` Tests (each taught by 20 contextual rewards,
    fetched at least once, then decided for by every worker), against decisions for one Test on
    the same server in interleaved rounds; and each worker's memory once it has served them."""
    with Scout() as scout:
        ids_file = scout.data_dir / "test-ids.txt"
        env = {**scout.env(), "DJANGO_SETTINGS_MODULE": "project.settings"}
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "benchmarks.prefill", "tests", str(ids_file), "0", str(tests)],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        ids = ids_file.read_text().split()
        log(f"  {len(ids):,} Tests created and taught in {time.perf_counter() - began:.0f}s")
        idle = {pid: _rss_mb(pid) for pid in scout.worker_pids()}
        with httpx.Client(base_url=scout.url, timeout=30) as client:
            for test_id in ids:  # each fetched at least once
                body = {"cb_model_id": test_id, "context": {"device": "mobile", "plan": "a"}}
                client.post("/api/fetch_recommended_variant", json=body).raise_for_status()
        one = ids[0]
        # Warm the workers: about four decisions per Test at this machine's rate, one per
        # worker on average, which leaves each worker about a third of the Tests to load in
        # the rounds (a worker keeps every Test it loaded): the rounds include first loads, as
        # a server's first minutes with 10,000 Tests do, and later rounds fewer of them.
        serving.run_wrk(scout, str(ids_file), "spread", 32, max(seconds, tests // 250))
        rates: dict[str, list[float]] = {"one": [], "spread": []}
        p99: dict[str, list[float]] = {"one": [], "spread": []}
        for round_index in range(rounds):
            order = [("one", one), ("spread", str(ids_file))]
            for name, target in order if round_index % 2 == 0 else order[::-1]:
                run = serving.run_wrk(
                    scout, target, "decide" if name == "one" else name, 32, seconds
                )
                rates[name].append(run.rps)
                p99[name].append(run.p99_ms)
                log(f"  {name:6} {run.rps:7.0f} decisions/s  p99 {run.p99_ms:.1f} ms")
        loaded = {pid: _rss_mb(pid) for pid in scout.worker_pids()}
    per_round = [
        round(spread / single, 3)
        for spread, single in zip(rates["spread"], rates["one"], strict=True)
    ]
    log(
        f"  {tests:,} Tests: {statistics.median(rates['spread']):.0f} decisions/s "
        f"({statistics.median(per_round):.2f}x one Test); worker RSS "
        f"{max(idle.values()):.0f} MB idle, {max(loaded.values()):.0f} MB after"
    )
    return {
        "tests": tests,
        "decisions_per_second_spread": statistics.median(rates["spread"]),
        "decisions_per_second_one_test": statistics.median(rates["one"]),
        "ratio_spread_to_one": statistics.median(per_round),
        "ratio_per_round": per_round,
        "p99_ms_spread": statistics.median(p99["spread"]),
        "p99_ms_one_test": statistics.median(p99["one"]),
        "worker_rss_mb_idle": max(idle.values()),
        "worker_rss_mb_loaded": max(loaded.values()),
        "workers": len(loaded),
    }


def _scrape(client: httpx.Client, rounds: int = 3) -> dict[str, Any]:
    """What one scrape of /metrics costs: its series, its size and how long it takes."""
    seconds, body = [], ""
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get("/metrics")
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
        body = response.text
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    return {
        "series": series,
        "bytes": len(body.encode()),
        "seconds_median": round(statistics.median(seconds), 3),
    }


def targets(
    history_result: dict[str, Any],
    memory: dict[str, Any],
    serving_result: dict,
    many: dict[str, Any] | None = None,
) -> list:
    """The hot path's targets (issue 14) next to what this run measured."""
    by = {(row["load"], row["concurrency"]): row for row in serving_result["comparison"]}
    decide32 = by[("decide", 32)]
    items: list[tuple[str, object, str, bool]] = []
    for load, name in (("decide", "decision"), ("mixed", "decide-then-reward")):
        for concurrency in (8, 32):
            ratio = by[(load, concurrency)]["throughput_ratio"]
            items.append(
                (
                    f"{name} throughput / baseline, {concurrency} connections",
                    ratio,
                    ">= 1.0",
                    ratio >= 1.0,
                )
            )
    items += [
        (
            "decision p99 at 32 connections, closed loop (baseline: "
            f"{decide32['baseline_p99_ms']:.1f} ms)",
            f"{decide32['scout_p99_ms']:.1f} ms",
            "<= baseline",
            decide32["scout_p99_ms"] <= decide32["baseline_p99_ms"],
        ),
        (
            f"decision p50 after {history_result['decisions_and_rewards']:,} decisions and "
            "rewards / fresh Test",
            history_result["p50_ratio"],
            "<= 1.10",
            history_result["p50_ratio"] <= 1.10,
        ),
        (
            "Redis memory per stored decision (four-key context)",
            f"{history_result['redis_bytes_per_decision']:.0f} bytes",
            "< 300 bytes",
            history_result["redis_bytes_per_decision"] < 300,
        ),
        (
            f"worker RSS with {memory['tests']:,} Tests of {memory['variants']} variants",
            f"{memory['loaded_mb']:.0f} MB",
            "< 150 MB",
            memory["loaded_mb"] < 150,
        ),
    ]
    if many is not None:
        items += [
            (
                f"decisions/s spread over {many['tests']:,} Tests / one Test",
                many["ratio_spread_to_one"],
                ">= 0.8",
                many["ratio_spread_to_one"] >= 0.8,
            ),
            (
                f"worker RSS after serving {many['tests']:,} Tests (3 variants, contextual)",
                f"{many['worker_rss_mb_loaded']:.0f} MB",
                "< 300 MB",
                many["worker_rss_mb_loaded"] < 300,
            ),
        ]
    return [
        {"figure": figure, "measured": measured, "target": target, "met": "yes" if ok else "no"}
        for figure, measured, target, ok in items
    ]


def variant_cardinality(
    *, tests: int = 20, variants: int = 1000, decisions: int = 500, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The series and cost of a scrape with Tests of many variants, decided uniformly (so that
    their decisions reach hundreds of variants), with the default bound on per-variant series
    and with the bound lifted (SCOUT_METRICS_MAX_VARIANTS=1000)."""
    results = []
    for bound in ("20", "1000"):
        scout = Scout(extra_env={"SCOUT_WORKERS": "1", "SCOUT_METRICS_MAX_VARIANTS": bound})
        with scout, httpx.Client(base_url=scout.url, timeout=30) as client:
            for _ in range(tests):
                test_id = scout.create_test(variants)
                for _ in range(decisions):
                    body = {"cb_model_id": test_id}
                    client.post("/api/fetch_recommended_variant", json=body).raise_for_status()
            scrape = _scrape(client)
        results.append({"max_variants": int(bound), "tests": tests, "variants": variants, **scrape})
        log(
            f"  {tests} Tests of {variants} variants, SCOUT_METRICS_MAX_VARIANTS={bound}: "
            f"{scrape['series']:,} series, {scrape['bytes'] / 1e6:.2f} MB, "
            f"{scrape['seconds_median']:.3f} s"
        )
    return results
