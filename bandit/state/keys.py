"""The Redis keys of a Test. Every key of a Test shares the hash tag `{<test id>}`, so a Redis
Cluster keeps a Test in one slot and its scripts stay atomic. Keys (P is SCOUT_REDIS_KEY_PREFIX,
T the tag):

- `P:T:meta`        hash: marks that the Test exists; `rollout` holds a rolled-out variant id,
                    `dv` the version of its variants in service (absent: 0), `ns` is there
                    while the Test waits for its scheduled start (its rewards count nothing).
- `P:T:stats`       hash of display counters: `n` decisions, `p:<v>` decisions per variant,
                    `lp` time of the last decision, `exploit`/`explore`/`rollout` decision kinds,
                    `overflow` features ignored because the vocabulary was full, `o:<s>` the
                    rewards sent whose outcome was status s of reward.lua (bandit.health).
- `P:T:learn`       hash of additive sufficient statistics, written only by rewards:
                    `u` rewards, `lu` time of the last reward, per variant `u:<v>` rewards,
                    `s:<v>` reward sum, `q:<v>` sum of squares, and for contexts, per feature
                    index i: a feature at value 1 (every category) is counted in `n:<v>:<i>`
                    with its reward sum in `y:<v>:<i>`; at any other value it adds to
                    `c:<v>:<i>` (sum of x_i), `b:<v>:<i>` (sum of x_i * reward) and
                    `A:<v>:<i>:<i>`; `A:<v>:<i>:<j>` is the sum of x_i * x_j (i < j) at any
                    value. So the regression's sum of x_i is c + n, of x_i^2 is A(i,i) + n, of
                    x_i * reward is b + y: two writes for a category instead of five. `nb`
                    counts rewards other than 0 and 1. A sum is written only when it moves.
                    A Test that forgets on a change (bandit.policy.ON_CHANGE) also keeps, per
                    variant, its recent sums `ru:<v>` (weights), `rs:<v>`, `rq:<v>` (weighted
                    rewards and squares) and `rw:<v>` (squared weights); when a change is
                    detected, what the model stops using goes to `fu:<v>`, `fs:<v>`, `fq:<v>`
                    (the model's evidence is `u` less `fu`, and so on), `k:<v>` counts the
                    changes and `lk` holds the time of the last.
- `P:T:vocab`       hash: feature name -> index (1-based; 0 is the bias), at most
                    SCOUT_MAX_FEATURES entries.
- `P:T:fa`          hash: per variant and feature index, decisions `p:<v>:<i>`; rewards
                    `u:<v>:<i>` and reward sums `s:<v>:<i>` of a feature at a value other than 1
                    (those at 1 are learn's `n` and `y`): the context feature analysis.
- `P:T:c:<request>` string `<variant>|<index>:<value>,...|<context keys as JSON>` (the
                    decision's features by vocabulary index) for the context TTL, or
                    `<variant>|r` once its reward was counted (a later reward is a duplicate);
                    either ends with a newline, the propensity, a space and how the variant
                    was chosen: 1 by the holdout, 0 by the bandit, g by a global rollout
                    (an earlier Scout stored neither).
                    A ranked decision (fetch_ranked_variants) starts with
                    `~<variants, best first>;<variants rewarded>` instead of `<variant>`, and
                    keeps its features: each variant of the ranking counts one reward.
- `P:T:due`         sorted set of the decisions that wait for their reward (a Test with a
                    reward window, bandit.windows): member `<variant>|<request>`, score the
                    time its window closes. A decision leaves it when its reward or the
                    default is counted; a decision counted with the default is stored as
                    `<variant>|d` (a later reward is late). `meta` holds the window in `rw`
                    (seconds) and the default reward in `dr`.
- `P:T:u:<unit>`     string: the variant a unit is assigned (a Test with sticky assignment)
                    and, after a newline, the propensity and holdout flag it was assigned with,
                    expiring after the Test's `sticky_seconds`; `P:T:units` sorted set of the
                    units assigned by expiry, which bounds them (SCOUT_MAX_STICKY_UNITS).
                    `meta` holds the seconds in `st` when assignment is on, and the retired
                    variants in `ret` (",1,5,"), which release their units.
- `P:T:log`         stream: the Test's decisions and rewards on their way to the decision
                    log in the database (bandit.state.log), at most
                    SCOUT_DECISION_LOG_BACKLOG entries (roughly: the oldest go first).
- `P:T:tp:<bucket>` and `P:T:tu:<bucket>`: the prediction and reward trails, one hash per time
                    bucket, expiring after the Test's trail window.

One key belongs to no Test: `P:log-appended`, the set of Tests whose streams workers appended
to since the worker that moves the log last took it (bandit.state.log.share_appended).

The meta, stats, learn, vocab and fa hashes (`DURABLE`) are checkpointed to the database
(bandit.checkpoints) and written back by `durable.restore_test` when Redis lost them.
"""

from __future__ import annotations

from core.redis_client import key

# The hashes that hold what a Test learned and counted. Contexts and trails are left out: they
# expire anyway, and copying them would cost more than they are worth.
DURABLE = ("meta", "stats", "learn", "vocab", "fa")


class DefinitionMoved(Exception):
    """The Test's variants changed since the worker read them; the script wrote nothing."""


class NotStarted(Exception):
    """The Test waits for its scheduled start: the reward script counted nothing."""


class TestMissing(Exception):
    """Redis holds no state for this Test (deleted, or Redis lost its data)."""

    __test__ = False  # not a pytest test class


def tag(test_id: str) -> str:
    return key(f"{{{test_id}}}")


def log_appended() -> str:
    return key("log-appended")


def meta(test_id: str) -> str:
    return f"{tag(test_id)}:meta"


def stats(test_id: str) -> str:
    return f"{tag(test_id)}:stats"


def learn(test_id: str) -> str:
    return f"{tag(test_id)}:learn"


def vocab(test_id: str) -> str:
    return f"{tag(test_id)}:vocab"


def analysis(test_id: str) -> str:
    return f"{tag(test_id)}:fa"


def durable(test_id: str, name: str) -> str:
    """One of the DURABLE hashes."""
    return f"{tag(test_id)}:{name}"


def context(test_id: str, request_id: str) -> str:
    return f"{tag(test_id)}:c:{request_id}"


def due(test_id: str) -> str:
    return f"{tag(test_id)}:due"


def unit(test_id: str, unit_id: str) -> str:
    return f"{tag(test_id)}:u:{unit_id}"


def units(test_id: str) -> str:
    return f"{tag(test_id)}:units"


def log(test_id: str) -> str:
    return f"{tag(test_id)}:log"


def trail(test_id: str, kind: str, bucket: int) -> str:
    """`kind` is `tp` (predictions) or `tu` (rewards); `bucket` the bucket's start."""
    return f"{tag(test_id)}:{kind}:{bucket}"


def bucket(now: float, granularity: int) -> int:
    """The start (epoch seconds) of the trail bucket that holds `now`."""
    return int(now // granularity) * granularity
