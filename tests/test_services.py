"""The Test domain's use cases and read side, called in this process on the test database and
a real Redis: create, decide, reward, roll out, delete, and what the details then say."""

from __future__ import annotations

import time

import pytest

from bandit import changes, checkpoints, defaults, selectors, services, snapshots
from bandit.models import Test
from bandit.services import EntryRefused, RewardInput
from bandit.state import keys, reads, rewards
from core.errors import InvalidInput, NotFound
from system import config
from system.audit import Actor
from system.models import AuditEntry

pytestmark = pytest.mark.usefixtures("in_process")

SETTINGS = defaults.TestSettings(
    trail_time_window_minutes=60, trail_bucket_granularity_seconds=60, minimum_update_requests=0
)
OPERATOR = Actor("operator", "127.0.0.1")
TTL = {"context_ttl_seconds": 3600, "trail_window_seconds": 3600, "trail_granularity_seconds": 60}


def create(**overrides: object) -> Test:
    arguments = {
        "name": "Checkout button",
        "variants": {0: "Blue", 1: "Green"},
        "test_settings": SETTINGS,
        "actor": OPERATOR,
        **overrides,
    }
    return services.create_test(**arguments)  # type: ignore[arg-type]


def entry(index: int, reward: float, **fields: object) -> RewardInput:
    values: dict[str, object] = {
        "variant": None,
        "by_label": False,
        "request_id": None,
        "context": {},
        "inline": False,
        **fields,
    }
    return RewardInput(index=index, reward=reward, **values)  # type: ignore[arg-type]


def decide(test: Test, request_id: str, **context: object) -> services.Recommendation:
    return services.recommend(
        str(test.id), context=context, request_id=request_id, settings_in_force=config.known()
    )


def reward(test: Test, *entries: RewardInput | EntryRefused) -> services.RewardReport:
    return services.record_rewards(str(test.id), entries, settings_in_force=config.known())


def test_create_stores_the_definition_marks_redis_and_audits(in_process):
    test = create(variants={1: "Green", 0: "Blue"})
    assert test.variants == {"0": "Blue", "1": "Green"}
    assert in_process.exists(keys.meta(str(test.id)))
    entry = AuditEntry.objects.get(action="test_created", target=str(test.id))
    assert (entry.actor, entry.address) == ("operator", "127.0.0.1")
    assert entry.details == {"name": "Checkout button"}


def test_a_decision_is_stored_under_its_request_id_and_rewarded_by_it(in_process):
    test = create()
    chosen = decide(test, "visit-1", device="mobile")
    assert chosen.request_id == "visit-1" and chosen.variant_id in (0, 1)
    assert not chosen.degraded and not chosen.is_global_rollout
    assert decide(test, "visit-1", device="mobile").variant_id == chosen.variant_id  # a replay
    report = reward(test, entry(0, 1.0, request_id="visit-1"))
    assert (report.processed, report.errors, report.duplicates) == (1, [], [])
    again = reward(test, entry(0, 1.0, request_id="visit-1"))
    assert again.processed == 0
    assert again.duplicates == [{"index": 0, "request_id": "visit-1"}]
    details = selectors.details(str(test.id))
    assert details["total_predictions"] == 1 and details["total_updates"] == 1
    performance = details["performance_summary"][str(chosen.variant_id)]
    assert performance == {
        "predictions": 1,
        "updates": 1,
        "reward_sum": 1.0,
        "average_reward": 1.0,
        "current_prediction_ratio": 1.0,
        "evidence": 1.0,
        "changes_detected": 0,
        "default_rewards": 0,
        "retired": False,
    }
    # The stored context taught the model: the feature analysis knows the device.
    features = details["context_feature_analysis"]["features"]
    assert [(f["key"], f["value"]) for f in features] == [("device", "mobile")]


def test_a_tests_reward_count_is_what_its_counters_add_up(in_process):
    test, other = create(), create(name="Idle")
    for i in range(3):
        decide(test, f"count-{i}", device="mobile")
    reward(test, *(entry(i, 1.0, request_id=f"count-{i}") for i in range(3)))
    ids = [str(test.id), str(other.id), "00000000-0000-4000-8000-000000000000"]
    assert reads.reward_counts(ids) == {ids[0]: 3, ids[1]: 0, ids[2]: 0}
    assert reads.counters(ids[:1])[ids[0]].total_updates == 3


def test_each_entry_of_a_batch_succeeds_or_fails_on_its_own(in_process):
    test = create()
    served = decide(test, "visit-1").variant_id
    other = 1 - served
    report = reward(
        test,
        entry(0, 1.0, variant=other, request_id="visit-1"),  # not what was served
        EntryRefused(1, "reward must be a finite number."),
        entry(2, 0.0, request_id="never-issued"),  # unknown, and no context to learn from
        entry(3, 1.0, request_id="never-issued-2", variant=0, context={"a": "b"}, inline=True),
        entry(4, 1.0, variant="Green", by_label=True),  # the original Scout's `decision`
        entry(5, 1.0, variant=7),
        entry(6, 1.0),  # no variant at all
    )
    reasons = {error["index"]: error["reason"] for error in report.errors}
    assert report.processed == 2
    assert set(reasons) == {0, 1, 2, 5, 6}
    assert "does not match" in reasons[0]
    assert reasons[1] == "reward must be a finite number."
    assert "unknown or expired" in reasons[2]
    assert reasons[5] == "variant_id 7 is not a variant of this Test."
    assert reasons[6] == "variant_id is required."
    details = selectors.details(str(test.id))
    assert details["performance_summary"]["0"]["updates"] == 1
    assert details["performance_summary"]["1"]["updates"] == 1


def test_a_rollout_serves_one_variant_and_clearing_it_returns_to_sampling(in_process):
    test = create()
    rolled, variant_id = changes.rollout(str(test.id), "Green", OPERATOR)
    assert variant_id == 1 and rolled.global_variant_rollout == 1
    for n in range(5):
        chosen = decide(test, f"visit-{n}")
        assert (chosen.variant_id, chosen.is_global_rollout) == (1, True)
    with pytest.raises(InvalidInput, match="not a variant"):
        changes.rollout(str(test.id), "Purple", OPERATOR)
    changes.clear_rollout(str(test.id), OPERATOR)
    assert not decide(test, "visit-after").is_global_rollout
    actions = list(AuditEntry.objects.filter(target=str(test.id)).values_list("action", flat=True))
    assert sorted(actions) == ["rollout", "rollout_cleared", "test_created"]


def test_a_test_that_redis_lost_is_refilled_before_it_is_read(in_process):
    test = create()
    decide(test, "visit-1")
    reward(test, entry(0, 1.0, request_id="visit-1"))
    assert checkpoints.checkpoint_all() == 1
    for key in in_process.scan_iter(match=f"{keys.tag(str(test.id))}:*"):
        in_process.delete(key)
    details = selectors.details(str(test.id))
    assert details["total_updates"] == 1 and details["total_predictions"] == 1


def test_checkpoints_of_many_tests_are_written_a_chunk_at_a_time(in_process):
    """The statements of a round do not grow with the Tests it copies, and a second round
    writes over the first one's copies."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bandit.models import Checkpoint

    many = [create() for _ in range(30)]
    for n, test in enumerate(many):
        decide(test, f"visit-{n}")
    with CaptureQueriesContext(connection) as first:
        assert checkpoints.checkpoint_all() == 30
    for n, test in enumerate(many[:20]):
        reward(test, entry(0, 1.0, request_id=f"visit-{n}"))
    with CaptureQueriesContext(connection) as second:
        assert checkpoints.checkpoint_all() == 20
    assert len(first) < 15 and len(second) < 15, [q["sql"][:80] for q in second]
    copies = {str(c.test_id): c for c in Checkpoint.objects.all()}
    assert len(copies) == 30
    for n, test in enumerate(many):
        assert (copies[str(test.id)].total_updates, copies[str(test.id)].total_predictions) == (
            int(n < 20),
            1,
        )
    assert checkpoints.checkpoint_all() == 0  # nothing changed since


def test_deleting_removes_the_definition_and_every_key(in_process):
    test = create()
    decide(test, "visit-1")
    services.delete_test(str(test.id), OPERATOR)
    assert not Test.objects.filter(pk=test.id).exists()
    assert list(in_process.scan_iter(match=f"{keys.tag(str(test.id))}:*")) == []
    with pytest.raises(NotFound):
        selectors.details(str(test.id))
    with pytest.raises(NotFound):
        services.delete_test("not-a-uuid", OPERATOR)


def test_new_tests_get_the_defaults_an_operator_set(in_process, django_capture_on_commit_callbacks):
    chosen = defaults.TestSettings(
        trail_time_window_minutes=30,
        trail_bucket_granularity_seconds=10,
        minimum_update_requests=5,
    )
    with django_capture_on_commit_callbacks(execute=True):
        defaults.update(OPERATOR, chosen)
    assert defaults.current() == chosen
    assert AuditEntry.objects.filter(action="model_config").count() == 1


def test_a_snapshot_hears_of_rewards_counted_elsewhere_from_the_next_decision(in_process):
    test = create()
    test_id = str(test.id)
    decide(test, "visit-0")
    before = snapshots.get(test_id)
    assert before is not None and before.stats.total_updates == 0
    # Another worker counts five rewards: this worker's snapshot cannot know yet.
    elsewhere = [rewards.Reward(0, 1.0, None, {}, [])] * 5
    rewards.record_rewards(test_id, elsewhere, guard=None, **TTL)
    assert snapshots.get(test_id).stats.total_updates == 0  # within its age bound
    decide(test, "visit-1")  # the decision's script tells the reward count
    time.sleep(before.build_seconds / snapshots.REBUILD_SHARE + 0.001)
    assert snapshots.get(test_id).stats.total_updates == 5
    # Rewards counted by this worker make its snapshot behind at once.
    reward(test, entry(0, 1.0, request_id="visit-1"))
    time.sleep(snapshots.get(test_id).build_seconds / snapshots.REBUILD_SHARE + 0.001)
    assert snapshots.get(test_id).stats.total_updates == 6


def test_an_old_snapshot_is_settled_by_the_decision_itself(in_process, settings, monkeypatch):
    """A snapshot past its age bound serves the decision without asking Redis first; the
    decision script's answer says whether it was behind."""
    from bandit.state import learned

    test = create()
    test_id = str(test.id)
    decide(test, "visit-0")
    snapshot = snapshots.get(test_id)
    old = time.monotonic() - 10 * settings.SCOUT_SNAPSHOT_MAX_AGE_SECONDS
    snapshot.checked_at = old

    def no_extra_read(test_id: str) -> str | None:
        raise AssertionError("a decision asked Redis for the reward count before deciding")

    monkeypatch.setattr(learned, "learned_version", no_extra_read)
    decide(test, "visit-1")
    assert snapshots.get(test_id, told_after=True) is snapshot
    assert snapshot.checked_at > old and not snapshot.behind  # nothing was counted meanwhile
    # Rewards counted elsewhere: the next decision's answer marks the snapshot behind.
    rewards.record_rewards(test_id, [rewards.Reward(0, 1.0, None, {}, [])], guard=None, **TTL)
    decide(test, "visit-2")
    assert snapshot.behind
