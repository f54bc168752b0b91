"""The Prometheus metrics of the Test domain, defined once (see core.observability.metrics for
how they are collected across workers). The contract calls Tests "models", and so do the metric
names, which are part of what operators scrape."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from django.conf import settings
from django.db import DatabaseError
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from bandit.models import Test

logger = logging.getLogger(__name__)

# --- Tests (the contract calls them models) ------------------------------------------------
# The `variant` label of the variants past a Test's first SCOUT_METRICS_MAX_VARIANTS (by id).
OTHER_VARIANTS = "other"


def variant_labels(variant_ids: Sequence[int]) -> dict[int, str]:
    """The `variant` label of each of a Test's variants: its id for the first
    SCOUT_METRICS_MAX_VARIANTS variants (by id), `other` for the rest. Each series costs every
    worker memory and every scrape time, so a Test of 1,000 variants adds at most that many
    series (plus one) per metric rather than a thousand."""
    limit = settings.SCOUT_METRICS_MAX_VARIANTS
    ordered = sorted(variant_ids)
    return {vid: (str(vid) if rank < limit else OTHER_VARIANTS) for rank, vid in enumerate(ordered)}


MODEL_PREDICTIONS = Counter(
    "model_predictions",
    "Decisions served (idempotent replays of a stored decision are not counted again).",
    ["model_id", "variant"],
)
MODEL_UPDATES = Counter(
    "model_updates", "Rewards counted into a Test's statistics.", ["model_id", "variant"]
)
MODEL_REWARDS = Counter(
    "model_rewards",
    "Reward entries received, whatever their outcome (counted, duplicate or failed).",
    ["model_id"],
)
MODEL_REWARD = Histogram(
    "model_reward",
    "Values of the rewards counted.",
    ["model_id"],
    buckets=(0, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 100, 1000),  # OpenMetrics: none below 0
)

# --- Health signals -------------------------------------------------------------------------
CONTEXTS_STORED = Counter(
    "scout_contexts_stored", "Decisions whose context was stored under their request_id."
)
CONTEXTS_EXPIRED = Counter(
    "scout_contexts_expired",
    "Rewards naming a request_id with no stored decision: expired after the context TTL, or "
    "never issued (Redis cannot tell the two apart). `outcome` says whether the reward still "
    "taught the Test with its inline context or failed.",
    ["outcome"],
)
DUPLICATE_REWARDS = Counter(
    "scout_duplicate_rewards",
    "Rewards for a request_id whose reward was already counted (reported, not counted again).",
)
DEFAULT_REWARDS = Counter(
    "scout_default_rewards",
    "Decisions whose reward window closed without a reward, counted with the Test's default "
    "reward (also counted in model_updates).",
    ["model_id"],
)
LATE_REWARDS = Counter(
    "scout_late_rewards",
    "Rewards that came after their decision's reward window closed (not counted: the default "
    "reward was).",
)
DEGRADED_DECISIONS = Counter(
    "scout_degraded_decisions",
    "Decisions answered from a worker's snapshot while Redis was unavailable.",
)
STATE_RESTORES = Counter(
    "scout_state_restores",
    "Tests refilled from their checkpoint after Redis lost their state.",
)
FEATURE_OVERFLOW = Counter(
    "scout_feature_overflow",
    "Context features ignored because a Test's feature vocabulary was full (SCOUT_MAX_FEATURES).",
)


class ActiveTestsCollector:
    """`active_models`, read from the database at scrape time.

    Computed rather than kept as a gauge, so that every worker and host agrees and a restart
    never shows a stale count.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            count = Test.objects.filter(Test.learning()).count()
        except DatabaseError as exc:
            # The rest of the scrape is still worth having; /readyz reports the database.
            logger.warning("active_models left out of the scrape: %s", exc)
            return
        family = GaugeMetricFamily(
            "active_models",
            "Tests that are learning (started, and no global rollout in force).",
        )
        family.add_metric([], count)
        yield family
