"""An operator's changes to a running Test: its variants in service, its holdout, its reward
window and a global rollout.

Each change is written to the database and mirrored into Redis in one transaction (if Redis is
down, nothing changes), is audited, and holds on every worker from its next request: the
decision and reward scripts refuse a worker's stale copy of a Test's variants
(bandit.state.lifecycle). The REST API and the console both call these.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from bandit import services, snapshots, windows
from bandit.announcements import announce, label_of
from bandit.models import Test
from bandit.services import Label
from bandit.state import lifecycle
from core.errors import Conflict, InvalidInput, NotFound
from system import audit
from webhooks import events

logger = logging.getLogger(__name__)


# --- Variants in service -------------------------------------------------------------------

# A Test keeps at least this many variants in service: with one, it has nothing to choose.
MINIMUM_IN_SERVICE = 2


def _locked(test_id: str) -> Test:
    """The Test, locked for a change until the transaction ends: one Test's changes happen,
    and are announced to webhooks, one at a time."""
    test = Test.objects.select_for_update().filter(pk=services.parse_test_id(test_id)).first()
    if test is None:
        raise NotFound(f"Test {test_id} not found.")
    return test


def _publish_variants(test: Test) -> None:
    """Count a change of the variants in service; every worker sees it from its next request
    (inside the caller's transaction: if Redis is down, nothing changes)."""
    test.definition_version += 1
    test.save(update_fields=["variants", "retired_variants", "definition_version"])
    lifecycle.set_definition_version(str(test.id), test.definition_version, test.retired_variants)


def add_variants(
    test_id: str,
    variants: Mapping[int, Label],
    *,
    maximum: int,
    actor: audit.Actor | None = None,
) -> tuple[Test, list[int]]:
    """Add variants to a running Test: what it learned about the others is kept, and the new
    ones are chosen among from the next decision on, on every worker. An id is never reused
    (a retired variant keeps its id), and labels stay unique among all the Test's variants.
    `maximum` is the most variants a Test may have, retired ones included."""
    with transaction.atomic():
        test = _locked(test_id)
        labels = {str(label): int(key) for key, label in test.variants.items()}
        for variant_id, label in sorted(variants.items()):
            if str(variant_id) in test.variants:
                state = "retired" if variant_id in test.retired_variants else "in service"
                raise Conflict(
                    f"Variant id {variant_id} is taken (by a variant {state}); ids are never "
                    "reused."
                )
            if str(label) in labels:
                raise Conflict(
                    f"The label {label!r} is used by variant {labels[str(label)]}; labels must "
                    "be unique."
                )
        if len(test.variants) + len(variants) > maximum:
            raise InvalidInput(
                f"A Test has at most {maximum} variants, retired ones included; this one has "
                f"{len(test.variants)}."
            )
        test.variants = {**test.variants, **{str(k): v for k, v in sorted(variants.items())}}
        _publish_variants(test)
        added = sorted(variants)
        audit.record(actor, "variants_added", str(test.id), variants=dict(variants))
        announce(
            events.VARIANT_ADDED,
            test,
            actor,
            variants={str(key): variants[key] for key in added},
        )
    snapshots.forget(str(test.id))
    logger.info("Variants added", extra={"test_id": str(test.id), "variants": added})
    return test, added


def retire_variant(
    test_id: str, variant: Label, actor: audit.Actor | None = None
) -> tuple[Test, int]:
    """Stop serving a variant (by id or label) from the next decision on, on every worker.
    Its figures stay, rewards for decisions made before still count, and its id is not
    reused."""
    with transaction.atomic():
        test = _locked(test_id)
        variant_id = services.variant_of(test, variant)
        if variant_id in test.retired_variants:
            raise InvalidInput(f"Variant {variant_id} is retired already.")
        if len(test.variants_in_service()) <= MINIMUM_IN_SERVICE:
            raise InvalidInput(
                f"A Test keeps at least {MINIMUM_IN_SERVICE} variants in service; add one "
                "before retiring another."
            )
        if test.global_variant_rollout == variant_id:
            raise InvalidInput(
                f"Variant {variant_id} is rolled out to everyone; clear the rollout before "
                "retiring it."
            )
        if test.served_rollout == variant_id:
            raise InvalidInput(
                f"Variant {variant_id} is served to everyone until the Test starts; it cannot "
                "be retired before then."
            )
        if test.ended_at is None and test.on_end_variant == variant_id:
            raise InvalidInput(
                f"Variant {variant_id} is what the Test rolls out when it ends (on_end); it "
                "cannot be retired."
            )
        test.retired_variants = sorted([*test.retired_variants, variant_id])
        _publish_variants(test)
        audit.record(actor, "variant_retired", str(test.id), variant_id=variant_id)
        announce(
            events.VARIANT_RETIRED,
            test,
            actor,
            variant_id=variant_id,
            variant_label=label_of(test, variant_id),
        )
    snapshots.forget(str(test.id))
    logger.info("Variant retired", extra={"test_id": str(test.id), "variant_id": variant_id})
    return test, variant_id


# --- Reward windows -------------------------------------------------------------------------


def set_holdout_share(test_id: str, share: float, actor: audit.Actor | None = None) -> Test:
    """From the next decision on, on every worker, `share` of the Test's decisions are the
    holdout's (chosen uniformly at random). Counted as a change of the Test's definition,
    which every worker's next decision checks (bandit.state.lifecycle)."""
    with transaction.atomic():
        test = _locked(test_id)
        previous = test.holdout_share
        test.holdout_share = share
        test.definition_version += 1
        test.save(update_fields=["holdout_share", "definition_version"])
        audit.record(actor, "holdout_share_set", str(test.id), holdout_share=share)
        lifecycle.set_definition_version(
            str(test.id), test.definition_version, test.retired_variants
        )
    snapshots.forget(str(test.id))
    logger.info(
        "Holdout share set",
        extra={"test_id": str(test.id), "holdout_share": share, "previous": previous},
    )
    return test


def set_reward_window(
    test_id: str,
    *,
    seconds: int | None,
    default_reward: float,
    actor: audit.Actor | None = None,
) -> Test:
    """From the next decision on, on every worker, decisions wait `seconds` for their reward
    (None: for ever, as the contract has it), and one that gets none in time counts
    `default_reward` (bandit.windows). Decisions made before keep the window they were made
    with: turning the window off still closes theirs."""
    test = services.get_test(test_id)
    previous = test.reward_window_seconds
    with transaction.atomic():
        if previous is not None and seconds is None:
            test.reward_windows_close_by = timezone.now() + timedelta(
                seconds=previous + windows.CLOSE_BY_MARGIN_SECONDS
            )
        test.reward_window_seconds = seconds
        test.default_reward = default_reward
        test.save(
            update_fields=["reward_window_seconds", "default_reward", "reward_windows_close_by"]
        )
        audit.record(
            actor,
            "reward_window_set",
            str(test.id),
            reward_window_seconds=seconds,
            default_reward=default_reward,
        )
        lifecycle.set_reward_window(str(test.id), seconds, default_reward)
    logger.info(
        "Reward window set",
        extra={
            "test_id": str(test.id),
            "reward_window_seconds": seconds,
            "default_reward": default_reward,
        },
    )
    return test


# --- Rollouts -------------------------------------------------------------------------------


def rollout(test_id: str, variant: Label, actor: audit.Actor | None = None) -> tuple[Test, int]:
    """Serve one variant (by id or label) to everyone, from the next request on, on every
    worker."""
    with transaction.atomic():
        test = _locked(test_id)
        variant_id = services.variant_of(test, variant)
        if variant_id in test.retired_variants:
            raise InvalidInput(f"Variant {variant_id} is retired: it cannot be rolled out.")
        test.global_variant_rollout = variant_id
        test.save(update_fields=["global_variant_rollout"])
        audit.record(actor, "rollout", str(test.id), variant_id=variant_id)
        announce(
            events.ROLLOUT_SET,
            test,
            actor,
            variant_id=variant_id,
            variant_label=label_of(test, variant_id),
        )
        lifecycle.set_rollout(str(test.id), test.served_rollout)
    logger.info("Global rollout set", extra={"test_id": str(test.id), "variant_id": variant_id})
    return test, variant_id


def clear_rollout(test_id: str, actor: audit.Actor | None = None) -> Test:
    with transaction.atomic():
        test = _locked(test_id)
        was = test.global_variant_rollout
        test.global_variant_rollout = None
        test.save(update_fields=["global_variant_rollout"])
        audit.record(actor, "rollout_cleared", str(test.id))
        announce(events.ROLLOUT_CLEARED, test, actor, variant_id=was)
        # Before its start, the Test goes on serving its first variant.
        lifecycle.set_rollout(str(test.id), test.served_rollout)
    logger.info("Global rollout cleared", extra={"test_id": str(test.id)})
    return test
