"""Global rollouts: every worker serves the rolled-out variant at once; rewards still teach."""

from __future__ import annotations

import collections

from tests.conftest import details, fetch, reward


def test_rollout_and_clear(api, make_test):
    test_id = make_test(variants={"0": "Blue", "1": "Green", "2": "Red"})["cb_model_id"]
    response = api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": "Green"})
    assert response.status_code == 200
    assert response.json() == {
        "message": f"Global variant rollout for Test {test_id} set to variant 1.",
        "cb_model_id": test_id,
        "global_variant_id": 1,
        "global_variant_label": "Green",
    }
    # the very next requests, spread over the workers, all get it
    answers = [fetch(api, test_id) for _ in range(40)]
    assert {(a["variant_id"], a["is_global_rollout"]) for a in answers} == {(1, True)}
    info = details(api, test_id)
    assert info["is_active"] is False
    assert info["global_variant_rollout"] == 1
    listed = next(t for t in api.get("/api/models").json() if t["cb_model_id"] == test_id)
    assert listed["is_active"] is False and listed["global_variant_rollout"] == 1

    # rewards still teach while rolled out
    last = answers[-1]["request_id"]
    assert reward(api, test_id, {"request_id": last, "reward": 1})["processed_updates"] == 1
    assert details(api, test_id)["performance_summary"]["1"]["updates"] == 1

    cleared = api.post(f"/api/clear_global_variant/{test_id}/")
    assert cleared.status_code == 200
    assert cleared.json() == {
        "message": f"Global variant rollout cleared for Test {test_id}.",
        "cb_model_id": test_id,
    }
    counts = collections.Counter(fetch(api, test_id)["variant_id"] for _ in range(90))
    assert len(counts) == 3  # sampling again (uniform before the minimum of rewards)
    info = details(api, test_id)
    assert info["is_active"] is True and info["global_variant_rollout"] is None


def test_rollout_by_variant_id(api, make_test):
    test_id = make_test(variants={"3": "Blue", "7": "Green"})["cb_model_id"]
    response = api.post(f"/api/rollout_global_variant/{test_id}/", json={"variant": 7})
    assert response.json()["global_variant_id"] == 7
    assert response.json()["global_variant_label"] == "Green"
    assert fetch(api, test_id)["variant_label"] == "Green"


def test_bad_rollouts(api, make_test):
    test_id = make_test()["cb_model_id"]
    for body in ({"variant": 9}, {"variant": "Purple"}, {}, {"variant": [0]}, {"variant": True}):
        response = api.post(f"/api/rollout_global_variant/{test_id}", json=body)
        assert response.status_code == 400, body
        assert response.json()["detail"]
    assert details(api, test_id)["is_active"] is True
    unknown = "00000000-0000-0000-0000-000000000000"
    assert (
        api.post(f"/api/rollout_global_variant/{unknown}", json={"variant": 0}).status_code == 404
    )
    assert api.post(f"/api/clear_global_variant/{unknown}").status_code == 404
