"""fetch_recommended_variant over HTTP: fields, stored contexts, uniform start, bad input."""

from __future__ import annotations

import collections
import time

import pytest

from tests.conftest import details, fetch, reward

# What the contract says a decision answers, no more and no less.
DECISION_FIELDS = {
    "cb_model_id",
    "variant_id",
    "variant_label",
    "recommended_variant",
    "request_id",
    "is_global_rollout",
    "propensity",  # beyond the contract: how likely the variant was (the decision log)
    "holdout",
}


def test_a_decision_answers_the_contract_fields(api, make_test):
    test_id = make_test(variants={"0": "Blue", "1": "Green"})["cb_model_id"]
    body = fetch(api, test_id, context={"device": "mobile"}, request_id="visit-1")
    assert set(body) == DECISION_FIELDS
    assert body["cb_model_id"] == test_id
    assert body["request_id"] == "visit-1"
    assert body["is_global_rollout"] is False
    assert {body["variant_id"]: body["variant_label"]}.items() <= {0: "Blue", 1: "Green"}.items()
    assert body["recommended_variant"] == body["variant_label"]


def test_a_request_id_is_generated_when_none_is_sent(api, make_test):
    test_id = make_test()["cb_model_id"]
    first, second = fetch(api, test_id), fetch(api, test_id)
    assert first["request_id"] and second["request_id"]
    assert first["request_id"] != second["request_id"]
    # the generated id names the stored decision: a reward can use it alone
    result = reward(api, test_id, {"request_id": first["request_id"], "reward": 1})
    assert result["processed_updates"] == 1


def test_the_same_request_id_gets_the_same_decision_and_counts_once(api, make_test):
    test_id = make_test(variants={str(i): f"v{i}" for i in range(10)})["cb_model_id"]
    answers = {fetch(api, test_id, request_id="retry-me")["variant_id"] for _ in range(10)}
    assert len(answers) == 1
    assert details(api, test_id)["total_predictions"] == 1


def test_the_context_is_stored_for_the_reward(api, make_test):
    test_id = make_test()["cb_model_id"]
    decision = fetch(api, test_id, context={"plan": "pro", "seats": 12}, request_id="ctx-1")
    reward(api, test_id, {"request_id": "ctx-1", "reward": 1})
    info = details(api, test_id)
    assert info["update_trail"][0]["context_keys"] == ["plan", "seats"]
    features = {(f["key"], f["value"]) for f in info["context_feature_analysis"]["features"]}
    assert features == {("plan", "pro"), ("seats", None)}
    learned = info["context_feature_analysis"]["features"][0]["variants"]
    assert learned[str(decision["variant_id"])]["updates"] == 1


def test_decisions_are_uniform_until_the_minimum_number_of_rewards(api, make_test):
    test_id = make_test(variants={"0": "a", "1": "b", "2": "c"}, minimum_update_requests=50)[
        "cb_model_id"
    ]
    # 40 rewards all in favour of variant 0 are below the minimum: still uniform.
    reward(api, test_id, *[{"variant_id": 0, "reward": 1} for _ in range(40)])
    counts = collections.Counter(fetch(api, test_id)["variant_id"] for _ in range(600))
    assert set(counts) == {0, 1, 2}
    for variant in (0, 1, 2):  # each near 200; 140 is more than 5 standard deviations away
        assert counts[variant] > 140, counts


def test_after_the_minimum_the_posterior_decides(api, make_test):
    test_id = make_test(variants={"0": "a", "1": "b"}, minimum_update_requests=20)["cb_model_id"]
    reward(
        api,
        test_id,
        *[{"variant_id": 0, "reward": 1} for _ in range(30)],
        *[{"variant_id": 1, "reward": 0} for _ in range(30)],
    )
    time.sleep(1.2)  # the workers' snapshots are at most one second old
    counts = collections.Counter(fetch(api, test_id)["variant_id"] for _ in range(100))
    assert counts[0] >= 95, counts
    ratio = details(api, test_id)["exploitation_exploration_ratio"]
    assert ratio["exploitation"] >= 95


def test_unknown_and_missing_tests(api):
    response = api.post(
        "/api/fetch_recommended_variant",
        json={"cb_model_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]
    response = api.post("/api/fetch_recommended_variant", json={"context": {}})
    assert response.status_code == 400
    assert "cb_model_id" in response.json()["detail"]


BAD_CONTEXTS = [
    ({"nested": {"a": 1}}, "nested"),
    ({"list": [1, 2]}, "nested"),
    ("red", "JSON object"),
    ([1, 2], "JSON object"),
    ({f"k{i}": i for i in range(101)}, "limit is 100"),
    ({"k" * 101: 1}, "characters"),
    ({"": 1}, "characters"),
    ({"v": "x" * 257}, "longer than 256"),
    ({"v": 1e13}, "magnitude"),
]


@pytest.mark.parametrize(("context", "mentions"), BAD_CONTEXTS)
def test_bad_contexts_get_400_and_change_nothing(api, make_test, context, mentions):
    test_id = make_test()["cb_model_id"]
    response = api.post(
        "/api/fetch_recommended_variant", json={"cb_model_id": test_id, "context": context}
    )
    assert response.status_code == 400, response.text
    assert mentions in response.json()["detail"]
    assert details(api, test_id)["total_predictions"] == 0


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"cb_model_id": "%s", "context": {"x": NaN}}', 400),
        (b'{"cb_model_id": "%s", "context": {"x": Infinity}}', 400),
        (b'{"cb_model_id": "%s", "context": {"x": 1e400}}', 400),
        (b'{"cb_model_id": "%s", "request_id": 12}', 400),
        (b'{"cb_model_id": "%s", "request_id": ""}', 400),
    ],
    ids=["nan", "infinity", "overflow", "numeric-request-id", "empty-request-id"],
)
def test_bad_values_get_400(api, make_test, raw, status):
    test_id = make_test()["cb_model_id"]
    response = api.post(
        "/api/fetch_recommended_variant",
        content=raw % test_id.encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert details(api, test_id)["total_predictions"] == 0


def test_more_features_than_the_vocabulary_holds_are_counted_not_refused(api, make_test):
    test_id = make_test()["cb_model_id"]
    for i in range(70):  # 70 distinct values of one key; the vocabulary holds 64 features
        fetch(api, test_id, context={"city": f"city-{i}"}, request_id=f"city-{i}")
    reward(api, test_id, *[{"request_id": f"city-{i}", "reward": 1} for i in range(70)])
    analysis = details(api, test_id)["context_feature_analysis"]
    assert analysis["vocabulary_size"] == 64
    assert analysis["overflowed_features"] >= 6


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",  # served without DRF's request cycle (api.hot_path)
        "application/json; charset=UTF-8",  # so is this
        "application/json; charset=iso-8859-1",  # read by DRF's parser
    ],
)
def test_both_serving_paths_answer_alike(api, make_test, content_type):
    """The products' two endpoints answer the same fields, errors and headers whichever path
    serves them."""
    test_id = make_test(variants={"0": "Blue", "1": "Green"})["cb_model_id"]
    headers = {"Content-Type": content_type}
    body = f'{{"cb_model_id": "{test_id}", "request_id": "path-1", "context": {{"k": "v"}}}}'
    decided = api.post("/api/fetch_recommended_variant", content=body, headers=headers)
    assert decided.status_code == 200, decided.text
    assert decided.headers["content-type"] == "application/json"
    assert decided.headers["x-content-type-options"] == "nosniff"
    assert decided.headers["x-frame-options"] == "DENY"
    assert decided.headers["allow"] == "POST, OPTIONS"
    assert set(decided.json()) == DECISION_FIELDS
    rewarded = api.post(
        f"/api/update_model/{test_id}",
        content='{"updates": [{"request_id": "path-1", "reward": 1}]}',
        headers=headers,
    )
    assert rewarded.status_code == 200, rewarded.text
    assert rewarded.json()["processed_updates"] == 1
    assert details(api, test_id)["context_feature_analysis"]["features"][0]["key"] == "k"
    refused = api.post(
        "/api/fetch_recommended_variant", content='{"cb_model_id": true}', headers=headers
    )
    assert refused.status_code == 400
    assert refused.json()["detail"] == "cb_model_id must be a Test id (a UUID)."
    missing = api.post(
        "/api/fetch_recommended_variant",
        content='{"cb_model_id": "00000000-0000-0000-0000-000000000000"}',
        headers=headers,
    )
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]
