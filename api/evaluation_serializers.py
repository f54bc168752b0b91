"""The shapes of what measures a Test: a decision's propensity and holdout flag, the holdout's
evaluation in `model_details`, the decision log's query, the evaluation and the metric history."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.validation import MomentField, Number
from bandit.defaults import HOLDOUT_SHARE
from bandit.policy import FORGETTING, PRIORS, SAMPLING_RULES


class HoldoutShareField(Number):
    def __init__(self, **kwargs: Any) -> None:
        if not kwargs.get("required", False):
            kwargs.update(required=False, default=0.0)
        super().__init__(
            minimum=HOLDOUT_SHARE[0],
            limit=HOLDOUT_SHARE[1],
            help_text=(
                "This share of the decisions (0, the default, to 0.5) is chosen uniformly at "
                "random and answered with `holdout: true`: the plain split the bandit is "
                "measured against (`evaluation.holdout` in `model_details`). Holdout "
                "decisions teach the model too."
            ),
            **kwargs,
        )


class PropensityField(serializers.FloatField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            help_text=(
                "The probability with which this variant was chosen, given the context, at "
                "that moment (0 < p <= 1): 1/k of k variants while the Test is uniform and "
                "for a holdout decision, 1 under a global rollout, estimated for Thompson "
                "sampling (within about 0.022). A ranked decision's is its first variant's."
            ),
            **kwargs,
        )


class HoldoutField(serializers.BooleanField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            help_text="The decision is one of the holdout's: chosen uniformly at random.",
            **kwargs,
        )


class Estimate(serializers.Serializer):
    value = serializers.FloatField()
    low = serializers.FloatField(help_text="The 95% interval's lower end.")
    high = serializers.FloatField(help_text="The 95% interval's upper end.")
    decisions = serializers.IntegerField(help_text="The rewarded decisions it is made of.")


class RelativeLift(serializers.Serializer):
    value = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()


class HoldoutEvaluation(serializers.Serializer):
    holdout_share = serializers.FloatField()
    holdout_rewards = serializers.IntegerField(
        help_text="Rewarded holdout decisions in the decision log."
    )
    bandit_rewards = serializers.IntegerField(
        help_text="Rewarded decisions of the bandit in the decision log (rollouts excluded)."
    )
    holdout = Estimate(
        allow_null=True, help_text="Mean reward of the holdout's decisions (null: < 2)."
    )
    bandit = Estimate(allow_null=True, help_text="Mean reward of the bandit's decisions.")
    lift = Estimate(
        allow_null=True,
        help_text="The bandit's mean reward less the holdout's, with Welch's 95% interval.",
    )
    relative_lift = RelativeLift(
        allow_null=True, help_text="The lift as a share of the holdout's mean reward."
    )


class Evaluation(serializers.Serializer):
    holdout = HoldoutEvaluation()
    logged_decisions = serializers.IntegerField(help_text="Decisions the decision log holds.")
    logged_rewards = serializers.IntegerField(help_text="Of those, the ones rewarded.")


class Winner(serializers.Serializer):
    variant_id = serializers.IntegerField()
    variant_label = serializers.JSONField()
    probability_best = serializers.FloatField(
        help_text="The posterior probability that it has the highest mean reward."
    )
    rewards = serializers.IntegerField(help_text="The Test's rewards it rests on.")


class HoldoutShareRequest(serializers.Serializer):
    holdout_share = HoldoutShareField(required=True)


class HoldoutShareResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()
    holdout_share = serializers.FloatField()


class TimeRangeQuery(serializers.Serializer):
    """`from` and `to` of a query string: the decisions made in [from, to)."""

    from_ = MomentField(
        required=False,
        help_text="The first decision time included (ISO 8601, UTC unless it says otherwise).",
    )
    to = MomentField(required=False, help_text="Decisions before this time (excluded).")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # a Python keyword
        return fields


class DecisionLogQuery(TimeRangeQuery):
    format = serializers.ChoiceField(
        choices=("jsonl", "csv"),
        required=False,
        default="jsonl",
        help_text="JSON lines (the default) or CSV with a header.",
    )


class ReplayedSetting(serializers.Serializer):
    sampling = serializers.ChoiceField(choices=SAMPLING_RULES)
    prior = serializers.ChoiceField(choices=PRIORS)
    forgetting = serializers.ChoiceField(choices=FORGETTING)


class PolicyValue(serializers.Serializer):
    policy = serializers.ChoiceField(
        choices=("as_run", "uniform", "greedy", "variant", "replay"),
        help_text=(
            "as_run: the Test's own decisions; uniform: a plain split among the variants in "
            "service; greedy: the variant the current model expects most of; variant: one "
            "variant for everyone; replay: the learning settings `sampling`, `prior` and "
            "`forgetting`, learning from the log's rewards in order."
        ),
    )
    variant_id = serializers.IntegerField(required=False)
    variant_label = serializers.JSONField(required=False)
    settings = ReplayedSetting(
        many=True,
        required=False,
        help_text="The learning settings replayed (those that choose alike share a row).",
    )
    as_configured = serializers.BooleanField(
        required=False, help_text="The Test's own settings are among them."
    )
    description = serializers.CharField()
    ips = Estimate(allow_null=True, help_text="Inverse propensity scoring (null: < 2).")
    snips = Estimate(allow_null=True, help_text="Self-normalised IPS.")
    doubly_robust = Estimate(
        allow_null=True, help_text="IPS on the current model's errors (null for as_run)."
    )


class EvaluationResponse(serializers.Serializer):
    cb_model_id = serializers.UUIDField()
    decisions = serializers.IntegerField(
        help_text="The rewarded, not rolled-out logged decisions the estimates use."
    )
    first_decided_at = serializers.CharField(allow_null=True)
    last_decided_at = serializers.CharField(allow_null=True)
    policies = PolicyValue(many=True)
    replay_skipped = serializers.CharField(
        allow_null=True, help_text="Why the learning settings were not replayed (null: they were)."
    )


class MetricDescription(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()


class MetricList(serializers.Serializer):
    cb_model_id = serializers.UUIDField()
    metrics = MetricDescription(many=True)
    longest_range_days = serializers.IntegerField(help_text="The longest range one series covers.")
    kept_days = serializers.IntegerField(help_text="How long the history is kept.")


class MetricSeries(serializers.Serializer):
    cb_model_id = serializers.UUIDField()
    metric = serializers.CharField()
    # `from` is a Python keyword: declared under another name, published as `from`.
    from_ = serializers.DateTimeField(help_text="The start of the range (included).")
    to = serializers.DateTimeField(help_text="The end of the range (excluded).")
    step_seconds = serializers.IntegerField(
        help_text=(
            "One point per step, by the range's length: up to 60 minutes 60, 3 hours 120, "
            "12 hours 300, 1 day 600, 3 days 1800, 7 days 3600, 14 days 7200."
        )
    )
    series = serializers.DictField(
        child=serializers.ListField(
            child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2)
        ),
        help_text=(
            "Per variant id, `[timestamp, value]` for each step from the one that holds `from` "
            "(steps are aligned to the epoch); a mean or a share is null in a step without "
            "rewards or decisions."
        ),
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields
