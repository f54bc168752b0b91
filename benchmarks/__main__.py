"""Run every benchmark: `python -m benchmarks [--short|--full] [--only NAME ...]`.

Prints the tables, and writes `results/results.json`, `results/summary.md` and PNG plots into
`benchmarks/results/`. Short mode takes a few minutes; full mode about half an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks import export, footprint, http_quality, quality, report, serving, slow_clients

RESULTS = Path(__file__).with_name("results")

MODES = {
    "short": {
        "serving_seconds": 5,
        "serving_rounds": 1,
        "history_decisions": 100_000,
        "history_seconds": 4,
        "history_rounds": 4,
        "quality_horizon": 2_000,
        "quality_seeds": 4,
        "http_seeds": 1,
        "many_tests": 1_000,
    },
    "full": {
        "serving_seconds": 8,
        "serving_rounds": 5,
        "history_decisions": 1_000_000,
        "history_seconds": 5,
        "history_rounds": 6,
        "quality_horizon": 5_000,
        "quality_seeds": 24,
        "http_seeds": 24,
        "many_tests": 10_000,
    },
}
PARTS = ("serving", "slow_clients", "footprint", "quality", "http")


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--short", action="store_const", dest="mode", const="short")
    group.add_argument("--full", action="store_const", dest="mode", const="full")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    options = parser.parse_args()
    mode = options.mode or "short"
    config = MODES[mode]
    RESULTS.mkdir(exist_ok=True)
    results: dict[str, object] = {"mode": mode, "config": config, "machine": machine()}
    sections: list[str] = []
    began = time.monotonic()

    def section(title: str, body: str) -> None:
        print(f"\n## {title}\n\n{body}\n", flush=True)
        sections.append(f"### {title}\n\n{body}\n")

    serving_result = history_result = memory_result = many_result = None
    if "serving" in options.only:
        print("Serving: Scout and the baseline under the same loads", flush=True)
        serving_result = serving.benchmark(
            seconds=config["serving_seconds"], rounds=config["serving_rounds"]
        )
        results["serving"] = serving_result
        report.serving_plot(serving_result, RESULTS)
        section("Serving: Scout as a ratio of the baseline", report.serving_table(serving_result))
    if "slow_clients" in options.only:
        print("Slow clients: paced decisions beside stalled and trickling connections", flush=True)
        slow_result = slow_clients.benchmark(seconds=config["serving_seconds"])
        results["slow_clients"] = slow_result
        section("Slow clients", slow_clients.table(slow_result))
    if "footprint" in options.only:
        print("Footprint: a long history, Redis memory, worker memory", flush=True)
        history_result = footprint.history(
            decisions=config["history_decisions"],
            seconds=config["history_seconds"],
            rounds=config["history_rounds"],
            log=print,
        )
        memory_result = footprint.worker_memory(tests=1000, variants=10, log=print)
        results["history"], results["worker_memory"] = history_result, memory_result
        results["variant_cardinality"] = footprint.variant_cardinality(log=print)
        many_result = footprint.many_tests(
            tests=config["many_tests"],
            seconds=config["serving_seconds"],
            rounds=config["serving_rounds"],
            log=print,
        )
        results["many_tests"] = many_result
        print("Footprint: the decision log's export", flush=True)
        results["decision_log_export"] = export.benchmark(decisions=300_000, log=print)
    if serving_result and history_result and memory_result:
        targets = footprint.targets(history_result, memory_result, serving_result, many_result)
        results["targets"] = targets
        section("Targets", report.footprint_table(targets))
    if "quality" in options.only:
        print("Quality: simulated Tests, Scout's policy code and the references", flush=True)
        summary, curves = quality.benchmark(
            horizon=config["quality_horizon"], seeds=config["quality_seeds"]
        )
        results["quality"] = summary
        report.regret_plots(curves, summary, RESULTS)
        section(
            f"Decision quality ({summary['seeds']} seeds, {summary['horizon']:,} decisions)",
            report.quality_verdicts(summary),
        )
        sections.append(report.quality_table(summary) + "\n")
    if "http" in options.only:
        print("Quality over HTTP: every simulated Test through `scout serve`", flush=True)
        http_result = http_quality.benchmark(
            horizon=config["quality_horizon"], seeds=config["http_seeds"]
        )
        results["http_quality"] = http_result
        section(
            f"Decision quality through the HTTP API ({http_result['seeds']} seeds, "
            f"{http_result['horizon']:,} decisions, every setting at its default)",
            http_quality.table(http_result),
        )
    results["seconds"] = round(time.monotonic() - began, 1)
    (RESULTS / "results.json").write_text(json.dumps(results, indent=2, default=_plain))
    header = (
        f"Mode `{mode}`, {results['seconds']:.0f} s, on {machine()['cpus']} CPUs "
        f"({machine()['system']}, Python {machine()['python']}).\n\n"
    )
    (RESULTS / "summary.md").write_text(header + "\n".join(sections))
    print(f"\nWrote {RESULTS}/results.json, summary.md and plots ({results['seconds']:.0f} s).")


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value))


if __name__ == "__main__":
    main()
