"""The read side of the operator's console: what a Test's dashboard shows, assembled once.

The dashboard page and its JSON refresh endpoint both call `dashboard`, so the first paint
and every refresh show the same numbers, computed in one place rather than in templates.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

import numpy as np
from redis.exceptions import RedisError

from bandit import evaluation, policy, selectors, services, snapshots, winners
from bandit.models import Test
from bandit.state import reads
from core.errors import NotFound
from core.time import iso

# Charts with more points than this merge neighbouring trail buckets (a week of one-second
# buckets would otherwise send ten thousand points per variant on every refresh).
MAX_CHART_POINTS = 360

# What the model says of a retired variant: nothing (it is not chosen among any more).
RETIRED: dict[str, Any] = {
    "interval_low": None,
    "interval_high": None,
    "probability_best": None,
    "evidence": None,
    "changes": 0,
}


def list_counters(tests: list[Test]) -> dict[str, reads.Counters] | None:
    """The counters of a page of Tests in one round trip; None when Redis cannot answer, so
    the list still shows the definitions."""
    try:
        return reads.counters([str(test.id) for test in tests])
    except RedisError:
        return None


def _snapshot(test_id: str) -> snapshots.Snapshot:
    snapshot = snapshots.get(test_id)
    if snapshot is None:
        raise NotFound(f"Test {test_id} not found.")
    return snapshot


def _model(stats: policy.LearnedStats) -> str:
    """Which model the Test learns with, as `policy.build_posterior` picks it: `regression`
    (a context was learned from), `means` (real-valued rewards) or `rates` (0/1 rewards). The
    prior applies to rates alone and forgetting to Tests without a context."""
    if stats.contextual:
        return "regression"
    return "means" if stats.non_binary_rewards else "rates"


def _intervals(snapshot: snapshots.Snapshot, variant_ids: list[int]) -> dict[int, dict[str, float]]:
    """Per variant: its credible interval and P(best), the rewards the model learns from now
    (`evidence`: fewer than all of them after a detected change) and the changes detected."""
    now = winners.standing(snapshot)
    low, high, wins, stats = now.low, now.high, now.probability_best, now.stats
    changes = stats.recent.changes if stats.recent is not None else np.zeros(len(variant_ids))
    return {
        variant: {
            "interval_low": float(low[i]),
            "interval_high": float(high[i]),
            "probability_best": float(wins[i]),
            "evidence": float(stats.updates[i]),
            "changes": int(changes[i]),
        }
        for i, variant in enumerate(variant_ids)
    }


def _merge_factor(points: int) -> int:
    return max(1, math.ceil(points / MAX_CHART_POINTS))


def _series(details: dict[str, Any], variant_ids: list[int]) -> dict[str, Any]:
    """Traffic share and mean reward per variant per bucket, over the whole trail window.

    Buckets without traffic are kept (share and mean unknown: null) so the time axis is
    regular and a quiet period shows as a gap, not as a line drawn across it.
    """
    granularity = details["trail_bucket_granularity_seconds"]
    window = details["trail_time_window_minutes"] * 60
    factor = _merge_factor(window // granularity)
    step = granularity * factor
    now = _now()
    last = int(now // step) * step
    starts = list(range(last - (window // step - 1) * step, last + step, step))
    index = {start: i for i, start in enumerate(starts)}

    def empty() -> dict[int, list[float]]:
        return {variant: [0.0] * len(starts) for variant in variant_ids}

    predictions, updates, sums = empty(), empty(), empty()
    for entry in details["prediction_trail"]:
        slot = index.get(int(_epoch(entry["timestamp"]) // step) * step)
        if slot is not None and entry["variant_id"] in predictions:
            predictions[entry["variant_id"]][slot] += entry["count"]
    for entry in details["update_trail"]:
        slot = index.get(int(_epoch(entry["timestamp"]) // step) * step)
        if slot is not None and entry["variant_id"] in updates:
            updates[entry["variant_id"]][slot] += entry["count"]
            sums[entry["variant_id"]][slot] += entry["reward_sum"]

    totals = [sum(predictions[v][i] for v in variant_ids) for i in range(len(starts))]
    share = {
        variant: [
            round(predictions[variant][i] / totals[i], 4) if totals[i] else None
            for i in range(len(starts))
        ]
        for variant in variant_ids
    }
    mean = {
        variant: [
            round(sums[variant][i] / updates[variant][i], 4) if updates[variant][i] else None
            for i in range(len(starts))
        ]
        for variant in variant_ids
    }
    return {
        "timestamps": [iso(start) for start in starts],
        "bucket_seconds": step,
        "merged_buckets": factor,
        "traffic_share": {str(v): share[v] for v in variant_ids},
        "mean_reward": {str(v): mean[v] for v in variant_ids},
        "predictions": {str(v): [int(x) for x in predictions[v]] for v in variant_ids},
        "rewards": {str(v): [int(x) for x in updates[v]] for v in variant_ids},
    }


def _now() -> float:
    return time.time()


def _epoch(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def dashboard(test_id: str) -> dict[str, Any]:
    """Everything a Test's dashboard shows: totals, per variant performance with 95% credible
    intervals and the probability of being best, chart series over the trail window, and for a
    contextual Test the per feature value table."""
    details = selectors.details(test_id)
    labels = {int(key): label for key, label in details["variants"].items()}
    variant_ids = sorted(labels)
    snapshot = _snapshot(details["cb_model_id"])
    # The model learns about the variants in service; a retired one keeps its counts alone.
    intervals = _intervals(snapshot, snapshot.definition.variant_ids)
    rollout = details["global_variant_rollout"]
    variants = []
    for variant in variant_ids:
        summary = details["performance_summary"][str(variant)]
        variants.append(
            {
                "variant_id": variant,
                "label": str(labels[variant]),
                "predictions": summary["predictions"],
                "traffic_share": summary["current_prediction_ratio"],
                "rewards": summary["updates"],
                "reward_sum": summary["reward_sum"],
                "mean_reward": summary["average_reward"] if summary["updates"] else None,
                **intervals.get(variant, RETIRED),
                "rolled_out": rollout == variant,
                "retired": summary["retired"],
            }
        )
    analysis = details["context_feature_analysis"]
    return {
        "test_id": details["cb_model_id"],
        "name": details["name"],
        "created_at": details["created_at"],
        "last_prediction_at": details["last_prediction_at"],
        "last_update_at": details["last_update_at"],
        "is_active": details["is_active"],
        "global_variant_rollout": rollout,
        "global_variant_label": str(labels[rollout]) if rollout is not None else None,
        "total_predictions": details["total_predictions"],
        "total_updates": details["total_updates"],
        "minimum_update_requests": details["minimum_update_requests_for_stats"],
        "sampling": details["sampling"],
        "prior": details["prior"],
        "forgetting": details["forgetting"],
        "variants_in_service": len(snapshot.definition.variant_ids),
        "reward_window_seconds": details["reward_window_seconds"],
        "default_reward": details["default_reward"],
        "decisions_awaiting_reward": details["decisions_awaiting_reward"],
        "default_rewards": sum(
            summary["default_rewards"] for summary in details["performance_summary"].values()
        ),
        "winner": details["winner"],
        "health": _health(details["health"]),
        "schedule": _schedule(details, labels, snapshot.definition.variant_ids),
        "holdout": holdout(details["evaluation"]["holdout"]),
        "logged_decisions": details["evaluation"]["logged_decisions"],
        "model": _model(snapshot.stats),
        "learning": details["total_updates"] >= details["minimum_update_requests_for_stats"],
        "trail_time_window_minutes": details["trail_time_window_minutes"],
        "trail_bucket_granularity_seconds": details["trail_bucket_granularity_seconds"],
        "exploitation": details["exploitation_exploration_ratio"],
        "variants": variants,
        "series": _series(details, variant_ids),
        "features": _feature_rows(analysis, labels),
        "vocabulary": (
            {
                "size": analysis["vocabulary_size"],
                "limit": analysis["vocabulary_limit"],
                "overflowed": analysis["overflowed_features"],
            }
            if analysis
            else None
        ),
    }


# What each data health check is called on the dashboard.
HEALTH_TITLES = {
    "unknown_request_ids": "Rewards for decisions Scout did not know",
    "duplicate_rewards": "Rewards sent again",
    "variant_mismatches": "Rewards for another variant than the one shown",
    "late_rewards": "Rewards after their window closed",
    "decisions_without_reward": "Decisions without a reward",
    "sample_ratio": "The holdout's share of the rewarded decisions",
}


def _health(found: dict[str, Any]) -> dict[str, Any]:
    """The data health checks as the dashboard's rows: each one's numbers, and its state."""
    rows = []
    for name, check in found["checks"].items():
        if name == "sample_ratio":
            numbers = (
                f"{check['observed_share'] * 100:.1f}% of {check['rewards']:,} "
                f"(expected {check['expected_share'] * 100:.1f}%, p = {check['p_value']:.2g})"
                if "rewards" in check
                else ""
            )
        else:
            numbers = (
                f"{check['share'] * 100:.1f}% ({check['count']:,} of {check['out_of']:,}; "
                f"warns above {check['threshold'] * 100:g}%)"
            )
        if check["warning"]:
            state = "warning"
        elif not check["measured"]:
            state = check.get("reason") or "too few yet to tell"
        else:
            state = "ok"
        rows.append(
            {"name": name, "title": HEALTH_TITLES[name], "numbers": numbers, "state": state}
        )
    return {"ok": found["ok"], "warnings": found["warnings"], "rows": rows}


def _schedule(
    details: dict[str, Any], labels: dict[int, Any], in_service: list[int]
) -> dict[str, Any] | None:
    """The Test's schedule in words (None: it has none)."""
    if details["starts_at"] is None and details["ends_at"] is None:
        return None
    on_end = details["on_end"]
    if on_end == "keep":
        then = "it keeps learning"
    elif on_end == "rollout_best":
        then = "everyone gets the variant most likely to be best"
    else:
        then = f"everyone gets {labels.get(on_end, on_end)}"
    return {
        "state": details["schedule"],
        "starts_at": details["starts_at"],
        "ends_at": details["ends_at"],
        "started_at": details["started_at"],
        "ended_at": details["ended_at"],
        "waiting_label": str(labels[in_service[0]]) if in_service else None,
        "then": then,
    }


def policies(test_id: str) -> dict[str, Any]:
    """What other policies would have earned on the Test's logged traffic (bandit.evaluation),
    one row per policy: its best estimate (doubly robust where there is one) and the others."""
    result = evaluation.evaluate(services.get_test(test_id), None, None)
    rows = []
    for entry in result["policies"]:
        best = entry["doubly_robust"] or entry["snips"]
        rows.append(
            {
                "name": entry["description"],
                "as_run": entry["policy"] == "as_run",
                "value": best["value"] if best else None,
                "low": best["low"] if best else None,
                "high": best["high"] if best else None,
                "ips": entry["ips"]["value"] if entry["ips"] else None,
                "snips": entry["snips"]["value"] if entry["snips"] else None,
            }
        )
    return {"decisions": result["decisions"], "rows": rows}


def holdout(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The holdout's share, and what it says of the bandit in words a product manager reads:
    whether the bandit earns more than a plain split would, by how much, and how sure that is."""
    share = evaluation["holdout_share"]
    lift, relative = evaluation["lift"], evaluation["relative_lift"]
    if lift is None:
        if not share and not evaluation["holdout_rewards"]:
            verdict = "No holdout: give the Test one to measure the bandit against a plain split."
        else:
            verdict = (
                f"Not enough rewarded decisions yet ({evaluation['holdout_rewards']} of the "
                f"holdout, {evaluation['bandit_rewards']} of the bandit) to compare them."
            )
        return {"share": share, "verdict": verdict, "clear": None}
    if relative is not None:
        size = f"{abs(relative['value']):.1%}"
        span = f"between {relative['low']:+.1%} and {relative['high']:+.1%}"
    else:
        size = f"{abs(lift['value']):.4g}"
        span = f"between {lift['low']:+.4g} and {lift['high']:+.4g}"
    direction = "more" if lift["value"] >= 0 else "less"
    if lift["low"] > 0 or lift["high"] < 0:
        verdict = (
            f"The bandit earns {size} {direction} per decision than a plain split would "
            f"({span}, with 95% confidence)."
        )
        clear: bool | None = lift["low"] > 0
    else:
        verdict = (
            f"No clear difference yet: the bandit earns {size} {direction} per decision than a "
            f"plain split, but anywhere {span} is plausible."
        )
        clear = None
    return {"share": share, "verdict": verdict, "clear": clear}


def _feature_rows(analysis: dict[str, Any], labels: dict[int, str | int]) -> list[dict]:
    """One row per feature value, with each variant's traffic share and mean reward there."""
    rows = []
    for feature in analysis.get("features", []):
        cells = []
        for variant in sorted(labels):
            entry = feature["variants"][str(variant)]
            cells.append(
                {
                    "variant_id": variant,
                    "label": str(labels[variant]),
                    "traffic_share": entry["traffic_share"],
                    "predictions": entry["predictions"],
                    "rewards": entry["updates"],
                    "mean_reward": entry["mean_reward"],
                }
            )
        rows.append(
            {
                "key": feature["key"],
                "value": feature["value"],
                "kind": feature["kind"],
                "predictions": feature["predictions"],
                "variants": cells,
            }
        )
    return rows
