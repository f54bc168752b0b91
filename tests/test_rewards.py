"""update_model over HTTP: the contract's answer, per-entry failures, duplicates, contexts."""

from __future__ import annotations

import pytest

from tests.conftest import details, fetch, reward


def test_rewards_answer_the_contract_fields_and_count(api, make_test):
    test_id = make_test()["cb_model_id"]
    decision = fetch(api, test_id, request_id="r-1")
    result = reward(
        api, test_id, {"request_id": "r-1", "variant_id": decision["variant_id"], "reward": 1.0}
    )
    assert result["message"] == "Test updated successfully with 1 records (0 failures)."
    assert result["cb_model_id"] == test_id
    assert result["processed_updates"] == 1
    assert result["failed_updates"] == 0
    assert result["errors"] == []
    info = details(api, test_id)
    assert info["total_updates"] == 1
    summary = info["performance_summary"][str(decision["variant_id"])]
    assert summary["updates"] == 1 and summary["reward_sum"] == 1.0
    assert summary["average_reward"] == 1.0
    assert info["last_update_at"].endswith("Z")


def test_each_entry_succeeds_or_fails_on_its_own(api, make_test):
    test_id = make_test(variants={"0": "Blue", "1": "Green"})["cb_model_id"]
    fetch(api, test_id, request_id="good-1", context={"plan": "pro"})
    result = reward(
        api,
        test_id,
        {"request_id": "good-1", "reward": 1},  # variant taken from the stored decision
        {"variant_id": 0, "reward": "1"},  # a string reward
        {"variant_id": 0, "reward": True},  # a boolean is not a number
        {"variant_id": 7, "reward": 1},  # no such variant
        {"request_id": "never-issued", "variant_id": 0, "reward": 1},  # unknown, no context
        {"variant_id": 1},  # no reward
        "not an object",
        {"variant_id": 0, "reward": 1e13},  # beyond the magnitude limit
        {"variant_id": 1, "reward": 2.5},  # no request id, no context: fine
        {"request_id": "never-issued-2", "variant_id": 1, "reward": 0, "context": {"a": "b"}},
        {"variant_id": 0, "reward": 1, "context": {"deep": {"er": 1}}},  # nested context
    )
    assert result["processed_updates"] == 3
    assert result["failed_updates"] == 8
    assert result["message"] == "Test updated successfully with 3 records (8 failures)."
    reasons = {error["index"]: error["reason"] for error in result["errors"]}
    assert set(reasons) == {1, 2, 3, 4, 5, 6, 7, 10}
    assert "finite number" in reasons[1] and "finite number" in reasons[2]
    assert "not a variant" in reasons[3]
    assert "unknown or expired" in reasons[4]
    assert "reward is required" in reasons[5]
    assert "JSON object" in reasons[6]
    assert "magnitude" in reasons[7]
    assert "nested" in reasons[10]
    assert details(api, test_id)["total_updates"] == 3


def test_infinite_rewards_in_json_fail_their_entry(api, make_test):
    test_id = make_test()["cb_model_id"]
    response = api.post(
        f"/api/update_model/{test_id}",
        content=b'{"updates": [{"variant_id": 0, "reward": 1e400}, '
        b'{"variant_id": 0, "reward": 1}]}',
        headers={"content-type": "application/json"},
    )
    body = response.json()
    assert response.status_code == 200
    assert body["processed_updates"] == 1
    assert body["errors"] == [{"index": 0, "reason": "reward must be a finite number."}]


@pytest.mark.parametrize(
    ("raw", "mentions"),
    [
        (b'{"updates": [{"variant_id": 0, "reward": NaN}]}', "Invalid JSON"),
        (b'{"updates": [{"variant_id": 0, "reward": Infinity}]}', "Invalid JSON"),
        (b'{"updates": {"variant_id": 0}}', "list"),
        (b"{}", "list"),
        (b"[]", "JSON object"),
        (b"{broken", "Invalid JSON"),
    ],
)
def test_malformed_batches_are_refused_whole(api, make_test, raw, mentions):
    test_id = make_test()["cb_model_id"]
    response = api.post(
        f"/api/update_model/{test_id}", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert mentions in response.json()["detail"]
    assert details(api, test_id)["total_updates"] == 0


def test_more_than_a_thousand_entries_are_refused_whole(api, make_test):
    test_id = make_test()["cb_model_id"]
    entries = [{"variant_id": 0, "reward": 1} for _ in range(1001)]
    response = api.post(f"/api/update_model/{test_id}", json={"updates": entries})
    assert response.status_code == 400
    assert "at most 1000" in response.json()["detail"]
    assert details(api, test_id)["total_updates"] == 0
    assert reward(api, test_id, *entries[:1000])["processed_updates"] == 1000


def test_a_second_reward_for_a_request_id_is_a_duplicate(api, make_test):
    test_id = make_test()["cb_model_id"]
    decision = fetch(api, test_id, request_id="once")
    entry = {"request_id": "once", "variant_id": decision["variant_id"], "reward": 1}
    first = reward(api, test_id, entry, entry)  # twice in one batch
    assert first["processed_updates"] == 1
    assert first["duplicate_updates"] == 1
    assert first["duplicates"] == [{"index": 1, "request_id": "once"}]
    retry = reward(api, test_id, entry)  # and again later
    assert retry["processed_updates"] == 0 and retry["failed_updates"] == 0
    assert retry["duplicate_updates"] == 1
    assert details(api, test_id)["total_updates"] == 1


def test_a_variant_that_differs_from_the_served_one_fails(api, make_test):
    test_id = make_test()["cb_model_id"]
    served = fetch(api, test_id, request_id="mismatch")["variant_id"]
    result = reward(api, test_id, {"request_id": "mismatch", "variant_id": 1 - served, "reward": 1})
    assert result["failed_updates"] == 1
    assert "does not match" in result["errors"][0]["reason"]
    # the decision is still open: the right variant counts
    result = reward(api, test_id, {"request_id": "mismatch", "variant_id": served, "reward": 1})
    assert result["processed_updates"] == 1


def test_inline_context_is_used_when_asked_or_when_nothing_is_stored(api, make_test):
    test_id = make_test()["cb_model_id"]
    fetch(api, test_id, request_id="stored", context={"colour": "red"})
    reward(
        api,
        test_id,
        {
            "request_id": "stored",
            "reward": 1,
            "context": {"colour": "blue"},
            "context_used_for_prediction": False,
        },
        {"variant_id": 0, "reward": 1, "context": {"size": "xl"}},
    )
    features = details(api, test_id)["context_feature_analysis"]["features"]
    learned = {
        (f["key"], f["value"]): sum(v["updates"] for v in f["variants"].values()) for f in features
    }
    assert learned == {("colour", "red"): 0, ("colour", "blue"): 1, ("size", "xl"): 1}


def test_clients_of_the_original_scout_may_name_the_decision(api, make_test):
    test_id = make_test(variants={"0": "Blue", "1": "Green"})["cb_model_id"]
    result = reward(
        api,
        test_id,
        {"decision": "Green", "reward": 1, "feature_colour": "red"},
        {"decision": 0, "reward": 0},
        {"decision": "Purple", "reward": 1},
    )
    assert result["processed_updates"] == 2
    assert "not a variant" in result["errors"][0]["reason"]
    info = details(api, test_id)
    assert info["performance_summary"]["1"]["updates"] == 1
    assert info["performance_summary"]["0"]["updates"] == 1
    keys = [f["key"] for f in info["context_feature_analysis"]["features"]]
    assert keys == ["feature_colour"]


def test_rewards_for_unknown_tests_get_404(api):
    response = api.post(
        "/api/update_model/00000000-0000-0000-0000-000000000000",
        json={"updates": [{"variant_id": 0, "reward": 1}]},
    )
    assert response.status_code == 404


def test_trails_are_bucketed_and_bounded_by_the_window(api, make_test):
    test_id = make_test(trail_time_window_minutes=1, trail_bucket_granularity_seconds=20)[
        "cb_model_id"
    ]
    for i in range(30):
        fetch(api, test_id, request_id=f"trail-{i}", context={"k": "v"})
    reward(api, test_id, *[{"request_id": f"trail-{i}", "reward": i % 2} for i in range(30)])
    info = details(api, test_id)
    predictions, updates = info["prediction_trail"], info["update_trail"]
    assert sum(entry["count"] for entry in predictions) == 30
    assert sum(entry["count"] for entry in updates) == 30
    assert sum(entry["reward_sum"] for entry in updates) == 15
    assert len({entry["timestamp"] for entry in predictions}) <= 3
    for entry in predictions:
        assert set(entry) == {"timestamp", "variant_id", "context_keys", "count"}
        assert entry["context_keys"] == ["k"]
    for entry in updates:
        assert set(entry) >= {"timestamp", "variant_id", "reward", "context_keys"}
        assert entry["reward"] == pytest.approx(entry["reward_sum"] / entry["count"])
