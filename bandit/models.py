"""Test definitions. The database is the source of truth for what a Test is; Redis holds what
it has learned (see `bandit.state`)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Test(models.Model):
    """One self-optimizing A/B test: a name and its variants (id -> label)."""

    __test__ = False  # not a pytest test class, despite the name

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=10_000)
    # {"0": "Variant A", "1": 2}: ids are non-negative integers (as JSON object keys), labels
    # are strings or integers. Variants are added and retired, never removed, and an id is
    # never reused, so a reward for any decision ever made names a variant the Test knows.
    variants = models.JSONField()
    # The ids of the variants no longer served (their figures stay).
    retired_variants = models.JSONField(default=list, blank=True)
    # Counts the changes of the variants in service: each worker's copy of the definition is
    # checked against it (mirrored in Redis) by every decision and reward, so a change holds
    # from the next request on, on every worker.
    definition_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    trail_time_window_minutes = models.PositiveIntegerField()
    trail_bucket_granularity_seconds = models.PositiveIntegerField()
    minimum_update_requests = models.PositiveIntegerField()
    # How a decision's draws are used (bandit.policy.SAMPLING_RULES).
    sampling = models.CharField(max_length=16, default="focused")
    # The prior of a 0/1 reward's rate (bandit.policy.PRIORS).
    prior = models.CharField(max_length=16, default="pooled")
    # When a variant forgets what it learned (bandit.policy.FORGETTING).
    forgetting = models.CharField(max_length=16, default="on_change")
    # Each variant in service gets at least this share of the decisions (bandit.policy.choose;
    # at most 1 / the number in service, which caps it when variants are added).
    minimum_variant_share = models.FloatField(default=0.0)
    # Whether a unit (a visitor, an account: `unit_id`) keeps the variant it was given, and
    # for how long from when it was given.
    sticky_assignment = models.BooleanField(default=False)
    sticky_seconds = models.PositiveIntegerField(default=86_400)
    # How long a decision waits for its reward (None: forever, the contract's behaviour); one
    # that gets none in time is counted once with `default_reward` (bandit.windows).
    reward_window_seconds = models.PositiveIntegerField(null=True, blank=True)
    default_reward = models.FloatField(default=0.0)
    # Set when an operator turns the window off: decisions made while it was on still wait
    # for their reward until then, and get the default if none comes.
    reward_windows_close_by = models.DateTimeField(null=True, blank=True)
    # The variant id every visitor gets while a global rollout is in force.
    global_variant_rollout = models.PositiveIntegerField(null=True, blank=True)
    # This share of decisions is chosen uniformly at random (`holdout: true`): the plain split
    # that the bandit's decisions are measured against (bandit.decision_log).
    holdout_share = models.FloatField(default=0.0)
    # The variant last found the winner (bandit.winners), and when: announced to webhooks
    # (WINNER_FOUND) when it is found or changes.
    winner_variant = models.PositiveIntegerField(null=True, blank=True)
    winner_found_at = models.DateTimeField(null=True, blank=True)
    # A schedule (bandit.schedules): before `starts_at` the Test serves its first variant to
    # everyone and learns nothing; at `ends_at` it does what `on_end` says. `started_at` and
    # `ended_at` say when each fired (a Test without a start starts when it is created).
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    on_end = models.CharField(max_length=16, default="keep")  # bandit.schedules.ON_END
    on_end_variant = models.PositiveIntegerField(null=True, blank=True)  # on_end "variant"
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "Test"
        indexes = [
            # What the schedule check looks for every second: starts and ends not fired yet.
            models.Index(
                fields=["starts_at"],
                name="test_start_due",
                condition=models.Q(started_at__isnull=True),
            ),
            models.Index(
                fields=["ends_at"], name="test_end_due", condition=models.Q(ended_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def learning() -> models.Q:
        """The Tests that learn and sample (`is_active`), as a database filter."""
        return models.Q(global_variant_rollout__isnull=True, started_at__isnull=False)

    @property
    def waiting_to_start(self) -> bool:
        """Scheduled, and its start has not fired yet: it serves `served_rollout` and learns
        nothing."""
        return self.started_at is None

    @property
    def served_rollout(self) -> int | None:
        """The variant every visitor gets: a rollout's, or before the start the Test's first
        variant in service; None while the Test learns and samples."""
        if self.global_variant_rollout is not None:
            return self.global_variant_rollout
        if self.waiting_to_start:
            return self.variants_in_service()[0]
        return None

    @property
    def is_active(self) -> bool:
        """A Test learns and samples unless a variant is served to everyone: rolled out, or
        the Test has not started."""
        return self.served_rollout is None

    def variant_ids(self) -> list[int]:
        """Every variant the Test ever had, retired ones included."""
        return sorted(int(key) for key in self.variants)

    def variants_in_service(self) -> list[int]:
        retired = set(self.retired_variants)
        return [variant for variant in self.variant_ids() if variant not in retired]

    def label_of(self, variant_id: int) -> str | int:
        return self.variants[str(variant_id)]


def lock_existing(test_ids: list[str]) -> list[uuid.UUID]:
    """The ids, among `test_ids`, of the Tests that still exist, each locked against deletion
    until the caller's transaction ends. Whatever adds rows that belong to a Test (its decision
    log, its checkpoint) calls this first inside its transaction, and a deletion locks the Test
    before it collects those rows (bandit.services.delete_test): a row is either deleted with
    its Test or never written, and neither side fails on the other's foreign key."""
    return list(
        Test.objects.filter(pk__in=test_ids)
        .select_for_update(no_key=True)
        .values_list("id", flat=True)
    )


class Checkpoint(models.Model):
    """A Test's learned statistics, copied from Redis every few seconds, so that a Redis that
    lost its data (flushed, or replaced by an empty server) can be refilled. What happened
    since the last copy is what such a loss costs."""

    test = models.OneToOneField(Test, on_delete=models.CASCADE, related_name="checkpoint")
    data = models.JSONField()
    taken_at = models.DateTimeField()
    total_updates = models.PositiveBigIntegerField(default=0)
    total_predictions = models.PositiveBigIntegerField(default=0)
    # The totals of the Test's last MetricSnapshot, and when it was taken: the checkpoint job
    # writes the next one once the totals moved and SCOUT_HISTORY_SECONDS have passed.
    history_at = models.DateTimeField(null=True, blank=True)
    history_updates = models.PositiveBigIntegerField(default=0)
    history_predictions = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Checkpoint of {self.test_id} at {self.taken_at:%Y-%m-%d %H:%M:%S}"


class MetricSnapshot(models.Model):
    """A Test's running totals per variant at one moment, kept SCOUT_HISTORY_DAYS: its metric
    history (bandit.history) is the differences between consecutive snapshots. Written by the
    checkpoint job, at most once every SCOUT_HISTORY_SECONDS per Test and only when its totals
    moved; a Test's first (empty) snapshot is written when it is created."""

    test = models.ForeignKey(Test, on_delete=models.CASCADE, related_name="metric_snapshots")
    taken_at = models.DateTimeField()
    # {"<variant id>": [decisions, rewards, reward sum]} since the Test was created.
    totals = models.JSONField(default=dict)

    class Meta:
        indexes = [
            models.Index(fields=["test", "taken_at"], name="metric_snapshot_time"),
            models.Index(fields=["taken_at"], name="metric_snapshot_retention"),
        ]

    def __str__(self) -> str:
        return f"Totals of {self.test_id} at {self.taken_at:%Y-%m-%d %H:%M:%S}"


class LoggedDecision(models.Model):
    """One decision, kept for SCOUT_DECISION_LOG_DAYS so that what the bandit did can be
    measured and replayed (bandit.decision_log). Written in batches off the request path from
    a stream in Redis; its reward, if one came, is a LoggedReward of the same request id."""

    test = models.ForeignKey(Test, on_delete=models.CASCADE, related_name="logged_decisions")
    # The id of its entry in the Test's stream in Redis: writing a batch twice is harmless.
    entry = models.CharField(max_length=40)
    decided_at = models.DateTimeField()
    request_id = models.CharField(max_length=200)
    variant_id = models.PositiveIntegerField()
    # The probability with which the variant was chosen, given the context, at that moment.
    propensity = models.FloatField()
    holdout = models.BooleanField(default=False)
    is_global_rollout = models.BooleanField(default=False)
    # As JSON text, as the decision script wrote them: parsed only when read.
    context = models.TextField(default="{}")
    # The Test's learning settings when it decided (sampling, prior, forgetting, shares).
    learning = models.TextField(default="{}")
    # A ranked decision's variants, best first ("2,0,1"; its first is `variant_id`).
    ranking = models.CharField(max_length=10_000, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["test", "entry"], name="logged_decision_entry")
        ]
        indexes = [
            models.Index(fields=["test", "decided_at"], name="logged_decision_time"),
            models.Index(fields=["decided_at"], name="logged_decision_retention"),
        ]

    def __str__(self) -> str:
        return f"Decision {self.request_id} of {self.test_id}"


class LoggedReward(models.Model):
    """A reward counted for a logged decision (or the default that closed its window), with
    how the decision was chosen, so that the holdout is measured from this table alone."""

    test = models.ForeignKey(Test, on_delete=models.CASCADE, related_name="logged_rewards")
    entry = models.CharField(max_length=40)
    rewarded_at = models.DateTimeField()
    request_id = models.CharField(max_length=200)
    variant_id = models.PositiveIntegerField()
    reward = models.FloatField()
    # The Test's default: the decision's reward window closed without a reward.
    defaulted = models.BooleanField(default=False)
    holdout = models.BooleanField(default=False)
    is_global_rollout = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["test", "entry"], name="logged_reward_entry")
        ]
        indexes = [
            models.Index(fields=["test", "request_id"], name="logged_reward_request"),
            models.Index(fields=["rewarded_at"], name="logged_reward_retention"),
        ]

    def __str__(self) -> str:
        return f"Reward of {self.request_id} of {self.test_id}"
