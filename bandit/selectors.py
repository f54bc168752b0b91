"""The read side: what the list, the details and the dashboards show of Tests."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from bandit import decision_log, health, snapshots, winners
from bandit.models import Test
from bandit.services import Schedule, get_test, restore_lost
from bandit.state import reads
from core.time import iso


def _summary(test: Test, counters: reads.Counters) -> dict[str, Any]:
    return {
        "cb_model_id": str(test.id),
        "name": test.name,
        "num_variants": len(test.variants),
        "total_predictions": counters.total_predictions,
        "total_updates": counters.total_updates,
        "created_at": iso(test.created_at),
        "last_prediction_at": iso(counters.last_prediction_at),
        "last_update_at": iso(counters.last_update_at),
        "is_active": test.is_active,
        "global_variant_rollout": test.global_variant_rollout,
    }


def list_tests() -> list[dict[str, Any]]:
    """Every Test with its summary, newest first (one Redis round trip for all of them)."""
    tests = list(Test.objects.all())
    restore_lost(tests)
    counters = reads.counters([str(test.id) for test in tests])
    return [_summary(test, counters[str(test.id)]) for test in tests]


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 6) if whole else 0.0


def _winner(test_id: str, rewards: int) -> dict[str, Any] | None:
    snapshot = snapshots.get(test_id)
    return winners.winner(snapshot, rewards=rewards) if snapshot is not None else None


def evaluation(test: Test) -> dict[str, Any]:
    """What the decision log says of the Test: the holdout against the bandit."""
    logged = decision_log.logged_count(test)
    return {
        "holdout": decision_log.holdout(test),
        "logged_decisions": logged["decisions"],
        "logged_rewards": logged["rewarded"],
    }


def details(test_id: str) -> dict[str, Any]:
    test = get_test(test_id)
    restore_lost([test])
    key = str(test.id)
    counters = reads.counters([key])[key]
    predictions, rewards = reads.trails(
        key,
        window_seconds=test.trail_time_window_minutes * 60,
        granularity_seconds=test.trail_bucket_granularity_seconds,
    )
    recent = {variant: 0 for variant in test.variant_ids()}
    for bucket in predictions:
        for variant, count in bucket.counts.items():
            recent[variant] = recent.get(variant, 0) + count
    # "Current" traffic is the share within the trail window; before any recent traffic, the
    # share over the Test's whole life.
    shares = recent if sum(recent.values()) else counters.predictions
    total_share = sum(shares.values())

    performance = {}
    retired = set(test.retired_variants)
    for variant in test.variant_ids():
        updates = counters.updates.get(variant, 0)
        reward_sum = counters.reward_sums.get(variant, 0.0)
        performance[str(variant)] = {
            "predictions": counters.predictions.get(variant, 0),
            "updates": updates,
            "reward_sum": reward_sum,
            # A number for every variant: clients of the contract parse it as one. `updates`
            # says how much it is worth (none before the first reward).
            "average_reward": reward_sum / updates if updates else 0.0,
            "current_prediction_ratio": _ratio(shares.get(variant, 0), total_share),
            "evidence": round(updates - counters.forgotten.get(variant, 0.0), 6),
            "changes_detected": counters.changes.get(variant, 0),
            "default_rewards": counters.defaults.get(variant, 0),
            "retired": variant in retired,
        }

    return {
        **_summary(test, counters),
        "variants": test.variants,
        "retired_variants": sorted(retired),
        "trail_time_window_minutes": test.trail_time_window_minutes,
        "trail_bucket_granularity_seconds": test.trail_bucket_granularity_seconds,
        "minimum_update_requests_for_stats": test.minimum_update_requests,
        "sampling": test.sampling,
        "prior": test.prior,
        "forgetting": test.forgetting,
        "last_change_at": iso(counters.last_change_at),
        "minimum_variant_share": test.minimum_variant_share,
        "sticky_assignment": test.sticky_assignment,
        "sticky_seconds": test.sticky_seconds,
        "holdout_share": test.holdout_share,
        "reward_window_seconds": test.reward_window_seconds,
        "default_reward": test.default_reward,
        "decisions_awaiting_reward": counters.waiting,
        "performance_summary": performance,
        "prediction_trail": [
            {
                "timestamp": iso(bucket.start),
                "variant_id": variant,
                "context_keys": bucket.context_keys.get(variant, []),
                "count": count,
            }
            for bucket in predictions
            for variant, count in sorted(bucket.counts.items())
        ],
        "update_trail": [
            {
                "timestamp": iso(bucket.start),
                "variant_id": variant,
                "reward": bucket.reward_sums.get(variant, 0.0) / count if count else None,
                "context_keys": bucket.context_keys.get(variant, []),
                "count": count,
                "reward_sum": bucket.reward_sums.get(variant, 0.0),
            }
            for bucket in rewards
            for variant, count in sorted(bucket.counts.items())
        ],
        "context_feature_analysis": _feature_analysis(key, test, counters),
        "exploitation_exploration_ratio": _exploitation(counters),
        "evaluation": evaluation(test),
        **schedule(test),
        "health": health.health(test, counters),
        "winner": _winner(key, counters.total_updates),
    }


def schedule(test: Test) -> dict[str, Any]:
    """A Test's schedule and where it stands."""
    state = "scheduled" if test.waiting_to_start else "ended" if test.ended_at else "running"
    return {
        "starts_at": iso(test.starts_at),
        "ends_at": iso(test.ends_at),
        "on_end": test.on_end_variant if test.on_end == Schedule.VARIANT else test.on_end,
        "schedule": state,
        "started_at": iso(test.started_at),
        "ended_at": iso(test.ended_at),
    }


def _feature_analysis(key: str, test: Test, counters: reads.Counters) -> dict[str, Any]:
    """Per feature value: each variant's traffic share and mean reward among visitors with it."""
    vocabulary, raw = reads.feature_analysis(key)
    if not vocabulary:
        return {}
    features = []
    for name, index in sorted(vocabulary.items(), key=lambda item: item[1]):
        decoded = json.loads(name)
        per_variant = {}
        decisions = {
            variant: int(raw.get(f"p:{variant}:{index}", 0)) for variant in test.variant_ids()
        }
        total = sum(decisions.values())
        for variant in test.variant_ids():
            updates = int(raw.get(f"u:{variant}:{index}", 0))
            reward_sum = raw.get(f"s:{variant}:{index}", 0.0)
            per_variant[str(variant)] = {
                "predictions": decisions[variant],
                "traffic_share": _ratio(decisions[variant], total),
                "updates": updates,
                "reward_sum": reward_sum,
                "mean_reward": reward_sum / updates if updates else None,
            }
        features.append(
            {
                "key": decoded[0],
                "value": decoded[1] if len(decoded) > 1 else None,
                "kind": "categorical" if len(decoded) > 1 else "numeric",
                "predictions": total,
                "variants": per_variant,
            }
        )
    return {
        "features": features,
        "vocabulary_size": len(vocabulary),
        "vocabulary_limit": settings.SCOUT_MAX_FEATURES,
        "overflowed_features": counters.overflow,
    }


def _exploitation(counters: reads.Counters) -> dict[str, Any]:
    exploit = counters.kinds.get("exploit", 0)
    explore = counters.kinds.get("explore", 0)
    return {
        "exploitation": exploit,
        "exploration": explore,
        "global_rollout": counters.kinds.get("rollout", 0),
        "ratio": round(exploit / (exploit + explore), 6) if exploit + explore else None,
    }
