"""Formatting for the operator's console: numbers, ages and the charts' colours and datasets.

Presentation only; the numbers themselves come from `bandit.dashboard`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()

# Distinct colours that read on a light and on a dark background, one per variant in turn.
PALETTE = [
    "#7c3aed",
    "#0ea5e9",
    "#f59e0b",
    "#10b981",
    "#ef4444",
    "#ec4899",
    "#84cc16",
    "#6366f1",
    "#14b8a6",
    "#f97316",
]


@register.filter
def palette(index: int) -> str:
    return PALETTE[int(index) % len(PALETTE)]


@register.filter
def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


@register.filter
def percent_width(value: float | None) -> str:
    """The width of a bar (an SVG length), clamped to 0..100%."""
    return f"{min(max(value or 0.0, 0.0), 1.0) * 100:.1f}%"


@register.filter
def reward(value: float | None) -> str:
    """Mean rewards: three decimals for 0..1 rewards, fewer digits for large ones."""
    if value is None:
        return "–"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"


@register.filter
def since(value: str | dt.datetime | None) -> str:
    """'12 seconds ago' from an ISO timestamp; 'never' when there is none."""
    if not value:
        return "never"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    now = timezone.now()
    if (now - value).total_seconds() < 60:
        return f"{max(0, int((now - value).total_seconds()))} s ago"
    return timesince(value, now).split(",")[0] + " ago"


@register.filter
def moment(value: str | None) -> str:
    """'2027-03-05 00:00 UTC' from an ISO timestamp (a schedule's moments)."""
    if not value:
        return "–"
    at = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


@register.filter
def chart_data(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The two charts' Chart.js data: one dataset per variant, in the variant's colour."""
    series = dashboard["series"]

    def datasets(values: dict[str, list[float | None]]) -> list[dict[str, Any]]:
        return [
            {
                "label": variant["label"],
                "variant_id": variant["variant_id"],
                "data": values[str(variant["variant_id"])],
                "borderColor": PALETTE[i % len(PALETTE)],
                "backgroundColor": PALETTE[i % len(PALETTE)],
            }
            for i, variant in enumerate(dashboard["variants"])
        ]

    return {
        "timestamps": series["timestamps"],
        "bucket_seconds": series["bucket_seconds"],
        "merged_buckets": series["merged_buckets"],
        "traffic": datasets(series["traffic_share"]),
        "reward": datasets(series["mean_reward"]),
    }


@register.filter
def duration(seconds: int | None) -> str:
    """An uptime: '3 d 4 h', '5 h 12 min', '42 s'."""
    if seconds is None:
        return "–"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"
