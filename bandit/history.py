"""A Test's metric history beyond its trail window: series of its decisions, rewards, mean
reward and traffic share per variant over any range of up to 14 days.

The history is kept in the database, so it outlives Redis losing its data. It is written off
the request path by the checkpoint job (bandit.checkpoints): when a Test's totals moved, and
at most every SCOUT_HISTORY_SECONDS, a MetricSnapshot of its running totals per variant is
added. A series is the differences between consecutive snapshots, each counted in the step of
the later one: activity shows up within about SCOUT_HISTORY_SECONDS of when it happened.
Totals that went back (Redis emptied without a checkpoint to refill it) count from zero again.
Snapshots are kept SCOUT_HISTORY_DAYS.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings
from django.utils import timezone

from bandit.models import MetricSnapshot, Test
from core.errors import InvalidInput, NotFound
from core.time import iso

logger = logging.getLogger(__name__)

METRICS = {
    "predictions": "Decisions per variant in each step.",
    "rewards": "Rewards counted per variant in each step.",
    "mean_reward": "Mean reward per variant in each step (null in a step without rewards).",
    "traffic_share": (
        "Each variant's share of the step's decisions (null in a step without decisions)."
    ),
}

# The longest range a series covers, and the step of each length of range (the APM's table):
# up to 60 minutes 1 minute, up to 3 hours 2 minutes, and so on.
LONGEST = dt.timedelta(days=14)
STEPS = (
    (dt.timedelta(minutes=60), 60),
    (dt.timedelta(hours=3), 120),
    (dt.timedelta(hours=12), 300),
    (dt.timedelta(days=1), 600),
    (dt.timedelta(days=3), 1800),
    (dt.timedelta(days=7), 3600),
    (LONGEST, 7200),
)
DEFAULT_RANGE = dt.timedelta(hours=1)

# How often snapshots past the retention period are deleted.
PURGE_SECONDS = 60.0
_purged_at = 0.0

Totals = dict[str, list[float]]  # variant id -> [decisions, rewards, reward sum]


# --- Writing ----------------------------------------------------------------------------------


def totals_of(hashes: Mapping[str, Mapping[str, str]]) -> Totals:
    """A Test's running totals per variant, from its exported durable hashes (`stats` holds
    decisions as `p:<v>`, `learn` rewards as `u:<v>` and their sum as `s:<v>`)."""
    found: Totals = {}
    for field, value in hashes.get("stats", {}).items():
        if field.startswith("p:"):
            found.setdefault(field[2:], [0, 0, 0.0])[0] = int(value)
    for field, value in hashes.get("learn", {}).items():
        if field.startswith("u:"):
            found.setdefault(field[2:], [0, 0, 0.0])[1] = int(float(value))
        elif field.startswith("s:"):
            found.setdefault(field[2:], [0, 0, 0.0])[2] = float(value)
    return found


def due(history_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a Test whose totals moved gets a snapshot now."""
    return history_at is None or (now - history_at).total_seconds() >= (
        settings.SCOUT_HISTORY_SECONDS
    )


def start(test: Test) -> None:
    """A new Test's first snapshot: its history counts from zero (inside the creating
    transaction)."""
    MetricSnapshot.objects.create(test=test, taken_at=test.created_at, totals={})


def purge_if_due() -> None:
    """Delete the snapshots older than the retention period, once a minute at most."""
    global _purged_at
    if time.monotonic() - _purged_at < PURGE_SECONDS:
        return
    _purged_at = time.monotonic()
    cutoff = timezone.now() - dt.timedelta(days=settings.SCOUT_HISTORY_DAYS)
    deleted, _ = MetricSnapshot.objects.filter(taken_at__lt=cutoff).delete()
    if deleted:
        logger.info("Metric history purged", extra={"snapshots": deleted, "before": iso(cutoff)})


# --- Reading ----------------------------------------------------------------------------------


def step_seconds(length: dt.timedelta) -> int:
    """The step of a range of this length (InvalidInput beyond LONGEST)."""
    for longest, step in STEPS:
        if length <= longest:
            return step
    raise InvalidInput(
        f"The range spans {_days(length)} days; at most {LONGEST.days} days can be read at once."
    )


def _days(length: dt.timedelta) -> str:
    return f"{length.total_seconds() / 86_400:.1f}"


def window(start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """The range asked for: `to` defaults to now, `from` to an hour before `to`."""
    end = end or timezone.now()
    start = start or end - DEFAULT_RANGE
    if start >= end:
        raise InvalidInput(f"from ({iso(start)}) must be before to ({iso(end)}).")
    return start, end


def series(test: Test, metric: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """The metric per variant over [start, end), one point per step (steps aligned to the
    epoch, the first one holding `start`)."""
    if metric not in METRICS:
        raise NotFound(f"No metric {metric!r}; the metrics are {', '.join(METRICS)}.")
    step = step_seconds(end - start)
    first = math.floor(start.timestamp() / step) * step
    count = math.ceil((end.timestamp() - first) / step)
    sums: dict[str, list[list[float]]] = {
        str(v): [[0, 0, 0.0] for _ in range(count)] for v in test.variant_ids()
    }
    for taken_at, moved in _movements(test, start, end):
        index = int((taken_at.timestamp() - first) // step)
        for variant, change in moved.items():
            cells = sums.setdefault(variant, [[0, 0, 0.0] for _ in range(count)])[index]
            for position in range(3):
                cells[position] += change[position]
    steps_decisions = [sum(cells[i][0] for cells in sums.values()) for i in range(count)]
    stamps = [iso(first + i * step) for i in range(count)]
    answer = {
        variant: [[stamps[i], _value(metric, cells[i], steps_decisions[i])] for i in range(count)]
        for variant, cells in sorted(sums.items(), key=lambda item: int(item[0]))
    }
    return {
        "cb_model_id": str(test.id),
        "metric": metric,
        "from": iso(start),
        "to": iso(end),
        "step_seconds": step,
        "series": answer,
    }


def _value(metric: str, cells: list[float], step_decisions: float) -> float | None:
    decisions, rewards, reward_sum = cells
    if metric == "predictions":
        return decisions
    if metric == "rewards":
        return rewards
    if metric == "mean_reward":
        return reward_sum / rewards if rewards else None
    return decisions / step_decisions if step_decisions else None  # traffic_share


def _movements(
    test: Test, start: dt.datetime, end: dt.datetime
) -> Iterator[tuple[dt.datetime, Totals]]:
    """Each snapshot in [start, end) with how far each variant's totals moved since the one
    before. The one before `start` is the base; without one (history begins inside the
    range), the first snapshot in range is."""
    snapshots = MetricSnapshot.objects.filter(test=test)
    base = (
        snapshots.filter(taken_at__lt=start)
        .order_by("-taken_at")
        .values_list("totals", flat=True)
        .first()
    )
    in_range = (
        snapshots.filter(taken_at__gte=start, taken_at__lt=end)
        .order_by("taken_at")
        .values_list("taken_at", "totals")
    )
    previous: Totals | None = base
    for taken_at, totals in in_range.iterator(chunk_size=2000):
        if previous is not None:
            yield taken_at, _moved(previous, totals)
        previous = totals


def _moved(before: Totals, after: Totals) -> Totals:
    """How far each variant's totals moved; a total that went back counts from zero."""
    moved: Totals = {}
    for variant, now in after.items():
        was = before.get(variant, [0, 0, 0.0])
        if now[0] < was[0] or now[1] < was[1]:  # counted again from zero
            was = [0, 0, 0.0]
        change = [now[0] - was[0], now[1] - was[1], now[2] - was[2]]
        if change[0] or change[1]:
            moved[variant] = change
    return moved
