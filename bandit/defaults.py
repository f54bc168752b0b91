"""A Test's own settings (trail window and granularity, minimum rewards), their bounds, and the
defaults that new Tests get, which operators change over `/admin/model_config` or the console.

The bounds are read by the input serializers (api.serializers), which enforce them and publish
them in the OpenAPI schema; the services here take settings that were checked there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from system import audit, config
from system.services import change

# Bounds of a Test's own settings; a trail never holds more than MAX_TRAIL_BUCKETS buckets.
TRAIL_WINDOW_MINUTES = (1, 10_080)
TRAIL_GRANULARITY_SECONDS = (1, 86_400)
MINIMUM_UPDATE_REQUESTS = (0, 1_000_000)
MAX_TRAIL_BUCKETS = 10_080  # a week at one minute
# A Test's holdout: the share of its decisions chosen uniformly at random.
HOLDOUT_SHARE = (0.0, 0.5)
# Granularities from which the API's schema states the bucket limit as ranges (api.serializers).
TRAIL_GRANULARITY_TIERS_SECONDS = (1, 10, 60)


def minimum_share_problem(share: float, variants: int) -> str | None:
    """Why `share` cannot be the minimum share of each of `variants` variants, if it cannot:
    all of them together cannot have more than every decision."""
    if share >= 0 and share * variants <= 1:
        return None
    return (
        f"minimum_variant_share must be between 0 and 1/{variants} (the share each of "
        f"{variants} variants can have); got {share!r}."
    )


@dataclass(frozen=True)
class TestSettings:
    __test__ = False  # not a pytest test class

    trail_time_window_minutes: int
    trail_bucket_granularity_seconds: int
    minimum_update_requests: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def trail_buckets(window_minutes: int, granularity_seconds: int) -> int:
    """How many buckets a trail of that window and granularity holds."""
    return window_minutes * 60 // granularity_seconds


def current() -> TestSettings:
    """What a new Test gets unless it says otherwise."""
    now = config.cached()
    return TestSettings(
        trail_time_window_minutes=now.trail_time_window_minutes,
        trail_bucket_granularity_seconds=now.trail_bucket_granularity_seconds,
        minimum_update_requests=now.minimum_update_requests,
    )


def update(actor: audit.Actor | None, chosen: TestSettings) -> TestSettings:
    """New defaults for new Tests; existing Tests keep theirs."""
    with change(actor, "model_config", **chosen.as_dict()) as row:
        row.trail_time_window_minutes = chosen.trail_time_window_minutes
        row.trail_bucket_granularity_seconds = chosen.trail_bucket_granularity_seconds
        row.minimum_update_requests = chosen.minimum_update_requests
    return chosen
