"""Off-policy evaluation: how other policies would have done on a Test's own traffic,
estimated from its decision log (bandit.decision_log) without running them.

Each logged decision knows the probability with which its variant was chosen (its propensity),
so its reward stands for the rewards of every policy that would have chosen the same variant
there, weighed by how much more or less often that policy would have (bandit.estimators: IPS,
self-normalised IPS, and doubly robust with the Test's current model as the reward model).
Evaluated: the policy as it ran, uniform random among the variants in service now, each variant
for everyone, greedy on the current model (the variant with the best posterior mean for the
decision's context), and every combination of the learning settings replayed on the log
(bandit.replay). Rolled-out decisions chose with probability 1 and say nothing of
other variants; they are left out, as are decisions whose reward the log does not hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from itertools import islice
from typing import Any

import numpy as np

from bandit import decision_log, estimators, policy, replay, snapshots
from bandit.models import LoggedDecision, Test
from core.time import iso

# The most recent decisions an evaluation reads, at most: enough for intervals a few tenths
# of a percent wide, and a bounded cost per request.
MAX_DECISIONS = 100_000


def evaluate(test: Test, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """Every policy's estimated mean reward over the Test's logged decisions in [start, end)."""
    snapshot = snapshots.get(str(test.id))
    assert snapshot is not None  # the Test exists: the caller has it
    in_service = snapshot.definition.variant_ids
    logged = _logged(test, start, end)
    n = len(logged.rewards)
    contexts = _contexts(snapshot, logged.contexts)
    means = _predictions(snapshot, contexts)  # (n, variants in service)
    position = {variant: i for i, variant in enumerate(in_service)}
    chosen = np.array([position.get(v, -1) for v in logged.variants], dtype=np.intp)
    served = chosen >= 0  # the logged variant is in service now (else the model has no say)
    predicted_logged = np.where(served, means[np.arange(n), np.maximum(chosen, 0)], 0.0)

    def value(target_of: np.ndarray, everywhere: np.ndarray) -> dict[str, Any]:
        """A policy by its probability of each variant in service, per decision (n, k)."""
        target = np.where(served, target_of[np.arange(n), np.maximum(chosen, 0)], 0.0)
        expected = (everywhere * means).sum(axis=1)
        return estimators.policy_value(
            logged.rewards, logged.propensities, target, predicted_logged, expected
        )

    k = len(in_service)
    uniform = np.full((n, k), 1.0 / k)
    greedy = np.zeros((n, k))
    if n:
        greedy[np.arange(n), means.argmax(axis=1)] = 1.0
    policies: list[dict[str, Any]] = [
        {
            "policy": "as_run",
            "description": "The Test's own decisions, as they were made.",
            # Its probability of each variant it did not choose is not logged: no DR.
            **estimators.policy_value(logged.rewards, logged.propensities, logged.propensities),
        },
        {
            "policy": "uniform",
            "description": "A plain split: every variant in service equally often.",
            **value(uniform, uniform),
        },
        {
            "policy": "greedy",
            "description": "Always the variant the current model expects the most of.",
            **value(greedy, greedy),
        },
    ]
    for i, variant in enumerate(in_service):
        alone = np.zeros((n, k))
        alone[:, i] = 1.0
        policies.append(
            {
                "policy": "variant",
                "variant_id": variant,
                "variant_label": snapshot.definition.labels[variant],
                "description": f"Variant {snapshot.definition.labels[variant]} for everyone.",
                **value(alone, alone),
            }
        )
    skipped = None
    if n:
        replayed_contexts = contexts if snapshot.stats.contextual else None
        policies += _replayed(test, in_service, chosen, logged.rewards, replayed_contexts, value)
    else:
        skipped = "No rewarded decision in the range to replay the learning settings on."
    return {
        "cb_model_id": str(test.id),
        "decisions": n,
        "first_decided_at": logged.first,
        "last_decided_at": logged.last,
        "policies": policies,
        "replay_skipped": skipped,
    }


def _replayed(
    test: Test,
    in_service: list[int],
    chosen: np.ndarray,
    rewards: np.ndarray,
    contexts: replay.Contexts | None,
    value: Callable[[np.ndarray, np.ndarray], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each combination of learning settings, replayed on the log (bandit.replay), once per
    distinct choices: with three variants or fewer, focused sampling chooses as optimistic
    does and the pooled prior is the flat one, a Test that changed nothing forgets nothing,
    and settings that choose alike share a row. The log is read newest first, a replay goes
    oldest first."""
    oldest_contexts = (
        None if contexts is None else replay.Contexts(contexts.distinct, contexts.of_decision[::-1])
    )
    replayed: dict[tuple[str, ...], np.ndarray] = {}
    groups: list[tuple[np.ndarray, list[replay.Setting]]] = []
    for setting in replay.settings():
        key = replay.alike_key(setting, contexts is not None)
        if key not in replayed:
            replayed[key] = replay.probabilities(
                setting,
                in_service,
                chosen[::-1],
                rewards[::-1],
                minimum_updates=test.minimum_update_requests,
                minimum_share=test.minimum_variant_share,
                contexts=oldest_contexts,
            )
        oldest_first = replayed[key]
        for distribution, alike in groups:
            if np.array_equal(distribution, oldest_first):
                alike.append(setting)
                break
        else:
            groups.append((oldest_first, [setting]))
    configured = replay.Setting(test.sampling, test.prior, test.forgetting)
    found = []
    for oldest_first, alike in groups:
        distribution = oldest_first[::-1]
        found.append(
            {
                "policy": "replay",
                "settings": [
                    {"sampling": s.sampling, "prior": s.prior, "forgetting": s.forgetting}
                    for s in alike
                ],
                "as_configured": configured in alike,
                "description": replay.describe(alike),
                **value(distribution, distribution),
            }
        )
    return found


class _Log:
    def __init__(self) -> None:
        self.rewards: list[float] = []
        self.propensities: list[float] = []
        self.variants: list[int] = []
        self.contexts: list[str] = []
        self.first: str | None = None
        self.last: str | None = None


class _Logged:
    """The decisions evaluated, as arrays."""

    def __init__(self, log: _Log) -> None:
        self.rewards = np.array(log.rewards, dtype=float)
        self.propensities = np.array(log.propensities, dtype=float)
        self.variants = log.variants
        self.contexts = log.contexts
        self.first, self.last = log.first, log.last


def _logged(test: Test, start: datetime | None, end: datetime | None) -> _Logged:
    """The rewarded, not rolled-out decisions of the window, the most recent MAX_DECISIONS."""
    rows = LoggedDecision.objects.filter(test=test, is_global_rollout=False)
    if start is not None:
        rows = rows.filter(decided_at__gte=start)
    if end is not None:
        rows = rows.filter(decided_at__lt=end)
    fields = ("decided_at", "request_id", "variant_id", "propensity", "context")
    newest = rows.order_by("-decided_at", "-id").values_list(*fields).iterator(decision_log.CHUNK)
    log = _Log()
    read = 0
    while read < MAX_DECISIONS and (chunk := list(islice(newest, decision_log.CHUNK))):
        read += len(chunk)
        rewards = decision_log.rewards_of(test, chunk)
        for decided_at, request_id, variant, propensity, context in chunk:
            reward = rewards.get((request_id, variant))
            if reward is None:
                continue
            log.rewards.append(reward[0])
            log.propensities.append(propensity)
            log.variants.append(variant)
            log.contexts.append(context)
            log.last = log.last or iso(decided_at, precise=True)
            log.first = iso(decided_at, precise=True)
    return _Logged(log)


def _contexts(snapshot: snapshots.Snapshot, contexts: list[str]) -> replay.Contexts:
    """The logged contexts as the current model reads them: dense feature vectors over the
    features it knows (bias first; the others are ignored), one per distinct context."""
    index = snapshot.stats.feature_index
    xtx = snapshot.stats.xtx
    dims = 1 if xtx is None else xtx.shape[1]
    position: dict[str, int] = {}
    of_decision = np.array([position.setdefault(c, len(position)) for c in contexts], np.intp)
    distinct = np.zeros((len(position), dims))
    for context, row in position.items():
        vector = policy.feature_vector(policy.encode_context(json.loads(context)), index)
        for feature, number in vector.items():
            if feature < dims:
                distinct[row, feature] = number
    return replay.Contexts(distinct, of_decision)


def _predictions(snapshot: snapshots.Snapshot, contexts: replay.Contexts) -> np.ndarray:
    """The current model's expected reward of each variant in service, per decision (one
    projection per distinct context: contexts repeat)."""
    posterior = snapshot.posterior
    if isinstance(posterior, policy.LinearRegression):
        distinct = posterior.means_at(contexts.distinct)
    else:
        distinct = np.tile(posterior.mean({}), (len(contexts.distinct), 1))
    return distinct[contexts.of_decision]
