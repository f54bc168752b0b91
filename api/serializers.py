"""Request and response shapes of the Test endpoints.

The request serializers are where input is checked, once, for the API and the console alike:
each field takes exactly the JSON type it documents, within limits read from the settings, and
the OpenAPI schema is generated from the same fields (those that recur, such as labels and
contexts, are in api.test_fields). The views hand the services typed values; the response
serializers describe what comes back.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from api.evaluation_serializers import (
    Evaluation,
    HoldoutField,
    HoldoutShareField,
    PropensityField,
    Winner,
)
from api.test_fields import (
    MAX_ABS_NUMBER,
    ContextField,
    EligibleVariantsField,
    LabelField,
    OnEndField,
    RequestIdField,
    TestIdField,
    VariantsField,
    check_context,
)
from api.validation import (
    Boolean,
    Integer,
    LiveMaxLength,
    MomentField,
    Number,
    Text,
    WholeBodyRules,
    first_message,
    keys_of,
    validated,
)
from bandit import defaults, policy, windows
from bandit.services import EntryRefused, RewardInput, Schedule


class Error(serializers.Serializer):
    detail = serializers.CharField(help_text="What is wrong, in a sentence.")


class TestSettingsFields(WholeBodyRules, serializers.Serializer):
    """A Test's own settings, each within its bounds (bandit.defaults); missing ones take the
    current defaults. `validated_data["test_settings"]` is a defaults.TestSettings."""

    __test__ = False  # not a pytest test class

    trail_time_window_minutes = Integer(
        required=False,
        min_value=defaults.TRAIL_WINDOW_MINUTES[0],
        max_value=defaults.TRAIL_WINDOW_MINUTES[1],
    )
    trail_bucket_granularity_seconds = Integer(
        required=False,
        min_value=defaults.TRAIL_GRANULARITY_SECONDS[0],
        max_value=defaults.TRAIL_GRANULARITY_SECONDS[1],
    )
    minimum_update_requests = Integer(
        required=False,
        min_value=defaults.MINIMUM_UPDATE_REQUESTS[0],
        max_value=defaults.MINIMUM_UPDATE_REQUESTS[1],
    )
    SETTINGS = (
        "trail_time_window_minutes",
        "trail_bucket_granularity_seconds",
        "minimum_update_requests",
    )

    @classmethod
    def schema_rules(cls) -> dict[str, Any]:
        """The trail's bucket limit, as ranges a schema can state. A window and a granularity
        sent together hold at most MAX_TRAIL_BUCKETS buckets inside any of the first ranges;
        one sent alone is completed from the current defaults, whatever they are, so it must
        keep within the last range (a short window, a coarse granularity)."""
        window, granularity = cls.SETTINGS[0], cls.SETTINGS[1]
        tiers = defaults.TRAIL_GRANULARITY_TIERS_SECONDS
        ranges: list[dict[str, Any]] = []
        for finest in tiers:
            longest = min(
                defaults.MAX_TRAIL_BUCKETS * finest // 60, defaults.TRAIL_WINDOW_MINUTES[1]
            )
            ranges.append(
                {
                    "required": [window, granularity],
                    "properties": {window: {"maximum": longest}, granularity: {"minimum": finest}},
                }
            )
        alone = {
            window: {"maximum": defaults.MAX_TRAIL_BUCKETS * tiers[0] // 60},
            granularity: {"minimum": tiers[-1]},
        }
        ranges.append({"properties": alone})
        return {"anyOf": ranges}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        base = defaults.current()
        values = {name: attrs.pop(name, getattr(base, name)) for name in self.SETTINGS}
        chosen = defaults.TestSettings(**values)
        buckets = defaults.trail_buckets(
            chosen.trail_time_window_minutes, chosen.trail_bucket_granularity_seconds
        )
        if buckets > defaults.MAX_TRAIL_BUCKETS:
            raise serializers.ValidationError(
                f"The trail window holds {buckets} buckets of that granularity; at most "
                f"{defaults.MAX_TRAIL_BUCKETS} are allowed. Choose a coarser granularity."
            )
        attrs["test_settings"] = chosen
        return attrs


class CreateTestRequest(TestSettingsFields):
    name = Text(limit_setting="SCOUT_MAX_NAME_LENGTH")
    variants = VariantsField()
    sampling = serializers.ChoiceField(
        choices=policy.SAMPLING_RULES,
        required=False,
        default=policy.FOCUSED,
        help_text=(
            "How a decision's posterior draws are used: `optimistic` takes each variant's draw "
            "or its posterior mean, whichever is higher; `focused` (the default) is "
            "`optimistic` with up to three variants and, with more, lets each variant's draw "
            "count with probability 3/k and its posterior mean otherwise; `standard` is "
            "textbook Thompson sampling."
        ),
        error_messages={
            "invalid_choice": (
                f"sampling must be one of {', '.join(policy.SAMPLING_RULES)}; got {{input!r}}."
            )
        },
    )
    prior = serializers.ChoiceField(
        choices=policy.PRIORS,
        required=False,
        default=policy.POOLED,
        help_text=(
            "The prior of a 0/1 reward's rate: `pooled` (the default) is centred on the rate of "
            "all the Test's variants together and as flat as a Beta prior with that mean can "
            "be; `flat` is Beta(1, 1). Real-valued rewards and contexts are not affected."
        ),
        error_messages={
            "invalid_choice": f"prior must be one of {', '.join(policy.PRIORS)}; got {{input!r}}."
        },
    )
    forgetting = serializers.ChoiceField(
        choices=policy.FORGETTING,
        required=False,
        default=policy.ON_CHANGE,
        help_text=(
            "When a variant forgets what it learned: `on_change` (the default) when its recent "
            "rewards differ from the rest of its evidence by more than chance allows, it "
            "learns from its recent rewards alone from then on; `never` keeps every reward. "
            "Tests with a context never forget."
        ),
        error_messages={
            "invalid_choice": (
                f"forgetting must be one of {', '.join(policy.FORGETTING)}; got {{input!r}}."
            )
        },
    )

    reward_window_seconds = Integer(
        required=False,
        allow_null=True,
        default=None,
        min_value=windows.REWARD_WINDOW_SECONDS[0],
        max_value=windows.REWARD_WINDOW_SECONDS[1],
        help_text=(
            "How long a decision waits for its reward. A decision that gets none in time "
            "counts once with `default_reward`, so a product that reports only conversions "
            "still teaches the Test what did not convert; a reward after the window is late "
            "and not counted. null (the default): decisions wait for ever."
        ),
    )
    default_reward = Number(
        limit=MAX_ABS_NUMBER,
        required=False,
        default=0.0,
        help_text="What a decision counts when its reward window closes without a reward.",
    )
    sticky_assignment = Boolean(
        required=False,
        default=False,
        help_text=(
            "Serve a unit (`unit_id` on a decision) the variant it was given, for "
            "`sticky_seconds` from then, so that a visitor does not see the page change on "
            "every load. A rollout still wins; a retired variant releases its units."
        ),
    )
    sticky_seconds = Integer(
        required=False,
        default=86_400,
        min_value=1,
        max_value=90 * 86_400,
        help_text="How long a unit keeps the variant it was given (one day by default).",
    )
    minimum_variant_share = Number(
        limit=0.5,
        minimum=0.0,
        required=False,
        default=0.0,
        help_text=(
            "Every variant in service gets at least this share of the decisions (0, the "
            "default, to 1/k for k variants): exploration that never stops, for a world "
            "that may change. When variants are added it is capped at 1/k."
        ),
    )

    holdout_share = HoldoutShareField()

    starts_at = MomentField(
        required=False,
        allow_null=True,
        help_text=(
            "When the Test starts (ISO 8601; UTC when no offset is given). Until then it "
            "serves its first variant in service to everyone (`is_active: false`) and counts "
            "no reward. A start that is not in the future starts the Test at once; a start "
            "missed while Scout was down fires as soon as it is back."
        ),
    )
    ends_at = MomentField(
        required=False,
        allow_null=True,
        help_text="When the Test ends and does what `on_end` says: in the future, after its start.",
    )
    on_end = OnEndField(
        required=False,
        help_text=(
            "What the Test does at `ends_at`: `keep` (the default) goes on learning, "
            "`rollout_best` rolls out the variant with the highest probability of being best, "
            "a variant's id or label rolls out that variant."
        ),
    )

    # Numbers of variants for which the schema states the minimum share's bound exactly;
    # between two of them it states the bound of the larger (a schema cannot divide).
    SHARE_TIERS = (2, 3, 4, 5, 6, 8, 10, 20, 50, 100)

    @classmethod
    def schema_rules(cls) -> dict[str, Any]:
        """The trail's rules, and each variant's minimum share: at most 1/k of k variants."""
        share = [
            {
                "properties": {
                    "variants": {"maxProperties": k},
                    "minimum_variant_share": {"maximum": 1 / k},
                }
            }
            for k in cls.SHARE_TIERS
        ]
        worst = 1 / settings.SCOUT_MAX_VARIANTS
        share.append({"properties": {"minimum_variant_share": {"maximum": worst}}})
        return {"allOf": [super().schema_rules(), {"anyOf": share}]}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        share, count = attrs.get("minimum_variant_share", 0.0), len(attrs.get("variants", {}))
        problem = defaults.minimum_share_problem(share, count)
        if problem:
            raise serializers.ValidationError({"minimum_variant_share": problem})
        on_end, variant = attrs.pop("on_end", (Schedule.KEEP, None))
        attrs["schedule"] = Schedule(
            starts_at=attrs.pop("starts_at", None),
            ends_at=attrs.pop("ends_at", None),
            on_end=on_end,
            on_end_variant=variant,
        )
        return attrs


class CreateTestResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()
    model_id = serializers.UUIDField(help_text="The same id, for clients of the original Scout.")
    name = serializers.CharField()
    variants = serializers.DictField(child=LabelField())


class DeleteTestResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()


class TestSummary(serializers.Serializer):
    cb_model_id = serializers.UUIDField()
    name = serializers.CharField()
    num_variants = serializers.IntegerField()
    total_predictions = serializers.IntegerField()
    total_updates = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    last_prediction_at = serializers.DateTimeField(allow_null=True)
    last_update_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()
    global_variant_rollout = serializers.IntegerField(allow_null=True)


class VariantPerformance(serializers.Serializer):
    predictions = serializers.IntegerField()
    updates = serializers.IntegerField()
    reward_sum = serializers.FloatField()
    average_reward = serializers.FloatField(
        help_text="`reward_sum / updates`; 0.0 before the variant's first reward (see `updates`)."
    )
    current_prediction_ratio = serializers.FloatField()
    evidence = serializers.FloatField(
        help_text=(
            "The rewards the model learns from now: `updates` until a change of this "
            "variant's rewards is detected, then its recent rewards alone, each weighed by "
            "how recent it is (see `forgetting`)."
        )
    )
    changes_detected = serializers.IntegerField(
        help_text="How many times this variant's rewards were found to have changed."
    )
    default_rewards = serializers.IntegerField(
        help_text=(
            "Decisions for this variant whose reward window closed without a reward, counted "
            "with the default reward (they are among `updates`)."
        )
    )
    retired = serializers.BooleanField(
        help_text="Whether the variant is retired: no longer served, its figures kept."
    )


class PredictionTrailEntry(serializers.Serializer):
    timestamp = serializers.DateTimeField(help_text="Start of the time bucket.")
    variant_id = serializers.IntegerField()
    context_keys = serializers.ListField(child=serializers.CharField())
    count = serializers.IntegerField()


class UpdateTrailEntry(PredictionTrailEntry):
    reward = serializers.FloatField(allow_null=True, help_text="Mean reward in the bucket.")
    reward_sum = serializers.FloatField()


class HealthCheck(serializers.Serializer):
    ok = serializers.BooleanField()
    measured = serializers.BooleanField(
        help_text="False until the check rests on SCOUT_HEALTH_MINIMUM_COUNT rewards or "
        "decisions, or when it does not apply (`reason`)."
    )
    warning = serializers.CharField(allow_null=True, help_text="What is wrong, in words.")
    reason = serializers.CharField(required=False, help_text="Why it is not measured.")
    count = serializers.IntegerField(required=False)
    out_of = serializers.IntegerField(required=False)
    share = serializers.FloatField(required=False)
    threshold = serializers.FloatField(required=False)
    expected_share = serializers.FloatField(required=False)
    observed_share = serializers.FloatField(required=False)
    holdout_rewards = serializers.IntegerField(required=False)
    rewards = serializers.IntegerField(required=False)
    chi_square = serializers.FloatField(required=False)
    p_value = serializers.FloatField(required=False)


class Health(serializers.Serializer):
    ok = serializers.BooleanField()
    warnings = serializers.ListField(child=serializers.CharField())
    rewards_sent = serializers.IntegerField()
    checks = serializers.DictField(
        child=HealthCheck(),
        help_text=(
            "unknown_request_ids, duplicate_rewards, variant_mismatches, late_rewards, "
            "decisions_without_reward and sample_ratio (the holdout's share of the rewarded "
            "decisions against its setting, a chi-square test)."
        ),
    )


class TestDetails(TestSummary):
    variants = serializers.DictField(
        child=LabelField(), help_text="Every variant the Test ever had, retired ones included."
    )
    retired_variants = serializers.ListField(
        child=serializers.IntegerField(), help_text="The ids of the variants no longer served."
    )
    trail_time_window_minutes = serializers.IntegerField()
    trail_bucket_granularity_seconds = serializers.IntegerField()
    minimum_update_requests_for_stats = serializers.IntegerField()
    sampling = serializers.ChoiceField(choices=policy.SAMPLING_RULES)
    prior = serializers.ChoiceField(choices=policy.PRIORS)
    forgetting = serializers.ChoiceField(choices=policy.FORGETTING)
    last_change_at = serializers.DateTimeField(
        allow_null=True, help_text="When a change of a variant's rewards was last detected."
    )
    minimum_variant_share = serializers.FloatField(
        help_text="The share of the decisions each variant in service gets at least."
    )
    sticky_assignment = serializers.BooleanField()
    sticky_seconds = serializers.IntegerField()
    holdout_share = serializers.FloatField(
        help_text="The share of decisions chosen uniformly at random, as a plain split."
    )
    reward_window_seconds = serializers.IntegerField(
        allow_null=True,
        help_text="How long a decision waits for its reward (null: for ever).",
    )
    default_reward = serializers.FloatField(
        help_text="What a decision counts when its reward window closes without a reward."
    )
    decisions_awaiting_reward = serializers.IntegerField(
        help_text="Decisions whose reward window is open (none without a window)."
    )
    performance_summary = serializers.DictField(child=VariantPerformance())
    prediction_trail = PredictionTrailEntry(many=True)
    update_trail = UpdateTrailEntry(many=True)
    context_feature_analysis = serializers.DictField(
        help_text="Per feature value: each variant's traffic share and mean reward."
    )
    exploitation_exploration_ratio = serializers.DictField()
    evaluation = Evaluation()
    starts_at = serializers.DateTimeField(
        allow_null=True, help_text="When the Test starts (null: it started when created)."
    )
    ends_at = serializers.DateTimeField(allow_null=True, help_text="When it ends (null: never).")
    on_end = LabelField(
        help_text="`keep`, `rollout_best`, or the id of the variant rolled out at the end."
    )
    schedule = serializers.ChoiceField(
        choices=["scheduled", "running", "ended"],
        help_text=(
            "`scheduled` until its start fires, `ended` once its end has, `running` between."
        ),
    )
    started_at = serializers.DateTimeField(
        allow_null=True, help_text="When its start fired (its creation, without a start)."
    )
    ended_at = serializers.DateTimeField(allow_null=True, help_text="When its end fired.")
    health = Health(
        help_text="Whether the data feeding the Test looks right: each check, and a warning "
        "for each that fails."
    )
    winner = Winner(
        allow_null=True,
        help_text=(
            "The variant found best: a probability of being best of at least "
            "SCOUT_WINNER_PROBABILITY (0.95) over at least SCOUT_WINNER_MINIMUM_REWARDS (1,000) "
            "rewards; null until then."
        ),
    )


class FetchRequest(serializers.Serializer):
    cb_model_id = TestIdField(
        error_messages={"required": "cb_model_id is required.", "null": "cb_model_id is required."}
    )
    # A field named like a Serializer property: DRF's metaclass moves declared fields out of
    # the class, so it does not replace the property; its stubs cannot tell.
    context = ContextField(required=False, allow_null=True)  # type: ignore[assignment]
    request_id = RequestIdField()
    unit_id = RequestIdField(
        name="unit_id",
        help_text=(
            "The visitor or account the decision is for. A Test with `sticky_assignment` "
            "serves a unit the variant it was given, for `sticky_seconds`."
        ),
    )
    eligible_variants = EligibleVariantsField(
        required=False,
        error_messages={"null": "eligible_variants must be a list of variant ids or labels."},
        help_text=(
            "Choose among these variants alone (ids or labels of variants in service), by the "
            "same policy: those available to this visitor now. Absent: all in service. A "
            "global rollout still wins."
        ),
    )


class FetchResponse(serializers.Serializer):
    cb_model_id = serializers.UUIDField()
    variant_id = serializers.IntegerField()
    variant_label = LabelField()
    recommended_variant = LabelField(help_text="The label, for clients of the original Scout.")
    request_id = serializers.CharField()
    is_global_rollout = serializers.BooleanField()
    propensity = PropensityField()
    holdout = HoldoutField()
    degraded = serializers.BooleanField(
        required=False, help_text="Present and true when Redis was unavailable."
    )
    context_stored = serializers.BooleanField(required=False)
    detail = serializers.CharField(required=False)


class RankedVariant(serializers.Serializer):
    variant_id = serializers.IntegerField()
    variant_label = LabelField()


class FetchRankedResponse(serializers.Serializer):
    cb_model_id = serializers.UUIDField()
    variants = RankedVariant(
        many=True, help_text="Every eligible variant, best first (a rollout's variant first)."
    )
    request_id = serializers.CharField()
    is_global_rollout = serializers.BooleanField()
    propensity = PropensityField()
    holdout = HoldoutField()
    degraded = serializers.BooleanField(
        required=False, help_text="Present and true when Redis was unavailable."
    )
    context_stored = serializers.BooleanField(required=False)
    detail = serializers.CharField(required=False)


class UpdateEntry(serializers.Serializer):
    """One reward. Clients of the original Scout name the variant as `decision` (an id or a
    label) and may send the context's keys inline, beside it."""

    reward = Number(limit=MAX_ABS_NUMBER, error_messages={"required": "reward is required."})
    variant_id = LabelField(required=False, allow_null=True, noun="a variant id (an integer)")
    decision = LabelField(
        required=False, allow_null=True, help_text="Variant id or label (original Scout)."
    )
    request_id = RequestIdField()
    # As in FetchRequest, a field named like a Serializer property (`context`).
    context = ContextField(required=False, allow_null=True)  # type: ignore[assignment]
    context_used_for_prediction = Boolean(required=False)


ENTRY_FIELDS = frozenset(UpdateEntry().fields)


def reward_entry(index: int, raw: object) -> RewardInput | EntryRefused:
    """Check one entry of a batch on its own: an entry that fails is refused alone."""
    if not isinstance(raw, dict):
        return EntryRefused(index, "each update must be a JSON object.")
    try:
        data = validated(UpdateEntry, raw)
    except serializers.ValidationError as exc:
        return EntryRefused(index, first_message(exc.detail))
    variant = data.get("variant_id")
    by_label = variant is None and data.get("decision") is not None
    if by_label:
        variant = data["decision"]
    if "context" in raw:
        context, inline = data.get("context") or {}, raw["context"] is not None
    elif "decision" in raw:
        try:  # the original Scout's inline context: every key that is not a field
            context, inline = check_context(keys_of(raw, ENTRY_FIELDS)), True
        except serializers.ValidationError as exc:
            assert isinstance(exc.detail, list)  # check_context raises one message, in a list
            return EntryRefused(index, str(exc.detail[0]))
    else:
        context, inline = {}, False
    return RewardInput(
        index=index,
        reward=data["reward"],
        variant=variant,
        by_label=by_label,
        request_id=data.get("request_id"),
        context=context,
        inline=inline,
        use_stored_context=data.get("context_used_for_prediction", True),
    )


class UpdatesField(serializers.ListField):
    """The batch: a list of at most SCOUT_MAX_UPDATES_PER_BATCH entries, each checked on its own
    (see `reward_entry`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=UpdateEntry(), **kwargs)
        self.validators.append(LiveMaxLength("SCOUT_MAX_UPDATES_PER_BATCH"))

    def to_internal_value(self, data: object) -> list[RewardInput | EntryRefused]:
        if not isinstance(data, list):
            raise serializers.ValidationError("updates must be a list of reward entries.")
        limit = settings.SCOUT_MAX_UPDATES_PER_BATCH
        if len(data) > limit:
            raise serializers.ValidationError(
                f"updates has {len(data)} entries; at most {limit} are accepted per request."
            )
        return [reward_entry(index, entry) for index, entry in enumerate(data)]


class UpdateRequest(serializers.Serializer):
    updates = UpdatesField(
        error_messages={
            "required": "updates must be a list of reward entries.",
            "null": "updates must be a list of reward entries.",
        }
    )


class EntryError(serializers.Serializer):
    index = serializers.IntegerField()
    reason = serializers.CharField()


class Duplicate(serializers.Serializer):
    index = serializers.IntegerField()
    request_id = serializers.CharField()


class UpdateResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()
    processed_updates = serializers.IntegerField()
    failed_updates = serializers.IntegerField()
    duplicate_updates = serializers.IntegerField()
    # As in FetchRequest, a field named like a Serializer property (`errors`).
    errors = EntryError(many=True)  # type: ignore[assignment]
    duplicates = Duplicate(many=True)


class RolloutRequest(serializers.Serializer):
    variant = LabelField(
        help_text="The variant's id, or its label.",
        error_messages={"required": "variant is required.", "null": "variant is required."},
    )


class RolloutResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()
    global_variant_id = serializers.IntegerField()
    global_variant_label = LabelField()


class AddVariantsRequest(serializers.Serializer):
    variants = VariantsField(
        adding=True,
        help_text=(
            "The variants to add, id -> label: ids a variant of the Test never had (ids are "
            "never reused), labels none of its variants has."
        ),
        error_messages={"required": "variants is required.", "null": "variants is required."},
    )


class AddVariantsResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()
    added = serializers.ListField(child=serializers.IntegerField())
    variants = serializers.DictField(child=LabelField())
    retired_variants = serializers.ListField(child=serializers.IntegerField())


class RetireVariantRequest(serializers.Serializer):
    variant = LabelField(
        help_text="The variant's id, or its label.",
        error_messages={"required": "variant is required.", "null": "variant is required."},
    )


class RetireVariantResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()
    retired_variant_id = serializers.IntegerField()
    retired_variant_label = LabelField()
    retired_variants = serializers.ListField(child=serializers.IntegerField())


class ClearRolloutResponse(serializers.Serializer):
    message = serializers.CharField()
    cb_model_id = serializers.UUIDField()


class TokenCheckResponse(serializers.Serializer):
    valid = serializers.BooleanField()
    name = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


_MEANINGS = {
    400: "Bad input; the detail names the problem.",
    401: "API protection is on and no valid token (or staff session) was sent.",
    403: "Authenticated, but not allowed (or a session request without its CSRF token).",
    404: "No such Test.",
    409: "A label (or, adding variants, an id) is taken.",
    413: "The body is larger than the limit.",
    415: "The body is not JSON.",
    429: "Too many failed logins from this address for this user name.",
    503: "Redis or the database is unavailable; retry shortly.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers an operation can give, each `{"detail": ...}`."""
    return {code: OpenApiResponse(Error, description=_MEANINGS[code]) for code in codes}


READ_ERRORS = (401, 403, 503)
WRITE_ERRORS = (400, 401, 403, 413, 415, 503)
