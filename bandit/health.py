"""A Test's data health: whether the rewards and decisions feeding it look right.

Each check says what it measured, the numbers behind it, its threshold (a setting, see the
README) and, when it fails, a warning in words a product manager reads. The counts come from
what the reward script made of each reward sent (its outcome, counted per Test in Redis:
bandit.state.keys), since the Test was created or since Scout counted them; the sample-ratio
check reads the decision log. A check needs SCOUT_HEALTH_MINIMUM_COUNT rewards (or decisions)
before it can fail: a handful of early mistakes is not a pattern.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from django.db.models import Count

from bandit.models import LoggedDecision, LoggedReward, Test
from bandit.state import reads
from bandit.state.rewards import (
    APPLIED,
    APPLIED_INLINE,
    DUPLICATE,
    GONE_WITHOUT_CONTEXT,
    GONE_WITHOUT_VARIANT,
    LATE,
    NOT_RANKED,
    OTHER_VARIANT,
    RANKED_WITHOUT_VARIANT,
)

UNKNOWN = (APPLIED_INLINE, GONE_WITHOUT_CONTEXT, GONE_WITHOUT_VARIANT)
MISMATCHED = (OTHER_VARIANT, NOT_RANKED)
SENT = (APPLIED, DUPLICATE, *MISMATCHED, *UNKNOWN, LATE, RANKED_WITHOUT_VARIANT)


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _share_check(count: int, out_of: int, threshold: float, warning: str) -> dict[str, Any]:
    """A check of a share of `out_of` against its threshold; `warning` is formatted with the
    share and the counts when it fails."""
    share = count / out_of if out_of else 0.0
    measured = out_of >= settings.SCOUT_HEALTH_MINIMUM_COUNT
    failed = measured and share > threshold
    return {
        "ok": not failed,
        "measured": measured,
        "count": count,
        "out_of": out_of,
        "share": share,
        "threshold": threshold,
        "warning": (
            warning.format(share=_percent(share), count=f"{count:,}", out_of=f"{out_of:,}")
            if failed
            else None
        ),
    }


def health(test: Test, counters: reads.Counters) -> dict[str, Any]:
    """Every check of the Test, and the warnings of those that fail."""
    outcomes = counters.outcomes
    sent = sum(outcomes.get(status, 0) for status in SENT)
    checks = {
        "unknown_request_ids": _share_check(
            sum(outcomes.get(status, 0) for status in UNKNOWN),
            sent,
            settings.SCOUT_HEALTH_UNKNOWN_SHARE,
            "{share} of the rewards ({count} of {out_of}) named a request_id Scout did not know, "
            "or had forgotten because it was older than the context TTL: check that the "
            "product sends the request_id of the decision, and sends it in time.",
        ),
        "duplicate_rewards": _share_check(
            outcomes.get(DUPLICATE, 0),
            sent,
            settings.SCOUT_HEALTH_DUPLICATE_SHARE,
            "{share} of the rewards ({count} of {out_of}) were sent again for a decision whose "
            "reward was counted already (they were not counted twice): the product retries or "
            "reports one visit more than once.",
        ),
        "variant_mismatches": _share_check(
            sum(outcomes.get(status, 0) for status in MISMATCHED),
            sent,
            settings.SCOUT_HEALTH_MISMATCH_SHARE,
            "{share} of the rewards ({count} of {out_of}) named another variant than the one "
            "Scout chose for that request_id: the product may show visitors something else "
            "than what Scout decided.",
        ),
        "late_rewards": _late(test, outcomes.get(LATE, 0), sent),
        "decisions_without_reward": _unrewarded(test, counters),
        "sample_ratio": sample_ratio(test),
    }
    warnings = [check["warning"] for check in checks.values() if check["warning"]]
    return {"ok": not warnings, "warnings": warnings, "rewards_sent": sent, "checks": checks}


def _late(test: Test, late: int, sent: int) -> dict[str, Any]:
    check = _share_check(
        late,
        sent,
        settings.SCOUT_HEALTH_LATE_SHARE,
        "{share} of the rewards ({count} of {out_of}) came after their decision's reward "
        "window had closed and were not counted: the window may be too short for how long "
        "visitors take.",
    )
    if test.reward_window_seconds is None and not late:
        check.update(measured=False, reason="The Test has no reward window.")
    return check


def _unrewarded(test: Test, counters: reads.Counters) -> dict[str, Any]:
    # Decisions served to everyone (a rollout, or a Test waiting for its start, which counts
    # no reward) are left out: a reward is not expected of them.
    decisions = counters.total_predictions - counters.kinds.get("rollout", 0)
    rewarded = min(decisions, counters.outcomes.get(APPLIED, 0))
    check = _share_check(
        decisions - rewarded,
        decisions,
        settings.SCOUT_HEALTH_UNREWARDED_SHARE,
        "{share} of the decisions ({count} of {out_of}) never got a reward: is the product "
        "sending rewards, with the request_id of each decision? A product that reports only "
        "conversions should give the Test a reward window.",
    )
    if test.reward_window_seconds is not None:
        check.update(
            ok=True,
            measured=False,
            warning=None,
            reason="The Test has a reward window: a decision without a reward counts its default.",
        )
    return check


def sample_ratio(test: Test) -> dict[str, Any]:
    """Whether the holdout's share of the rewarded decisions (made under the current holdout
    share, rolled-out ones left out, defaults left out) is what the setting says: a
    chi-square test of the two counts against the expected split. A product that loses the
    holdout's rewards, or the bandit's, makes the holdout's measure of the lift wrong."""
    share = test.holdout_share
    base: dict[str, Any] = {"ok": True, "measured": False, "warning": None, "expected_share": share}
    if share <= 0:
        return {**base, "reason": "The Test has no holdout."}
    if test.sticky_assignment:
        return {
            **base,
            "reason": "Sticky assignment repeats a unit's decision: its share is not a split.",
        }
    decided = LoggedDecision.objects.filter(
        test=test,
        is_global_rollout=False,
        learning__contains=f'"holdout_share":{json.dumps(float(share))}',
    ).values("request_id")
    counts = {True: 0, False: 0}
    for row in (
        LoggedReward.objects.filter(
            test=test, is_global_rollout=False, defaulted=False, request_id__in=decided
        )
        .values("holdout")
        .annotate(n=Count("id"))
    ):
        counts[row["holdout"]] = row["n"]
    total = counts[True] + counts[False]
    observed = counts[True] / total if total else 0.0
    expected = (total * share, total * (1 - share))
    seen = (counts[True], counts[False])
    chi_square = (
        sum((o - e) ** 2 / e for o, e in zip(seen, expected, strict=True)) if total else 0.0
    )
    p_value = math.erfc(math.sqrt(chi_square / 2))  # a chi-square of one degree of freedom
    measured = total >= settings.SCOUT_HEALTH_MINIMUM_COUNT
    failed = measured and p_value < settings.SCOUT_HEALTH_SAMPLE_RATIO_P_VALUE
    return {
        **base,
        "ok": not failed,
        "measured": measured,
        "holdout_rewards": counts[True],
        "rewards": total,
        "observed_share": observed,
        "chi_square": chi_square,
        "p_value": p_value,
        "threshold": settings.SCOUT_HEALTH_SAMPLE_RATIO_P_VALUE,
        "warning": (
            f"The holdout has {_percent(observed)} of the rewarded decisions "
            f"({counts[True]:,} of {total:,}) where its setting says {_percent(share)}: chance "
            f"gives a split this far off with a probability of {p_value:.2g} (chi-square). "
            "Rewards are lost for one side, so the holdout's lift cannot be trusted."
            if failed
            else None
        ),
    }
