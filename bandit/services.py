"""Use cases of the Test domain: create, delete, decide, count rewards (an operator's changes
to a running Test are in bandit.changes).

Views and the console call these with values their serializers checked (api.serializers);
services never parse HTTP. Each rule lives here once, so the REST API and the console behave
the same.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from bandit import announcements, checkpoints, history, metrics, policy, snapshots
from bandit.defaults import TestSettings
from bandit.models import Test
from bandit.policy import ContextValue
from bandit.state import decisions, durable, keys, lifecycle, rewards
from core.errors import InvalidInput, NotFound, Unavailable
from core.observability.metrics import count, observe
from core.time import iso
from system import audit, config
from webhooks import events

logger = logging.getLogger(__name__)

Label = str | int
Context = dict[str, ContextValue]


@dataclass(frozen=True)
class Schedule:
    """When a Test starts and ends, and what it does at its end (bandit.schedules fires
    both). Before `starts_at` a Test serves its first variant in service to everyone and
    counts no reward; at `ends_at` it goes on learning (`keep`), rolls out the variant most
    likely to be best (`rollout_best`) or rolls out `on_end_variant` (`variant`, by id or
    label). Moments are aware datetimes; None: no start (the Test starts when created) or
    no end."""

    KEEP = "keep"
    ROLLOUT_BEST = "rollout_best"
    VARIANT = "variant"

    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    on_end: str = KEEP
    on_end_variant: Label | None = None

    def check(self, now: dt.datetime) -> None:
        """Refuse a schedule that cannot run: an end in the past or not after the start."""
        if self.ends_at is not None:
            if self.ends_at <= now:
                raise InvalidInput(f"ends_at ({iso(self.ends_at)}) is not in the future.")
            if self.starts_at is not None and self.ends_at <= self.starts_at:
                raise InvalidInput(
                    f"ends_at ({iso(self.ends_at)}) must be after starts_at "
                    f"({iso(self.starts_at)})."
                )
        if self.on_end != self.KEEP and self.ends_at is None:
            raise InvalidInput(f"on_end {self.named!r} needs an ends_at.")

    @property
    def named(self) -> Label | None:
        """`on_end` as it was asked for: keep, rollout_best, or the variant named."""
        return self.on_end_variant if self.on_end == self.VARIANT else self.on_end

    def audited(self) -> dict[str, Any]:
        """What the audit log records of it (nothing for a Test without a schedule)."""
        if self.starts_at is None and self.ends_at is None:
            return {}
        return {
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "on_end": self.named,
        }


def parse_test_id(raw: str) -> str:
    """A Test id is a UUID; anything else names no Test (404, not 400)."""
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        raise NotFound(f"Test {raw!r} not found.") from None


# --- Lifecycle ------------------------------------------------------------------------------


def create_test(
    *,
    name: str,
    variants: Mapping[int, Label],
    test_settings: TestSettings,
    sampling: str = policy.FOCUSED,
    prior: str = policy.POOLED,
    forgetting: str = policy.ON_CHANGE,
    reward_window_seconds: int | None = None,
    default_reward: float = 0.0,
    minimum_variant_share: float = 0.0,
    sticky_assignment: bool = False,
    sticky_seconds: int = 86_400,
    holdout_share: float = 0.0,
    schedule: Schedule | None = None,
    actor: audit.Actor | None = None,
) -> Test:
    """Create a Test in the database and mark it in Redis. Either both happen or neither."""
    stored_variants = {str(variant_id): variants[variant_id] for variant_id in sorted(variants)}
    chosen = test_settings
    schedule = schedule or Schedule()
    now = timezone.now()
    schedule.check(now)
    with transaction.atomic():
        test = Test.objects.create(
            name=name,
            variants=stored_variants,
            trail_time_window_minutes=chosen.trail_time_window_minutes,
            trail_bucket_granularity_seconds=chosen.trail_bucket_granularity_seconds,
            minimum_update_requests=chosen.minimum_update_requests,
            sampling=sampling,
            prior=prior,
            forgetting=forgetting,
            reward_window_seconds=reward_window_seconds,
            default_reward=default_reward,
            minimum_variant_share=minimum_variant_share,
            sticky_assignment=sticky_assignment,
            sticky_seconds=sticky_seconds,
            holdout_share=holdout_share,
            created_at=now,
            starts_at=schedule.starts_at,
            ends_at=schedule.ends_at,
            on_end=schedule.on_end,
            # A start that is not in the future is now: the Test starts as it is created.
            started_at=now if schedule.starts_at is None or schedule.starts_at <= now else None,
        )
        if schedule.on_end == Schedule.VARIANT and schedule.on_end_variant is not None:
            test.on_end_variant = variant_of(test, schedule.on_end_variant)
            test.save(update_fields=["on_end_variant"])
        history.start(test)
        audit.record(actor, "test_created", str(test.id), name=test.name, **schedule.audited())
        announcements.announce(events.TEST_CREATED, test, actor, variants=stored_variants)
        if schedule.starts_at is not None and test.started_at is not None:
            announcements.started(test)  # a start that was not in the future: now
        # Inside the transaction: if Redis is down, the Test is not created at all.
        lifecycle.create_test(
            str(test.id),
            lifecycle.meta_fields(
                rollout=test.served_rollout,
                reward_window_seconds=reward_window_seconds,
                default_reward=default_reward,
                sticky_seconds=sticky_seconds if sticky_assignment else None,
                not_started=test.waiting_to_start,
            ),
        )
    logger.info(
        "Test created",
        extra={"test_id": str(test.id), "test_name": test.name, "variants": len(variants)},
    )
    return test


def get_test(test_id: str) -> Test:
    test = Test.objects.filter(pk=parse_test_id(test_id)).first()
    if test is None:
        raise NotFound(f"Test {test_id} not found.")
    return test


def delete_test(test_id: str, actor: audit.Actor | None = None) -> str:
    """Delete a Test's definition and every key it has in Redis."""
    key = str(get_test(test_id).id)
    with transaction.atomic():
        # Locked first, so that the writers that add rows of a Test (its decision log, its
        # checkpoint), which lock it too, either finish before the rows are collected for
        # deletion or find it gone: never a row added under a Test being deleted.
        test = Test.objects.select_for_update().filter(pk=key).first()
        if test is None:
            raise NotFound(f"Test {key} not found.")
        test.delete()
        audit.record(actor, "test_deleted", key, name=test.name)
        test.id = uuid.UUID(key)  # deleting cleared it; the announcement names it
        announcements.announce(events.TEST_DELETED, test, actor)
        # Inside the transaction: if Redis is down, the Test stays as it was.
        removed = lifecycle.delete_test(key)
    snapshots.forget(key)
    logger.info("Test deleted", extra={"test_id": key, "redis_keys_removed": removed})
    return key


# --- Decisions ------------------------------------------------------------------------------

_rng_local = threading.local()


def _rng() -> np.random.Generator:
    """A generator per thread, seeded from the OS, so forked workers never share a stream."""
    rng = getattr(_rng_local, "rng", None)
    if rng is None or _rng_local.pid != os.getpid():
        rng = _rng_local.rng = np.random.default_rng()
        _rng_local.pid = os.getpid()
    return rng


@dataclass(frozen=True)
class Recommendation:
    test_id: str
    variant_id: int
    variant_label: str | int
    request_id: str
    is_global_rollout: bool
    # The probability with which the variant was chosen, given the context, at that moment
    # (policy.choice_probabilities): 1/k among k while uniform, 1.0 for a rollout.
    propensity: float
    # Chosen uniformly at random, as the Test's holdout (its `holdout_share`).
    holdout: bool = False
    # Redis could not be reached: chosen from the worker's snapshot and not stored.
    degraded: bool = False
    # A ranked decision's variants (id, label), best first.
    ranking: list[tuple[int, str | int]] | None = None


def _snapshot(test_id: str, *, told_after: bool = False) -> snapshots.Snapshot:
    snapshot = snapshots.get(parse_test_id(test_id), told_after=told_after)
    if snapshot is None:
        raise NotFound(f"Test {test_id} not found.")
    return snapshot


def _refill(test: Test) -> None:
    """Write a Test's checkpoint back into a Redis that lost it; this worker's snapshot of it
    is stale from then on."""
    snapshots.forget(str(test.id))
    checkpoints.restore(test)


def _restore_missing(test_id: str) -> None:
    """Redis has no state for a Test: it was deleted, or Redis lost its data."""
    test = Test.objects.filter(pk=test_id).first()
    if test is None:
        snapshots.forget(test_id)
        raise NotFound(f"Test {test_id} not found.")
    _refill(test)


def restore_lost(tests: Sequence[Test]) -> None:
    """Refill from their checkpoints the Tests whose state Redis lost (a Redis restarted
    without persistence), so that a read shows what they had learned rather than zeros."""
    lost = durable.missing([str(test.id) for test in tests])
    for test in tests:
        if str(test.id) in lost:
            _refill(test)


def recommend(
    test_id: str,
    *,
    context: Context,
    request_id: str | None,
    settings_in_force: config.Config,
    eligible: Sequence[Label] | None = None,
    unit_id: str | None = None,
    ranked: bool = False,
) -> Recommendation:
    """Choose a variant by Thompson sampling and store the decision under its request id.
    `eligible`: the variants (ids or labels) to choose among; None for all in service.
    `unit_id`: the visitor, whom a Test with sticky assignment serves the variant it was
    given (decide.lua). `ranked`: rank every eligible variant, best first, and store the
    ranking (its first is the variant decided; a reward names the variant it is for).

    `settings_in_force` is the configuration the caller was let in under. Raises ConfigMoved,
    having stored nothing, when an operator has changed it since: the caller must be checked
    again (api.access).
    """
    clean_request_id = request_id or uuid.uuid4().hex
    return _with_current_variants(
        test_id,
        lambda fresh: _recommend(
            test_id, context, clean_request_id, settings_in_force, eligible, unit_id, ranked, fresh
        ),
    )


# How often a request reads a Test's variants again when they changed meanwhile, and how long
# it waits in between: a change is published to Redis just before its transaction commits.
DEFINITION_RETRIES = 5
DEFINITION_RETRY_SECONDS = 0.02


def _with_current_variants(test_id: str, work: Callable[[bool], Any]) -> Any:
    """Run `work`; when its script finds that the Test's variants changed since this worker
    read them (DefinitionMoved, nothing written), read them again and run it again. `work`
    is told whether its copy of the variants is known to be current: if not, a variant it
    does not know may be one added since, and it raises _MaybeStale rather than refuse it (a
    bad request then costs one HGET, not a reload)."""
    fresh = False
    for attempt in range(DEFINITION_RETRIES):
        try:
            return work(fresh)
        except _MaybeStale as stale:
            fresh = True
            if lifecycle.definition_version(stale.test_id) != stale.version:
                snapshots.forget(stale.test_id)
        except keys.DefinitionMoved:
            snapshots.forget(parse_test_id(test_id))
            fresh = True
            if attempt:
                time.sleep(DEFINITION_RETRY_SECONDS)
    raise Unavailable("The Test's variants are changing right now; try again shortly.")


def _recommend(
    test_id: str,
    clean_context: Context,
    clean_request_id: str,
    settings_in_force: config.Config,
    eligible: Sequence[Label] | None,
    unit_id: str | None,
    ranked: bool,
    fresh: bool,
) -> Recommendation:
    snapshot = _snapshot(test_id, told_after=True)  # the decision script tells (note below)
    definition = snapshot.definition
    among = _eligible(definition, eligible, fresh) if eligible is not None else None
    features = policy.encode_context(clean_context)
    x = policy.feature_vector(features, snapshot.stats.feature_index)
    rng = _rng()
    holdout = definition.holdout_share > 0 and rng.random() < definition.holdout_share
    rule = policy.rank if ranked else policy.choose
    choice = rule(
        snapshot.posterior,
        x,
        rng,
        uniform=holdout or snapshot.uniform,
        variants=len(definition.variant_ids),
        sampling=definition.sampling,
        among=among,
        minimum_share=definition.minimum_variant_share,
    )
    order = choice.order if isinstance(choice, policy.Ranking) else [choice.index]
    ranking = [definition.variant_ids[i] for i in order]
    if holdout:
        propensity = 1.0 / (len(definition.variant_ids) if among is None else len(among))
    else:
        propensity = float(snapshots.choice_probabilities(snapshot, x, among, rng)[order[0]])
    arguments: dict[str, Any] = {  # keyword arguments of record_decision, of several types
        "variant_id": ranking[0],
        "ranking": ranking if ranked else None,
        "exploit": choice.exploit,
        "propensity": propensity,
        "holdout": holdout,
        "request_id": clean_request_id,
        "context": clean_context,
        "learning": definition.learning,
        "context_keys": sorted(clean_context),
        "features": features,
        "guard": config.guard(settings_in_force),
        "context_ttl_seconds": settings_in_force.context_ttl_seconds,
        "trail_window_seconds": definition.trail_window_seconds,
        "trail_granularity_seconds": definition.trail_granularity_seconds,
        "definition_version": definition.version,
        "unit_id": unit_id,
        "eligible_ids": None if among is None else [definition.variant_ids[i] for i in among],
    }
    try:
        try:
            decision = decisions.record_decision(definition.id, **arguments)
        except keys.TestMissing:
            _restore_missing(definition.id)
            decision = decisions.record_decision(definition.id, **arguments)
    except RedisError:
        return _degraded(snapshot, ranking, clean_request_id, ranked, propensity, holdout)
    snapshots.note(definition.id, decision.learned_version)
    chosen_with = decision.propensity
    if chosen_with is None:  # a decision stored before propensities were, replayed
        chosen_with = _probability_now(snapshot, x, among, rng, decision.variant_id)
    if not decision.replayed:  # a replay answers a decision already counted
        variant = definition.metric_labels.get(decision.variant_id, metrics.OTHER_VARIANTS)
        count(metrics.MODEL_PREDICTIONS, definition.id, variant)
        count(metrics.CONTEXTS_STORED)
    logger.debug(
        "Decision",
        extra={
            "test_id": definition.id,
            "request_id": clean_request_id,
            "variant_id": decision.variant_id,
            "is_global_rollout": decision.is_global_rollout,
            "propensity": chosen_with,
            "holdout": decision.holdout,
        },
    )
    return Recommendation(
        test_id=definition.id,
        variant_id=decision.variant_id,
        variant_label=definition.labels[decision.variant_id],
        request_id=clean_request_id,
        is_global_rollout=decision.is_global_rollout,
        propensity=chosen_with,
        holdout=decision.holdout,
        # A replayed decision of one variant is a ranking of one.
        ranking=_labelled(definition, decision.ranking or [decision.variant_id])
        if ranked
        else None,
    )


def _probability_now(
    snapshot: snapshots.Snapshot,
    x: dict[int, float],
    among: list[int] | None,
    rng: np.random.Generator,
    variant_id: int,
) -> float:
    """The probability that the snapshot chooses `variant_id` now (1.0 for a variant no
    longer in service, which only its earlier decision could serve)."""
    ids = snapshot.definition.variant_ids
    if variant_id not in ids:
        return 1.0
    probabilities = snapshots.choice_probabilities(snapshot, x, among, rng)
    return float(probabilities[ids.index(variant_id)]) or 1.0


def _labelled(
    definition: snapshots.Definition, ranking: list[int] | None
) -> list[tuple[int, str | int]] | None:
    if ranking is None:
        return None
    return [(variant, definition.labels[variant]) for variant in ranking]


def _eligible(
    definition: snapshots.Definition, eligible: Sequence[Label], fresh: bool
) -> list[int]:
    """The positions among the variants in service of those named (ids or labels)."""
    position = {variant: i for i, variant in enumerate(definition.variant_ids)}
    among: set[int] = set()
    for value in eligible:
        try:
            variant = _resolve_variant(
                value, definition.labels, name="eligible_variants", by_label=True
            )
        except _EntryError as exc:
            if isinstance(exc, _UnknownVariant) and not fresh:
                raise _MaybeStale(definition) from None  # added meanwhile?
            raise InvalidInput(str(exc)) from None
        if variant not in position:
            raise InvalidInput(f"eligible_variants: variant {variant} is retired.")
        among.add(position[variant])
    return sorted(among)


def _degraded(
    snapshot: snapshots.Snapshot,
    ranking: list[int],
    request_id: str,
    ranked: bool,
    propensity: float,
    holdout: bool,
) -> Recommendation:
    """Answer from the snapshot alone: the page waiting for this decision gets one (a
    rollout it knew of first)."""
    if snapshot.rollout is not None:
        ranking = [snapshot.rollout, *(v for v in ranking if v != snapshot.rollout)]
        propensity, holdout = 1.0, False
    variant = ranking[0]
    count(metrics.DEGRADED_DECISIONS)
    logger.debug(
        "Degraded decision",
        extra={"test_id": snapshot.definition.id, "request_id": request_id, "variant_id": variant},
    )
    return Recommendation(
        test_id=snapshot.definition.id,
        variant_id=variant,
        variant_label=snapshot.definition.labels[variant],
        request_id=request_id,
        is_global_rollout=snapshot.rollout is not None,
        propensity=propensity,
        holdout=holdout,
        degraded=True,
        ranking=_labelled(snapshot.definition, ranking) if ranked else None,
    )


# --- Rewards --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardInput:
    """One entry of an `update_model` batch, as its serializer checked it."""

    index: int  # its position in the batch, for the report
    reward: float
    variant: Label | None  # as sent: an id, or (with `by_label`) an id or a label
    by_label: bool  # named by `decision`, the original Scout's field, which takes labels too
    request_id: str | None
    context: Context  # inline context ({} when none was sent)
    inline: bool  # the entry carries its context itself
    use_stored_context: bool = True


@dataclass(frozen=True)
class EntryRefused:
    """An entry refused before it reached the Test (its serializer said why)."""

    index: int
    reason: str


@dataclass
class RewardReport:
    test_id: str
    processed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)


class _EntryError(Exception):
    pass


class _UnknownVariant(_EntryError):
    """The variant named is not one of the Test's (as far as this worker knows)."""


class _MaybeStale(Exception):
    """A request named a variant this worker's copy of the Test does not know."""

    def __init__(self, definition: snapshots.Definition) -> None:
        super().__init__(definition.id)
        self.test_id = definition.id
        self.version = definition.version


def _resolve_variant(
    value: object, labels: Mapping[int, Label], *, name: str, by_label: bool
) -> int:
    """A variant named by id (an integer) or, `by_label`, by id or label."""
    if isinstance(value, int) and not isinstance(value, bool) and value in labels:
        return value
    if by_label and isinstance(value, str | int) and not isinstance(value, bool):
        for variant_id, label in labels.items():
            if label == value or str(label) == str(value):
                return variant_id
        if isinstance(value, str) and value.isdigit() and int(value) in labels:
            return int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _EntryError(f"{name} must be a variant id (an integer).")
    raise _UnknownVariant(f"{name} {value!r} is not a variant of this Test.")


NOT_STARTED = (
    "The Test has not started yet (it waits for its scheduled start): a reward before the "
    "start is not counted."
)


def record_rewards(
    test_id: str,
    entries: Sequence[RewardInput | EntryRefused],
    *,
    settings_in_force: config.Config,
) -> RewardReport:
    """Count a batch of rewards. Each entry succeeds or fails on its own; a request id whose
    reward was already counted is reported as a duplicate and not counted again.

    Raises ConfigMoved, having counted nothing, as `recommend` does.
    """
    return _with_current_variants(
        test_id, lambda fresh: _record_rewards(test_id, entries, settings_in_force, fresh)
    )


def _record_rewards(
    test_id: str,
    entries: Sequence[RewardInput | EntryRefused],
    settings_in_force: config.Config,
    fresh: bool,
) -> RewardReport:
    snapshot = _snapshot(test_id)
    definition = snapshot.definition
    report = RewardReport(test_id=definition.id)
    checked = [entry for entry in entries if isinstance(entry, RewardInput)]
    report.errors = [
        {"index": entry.index, "reason": entry.reason}
        for entry in entries
        if isinstance(entry, EntryRefused)
    ]
    resolved: list[tuple[int, rewards.Reward]] = []
    for entry in checked:
        try:
            resolved.append((entry.index, _resolve_reward(entry, definition.labels)))
        except _EntryError as exc:
            if isinstance(exc, _UnknownVariant) and not fresh:
                raise _MaybeStale(definition) from None  # added meanwhile?
            report.errors.append({"index": entry.index, "reason": str(exc)})

    if resolved:
        arguments: dict[str, Any] = {  # keyword arguments of record_rewards
            "guard": config.guard(settings_in_force),
            "context_ttl_seconds": settings_in_force.context_ttl_seconds,
            "trail_window_seconds": definition.trail_window_seconds,
            "trail_granularity_seconds": definition.trail_granularity_seconds,
            "recent_decay": policy.RECENT_DECAY
            if definition.forgetting == policy.ON_CHANGE
            else 0.0,
            "definition_version": definition.version,
        }
        batch = [reward for _, reward in resolved]
        try:
            try:
                outcomes = rewards.record_rewards(definition.id, batch, **arguments)
            except keys.TestMissing:
                _restore_missing(definition.id)
                outcomes = rewards.record_rewards(definition.id, batch, **arguments)
        except keys.NotStarted:
            report.errors += [{"index": index, "reason": NOT_STARTED} for index, _ in resolved]
        else:
            snapshots.learned_more(definition.id)
            for (index, reward), outcome in zip(resolved, outcomes, strict=True):
                _report(report, definition, index, reward, outcome)
            if report.duplicates:
                count(metrics.DUPLICATE_REWARDS, amount=len(report.duplicates))
    count(metrics.MODEL_REWARDS, definition.id, amount=len(entries))
    report.errors.sort(key=lambda error: error["index"])
    logger.debug(
        "Rewards",
        extra={
            "test_id": definition.id,
            "processed": report.processed,
            "failed": len(report.errors),
            "duplicates": len(report.duplicates),
        },
    )
    return report


def _resolve_reward(entry: RewardInput, labels: Mapping[int, Label]) -> rewards.Reward:
    """What an entry says: its variant (by id, or by label for `decision`) and its own context.
    Which of the two its reward teaches, its own or what the decision stored under its request
    id, the reward script finds out (bandit/state/reward.lua)."""
    name = "decision" if entry.by_label else "variant_id"
    variant = (
        _resolve_variant(entry.variant, labels, name=name, by_label=entry.by_label)
        if entry.variant is not None
        else None
    )
    if variant is None and entry.request_id is None:
        raise _EntryError("variant_id is required.")
    return rewards.Reward(
        variant_id=variant,
        reward=entry.reward,
        request_id=entry.request_id,
        features=policy.encode_context(entry.context),
        context_keys=sorted(entry.context),
        use_stored_context=entry.use_stored_context,
        inline=entry.inline,
    )


def _report(
    report: RewardReport,
    definition: snapshots.Definition,
    index: int,
    reward: rewards.Reward,
    outcome: rewards.Outcome,
) -> None:
    """Put one entry's outcome into the report and the metrics."""
    status, variant = outcome.status, outcome.variant_id
    if status in rewards.COUNTED:
        report.processed += 1
        label = definition.metric_labels.get(variant, metrics.OTHER_VARIANTS)
        count(metrics.MODEL_UPDATES, definition.id, label)
        observe(metrics.MODEL_REWARD, reward.reward, definition.id)
        if status == rewards.APPLIED_INLINE:
            count(metrics.CONTEXTS_EXPIRED, "inline_context")
    elif status == rewards.DUPLICATE:
        report.duplicates.append({"index": index, "request_id": reward.request_id})
    elif status == rewards.OTHER_VARIANT:
        report.errors.append(
            {
                "index": index,
                "reason": (
                    f"variant {reward.variant_id} does not match variant {variant}, which Scout "
                    f"served for request_id {reward.request_id!r}."
                ),
            }
        )
    elif status == rewards.RANKED_WITHOUT_VARIANT:
        report.errors.append(
            {
                "index": index,
                "reason": (
                    f"request_id {reward.request_id!r} names a ranked decision: the update must "
                    "name the variant it is for with variant_id."
                ),
            }
        )
    elif status == rewards.NOT_RANKED:
        report.errors.append(
            {
                "index": index,
                "reason": (
                    f"variant {reward.variant_id} is not among the variants ranked for "
                    f"request_id {reward.request_id!r}."
                ),
            }
        )
    elif status == rewards.LATE:
        count(metrics.LATE_REWARDS)
        report.errors.append(
            {
                "index": index,
                "reason": (
                    f"The reward window of request_id {reward.request_id!r} closed before "
                    "this reward came: the decision counts the Test's default reward instead."
                ),
            }
        )
    elif status == rewards.GONE_WITHOUT_CONTEXT:
        count(metrics.CONTEXTS_EXPIRED, "failed")
        report.errors.append(
            {
                "index": index,
                "reason": (
                    f"request_id {reward.request_id!r} is unknown or expired, and the update "
                    "carries no context."
                ),
            }
        )
    else:  # GONE_WITHOUT_VARIANT
        report.errors.append({"index": index, "reason": "variant_id is required."})


def variant_of(test: Test, variant: Label) -> int:
    """The id of a variant of `test` named by id or label (400 for any other)."""
    labels = {int(key): label for key, label in test.variants.items()}
    try:
        return _resolve_variant(variant, labels, name="variant", by_label=True)
    except _EntryError as exc:
        raise InvalidInput(str(exc)) from None
