"""fetch_ranked_variants: every eligible variant in the policy's order, stored under its
request id, with a reward per variant it ranked."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import details, reward

THREE = {"0": "A", "1": "B", "2": "C"}


def ranked(api, test_id: str, **body) -> dict:
    response = api.post("/api/fetch_ranked_variants", json={"cb_model_id": test_id, **body})
    assert response.status_code == 200, response.text
    return response.json()


def order(answer: dict) -> list[int]:
    return [entry["variant_id"] for entry in answer["variants"]]


def test_a_ranking_lists_every_variant_best_first(api, make_test):
    test_id = make_test(variants=THREE, minimum_update_requests=0)["cb_model_id"]
    updates = [
        {"variant_id": v, "reward": r}
        for v, rate in ((0, 5), (1, 50), (2, 25))
        for r in [1] * rate + [0] * (100 - rate)
    ]
    assert reward(api, test_id, *updates)["processed_updates"] == 300
    answer = ranked(api, test_id, request_id="page-1", context={"device": "mobile"})
    assert answer["cb_model_id"] == test_id and answer["request_id"] == "page-1"
    assert answer["is_global_rollout"] is False
    assert sorted(order(answer)) == [0, 1, 2]
    assert {e["variant_id"]: e["variant_label"] for e in answer["variants"]} == {
        0: "A",
        1: "B",
        2: "C",
    }
    firsts = Counter(order(ranked(api, test_id))[0] for _ in range(30))
    assert firsts.most_common(1)[0][0] == 1, firsts
    lasts = Counter(order(ranked(api, test_id))[-1] for _ in range(30))
    assert lasts.most_common(1)[0][0] == 0, lasts
    # The same request id answers the same ranking; the decision counted once.
    before = details(api, test_id)["total_predictions"]
    again = ranked(api, test_id, request_id="page-1")
    assert order(again) == order(answer)
    assert details(api, test_id)["total_predictions"] == before


def test_each_ranked_variant_takes_one_reward_with_the_stored_context(api, make_test):
    test_id = make_test(variants=THREE)["cb_model_id"]
    answer = ranked(api, test_id, request_id="list-1", context={"plan": "pro"})
    first, second, _ = order(answer)
    result = reward(
        api,
        test_id,
        {"request_id": "list-1", "variant_id": first, "reward": 1},
        {"request_id": "list-1", "variant_id": second, "reward": 0},
        {"request_id": "list-1", "variant_id": first, "reward": 1},  # again: a duplicate
        {"request_id": "list-1", "reward": 1},  # which variant?
    )
    assert result["processed_updates"] == 2
    assert result["duplicate_updates"] == 1 and result["duplicates"][0]["index"] == 2
    assert [e["index"] for e in result["errors"]] == [3]
    assert "must name the variant" in result["errors"][0]["reason"]
    info = details(api, test_id)
    summary = info["performance_summary"]
    assert summary[str(first)]["updates"] == 1 and summary[str(second)]["updates"] == 1
    assert "plan" in str(info["context_feature_analysis"])  # the stored context taught


def test_a_ranking_keeps_to_the_eligible_variants_and_puts_a_rollout_first(api, make_test):
    test_id = make_test(variants=THREE)["cb_model_id"]
    only = ranked(api, test_id, request_id="two", eligible_variants=[2, "A"])
    assert sorted(order(only)) == [0, 2]
    missing = reward(api, test_id, {"request_id": "two", "variant_id": 1, "reward": 1})
    assert missing["processed_updates"] == 0
    assert "not among the variants ranked" in missing["errors"][0]["reason"]
    assert api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 1}).is_success
    rolled = ranked(api, test_id)
    assert order(rolled)[0] == 1 and rolled["is_global_rollout"] is True
    assert sorted(order(rolled)) == [0, 1, 2]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"eligible_variants": []}, "at least one variant"),
        ({"eligible_variants": [7]}, "not a variant of this Test"),
        ({"context": "mobile"}, "context"),
        ({"request_id": ""}, "request_id must be a non-empty string"),
    ],
)
def test_bad_ranking_requests_are_refused_and_store_nothing(api, make_test, body, says):
    test_id = make_test(variants=THREE)["cb_model_id"]
    response = api.post("/api/fetch_ranked_variants", json={"cb_model_id": test_id, **body})
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]
    assert details(api, test_id)["total_predictions"] == 0


def test_an_unknown_test_is_a_404(api):
    response = api.post(
        "/api/fetch_ranked_variants", json={"cb_model_id": "00000000-0000-0000-0000-000000000000"}
    )
    assert response.status_code == 404
