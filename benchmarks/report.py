"""Tables (Markdown, printed and saved) and PNG plots of a benchmark run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def serving_table(result: dict[str, Any]) -> str:
    rows = [
        [
            row["load"],
            row["concurrency"],
            f"**{row['throughput_ratio']:.2f}**"
            + (
                f" ({min(row['throughput_ratio_per_round']):.2f}-"
                f"{max(row['throughput_ratio_per_round']):.2f})"
                if len(row.get("throughput_ratio_per_round", [])) > 1
                else ""
            ),
            f"{row['scout_p50_ms']:.1f} / {row['scout_p99_ms']:.1f}",
            f"{row['baseline_p50_ms']:.1f} / {row['baseline_p99_ms']:.1f}",
            f"{row['scout_rps']:.0f} / {row['baseline_rps']:.0f}",
            f"{row['scout_errors']} / {row['baseline_errors']}",
        ]
        for row in result["comparison"]
    ]
    paced = result.get("paced_decide")
    if paced:
        rows.append(
            [
                f"decide, paced at {paced['offered_rps']} req/s",
                paced["concurrency"],
                "(offered rate)",
                f"{paced['scout_p50_ms']:.1f} / {paced['scout_p99_ms']:.1f}",
                f"{paced['baseline_p50_ms']:.1f} / {paced['baseline_p99_ms']:.1f}",
                f"{paced['scout_rps']:.0f} / {paced['baseline_rps']:.0f}",
                f"{paced['scout_errors']} / {paced['baseline_errors']}",
            ]
        )
    header = [
        "load",
        "connections",
        "Scout / baseline throughput: median of rounds (range)",
        "Scout p50 / p99 ms",
        "baseline p50 / p99 ms",
        "req/s Scout / baseline",
        "errors",
    ]
    return _table(header, rows)


def footprint_table(result: dict[str, Any]) -> str:
    rows = [[item["figure"], item["measured"], item["target"], item["met"]] for item in result]
    return _table(["figure", "measured", "target", "met"], rows)


def quality_table(summary: dict[str, Any]) -> str:
    parts = []
    for env in summary["environments"]:
        rows = [
            [
                row["agent"],
                f"{row['mean_reward']:.4f} ± {row['mean_reward_std']:.4f}",
                f"{row['regret']:.1f} ± {row['regret_std']:.1f}",
            ]
            for row in env["rows"]
        ]
        parts.append(
            f"**{env['title']}** (`{env['name']}`, {env['arms']} variants, model refreshed and "
            f"rewards delivered every {env['batch']} decisions)\n\n"
            + _table(["policy", "mean reward", "cumulative regret"], rows)
        )
    return "\n\n".join(parts)


def quality_verdicts(summary: dict[str, Any]) -> str:
    rows = [
        [
            env["name"],
            env["scout_regret"],
            f"{env['best_library']} ({env['best_library_regret']})",
            env["scout_over_best_library"],
            f"{env['difference']:+.1f} ± {env['difference_se']:.1f}",
            env["verdict"],
        ]
        for env in summary["environments"]
    ]
    header = [
        "environment",
        "Scout regret",
        "best library (regret)",
        "ratio",
        "Scout − library, paired by seed (± s.e.)",
        "verdict",
    ]
    return _table(header, rows)


def regret_plots(curves: dict[str, dict[str, np.ndarray]], summary: dict, out: Path) -> list[Path]:
    """One PNG per environment: mean cumulative regret with a band of one standard deviation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {env["name"]: env["title"] for env in summary["environments"]}
    paths = []
    for env_name, agents in curves.items():
        figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
        for agent, regret in agents.items():
            if agent == "Oracle":
                continue
            mean, std = regret.mean(axis=0), regret.std(axis=0)
            steps = np.arange(1, len(mean) + 1)
            width = 2.4 if agent.startswith("Scout") else 1.2
            (line,) = axis.plot(steps, mean, label=agent, linewidth=width)
            axis.fill_between(steps, mean - std, mean + std, alpha=0.12, color=line.get_color())
        axis.set_title(titles.get(env_name, env_name), fontsize=10)
        axis.set_xlabel("decisions")
        axis.set_ylabel("cumulative regret (expected clicks lost)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="upper left")
        figure.tight_layout()
        path = out / f"regret_{env_name}.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths


def serving_plot(result: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["comparison"]
    labels = [f"{row['load']}\nc={row['concurrency']}" for row in rows]
    figure, axis = plt.subplots(figsize=(7, 3.6), dpi=110)
    positions = np.arange(len(rows))
    axis.bar(positions, [row["throughput_ratio"] for row in rows], color="#4C72B0")
    axis.axhline(1.0, color="grey", linewidth=1)
    axis.axhline(0.7, color="#C44E52", linestyle="--", linewidth=1, label="target for decide: 0.7")
    axis.set_xticks(positions, labels, fontsize=8)
    axis.set_ylabel("Scout / baseline throughput")
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path = out / "serving_ratio.png"
    figure.savefig(path)
    plt.close(figure)
    return path
