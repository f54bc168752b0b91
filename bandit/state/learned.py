"""Reading a Test's sufficient statistics into the arrays the policy works on."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import cast

import numpy as np

from bandit.policy import LearnedStats, Recent
from bandit.state import keys
from core.redis_client import connection, guarded


@dataclass(frozen=True)
class Learned:
    stats: LearnedStats
    version: str | None  # changes whenever a reward is counted
    rollout: int | None  # the rolled-out variant when this was read


@guarded
def learned_version(test_id: str) -> str | None:
    """A cheap token that changes whenever a reward is counted (the reward total)."""
    # bytes: the connection does not decode responses (redis-py's hints also allow str).
    value = cast(bytes | None, connection().hget(keys.learn(test_id), "u"))
    return value.decode() if value is not None else None


# The learn hash's fields that the policy reads (see keys), by kind: per variant its rewards,
# reward sum and sum of squares, what of them it forgot, its recent sums and the changes
# detected; per variant and feature the sums of the regression (kinds from C on).
_KINDS = ("u", "s", "q", "fu", "fs", "fq", "ru", "rs", "rq", "rw", "k", "c", "b", "n", "y", "A")
U, S, Q, FU, FS, FQ, RU, RS, RQ, RW, K, C, B, N, Y, A = range(len(_KINDS))
_CODE = {kind: code for code, kind in enumerate(_KINDS)}


@functools.lru_cache(maxsize=16_384)
def _field(name: bytes) -> tuple[int, int, int, int] | None:
    """A learn field's kind (its code), variant and feature indexes (0 where it has none), or
    None for one the policy does not read. Parsed once per name: the same names come back at
    every rebuild and for every Test (a name holds no Test id), and a rebuild is on a
    decision's path."""
    kind, _, rest = name.decode().partition(":")
    if not rest or kind not in _CODE:
        return None
    numbers = [int(part) for part in rest.split(":")] + [0, 0]
    return _CODE[kind], numbers[0], numbers[1], numbers[2]


@guarded
def load_learned(test_id: str, variant_ids: list[int]) -> Learned:
    """Read a Test's sufficient statistics into arrays for the policy, and its rollout (one
    round trip)."""
    pipe = connection().pipeline(transaction=False)
    pipe.hgetall(keys.learn(test_id))
    pipe.hgetall(keys.vocab(test_id))
    pipe.hget(keys.meta(test_id), "rollout")
    raw_learn, raw_vocab, rollout = pipe.execute()
    stats = LearnedStats.empty(variant_ids)
    stats.non_binary_rewards = int(float(raw_learn.get(b"nb", 0)))
    dims = _fill(stats, raw_learn)
    stats.feature_index = {
        key.decode(): int(value) for key, value in raw_vocab.items() if int(value) < dims
    }
    version = raw_learn.get(b"u")
    return Learned(
        stats,
        version.decode() if version is not None else None,
        int(rollout) if rollout is not None else None,
    )


def _fill(stats: LearnedStats, raw_learn: dict[bytes, bytes]) -> int:
    """Put the learn hash's sums into `stats` (with X^T X and X^T y when a context was learned
    from); answer the regression's dimension (1: the bias alone). Vectorised: a Test of many
    variants and features holds thousands of fields."""
    parsed, values = [], []
    for name, value in raw_learn.items():
        field = _field(name)
        if field is not None:
            parsed.append(field)
            values.append(value)
    if not parsed:
        return 1
    table = np.array(parsed, dtype=np.int64)
    amounts = np.array(values, dtype=float)
    # Each field's row among the Test's variants; fields of variants it no longer has are left.
    ids = np.array(stats.variant_ids, dtype=np.int64)
    order = np.argsort(ids)
    at = np.minimum(np.searchsorted(ids[order], table[:, 1]), len(ids) - 1)
    known = ids[order][at] == table[:, 1]
    kind, row = table[known, 0], order[at[known]]
    i, j, amounts = table[known, 2], table[known, 3], amounts[known]
    for code, target in ((U, stats.updates), (S, stats.reward_sum), (Q, stats.reward_sq_sum)):
        chosen = kind == code
        target[row[chosen]] = amounts[chosen]
    if ((kind >= RU) & (kind <= K)).any():
        recent = stats.recent = Recent.empty(len(stats.variant_ids))
        for code, target in (
            (RU, recent.weight),
            (RS, recent.reward_sum),
            (RQ, recent.reward_sq_sum),
            (RW, recent.weight_sq),
            (K, recent.changes),
        ):
            chosen = kind == code
            target[row[chosen]] = amounts[chosen]
    # The model's evidence: all of it, less what a detected change made it forget.
    for code, target in ((FU, stats.updates), (FS, stats.reward_sum), (FQ, stats.reward_sq_sum)):
        chosen = kind == code
        np.subtract.at(target, row[chosen], amounts[chosen])
    stats.forgotten_updates = float(amounts[kind == FU].sum())
    regression = kind >= C
    if not (regression & (kind != A)).any():
        return 1
    dims = int(max(i[regression].max(), j[regression].max())) + 1
    stats.xtx, stats.xty = _regression_sums(stats, kind, row, i, j, amounts, dims)
    return dims


def _regression_sums(
    stats: LearnedStats,
    kind: np.ndarray,
    row: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    amounts: np.ndarray,
    dims: int,
) -> tuple[np.ndarray, np.ndarray]:
    """X^T X and X^T y per variant over [bias, features], each cell the sum of the fields that
    add to it. A feature's rewards at value 1 are only counted (n) and summed (y), see keys:
    each adds 1 to its sums of x and of x * x, and its reward to its sum of x * reward."""
    count = len(stats.variant_ids)
    bias = np.zeros_like(i)
    cells, weights = [], []

    def add(chosen: np.ndarray, first: np.ndarray, second: np.ndarray) -> None:
        cells.append((row[chosen] * dims + first[chosen]) * dims + second[chosen])
        weights.append(amounts[chosen])

    pair, counted = kind == A, kind == N
    add(pair, i, j)
    add(pair & (i != j), j, i)  # X^T X is symmetric
    summed = (kind == C) | counted  # both add to the sum of x
    add(summed, bias, i)
    add(summed, i, bias)
    add(counted, i, i)
    # (bincount answers integers when it is given no cells at all: hence the float.)
    xtx = np.bincount(
        np.concatenate(cells), np.concatenate(weights), minlength=count * dims * dims
    ).astype(float)
    xtx = xtx.reshape(count, dims, dims)
    xtx[:, 0, 0] += stats.updates
    product = (kind == B) | (kind == Y)
    xty = np.bincount(row[product] * dims + i[product], amounts[product], minlength=count * dims)
    xty = xty.astype(float).reshape(count, dims)
    xty[:, 0] += stats.reward_sum
    return xtx, xty
