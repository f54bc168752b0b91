"""A Test's data health over HTTP: each warning raised by traffic that breaks its rule, with
the numbers behind it, and none for clean traffic.

The module's server and backends are its own, with checks that count from 20 rewards or
decisions.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import details, fetch, reward
from tests.live import Backends, ScoutServer

MINIMUM = 20
CHECKS = {
    "unknown_request_ids",
    "duplicate_rewards",
    "variant_mismatches",
    "late_rewards",
    "decisions_without_reward",
    "sample_ratio",
}


@pytest.fixture(scope="module")
def scout() -> Iterator[ScoutServer]:
    """Backends of the module's own: on PostgreSQL the suite's servers share a database, and
    another server's schedule check would start this module's scheduled Test in its own
    Redis, not in this server's."""
    own = Backends()
    env = {"SCOUT_HEALTH_MINIMUM_COUNT": str(MINIMUM), "SCOUT_DECISION_LOG_SECONDS": "0.2"}
    server = ScoutServer(own, extra_env=env).start()
    yield server
    server.stop()
    own.cleanup()


@pytest.fixture
def api(scout: ScoutServer) -> Iterator[httpx.Client]:
    with scout.client() as client:
        yield client


def decide(api: httpx.Client, test_id: str, count: int) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:6]
    return [fetch(api, test_id, request_id=f"{tag}-{i}") for i in range(count)]


def rewarded(api: httpx.Client, test_id: str, decisions: list[dict[str, Any]], **entry: Any):
    updates = [{"request_id": d["request_id"], "reward": 1, **entry} for d in decisions]
    for start in range(0, len(updates), 100):
        reward(api, test_id, *updates[start : start + 100])


def health(api: httpx.Client, test_id: str) -> dict[str, Any]:
    found = details(api, test_id)["health"]
    assert set(found["checks"]) == CHECKS
    return found


def warned(found: dict[str, Any]) -> set[str]:
    return {name for name, check in found["checks"].items() if check["warning"]}


def test_clean_traffic_raises_no_warning(api, make_test):
    test_id = make_test()["cb_model_id"]
    decisions = decide(api, test_id, 40)
    rewarded(api, test_id, decisions)
    found = health(api, test_id)
    assert found["ok"] is True and found["warnings"] == [] and found["rewards_sent"] == 40
    for name in ("unknown_request_ids", "duplicate_rewards", "variant_mismatches"):
        check = found["checks"][name]
        assert check["measured"] and check["ok"] and check["count"] == 0 and check["out_of"] == 40
    unrewarded = found["checks"]["decisions_without_reward"]
    assert unrewarded["measured"] and unrewarded["count"] == 0 and unrewarded["out_of"] == 40
    assert found["checks"]["late_rewards"]["measured"] is False  # no reward window
    assert found["checks"]["sample_ratio"]["reason"] == "The Test has no holdout."


def test_clean_traffic_with_a_window_and_a_holdout_raises_no_warning(api, make_test):
    test_id = make_test(reward_window_seconds=600, holdout_share=0.3)["cb_model_id"]
    decisions = decide(api, test_id, 120)
    rewarded(api, test_id, decisions)
    deadline = time.monotonic() + 20
    while details(api, test_id)["evaluation"]["logged_rewards"] < 120:
        assert time.monotonic() < deadline, "the decision log never caught up"
        time.sleep(0.2)
    found = health(api, test_id)
    assert found["ok"] is True and found["warnings"] == []
    late = found["checks"]["late_rewards"]
    assert late["measured"] and late["count"] == 0 and late["out_of"] == 120
    ratio = found["checks"]["sample_ratio"]
    assert ratio["measured"] and ratio["rewards"] == 120 and ratio["p_value"] > 1e-4


def test_too_few_rewards_are_not_a_pattern_yet(api, make_test):
    test_id = make_test()["cb_model_id"]
    reward(api, test_id, *[{"request_id": f"never-{i}", "reward": 1} for i in range(5)])
    found = health(api, test_id)
    unknown = found["checks"]["unknown_request_ids"]
    assert unknown["count"] == 5 and unknown["measured"] is False and unknown["warning"] is None


def test_rewards_for_unknown_request_ids_are_warned_of(api, make_test):
    test_id = make_test()["cb_model_id"]
    rewarded(api, test_id, decide(api, test_id, 10))
    ghosts = [{"request_id": f"ghost-{i}", "reward": 1} for i in range(30)]
    reward(api, test_id, *ghosts[:15])
    reward(api, test_id, *[{**g, "variant_id": 0} for g in ghosts[15:]])  # counted inline
    found = health(api, test_id)
    check = found["checks"]["unknown_request_ids"]
    assert (check["count"], check["out_of"]) == (30, 40) and check["share"] == 0.75
    assert warned(found) == {"unknown_request_ids"}
    assert found["warnings"] == [check["warning"]]
    assert (
        "75.0% of the rewards (30 of 40)" in check["warning"] and "request_id" in check["warning"]
    )


def test_rewards_sent_twice_are_warned_of(api, make_test):
    test_id = make_test()["cb_model_id"]
    decisions = decide(api, test_id, 30)
    rewarded(api, test_id, decisions)
    rewarded(api, test_id, decisions[:20])
    found = health(api, test_id)
    check = found["checks"]["duplicate_rewards"]
    assert (check["count"], check["out_of"]) == (20, 50)
    assert warned(found) == {"duplicate_rewards"} and "40.0%" in check["warning"]


def test_rewards_for_another_variant_are_warned_of(api, make_test):
    test_id = make_test()["cb_model_id"]
    decisions = decide(api, test_id, 30)
    for decision in decisions:
        other = 1 - decision["variant_id"]
        response = api.post(
            f"/api/update_model/{test_id}",
            json={
                "updates": [
                    {"request_id": decision["request_id"], "variant_id": other, "reward": 1}
                ]
            },
        )
        assert response.status_code == 200
    found = health(api, test_id)
    check = found["checks"]["variant_mismatches"]
    assert (check["count"], check["out_of"]) == (30, 30)
    assert "variant_mismatches" in warned(found) and "another variant" in check["warning"]


def test_rewards_after_their_window_are_warned_of(api, make_test):
    test_id = make_test(reward_window_seconds=1)["cb_model_id"]
    decisions = decide(api, test_id, 25)
    rewarded(api, test_id, decisions[:5])
    time.sleep(2.5)
    rewarded(api, test_id, decisions[5:])
    found = health(api, test_id)
    check = found["checks"]["late_rewards"]
    assert (check["count"], check["out_of"]) == (20, 25)
    assert warned(found) == {"late_rewards"} and "window" in check["warning"]
    # With a window, a decision without a reward counts its default: not a problem.
    assert found["checks"]["decisions_without_reward"]["measured"] is False


def test_decisions_that_never_get_a_reward_are_warned_of(api, make_test):
    test_id = make_test()["cb_model_id"]
    decisions = decide(api, test_id, 40)
    rewarded(api, test_id, decisions[:8])
    found = health(api, test_id)
    check = found["checks"]["decisions_without_reward"]
    assert (check["count"], check["out_of"]) == (32, 40)
    assert warned(found) == {"decisions_without_reward"} and "80.0%" in check["warning"]


def test_decisions_before_a_scheduled_start_are_not_expected_to_get_a_reward(api, make_test):
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    test_id = make_test(starts_at=starts.isoformat())["cb_model_id"]
    decide(api, test_id, 30)  # served the first variant; their rewards would not count
    deadline = time.monotonic() + 20
    while details(api, test_id)["schedule"] != "running":
        assert time.monotonic() < deadline, "the Test never started"
        time.sleep(0.2)
    rewarded(api, test_id, decide(api, test_id, 30))
    check = health(api, test_id)["checks"]["decisions_without_reward"]
    assert (check["count"], check["out_of"]) == (0, 30) and check["warning"] is None


def logged_rewards(api: httpx.Client, test_id: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while details(api, test_id)["evaluation"]["logged_rewards"] < count:
        assert time.monotonic() < deadline, "the decision log never caught up"
        time.sleep(0.2)


@pytest.mark.parametrize("lost", [False, True])
def test_a_holdout_that_loses_its_rewards_fails_the_sample_ratio_check(api, make_test, lost):
    test_id = make_test(holdout_share=0.5)["cb_model_id"]
    decisions = decide(api, test_id, 200)
    kept = [d for d in decisions if not (lost and d["holdout"])]
    rewarded(api, test_id, kept)
    logged_rewards(api, test_id, len(kept))
    check = health(api, test_id)["checks"]["sample_ratio"]
    assert check["measured"] and check["rewards"] == len(kept)
    assert check["expected_share"] == 0.5
    if lost:  # the product reported no holdout decision's reward
        assert check["holdout_rewards"] == 0 and check["p_value"] < 1e-6
        assert check["warning"] and "0.0% of the rewarded decisions" in check["warning"]
    else:
        assert check["ok"] and check["warning"] is None and check["p_value"] > 1e-4
        assert 0.3 < check["observed_share"] < 0.7
