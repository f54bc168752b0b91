"""Use cases of the Test domain. Views call these; they never parse HTTP.

Each rule lives here once, so the REST API and the admin console behave the same.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError

from adminapi import audit, config
from bandit import checkpoints, policy, snapshots, state
from bandit.models import Test
from project.errors import InvalidInput, NotFound
from project.observability import metrics

logger = logging.getLogger(__name__)

# Rewards and numeric context values beyond this magnitude are refused: their squares must stay
# far from overflowing the sums Scout keeps.
MAX_ABS_NUMBER = 1e12


# --- Validation -----------------------------------------------------------------------------


def parse_test_id(raw: str) -> str:
    """A Test id is a UUID; anything else names no Test (404, not 400)."""
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        raise NotFound(f"Test {raw!r} not found.") from None


def _check_label(variant_id: str, label: object) -> str | int:
    if isinstance(label, bool) or not isinstance(label, str | int):
        raise InvalidInput(f"variants.{variant_id}: a label must be a string or an integer.")
    if isinstance(label, str) and not label.strip():
        raise InvalidInput(f"variants.{variant_id}: a label must not be empty.")
    if len(str(label)) > settings.SCOUT_MAX_LABEL_LENGTH:
        raise InvalidInput(
            f"variants.{variant_id}: a label is at most {settings.SCOUT_MAX_LABEL_LENGTH} "
            "characters long."
        )
    return label


def validate_variants(variants: object) -> dict[str, str | int]:
    """Variant ids are non-negative integers (as JSON keys); labels unique strings or ints."""
    if not isinstance(variants, dict):
        raise InvalidInput("variants must be an object mapping variant ids to labels.")
    if not 2 <= len(variants) <= settings.SCOUT_MAX_VARIANTS:
        raise InvalidInput(
            f"A Test needs between 2 and {settings.SCOUT_MAX_VARIANTS} variants, "
            f"got {len(variants)}."
        )
    clean: dict[int, str | int] = {}
    seen: dict[str, str] = {}
    for key, label in variants.items():
        text = str(key).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 9:
            raise InvalidInput(
                f"variants: the key {key!r} is not a non-negative integer variant id."
            )
        variant_id = int(text)
        if variant_id in clean:
            raise InvalidInput(f"variants: the id {variant_id} appears twice.")
        label = _check_label(text, label)
        if str(label) in seen:
            raise InvalidInput(
                f"variants: the label {label!r} is used by variants {seen[str(label)]} and {text}; "
                "labels must be unique."
            )
        seen[str(label)] = text
        clean[variant_id] = label
    return {str(variant_id): clean[variant_id] for variant_id in sorted(clean)}


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must be a non-empty string.")
    if len(name) > settings.SCOUT_MAX_NAME_LENGTH:
        raise InvalidInput(f"name is at most {settings.SCOUT_MAX_NAME_LENGTH} characters long.")
    return name.strip()


def validate_context(context: object) -> dict[str, Any]:
    """A context is a flat object of strings, finite numbers, booleans and nulls, within the
    configured limits."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise InvalidInput("context must be a JSON object.")
    if len(context) > settings.SCOUT_MAX_CONTEXT_KEYS:
        raise InvalidInput(
            f"context has {len(context)} keys; the limit is {settings.SCOUT_MAX_CONTEXT_KEYS}."
        )
    for key, value in context.items():
        if not key or len(key) > settings.SCOUT_MAX_CONTEXT_KEY_LENGTH:
            raise InvalidInput(
                f"context keys must be 1 to {settings.SCOUT_MAX_CONTEXT_KEY_LENGTH} characters "
                f"long; got {key[:40]!r}."
            )
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, str):
            if len(value) > settings.SCOUT_MAX_CONTEXT_VALUE_LENGTH:
                raise InvalidInput(
                    f"context[{key!r}] is longer than "
                    f"{settings.SCOUT_MAX_CONTEXT_VALUE_LENGTH} characters."
                )
        elif isinstance(value, int | float):
            if not policy.is_number(value, MAX_ABS_NUMBER):
                raise InvalidInput(
                    f"context[{key!r}] must be a finite number of magnitude at most "
                    f"{MAX_ABS_NUMBER:g}."
                )
        else:
            raise InvalidInput(
                f"context[{key!r}] must be a string, number, boolean or null; "
                "nested objects and lists are not supported."
            )
    return context


def validate_request_id(request_id: object) -> str | None:
    if request_id is None:
        return None
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInput("request_id must be a non-empty string.")
    if len(request_id) > settings.SCOUT_MAX_REQUEST_ID_LENGTH:
        raise InvalidInput(
            f"request_id is at most {settings.SCOUT_MAX_REQUEST_ID_LENGTH} characters long."
        )
    return request_id


# --- Lifecycle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestSettings:
    __test__ = False

    trail_time_window_minutes: int
    trail_bucket_granularity_seconds: int
    minimum_update_requests: int


# Bounds of a Test's own settings; a trail never holds more than MAX_TRAIL_BUCKETS buckets.
TRAIL_WINDOW_MINUTES = (1, 10_080)
TRAIL_GRANULARITY_SECONDS = (1, 86_400)
MINIMUM_UPDATE_REQUESTS = (0, 1_000_000)
MAX_TRAIL_BUCKETS = 10_000


def _bounded(name: str, value: object, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be an integer between {low} and {high}.")
    return value


def validate_test_settings(
    *, window_minutes: object, granularity_seconds: object, minimum_updates: object
) -> TestSettings:
    checked = TestSettings(
        trail_time_window_minutes=_bounded(
            "trail_time_window_minutes", window_minutes, TRAIL_WINDOW_MINUTES
        ),
        trail_bucket_granularity_seconds=_bounded(
            "trail_bucket_granularity_seconds", granularity_seconds, TRAIL_GRANULARITY_SECONDS
        ),
        minimum_update_requests=_bounded(
            "minimum_update_requests", minimum_updates, MINIMUM_UPDATE_REQUESTS
        ),
    )
    buckets = checked.trail_time_window_minutes * 60 // checked.trail_bucket_granularity_seconds
    if buckets > MAX_TRAIL_BUCKETS:
        raise InvalidInput(
            f"The trail window holds {buckets} buckets of that granularity; at most "
            f"{MAX_TRAIL_BUCKETS} are allowed. Choose a coarser granularity."
        )
    return checked


def default_test_settings() -> TestSettings:
    """What a new Test gets unless it says otherwise (operators change these over the API)."""
    current = config.cached()
    return TestSettings(
        trail_time_window_minutes=current.trail_time_window_minutes,
        trail_bucket_granularity_seconds=current.trail_bucket_granularity_seconds,
        minimum_update_requests=current.minimum_update_requests,
    )


def create_test(
    *,
    name: object,
    variants: object,
    test_settings: TestSettings | None = None,
    actor: audit.Actor | None = None,
) -> Test:
    """Create a Test in the database and mark it in Redis. Either both happen or neither."""
    clean_name = validate_name(name)
    clean_variants = validate_variants(variants)
    chosen = test_settings or default_test_settings()
    with transaction.atomic():
        test = Test.objects.create(
            name=clean_name,
            variants=clean_variants,
            trail_time_window_minutes=chosen.trail_time_window_minutes,
            trail_bucket_granularity_seconds=chosen.trail_bucket_granularity_seconds,
            minimum_update_requests=chosen.minimum_update_requests,
        )
        audit.record(actor, "test_created", str(test.id), name=test.name)
        # Inside the transaction: if Redis is down, the Test is not created at all.
        state.create_test(str(test.id))
    logger.info(
        "Test created",
        extra={"test_id": str(test.id), "test_name": test.name, "variants": len(clean_variants)},
    )
    return test


def get_test(test_id: str) -> Test:
    test = Test.objects.filter(pk=parse_test_id(test_id)).first()
    if test is None:
        raise NotFound(f"Test {test_id} not found.")
    return test


def delete_test(test_id: str, actor: audit.Actor | None = None) -> str:
    """Delete a Test's definition and every key it has in Redis."""
    test = get_test(test_id)
    key = str(test.id)
    with transaction.atomic():
        test.delete()
        audit.record(actor, "test_deleted", key, name=test.name)
        # Inside the transaction: if Redis is down, the Test stays as it was.
        removed = state.delete_test(key)
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
    # Redis could not be reached: chosen from the worker's snapshot and not stored.
    degraded: bool = False


def _snapshot(test_id: str) -> snapshots.Snapshot:
    snapshot = snapshots.get(parse_test_id(test_id))
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
    lost = state.missing([str(test.id) for test in tests])
    for test in tests:
        if str(test.id) in lost:
            _refill(test)


def recommend(test_id: str, *, context: object, request_id: object) -> Recommendation:
    """Choose a variant by Thompson sampling and store the decision under its request id.

    Raises state.ConfigMoved, having stored nothing, when an operator changed the configuration
    since the caller was let in: the caller must be checked again (bandit.api.views.ApiView).
    """
    clean_context = validate_context(context)
    clean_request_id = validate_request_id(request_id) or uuid.uuid4().hex
    settings_in_force = config.known()  # the script checks that it is current
    snapshot = _snapshot(test_id)
    definition = snapshot.definition
    features = policy.encode_context(clean_context)
    choice = policy.choose(
        snapshot.posterior,
        policy.feature_vector(features, snapshot.stats.feature_index),
        _rng(),
        uniform=snapshot.stats.total_updates < definition.minimum_update_requests,
        variants=len(definition.variant_ids),
    )
    arguments = {
        "variant_id": definition.variant_ids[choice.index],
        "exploit": choice.exploit,
        "request_id": clean_request_id,
        "context_json": (
            json.dumps(clean_context, separators=(",", ":"), ensure_ascii=False)
            if clean_context
            else ""
        ),
        "context_keys": sorted(clean_context),
        "features": list(features),
        "config_version": settings_in_force.version,
        "context_ttl_seconds": settings_in_force.context_ttl_seconds,
        "trail_window_seconds": definition.trail_window_seconds,
        "trail_granularity_seconds": definition.trail_granularity_seconds,
    }
    try:
        try:
            decision = state.record_decision(definition.id, **arguments)
        except state.TestMissing:
            _restore_missing(definition.id)
            decision = state.record_decision(definition.id, **arguments)
    except RedisError:
        return _degraded(snapshot, arguments["variant_id"], clean_request_id)
    if not decision.replayed:  # a replay answers a decision already counted
        metrics.MODEL_PREDICTIONS.labels(definition.id, str(decision.variant_id)).inc()
        metrics.CONTEXTS_STORED.inc()
    logger.debug(
        "Decision",
        extra={
            "test_id": definition.id,
            "request_id": clean_request_id,
            "variant_id": decision.variant_id,
            "is_global_rollout": decision.is_global_rollout,
        },
    )
    return Recommendation(
        test_id=definition.id,
        variant_id=decision.variant_id,
        variant_label=definition.labels[decision.variant_id],
        request_id=clean_request_id,
        is_global_rollout=decision.is_global_rollout,
    )


def _degraded(snapshot: snapshots.Snapshot, chosen: int, request_id: str) -> Recommendation:
    """Answer from the snapshot alone: the page waiting for this decision gets one."""
    variant = snapshot.rollout if snapshot.rollout is not None else chosen
    metrics.DEGRADED_DECISIONS.inc()
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
        degraded=True,
    )


# --- Rewards --------------------------------------------------------------------------------

_ENTRY_FIELDS = {
    "request_id",
    "variant_id",
    "reward",
    "context",
    "context_used_for_prediction",
    "decision",
}


@dataclass
class RewardReport:
    test_id: str
    processed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)


class _EntryError(Exception):
    pass


def _resolve_variant(value: object, labels: Mapping[int, str | int], name: str) -> int:
    """A variant named by id (an integer) or, for `decision`, by id or label."""
    if isinstance(value, int) and not isinstance(value, bool) and value in labels:
        return value
    if name == "decision" and isinstance(value, str | int) and not isinstance(value, bool):
        for variant_id, label in labels.items():
            if label == value or str(label) == str(value):
                return variant_id
        if isinstance(value, str) and value.isdigit() and int(value) in labels:
            return int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _EntryError(f"{name} must be a variant id (an integer).")
    raise _EntryError(f"{name} {value!r} is not a variant of this Test.")


def _entry_fields(entry: dict[str, Any], labels: Mapping[int, str | int]) -> dict[str, Any]:
    """Check one entry's own fields (everything that does not need Redis)."""
    reward = entry.get("reward")
    if "reward" not in entry:
        raise _EntryError("reward is required.")
    if not policy.is_number(reward, math.inf):
        raise _EntryError("reward must be a finite number.")
    if not policy.is_number(reward, MAX_ABS_NUMBER):
        raise _EntryError(f"reward must be of magnitude at most {MAX_ABS_NUMBER:g}.")
    variant = None
    if entry.get("variant_id") is not None:
        variant = _resolve_variant(entry["variant_id"], labels, "variant_id")
    elif entry.get("decision") is not None:
        variant = _resolve_variant(entry["decision"], labels, "decision")
    try:
        request_id = validate_request_id(entry.get("request_id"))
        if "context" in entry:
            context = validate_context(entry["context"])
            inline = entry["context"] is not None
        elif "decision" in entry:
            # Clients of the original Scout send the context keys inline, beside the decision.
            context = validate_context({k: v for k, v in entry.items() if k not in _ENTRY_FIELDS})
            inline = True
        else:
            context, inline = {}, False
    except InvalidInput as exc:
        raise _EntryError(exc.detail) from None
    use_stored = entry.get("context_used_for_prediction", True)
    if not isinstance(use_stored, bool):
        raise _EntryError("context_used_for_prediction must be a boolean.")
    return {
        "reward": float(reward),
        "variant": variant,
        "request_id": request_id,
        "context": context,
        "inline": inline,
        "use_stored": use_stored,
    }


def record_rewards(test_id: str, updates: list[Any]) -> RewardReport:
    """Count a batch of rewards. Each entry succeeds or fails on its own; a request id whose
    reward was already counted is reported as a duplicate and not counted again.

    Raises state.ConfigMoved, having counted nothing, as `recommend` does.
    """
    snapshot = _snapshot(test_id)
    definition = snapshot.definition
    report = RewardReport(test_id=definition.id)
    checked: list[tuple[int, dict[str, Any]]] = []
    for index, entry in enumerate(updates):
        try:
            if not isinstance(entry, dict):
                raise _EntryError("each update must be a JSON object.")
            checked.append((index, _entry_fields(entry, definition.labels)))
        except _EntryError as exc:
            report.errors.append({"index": index, "reason": str(exc)})

    with_ids = [fields["request_id"] for _, fields in checked if fields["request_id"]]
    stored = dict(zip(with_ids, state.stored_decisions(definition.id, with_ids), strict=True))
    rewards: list[tuple[int, state.Reward]] = []
    for index, fields in checked:
        try:
            rewards.append((index, _resolve_reward(fields, stored.get(fields["request_id"]))))
        except _EntryError as exc:
            report.errors.append({"index": index, "reason": str(exc)})

    if rewards:
        settings_in_force = config.known()  # the script checks that it is current
        arguments = {
            "config_version": settings_in_force.version,
            "context_ttl_seconds": settings_in_force.context_ttl_seconds,
            "trail_window_seconds": definition.trail_window_seconds,
            "trail_granularity_seconds": definition.trail_granularity_seconds,
        }
        batch = [reward for _, reward in rewards]
        try:
            statuses = state.record_rewards(definition.id, batch, **arguments)
        except state.TestMissing:
            _restore_missing(definition.id)
            statuses = state.record_rewards(definition.id, batch, **arguments)
        reward_values = metrics.MODEL_REWARD.labels(definition.id)
        for (index, reward), status in zip(rewards, statuses, strict=True):
            if status == state.APPLIED:
                report.processed += 1
                metrics.MODEL_UPDATES.labels(definition.id, str(reward.variant_id)).inc()
                reward_values.observe(reward.reward)
            else:
                report.duplicates.append({"index": index, "request_id": reward.request_id})
        if report.duplicates:
            metrics.DUPLICATE_REWARDS.inc(len(report.duplicates))
    metrics.MODEL_REWARDS.labels(definition.id).inc(len(updates))
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


def _resolve_reward(fields: dict[str, Any], stored: str | None) -> state.Reward:
    """Decide which variant and which context a reward teaches.

    The stored context is used when the request id names a stored decision (unless the client
    says `context_used_for_prediction: false`); otherwise the inline context, or none.
    """
    request_id = fields["request_id"]
    variant = fields["variant"]
    context = fields["context"]
    if stored is not None:
        stored_variant, payload = state.parse_stored(stored)
        if variant is not None and variant != stored_variant:
            raise _EntryError(
                f"variant {variant} does not match variant {stored_variant}, which Scout served "
                f"for request_id {request_id!r}."
            )
        variant = stored_variant
        if fields["use_stored"] and payload != "r":
            context = json.loads(payload) if payload else {}
    elif request_id is not None:
        if not fields["inline"]:
            metrics.CONTEXTS_EXPIRED.labels("failed").inc()
            raise _EntryError(
                f"request_id {request_id!r} is unknown or expired, and the update carries no "
                "context."
            )
        metrics.CONTEXTS_EXPIRED.labels("inline_context").inc()
    if variant is None:
        raise _EntryError("variant_id is required.")
    return state.Reward(
        variant_id=variant,
        reward=fields["reward"],
        request_id=request_id,
        features=policy.encode_context(context),
        context_keys=sorted(context),
    )


# --- Rollouts -------------------------------------------------------------------------------


def rollout(test_id: str, variant: object, actor: audit.Actor | None = None) -> tuple[Test, int]:
    """Serve one variant to everyone, from the next request on, on every worker."""
    test = get_test(test_id)
    labels = {int(key): label for key, label in test.variants.items()}
    try:
        if variant is None:
            raise _EntryError("variant is required.")
        variant_id = _resolve_variant(variant, labels, "decision")
    except _EntryError as exc:
        raise InvalidInput(str(exc).replace("decision", "variant")) from None
    with transaction.atomic():
        test.global_variant_rollout = variant_id
        test.save(update_fields=["global_variant_rollout"])
        audit.record(actor, "rollout", str(test.id), variant_id=variant_id)
        state.set_rollout(str(test.id), variant_id)
    logger.info("Global rollout set", extra={"test_id": str(test.id), "variant_id": variant_id})
    return test, variant_id


def clear_rollout(test_id: str, actor: audit.Actor | None = None) -> Test:
    test = get_test(test_id)
    with transaction.atomic():
        test.global_variant_rollout = None
        test.save(update_fields=["global_variant_rollout"])
        audit.record(actor, "rollout_cleared", str(test.id))
        state.set_rollout(str(test.id), None)
    logger.info("Global rollout cleared", extra={"test_id": str(test.id)})
    return test
