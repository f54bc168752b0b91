"""Choosing among what is available: `eligible_variants` on a decision, and a Test's
`minimum_variant_share`, over HTTP and in the policy."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bandit import policy
from tests.conftest import details, fetch, reward

UNIFORM = {"minimum_update_requests": 1_000_000}
THREE = {"0": "A", "1": "B", "2": "C"}


def test_a_decision_chooses_among_the_eligible_variants_alone(api, make_test):
    test_id = make_test(variants=THREE, **UNIFORM)["cb_model_id"]
    chosen = Counter(
        fetch(api, test_id, eligible_variants=[0, "C"])["variant_id"] for _ in range(60)
    )
    assert set(chosen) == {0, 2}, chosen
    assert fetch(api, test_id, eligible_variants=["B"])["variant_id"] == 1


def test_the_policy_ranks_the_eligible_ones_as_it_would_all(api, make_test):
    test_id = make_test(variants=THREE, minimum_update_requests=0)["cb_model_id"]
    updates = [{"variant_id": 0, "reward": 1} for _ in range(100)]
    updates += [{"variant_id": v, "reward": r} for v in (1, 2) for r in [0] * 95 + [1] * 5]
    updates += [{"variant_id": 2, "reward": 1} for _ in range(40)]
    assert reward(api, test_id, *updates)["processed_updates"] == len(updates)
    # Without A, C (45 of 140) is far better than B (5 of 100).
    chosen = Counter(fetch(api, test_id, eligible_variants=[1, 2])["variant_id"] for _ in range(40))
    assert set(chosen) <= {1, 2} and chosen[2] > chosen[1], chosen


def test_a_rollout_wins_over_eligibility(api, make_test):
    test_id = make_test(variants=THREE)["cb_model_id"]
    assert api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 2}).is_success
    decision = fetch(api, test_id, eligible_variants=[0, 1])
    assert decision["variant_id"] == 2 and decision["is_global_rollout"] is True


@pytest.mark.parametrize(
    ("eligible", "says"),
    [
        ([], "at least one variant"),
        ("0", "list of variant ids or labels"),
        ({"0": 1}, "list of variant ids or labels"),
        (None, "list of variant ids or labels"),
        ([9], "not a variant of this Test"),
        (["Z"], "not a variant of this Test"),
        ([True], "variant id or label"),
        ([[0]], "variant id or label"),
        ([1], "retired"),
    ],
)
def test_bad_eligible_variants_are_refused_and_store_nothing(api, make_test, eligible, says):
    test_id = make_test(variants=THREE)["cb_model_id"]
    assert api.post(f"/api/retire_variant/{test_id}", json={"variant": 1}).is_success
    response = api.post(
        "/api/fetch_recommended_variant",
        json={"cb_model_id": test_id, "request_id": "r-1", "eligible_variants": eligible},
    )
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]
    assert details(api, test_id)["total_predictions"] == 0
    assert fetch(api, test_id, request_id="r-1")["request_id"] == "r-1"  # nothing was stored


def test_every_variant_keeps_its_minimum_share(api, make_test):
    created = make_test(variants=THREE, minimum_update_requests=0, minimum_variant_share=0.2)
    test_id = created["cb_model_id"]
    assert details(api, test_id)["minimum_variant_share"] == 0.2
    updates = [{"variant_id": 0, "reward": 1} for _ in range(200)]
    updates += [{"variant_id": v, "reward": 0} for v in (1, 2) for _ in range(200)]
    reward(api, test_id, *updates)
    chosen = Counter(fetch(api, test_id)["variant_id"] for _ in range(300))
    # Each loser gets its 20% (60 of 300, give or take 7): Thompson sampling alone gives it
    # almost none after 200 zeros against 200 ones.
    assert chosen[1] >= 40 and chosen[2] >= 40, chosen
    assert chosen[0] >= 120, chosen


@pytest.mark.parametrize(
    ("share", "says"),
    [
        (-0.1, "between 0 and 0.5"),
        (0.34, "between 0 and 1/3"),
        (0.6, "between 0 and 0.5"),
        ("0.1", "finite number"),
        (True, "finite number"),
    ],
)
def test_bad_minimum_shares_are_refused_and_create_nothing(api, share, says):
    before = len(api.get("/api/models").json())
    response = api.post(
        "/api/create_model",
        json={"name": "Shares", "variants": THREE, "minimum_variant_share": share},
    )
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]
    assert len(api.get("/api/models").json()) == before


# --- The policy -----------------------------------------------------------------------------


def test_choose_keeps_to_the_eligible_and_gives_each_its_minimum_share():
    stats = policy.LearnedStats.empty([0, 1, 2, 3])
    stats.updates[:] = [500, 500, 500, 500]
    stats.reward_sum[:] = [450, 50, 40, 30]
    posterior = policy.build_posterior(stats, policy.FLAT)
    rng = np.random.default_rng(7)

    def shares(**options: object) -> np.ndarray:
        picks = [
            policy.choose(posterior, {0: 1.0}, rng, uniform=False, variants=4, **options).index
            for _ in range(4000)
        ]
        return np.bincount(picks, minlength=4) / len(picks)

    alone = shares()
    assert alone[0] > 0.99
    floor = shares(minimum_share=0.1)
    assert all(floor[1:] > 0.085) and floor[0] > 0.65
    among = shares(among=[1, 2, 3], minimum_share=0.2)
    assert among[0] == 0 and all(among[1:] > 0.17)
    # An eligible set keeps the Thompson ranking among its members.
    assert among[1] > among[2] > among[3]
    # More than every decision cannot be promised: the floor is capped at uniform.
    capped = shares(among=[2, 3], minimum_share=0.9)
    assert abs(capped[2] - 0.5) < 0.04 and capped[0] == capped[1] == 0
