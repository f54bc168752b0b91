"""The Redis scripts of a Test, run in this process against a real Redis: what each one writes,
to the number, without a server or HTTP in between."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from redis.crc import key_slot

from bandit.state import decisions, durable, keys, learned, lifecycle, reads, rewards
from core.scripts import ConfigMoved, Guard
from system import config

pytestmark = pytest.mark.usefixtures("in_process")

TTL = {"context_ttl_seconds": 3600, "trail_window_seconds": 3600, "trail_granularity_seconds": 60}
# What the database says of a Test with no rollout and no reward window.
NOTHING = lifecycle.meta_fields(rollout=None, reward_window_seconds=None, default_reward=0.0)


def new_test() -> str:
    test_id = str(uuid.uuid4())
    lifecycle.create_test(test_id)
    return test_id


def decide(test_id: str, request_id: str, variant: int = 0, **overrides: object):
    arguments = {
        "guard": None,
        "variant_id": variant,
        "exploit": True,
        "propensity": 0.5,
        "holdout": False,
        "request_id": request_id,
        "context": {"age": 30, "colour": "red"},
        "learning": '{"sampling":"focused"}',
        "context_keys": ["age", "colour"],
        "features": {'["colour","red"]': 1.0, '["age"]': 30.0},
        **TTL,
        **overrides,
    }
    return decisions.record_decision(test_id, **arguments)


def reward(request_id: str | None, variant: int | None, value: float, **features: float):
    return rewards.Reward(
        variant_id=variant,
        reward=value,
        request_id=request_id,
        features=features,
        context_keys=sorted(features),
    )


def stored(redis, test_id: str, request_id: str) -> str | None:
    return redis.get(keys.context(test_id, request_id))


def test_a_decision_is_stored_counted_and_replayed(in_process):
    test_id = new_test()
    first = decide(test_id, "visit-1", variant=1)
    assert first == decisions.Decision(
        1, is_global_rollout=False, replayed=False, learned_version=None, propensity=0.5
    )
    # The same request id answers the same decision, with the propensity it was chosen with,
    # and counts nothing more.
    assert decide(test_id, "visit-1", variant=0, propensity=0.25) == decisions.Decision(
        1, False, True, None, propensity=0.5
    )
    counters = reads.counters([test_id])[test_id]
    assert counters.predictions == {1: 1}
    assert counters.kinds == {"exploit": 1}
    # What its reward will teach: the variant, the features by vocabulary index, the keys.
    # After a newline: the propensity, and 0 for a decision that is not the holdout's.
    assert stored(in_process, test_id, "visit-1") == '1|1:1.0,2:30.0|["age","colour"]\n0.5 0'
    assert stored(in_process, test_id, "never") is None
    assert in_process.ttl(keys.context(test_id, "visit-1")) > 3500
    # The vocabulary gave each feature an index, and the feature analysis counted the decision.
    vocabulary, analysis = reads.feature_analysis(test_id)
    assert vocabulary == {'["colour","red"]': 1, '["age"]': 2}
    assert analysis == {"p:1:1": 1.0, "p:1:2": 1.0}


def test_every_trail_bucket_expires_after_the_trail_window(in_process):
    """Its expiry is set when a bucket is born (a variant's first decision or reward in it),
    so that a bucket written only by later requests still goes away."""
    test_id = new_test()
    window = TTL["trail_window_seconds"] + TTL["trail_granularity_seconds"]
    decide(test_id, "visit-1", variant=1)
    decide(test_id, "visit-2", variant=0)
    rewards.record_rewards(test_id, [reward("visit-1", None, 1.0)], guard=None, **TTL)
    rewards.record_rewards(test_id, [reward("visit-2", None, 0.0)], guard=None, **TTL)
    # The buckets of both kinds that these requests can have written: this one and the last.
    now, granularity = time.time(), TTL["trail_granularity_seconds"]
    starts = {keys.bucket(now, granularity), keys.bucket(now - granularity, granularity)}
    candidates = [keys.trail(test_id, kind, start) for kind in ("tp", "tu") for start in starts]
    trail_keys = [key for key in candidates if in_process.exists(key)]
    assert 2 <= len(trail_keys) <= 4  # a bucket of each kind, or two across a bucket's end
    for trail_key in trail_keys:
        assert window - 5 <= in_process.ttl(trail_key) <= window


def test_a_rollout_wins_over_the_sampled_variant(in_process):
    test_id = new_test()
    lifecycle.set_rollout(test_id, 2)
    assert decide(test_id, "visit-1", variant=0) == decisions.Decision(
        2, True, False, None, propensity=1.0
    )
    assert reads.counters([test_id])[test_id].kinds == {"rollout": 1}
    lifecycle.set_rollout(test_id, None)
    assert decide(test_id, "visit-2", variant=0) == decisions.Decision(
        0, False, False, None, propensity=0.5
    )


def test_a_stale_configuration_writes_nothing(in_process):
    test_id = new_test()
    published = config.current().version + 1
    config.publish_version(published)
    stale = Guard(config.guard(config.known()).key_near, published - 1)
    with pytest.raises(ConfigMoved) as moved:
        decide(test_id, "visit-1", guard=stale)
    assert moved.value.published == published
    with pytest.raises(ConfigMoved):
        rewards.record_rewards(test_id, [reward(None, 0, 1.0)], guard=stale, **TTL)
    assert reads.counters([test_id])[test_id].total_predictions == 0
    assert reads.counters([test_id])[test_id].total_updates == 0
    assert stored(in_process, test_id, "visit-1") is None
    current = Guard(stale.key_near, published)
    assert decide(test_id, "visit-1", guard=current).variant_id == 0


def test_a_missing_test_is_told_apart(in_process):
    with pytest.raises(keys.TestMissing):
        decide(str(uuid.uuid4()), "visit-1")
    with pytest.raises(keys.TestMissing):
        rewards.record_rewards(str(uuid.uuid4()), [reward(None, 0, 1.0)], guard=None, **TTL)


def test_rewards_add_exact_sufficient_statistics(in_process):
    test_id = new_test()
    decide(test_id, "visit-1", variant=1)
    outcomes = rewards.record_rewards(
        test_id,
        [
            reward("visit-1", 1, 2.0),  # teaches what its decision stored: red, age 30
            reward(None, 1, 0.5, **{'["age"]': 10.0}),
            reward(None, 0, 1.0),
        ],
        guard=None,
        **TTL,
    )
    applied = rewards.APPLIED
    assert outcomes == [rewards.Outcome(applied, 1), rewards.Outcome(applied, 1)] + [
        rewards.Outcome(applied, 0)
    ]
    learn = {k: float(v) for k, v in in_process.hgetall(keys.learn(test_id)).items() if k != "lu"}
    # Feature indexes: the decision gave red 1 and age 2.
    assert learn == {
        "u": 3.0,
        "u:1": 2.0,
        "s:1": 2.5,
        "q:1": 4.25,
        "u:0": 1.0,
        "s:0": 1.0,
        "q:0": 1.0,
        "nb": 2.0,  # 2.0 and 0.5 are not 0/1 rewards
        "n:1:1": 1.0,  # red is a category: counted, and its rewards summed
        "y:1:1": 2.0,
        "c:1:2": 40.0,
        "b:1:2": 65.0,  # 30 * 2.0 + 10 * 0.5
        "A:1:2:2": 1000.0,  # 30^2 + 10^2
        "A:1:1:2": 30.0,
    }
    # The policy reads them back as the regression's sums: bias, red, age for variant 1.
    stats = learned.load_learned(test_id, [0, 1]).stats
    assert stats.xtx is not None and stats.xty is not None
    assert stats.xtx[1].tolist() == [[2, 1, 40], [1, 1, 30], [40, 30, 1000]]
    assert stats.xty[1].tolist() == [2.5, 2, 65]
    # The stored context is spent: a second reward for the request is a duplicate.
    assert stored(in_process, test_id, "visit-1") == "1|r\n0.5 0"  # it keeps its propensity
    again = rewards.record_rewards(test_id, [reward("visit-1", None, 2.0)], guard=None, **TTL)
    assert again == [rewards.Outcome(rewards.DUPLICATE, 1)]
    assert float(in_process.hget(keys.learn(test_id), "u")) == 3.0


def test_a_reward_finds_its_decision_in_the_same_round_trip(in_process):
    """Every outcome of an entry that names a request id, decided by the script itself."""
    test_id = new_test()
    decide(test_id, "served-1", variant=1)
    decide(test_id, "served-2", variant=0)
    decide(test_id, "own-context", variant=1)
    # A decision stored by an earlier Scout, its context as a JSON object.
    in_process.set(keys.context(test_id, "earlier"), '0|{"colour":"red"}', ex=3600)
    outcomes = rewards.record_rewards(
        test_id,
        [
            reward("served-1", 0, 1.0),  # names another variant than the one served
            reward("served-2", None, 1.0),  # the variant served is taken
            reward("gone", None, 1.0),  # no decision, no context
            rewards.Reward(None, 1.0, "gone-2", {'["age"]': 5.0}, ["age"], inline=True),
            rewards.Reward(0, 1.0, "gone-3", {'["age"]': 5.0}, ["age"], inline=True),
            rewards.Reward(
                None, 0.0, "own-context", {'["age"]': 7.0}, ["age"], use_stored_context=False
            ),
            reward("earlier", None, 1.0),
        ],
        guard=None,
        **TTL,
    )
    assert outcomes == [
        rewards.Outcome(rewards.OTHER_VARIANT, 1),
        rewards.Outcome(rewards.APPLIED, 0),
        rewards.Outcome(rewards.GONE_WITHOUT_CONTEXT, -1),
        rewards.Outcome(rewards.GONE_WITHOUT_VARIANT, -1),
        rewards.Outcome(rewards.APPLIED_INLINE, 0),
        rewards.Outcome(rewards.APPLIED, 1),
        rewards.Outcome(rewards.APPLIED, 0),
    ]
    # Refused entries leave their decision as it was; counted ones spend it.
    assert stored(in_process, test_id, "served-1").startswith("1|1:1.0")
    assert stored(in_process, test_id, "served-2") == "0|r\n0.5 0"
    assert stored(in_process, test_id, "gone") is None
    assert stored(in_process, test_id, "gone-2") is None
    assert stored(in_process, test_id, "gone-3") == "0|r"  # a retry is then a duplicate
    assert stored(in_process, test_id, "earlier") == "0|r"
    learn = {k: float(v) for k, v in in_process.hgetall(keys.learn(test_id)).items() if k != "lu"}
    # Variant 0: served-2 (red, age 30), gone-3 (age 5), earlier (no features); variant 1:
    # own-context with its own age 7 and a reward of 0.
    assert learn["u:0"] == 3.0 and learn["u:1"] == 1.0
    assert learn["n:0:1"] == 1.0  # red, once
    assert learn["c:0:2"] == 35.0  # age 30 + 5
    assert learn["b:0:2"] == 35.0
    assert learn["c:1:2"] == 7.0 and "b:1:2" not in learn  # a reward of 0 adds nothing
    assert "n:1:1" not in learn  # own-context's stored red was not used
    trail = reads.trails(test_id, window_seconds=3600, granularity_seconds=60)[1]
    assert trail[0].counts == {0: 3, 1: 1}


def test_the_policy_reads_the_sums_back_as_arrays(in_process):
    test_id = new_test()
    decide(test_id, "visit-1", variant=1, features={'["colour","red"]': 1.0, '["age"]': 3.0})
    rewards.record_rewards(
        test_id,
        [reward("visit-1", 1, 1.0)],
        guard=None,
        **TTL,
    )
    loaded = learned.load_learned(test_id, [0, 1])
    assert loaded.version == "1"
    assert loaded.rollout is None
    assert list(loaded.stats.updates) == [0.0, 1.0]
    assert loaded.stats.xtx is not None and loaded.stats.xty is not None
    # Row 1 (variant 1): bias, red, age; X^T X is symmetric and X^T y the features times 1.
    assert loaded.stats.xtx[1].tolist() == [[1, 1, 3], [1, 1, 3], [3, 3, 9]]
    assert loaded.stats.xty[1].tolist() == [1, 1, 3]
    assert loaded.stats.xtx[0].tolist() == [[0, 0, 0]] * 3
    assert learned.learned_version(test_id) == "1"
    # Every decision tells the reward count, so a worker knows when its snapshot is behind.
    assert decide(test_id, "visit-2").learned_version == "1"


def test_the_regression_sums_are_those_of_the_rewards_counted(in_process):
    """Whatever the mix of categories, numbers at 0, at 1 and elsewhere, rewards of 0, 1 and
    others, one by one or in batches: the policy reads back X^T X and X^T y as computed
    directly from the decisions' contexts and their rewards."""
    rng = np.random.default_rng(5)
    test_id = new_test()
    rows: dict[int, list[tuple[dict[str, float], float]]] = {0: [], 1: []}
    pending: list[rewards.Reward] = []
    for n in range(80):
        features = {'["colour","red"]': 1.0} if rng.uniform() < 0.5 else {'["colour","blue"]': 1.0}
        if rng.uniform() < 0.7:
            features['["age"]'] = float(rng.choice([0.0, 1.0, 2.5, 30.0]))
        if rng.uniform() < 0.5:
            features['["score"]'] = float(rng.normal())
        variant, value = n % 2, float(rng.choice([0.0, 1.0, 0.5, -2.0]))
        decide(test_id, f"visit-{n}", variant=variant, features=features)
        rows[variant].append((features, value))
        pending.append(reward(f"visit-{n}", None, value))
        if len(pending) == int(rng.integers(1, 6)):  # batches of one to five
            rewards.record_rewards(test_id, pending, guard=None, **TTL)
            pending = []
    rewards.record_rewards(test_id, pending, guard=None, **TTL)
    vocabulary = reads.feature_analysis(test_id)[0]
    stats = learned.load_learned(test_id, [0, 1]).stats
    assert stats.xtx is not None and stats.xty is not None
    for variant, counted in rows.items():
        x = np.zeros((len(counted), len(vocabulary) + 1))
        x[:, 0] = 1.0
        for row, (features, _) in enumerate(counted):
            for name, value in features.items():
                x[row, vocabulary[name]] = value
        y = np.array([value for _, value in counted])
        assert np.allclose(stats.xtx[variant], x.T @ x)
        assert np.allclose(stats.xty[variant], x.T @ y)
        assert stats.updates[variant] == len(counted)
        assert np.isclose(stats.reward_sq_sum[variant], y @ y)


def test_a_context_whose_rewards_were_all_zero_so_far_is_read_back(in_process):
    """A reward of 0 writes no sums of rewards: the policy still gets its arrays."""
    test_id = new_test()
    decide(test_id, "visit-1", variant=1, features={'["colour","red"]': 1.0})
    rewards.record_rewards(test_id, [reward("visit-1", None, 0.0)], guard=None, **TTL)
    stats = learned.load_learned(test_id, [0, 1]).stats
    assert stats.xtx is not None and stats.xty is not None
    assert stats.xtx[1].tolist() == [[1, 1], [1, 1]]
    assert stats.xty.tolist() == [[0, 0], [0, 0]]


def test_sums_of_the_earlier_layout_add_up_with_the_new_one(in_process):
    """An earlier Scout kept a category's sums as any number's (c, b, A and the analysis' u
    and s); rewards counted since add to them, and every reader sees the total."""
    test_id = new_test()
    decide(test_id, "visit-1", variant=1, features={'["colour","red"]': 1.0, '["age"]': 3.0})
    in_process.hset(keys.vocab(test_id), '["colour","red"]', 1)
    # Two earlier rewards of variant 1, both red at age 2, rewards 1 and 0.
    earlier_learn = {"u": 2, "u:1": 2, "s:1": 1, "q:1": 1, "c:1:1": 2, "b:1:1": 1, "A:1:1:1": 2}
    earlier_learn |= {"c:1:2": 4, "b:1:2": 2, "A:1:2:2": 8, "A:1:1:2": 4}
    in_process.hset(keys.learn(test_id), mapping=earlier_learn)
    in_process.hset(keys.analysis(test_id), mapping={"u:1:1": 2, "s:1:1": 1, "u:1:2": 2})
    in_process.hset(keys.analysis(test_id), mapping={"s:1:2": 1})
    rewards.record_rewards(test_id, [reward("visit-1", 1, 1.0)], guard=None, **TTL)
    stats = learned.load_learned(test_id, [0, 1]).stats
    assert stats.xtx is not None and stats.xty is not None
    assert stats.xtx[1].tolist() == [[3, 3, 7], [3, 3, 7], [7, 7, 17]]
    assert stats.xty[1].tolist() == [2, 2, 5]
    analysis = reads.feature_analysis(test_id)[1]
    assert (analysis["u:1:1"], analysis["s:1:1"]) == (3, 2)
    assert (analysis["u:1:2"], analysis["s:1:2"]) == (3, 2)


def test_a_full_vocabulary_counts_what_it_ignores(in_process, settings):
    settings.SCOUT_MAX_FEATURES = 1
    test_id = new_test()
    decide(test_id, "visit-1")
    assert reads.feature_analysis(test_id)[0] == {'["colour","red"]': 1}
    assert reads.counters([test_id])[test_id].overflow == 1


def test_a_lost_test_is_refilled_once_from_its_export(in_process):
    test_id = new_test()
    decide(test_id, "visit-1", variant=1)
    rewards.record_rewards(test_id, [reward("visit-1", 1, 1.0)], guard=None, **TTL)
    exported = durable.export_tests([test_id])[test_id]
    assert durable.totals([test_id]) == {test_id: (1, 1)}
    lifecycle.delete_test(test_id)
    assert durable.missing([test_id]) == {test_id}
    assert durable.totals([test_id]) == {test_id: None}
    # The database's word on the rollout and the reward window wins over the checkpoint's.
    in_database = lifecycle.meta_fields(rollout=0, reward_window_seconds=30, default_reward=0.5)
    assert durable.restore_test(test_id, exported, in_database)
    assert not durable.restore_test(test_id, {}, NOTHING)  # already there: left alone
    assert durable.totals([test_id]) == {test_id: (1, 1)}
    assert learned.load_learned(test_id, [0, 1]).rollout == 0
    meta = in_process.hgetall(keys.meta(test_id))
    assert meta["rw"] == "30" and float(meta["dr"]) == 0.5
    assert reads.counters([test_id])[test_id].reward_sums == {1: 1.0}


def test_trails_keep_one_bucket_per_variant_and_time(in_process):
    test_id = new_test()
    decide(test_id, "a", variant=0)
    decide(test_id, "b", variant=0)
    decide(test_id, "c", variant=1)
    rewards.record_rewards(test_id, [reward("a", 0, 1.0, x=1.0)], guard=None, **TTL)
    predictions, rewarded = reads.trails(test_id, window_seconds=3600, granularity_seconds=60)
    assert len(predictions) == 1 and predictions[0].counts == {0: 2, 1: 1}
    assert predictions[0].context_keys == {0: ["age", "colour"], 1: ["age", "colour"]}
    assert len(rewarded) == 1 and rewarded[0].counts == {0: 1}
    assert rewarded[0].reward_sums == {0: 1.0}
    assert lifecycle.delete_test(test_id) >= 6  # meta, stats, learn, vocab, fa, contexts...
    assert reads.trails(test_id, window_seconds=3600, granularity_seconds=60) == ([], [])


def test_on_a_cluster_the_version_is_kept_in_the_slot_of_each_key(in_process, settings):
    """A script may touch keys of one slot only, so on a Redis Cluster each hot-path script
    checks the copy of the version kept in its own slot, and publishing writes every copy."""
    settings.SCOUT_REDIS_CLUSTER = True
    for name in (keys.meta(str(uuid.uuid4())), keys.stats(str(uuid.uuid4())), "a", "b{x}c"):
        near = config.version_key_near(name)
        assert key_slot(near.encode()) == key_slot(name.encode())
    tags = {config.version_key_near(f"k{i}") for i in range(2000)}
    assert len(tags) > 1000  # one copy per slot, not one key for all
    settings.SCOUT_REDIS_CLUSTER = False
    assert config.version_key_near("a") == config.version_key_near("b")


def test_recent_sums_weigh_each_reward_by_how_many_came_after_it(in_process):
    """A Test that forgets on a change keeps each variant's recent sums in the reward script,
    a batch's rewards in the order given; rewards with a context do not add to them."""
    test_id = new_test()
    decay = 0.9
    values = [1.0, 0.0, 1.0, 1.0]
    batches = [[reward(None, 0, value) for value in values[:2]], [reward(None, 0, values[2])]]
    batches.append([reward(None, 0, values[3]), reward(None, 1, 0.5, **{'["age"]': 3.0})])
    for batch in batches:
        rewards.record_rewards(test_id, batch, guard=None, recent_decay=decay, **TTL)
    learn = {k: float(v) for k, v in in_process.hgetall(keys.learn(test_id)).items()}
    ages = range(len(values) - 1, -1, -1)  # the first reward has three after it
    assert learn["ru:0"] == pytest.approx(sum(decay**age for age in ages), rel=1e-12)
    assert learn["rs:0"] == pytest.approx(
        sum(decay**age * y for age, y in zip(ages, values, strict=True)), rel=1e-12
    )
    assert learn["rq:0"] == learn["rs:0"]  # 0/1 rewards are their own squares
    assert learn["rw:0"] == pytest.approx(sum(decay ** (2 * age) for age in ages), rel=1e-12)
    assert not any(field.endswith(":1") and field[0] == "r" for field in learn)
    recent = learned.load_learned(test_id, [0, 1]).stats.recent
    assert recent is not None and recent.weight[0] == learn["ru:0"] and recent.weight[1] == 0
    # Without a decay (a Test that never forgets) nothing but the all-time sums is written.
    other = new_test()
    rewards.record_rewards(other, [reward(None, 0, 1.0)], guard=None, **TTL)
    assert set(in_process.hgetall(keys.learn(other))) == {"u", "u:0", "s:0", "q:0", "lu"}
    assert learned.load_learned(other, [0, 1]).stats.recent is None


def test_a_variant_forgets_once_what_came_before_its_recent_rewards(in_process):
    test_id = new_test()
    ones = [reward(None, 0, 1.0) for _ in range(40)]
    zeros = [reward(None, 0, 0.0) for _ in range(20)]
    rewards.record_rewards(test_id, ones + zeros, guard=None, recent_decay=0.95, **TTL)
    rewards.record_rewards(test_id, [reward(None, 1, 1.0)], guard=None, recent_decay=0.95, **TTL)
    before = learned.load_learned(test_id, [0, 1]).stats
    assert before.recent is not None and before.recent.changes.tolist() == [0, 0]
    # Two workers saw the same change: the first acts on it, the second finds it acted on.
    assert rewards.forget(test_id, [(0, 0)]) == 1
    assert rewards.forget(test_id, [(0, 0)]) == 0
    after = learned.load_learned(test_id, [0, 1]).stats
    assert after.recent is not None and after.recent.changes.tolist() == [1, 0]
    # The model's evidence of variant 0 is its recent rewards alone; variant 1 is untouched.
    assert after.updates[0] == pytest.approx(before.recent.weight[0], rel=1e-12)
    assert after.reward_sum[0] == pytest.approx(before.recent.reward_sum[0], rel=1e-12)
    assert after.reward_sq_sum[0] == pytest.approx(before.recent.reward_sq_sum[0], rel=1e-12)
    assert (after.updates[1], after.reward_sum[1]) == (1.0, 1.0)
    assert after.total_updates == 61  # all of them count for the uniform start
    # What was counted stays counted; the details show what the model uses beside it.
    counters = reads.counters([test_id])[test_id]
    assert counters.updates == {0: 60, 1: 1} and counters.reward_sums == {0: 40.0, 1: 1.0}
    assert counters.forgotten[0] == pytest.approx(60 - before.recent.weight[0], rel=1e-12)
    assert counters.changes == {0: 1} and counters.last_change_at is not None
    # Rewards after the change add to the evidence in full, and a checkpoint keeps it all.
    rewards.record_rewards(test_id, [reward(None, 0, 0.0)], guard=None, recent_decay=0.95, **TTL)
    later = learned.load_learned(test_id, [0, 1]).stats
    assert later.updates[0] == pytest.approx(after.updates[0] + 1, rel=1e-12)
    exported = durable.export_tests([test_id])[test_id]
    lifecycle.delete_test(test_id)
    assert durable.restore_test(test_id, exported, NOTHING)
    restored = learned.load_learned(test_id, [0, 1]).stats
    assert restored.updates.tolist() == later.updates.tolist()
    assert restored.recent is not None and restored.recent.changes.tolist() == [1, 0]


def test_recent_sums_are_exact_whichever_worker_counts(in_process):
    """Eight threads counting batches at once: the recent sums are those of one sequence of
    all the rewards (here all 1, so every order gives the same sums)."""
    from concurrent.futures import ThreadPoolExecutor

    test_id, decay, threads, batches, size = new_test(), 0.99, 8, 20, 10

    def count_batches(_: int) -> None:
        for _ in range(batches):
            batch = [reward(None, 0, 1.0) for _ in range(size)]
            rewards.record_rewards(test_id, batch, guard=None, recent_decay=decay, **TTL)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(count_batches, range(threads)))
    total = threads * batches * size
    learn = {k: float(v) for k, v in in_process.hgetall(keys.learn(test_id)).items()}
    assert learn["u:0"] == total and learn["s:0"] == total
    assert learn["ru:0"] == pytest.approx((1 - decay**total) / (1 - decay), rel=1e-12)
    assert learn["rs:0"] == learn["ru:0"]
    assert learn["rw:0"] == pytest.approx((1 - decay ** (2 * total)) / (1 - decay**2), rel=1e-12)
