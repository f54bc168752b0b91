"""What Scout answers, as Python types.

The answers a program branches on (a decision, a reward report, a Test's figures, a webhook)
are frozen dataclasses with the fields that matter typed, and the whole JSON body in `raw`:
Scout may add fields, and a client that dropped them would hide them from its users. The
smaller answers (admin settings, a rollout's confirmation) are TypedDicts: the dict is the JSON
body itself, and the type says which keys it has.

Variant ids are integers here (JSON object keys are strings on the wire); labels are strings
or integers, as in Scout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, NotRequired, TypedDict, get_args

Label = str | int
"""A variant's label: a string or an integer, unique within its Test."""

JsonObject = dict[str, Any]

WebhookEvent = Literal[
    "TEST_CREATED",
    "TEST_DELETED",
    "ROLLOUT_SET",
    "ROLLOUT_CLEARED",
    "WINNER_FOUND",
    "VARIANT_ADDED",
    "VARIANT_RETIRED",
    "TEST_STARTED",
    "TEST_ENDED",
    "REDIS_UNAVAILABLE",
    "REDIS_RECOVERED",
    "PING",
]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = get_args(WebhookEvent)


def _time(value: object) -> datetime | None:
    """An ISO 8601 time as Scout writes it (`Z` or an offset), or None."""
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _variants(value: Mapping[str, Label]) -> dict[int, Label]:
    return {int(variant_id): label for variant_id, label in value.items()}


def _raw() -> Any:
    return field(repr=False, compare=False)


# --- Decisions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    """The variant to show, from `fetch_recommended_variant`.

    `fallback` is True when Scout could not decide in time and this is the caller's own
    fallback variant: then only the id or the label it was given by is known (the other is
    None), `propensity` is None, `detail` says what went wrong, and no reward should be
    reported for it (Scout did not make this decision). `degraded` is True when Scout decided
    from its last known state because Redis was unavailable: the decision was not stored, so
    its reward must carry `variant_id` and the context inline.
    """

    test_id: str
    variant_id: int | None
    variant_label: Label | None
    request_id: str
    propensity: float | None
    holdout: bool
    is_global_rollout: bool
    degraded: bool
    fallback: bool
    detail: str | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, body: JsonObject) -> Recommendation:
        return cls(
            test_id=body["cb_model_id"],
            variant_id=body["variant_id"],
            variant_label=body["variant_label"],
            request_id=body["request_id"],
            propensity=body.get("propensity"),
            holdout=bool(body.get("holdout", False)),
            is_global_rollout=bool(body.get("is_global_rollout", False)),
            degraded=bool(body.get("degraded", False)),
            fallback=False,
            detail=body.get("detail"),
            raw=body,
        )

    @classmethod
    def for_fallback(
        cls, test_id: str, variant: Label, request_id: str, reason: str
    ) -> Recommendation:
        """The caller's fallback: an `int` names a variant id, a `str` a label."""
        by_id = isinstance(variant, int)
        return cls(
            test_id=test_id,
            variant_id=variant if isinstance(variant, int) else None,
            variant_label=None if by_id else variant,
            request_id=request_id,
            propensity=None,
            holdout=False,
            is_global_rollout=False,
            degraded=False,
            fallback=True,
            detail=reason,
            raw={},
        )


@dataclass(frozen=True)
class RankedVariant:
    variant_id: int
    variant_label: Label


@dataclass(frozen=True)
class Ranking:
    """Every eligible variant, best first, from `fetch_ranked_variants`. A reward for it
    names the variant it is for (the one shown, or clicked) with `variant_id`."""

    test_id: str
    variants: tuple[RankedVariant, ...]
    request_id: str
    propensity: float | None
    holdout: bool
    is_global_rollout: bool
    degraded: bool
    detail: str | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, body: JsonObject) -> Ranking:
        return cls(
            test_id=body["cb_model_id"],
            variants=tuple(
                RankedVariant(entry["variant_id"], entry["variant_label"])
                for entry in body["variants"]
            ),
            request_id=body["request_id"],
            propensity=body.get("propensity"),
            holdout=bool(body.get("holdout", False)),
            is_global_rollout=bool(body.get("is_global_rollout", False)),
            degraded=bool(body.get("degraded", False)),
            detail=body.get("detail"),
            raw=body,
        )


# --- Rewards ----------------------------------------------------------------------------------


class RewardEntry(TypedDict, total=False):
    """One reward of an `update_model` batch. Name the decision by `request_id` (Scout finds
    its variant and context); a decision Scout did not store (a `degraded` one) needs
    `variant_id` and `context` too."""

    reward: float
    request_id: str
    variant_id: int
    context: Mapping[str, str | int | float | bool | None]
    context_used_for_prediction: bool
    decision: Label


@dataclass(frozen=True)
class EntryError:
    """An entry of a batch that was not counted, by its index in the batch, and why."""

    index: int
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """An entry whose `request_id` already had its reward counted: not counted again."""

    index: int
    request_id: str


@dataclass(frozen=True)
class RewardResult:
    """Scout's report on a batch of rewards: each entry is counted (`processed`), refused on
    its own (`errors`, counted in `failed`) or a duplicate of one already counted.
    `attempts` is how many requests it took (more than one after retries)."""

    test_id: str
    processed: int
    failed: int
    duplicated: int
    errors: tuple[EntryError, ...]
    duplicates: tuple[Duplicate, ...]
    message: str
    attempts: int = field(default=1, compare=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JsonObject) -> RewardResult:
        duplicates = tuple(
            Duplicate(entry["index"], entry["request_id"]) for entry in body.get("duplicates", [])
        )
        return cls(
            test_id=body["cb_model_id"],
            processed=body["processed_updates"],
            failed=body["failed_updates"],
            duplicated=body.get("duplicate_updates", len(duplicates)),
            errors=tuple(EntryError(entry["index"], entry["reason"]) for entry in body["errors"]),
            duplicates=duplicates,
            message=body.get("message", ""),
            raw=body,
        )


# --- Tests ------------------------------------------------------------------------------------


class ModelSettings(TypedDict, total=False):
    """A Test's own settings at creation; what is left out takes Scout's defaults."""

    trail_time_window_minutes: int
    trail_bucket_granularity_seconds: int
    minimum_update_requests: int
    sampling: Literal["optimistic", "focused", "standard"]
    prior: Literal["pooled", "flat"]
    forgetting: Literal["on_change", "never"]
    reward_window_seconds: int | None
    default_reward: float
    minimum_variant_share: float
    sticky_assignment: bool
    sticky_seconds: int
    holdout_share: float
    # A schedule: ISO 8601 (or an aware datetime); on_end is "keep", "rollout_best" or a
    # variant's id or label.
    starts_at: str | datetime
    ends_at: str | datetime
    on_end: Label


@dataclass(frozen=True)
class CreatedTest:
    test_id: str
    name: str
    variants: Mapping[int, Label]
    message: str
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, body: JsonObject) -> CreatedTest:
        return cls(
            test_id=body["cb_model_id"],
            name=body["name"],
            variants=_variants(body["variants"]),
            message=body.get("message", ""),
            raw=body,
        )


@dataclass(frozen=True)
class TestSummary:
    """One Test of `models`."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    test_id: str
    name: str
    num_variants: int
    total_predictions: int
    total_updates: int
    created_at: datetime | None
    last_prediction_at: datetime | None
    last_update_at: datetime | None
    is_active: bool
    global_variant_rollout: int | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, body: JsonObject) -> TestSummary:
        return cls(**cls._summary_fields(body), raw=body)

    @staticmethod
    def _summary_fields(body: JsonObject) -> dict[str, Any]:
        return {
            "test_id": body["cb_model_id"],
            "name": body["name"],
            "num_variants": body["num_variants"],
            "total_predictions": body["total_predictions"],
            "total_updates": body["total_updates"],
            "created_at": _time(body.get("created_at")),
            "last_prediction_at": _time(body.get("last_prediction_at")),
            "last_update_at": _time(body.get("last_update_at")),
            "is_active": body["is_active"],
            "global_variant_rollout": body.get("global_variant_rollout"),
        }


@dataclass(frozen=True)
class VariantPerformance:
    """One variant's figures in `TestDetails.performance`."""

    predictions: int
    updates: int
    reward_sum: float
    average_reward: float
    current_prediction_ratio: float
    retired: bool
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, body: JsonObject) -> VariantPerformance:
        return cls(
            predictions=body["predictions"],
            updates=body["updates"],
            reward_sum=body["reward_sum"],
            average_reward=body["average_reward"],
            current_prediction_ratio=body["current_prediction_ratio"],
            retired=bool(body.get("retired", False)),
            raw=body,
        )


@dataclass(frozen=True)
class Winner:
    """The variant found best, once the evidence is strong enough."""

    variant_id: int
    variant_label: Label
    probability_best: float
    rewards: int


@dataclass(frozen=True)
class TestDetails(TestSummary):
    """A Test's definition, figures per variant, winner, schedule and data health warnings,
    from `model_details`. The trails, the context analysis, the evaluation and every health
    check are in `raw` (`prediction_trail`, `update_trail`, `context_feature_analysis`,
    `evaluation`, `health`)."""

    variants: Mapping[int, Label] = field(default_factory=dict)
    retired_variants: tuple[int, ...] = ()
    performance: Mapping[int, VariantPerformance] = field(default_factory=dict)
    winner: Winner | None = None
    schedule: Literal["scheduled", "running", "ended"] = "running"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    health_warnings: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, body: JsonObject) -> TestDetails:
        winner = body.get("winner")
        return cls(
            **cls._summary_fields(body),
            raw=body,
            variants=_variants(body["variants"]),
            retired_variants=tuple(body.get("retired_variants", ())),
            performance={
                int(variant_id): VariantPerformance.from_json(figures)
                for variant_id, figures in body["performance_summary"].items()
            },
            winner=Winner(
                winner["variant_id"],
                winner["variant_label"],
                winner["probability_best"],
                winner["rewards"],
            )
            if winner
            else None,
            schedule=body.get("schedule", "running"),
            starts_at=_time(body.get("starts_at")),
            ends_at=_time(body.get("ends_at")),
            health_warnings=tuple(body.get("health", {}).get("warnings", ())),
        )


class DeletedTest(TypedDict):
    message: str
    cb_model_id: str


class RolloutSet(TypedDict):
    message: str
    cb_model_id: str
    global_variant_id: int
    global_variant_label: Label


class RolloutCleared(TypedDict):
    message: str
    cb_model_id: str


class VariantsAdded(TypedDict):
    message: str
    cb_model_id: str
    added: list[int]
    variants: dict[str, Label]
    retired_variants: list[int]


class VariantRetired(TypedDict):
    message: str
    cb_model_id: str
    retired_variant_id: int
    retired_variant_label: Label
    retired_variants: list[int]


class HoldoutShareSet(TypedDict):
    message: str
    cb_model_id: str
    holdout_share: float


class MetricSeries(TypedDict):
    """A metric of a Test per variant over a range (`metric_series`): per variant id,
    `[timestamp, value]` for each step of `step_seconds`."""

    cb_model_id: str
    metric: str
    step_seconds: int
    series: dict[str, list[list[Any]]]


class Evaluation(TypedDict):
    """Off-policy estimates from the decision log; each policy's entry has `policy`,
    `description` and its `ips`, `snips` and `doubly_robust` estimates."""

    cb_model_id: str
    decisions: int
    first_decided_at: str | None
    last_decided_at: str | None
    policies: list[JsonObject]


class TokenCheck(TypedDict):
    valid: bool
    name: str
    expires_at: str | None


# --- System (/admin/) -------------------------------------------------------------------------


class Protection(TypedDict):
    protected_api: bool


class ProtectionChanged(TypedDict):
    message: str
    protected_api: bool


class NewToken(TypedDict):
    auth_token: str


class RedisHealth(TypedDict):
    redis_is_connected: bool
    redis_total_keys: int | None
    error_message: str | None
    redis_host: str
    redis_port: int | None
    redis_version: NotRequired[str]
    redis_used_memory_bytes: NotRequired[int]
    redis_used_memory_human: NotRequired[str]
    redis_round_trip_ms: NotRequired[float]
    redis_uptime_seconds: NotRequired[int]
    redis_cluster_masters: NotRequired[int]


class ModelConfig(TypedDict):
    """The defaults of new Tests."""

    trail_time_window_minutes: int
    trail_bucket_granularity_seconds: int
    minimum_update_requests: int


class ModelConfigChanged(TypedDict):
    message: str
    config: ModelConfig


class SystemConfig(ModelConfig):
    host: str
    port: int
    debug: bool
    protected_api: bool
    auth_token: str | None  # masked: never the token itself


class SystemConfigChanged(TypedDict):
    message: str
    config: SystemConfig


class RedisConfigChanged(TypedDict):
    message: str
    redis_host: str
    redis_port: int | None
    redis_context_ttl: int


@dataclass(frozen=True)
class Webhook:
    """A webhook endpoint Scout posts events to. `secret` (64 hex characters, the key of its
    signatures) is only in the answer to `create_webhook`: Scout shows it once."""

    id: int
    url: str
    events: tuple[str, ...]
    verify_tls: bool
    created_at: datetime | None
    secret: str | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, body: JsonObject) -> Webhook:
        return cls(
            id=body["id"],
            url=body["url"],
            events=tuple(body.get("events", ())),
            verify_tls=bool(body.get("verify_tls", True)),
            created_at=_time(body.get("created_at")),
            secret=body.get("secret"),
            raw=body,
        )


@dataclass(frozen=True)
class WebhookDelivery:
    """One event's delivery to a webhook: `state` is "pending" (retried until it is delivered
    or its retry period ends), "delivered" or "failed" (given up)."""

    event_uuid: str
    event_type: str
    event_time: datetime | None
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, body: JsonObject) -> WebhookDelivery:
        event = body["event"]
        return cls(
            event_uuid=event["uuid"],
            event_type=event["type"],
            event_time=_time(event.get("time")),
            state=body["state"],
            attempts=body["attempts"],
            last_status=body.get("last_status"),
            last_error=body.get("last_error"),
            last_attempt_at=_time(body.get("last_attempt_at")),
            next_attempt_at=_time(body.get("next_attempt_at")),
            delivered_at=_time(body.get("delivered_at")),
            raw=body,
        )
