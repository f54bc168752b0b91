"""Sticky assignment: a unit (`unit_id`) keeps the variant it was given, over HTTP against a
server of two workers, and in this process for the expiry and the bound per Test."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from bandit import selectors
from bandit.state import keys
from tests.conftest import details, fetch
from tests.live import ScoutServer
from tests.test_services import create, decide
from tests.test_variants import UNIFORM_SETTINGS

UNIFORM = {"minimum_update_requests": 1_000_000}
THREE = {"0": "A", "1": "B", "2": "C"}
STICKY = {"sticky_assignment": True, **UNIFORM}


def for_unit(server: ScoutServer, test_id: str, unit: str, times: int, **body) -> list[int]:
    """Decisions for one unit, each on a new connection (so both workers answer some)."""
    served = []
    for _ in range(times):
        with server.client() as client:
            served.append(fetch(client, test_id, unit_id=unit, **body)["variant_id"])
    return served


def test_a_unit_keeps_its_variant_and_units_are_spread(server, api, make_test):
    test_id = make_test(variants=THREE, **STICKY)["cb_model_id"]
    info = details(api, test_id)
    assert info["sticky_assignment"] is True and info["sticky_seconds"] == 86_400
    assert len(set(for_unit(server, test_id, "visitor-1", 12))) == 1
    first = {fetch(api, test_id, unit_id=f"visitor-{i}")["variant_id"] for i in range(30)}
    assert len(first) > 1  # each unit is assigned by the policy, not all to one variant
    again = {fetch(api, test_id, unit_id=f"visitor-{i}")["variant_id"] for i in range(30)}
    assert again == first


def test_without_sticky_assignment_a_unit_id_changes_nothing(api, make_test):
    test_id = make_test(variants=THREE, **UNIFORM)["cb_model_id"]
    assert details(api, test_id)["sticky_assignment"] is False
    served = Counter(fetch(api, test_id, unit_id="visitor")["variant_id"] for _ in range(30))
    assert len(served) > 1


def test_a_rollout_wins_and_the_assignment_comes_back_after_it(api, make_test):
    test_id = make_test(variants=THREE, **STICKY)["cb_model_id"]
    held = fetch(api, test_id, unit_id="v")["variant_id"]
    other = (held + 1) % 3
    assert api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": other}).is_success
    during = fetch(api, test_id, unit_id="v")
    assert during["variant_id"] == other and during["is_global_rollout"] is True
    assert fetch(api, test_id, unit_id="newcomer")["variant_id"] == other
    assert api.post(f"/api/clear_global_variant/{test_id}").is_success
    assert {fetch(api, test_id, unit_id="v")["variant_id"] for _ in range(5)} == {held}


def test_a_retired_variant_releases_its_units(server, api, make_test):
    test_id = make_test(variants=THREE, **STICKY)["cb_model_id"]
    held = fetch(api, test_id, unit_id="v")["variant_id"]
    assert api.post(f"/api/retire_variant/{test_id}", json={"variant": held}).is_success
    after = for_unit(server, test_id, "v", 8)
    assert held not in after and len(set(after)) == 1  # assigned anew, and kept


def test_an_assigned_variant_that_is_not_eligible_is_not_served_and_stays_assigned(api, make_test):
    test_id = make_test(variants=THREE, **STICKY)["cb_model_id"]
    held = fetch(api, test_id, unit_id="v")["variant_id"]
    others = [v for v in (0, 1, 2) if v != held]
    for _ in range(5):
        assert fetch(api, test_id, unit_id="v", eligible_variants=others)["variant_id"] in others
    assert fetch(api, test_id, unit_id="v")["variant_id"] == held


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"unit_id": ""}, "unit_id must be a non-empty string"),
        ({"unit_id": 5}, "unit_id must be a non-empty string"),
        ({"unit_id": "x" * 129}, "unit_id is at most 128 characters"),
        ({"unit_id": "a\u0000b"}, "unit_id"),
    ],
)
def test_bad_unit_ids_are_refused_and_store_nothing(api, make_test, body, says):
    test_id = make_test(variants=THREE, **STICKY)["cb_model_id"]
    response = api.post("/api/fetch_recommended_variant", json={"cb_model_id": test_id, **body})
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]
    assert details(api, test_id)["total_predictions"] == 0


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"sticky_assignment": "yes"}, "boolean"),
        ({"sticky_assignment": 1}, "boolean"),
        ({"sticky_seconds": 0}, "between 1 and 7776000"),
        ({"sticky_seconds": 7776001}, "between 1 and 7776000"),
        ({"sticky_seconds": "60"}, "integer"),
    ],
)
def test_bad_sticky_settings_are_refused_and_create_nothing(api, settings, says):
    before = len(api.get("/api/models").json())
    response = api.post("/api/create_model", json={"name": "Sticky", "variants": THREE, **settings})
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]
    assert len(api.get("/api/models").json()) == before


# --- In this process ------------------------------------------------------------------------


def sticky_test(**overrides: object):
    return create(
        variants={0: "A", 1: "B", 2: "C"},
        test_settings=UNIFORM_SETTINGS,
        sticky_assignment=True,
        **overrides,
    )


def decide_for(test, unit: str) -> int:
    from bandit import services
    from system import config

    return services.recommend(
        str(test.id), context={}, request_id=None, unit_id=unit, settings_in_force=config.known()
    ).variant_id


def test_an_assignment_lasts_sticky_seconds(in_process):
    test = sticky_test(sticky_seconds=1)
    decide_for(test, "u")
    assert 0 < in_process.ttl(keys.unit(str(test.id), "u")) <= 1
    time.sleep(1.2)
    assert not in_process.exists(keys.unit(str(test.id), "u"))
    decide_for(test, "u")  # assigned anew
    assert in_process.exists(keys.unit(str(test.id), "u"))


def test_the_units_of_a_test_are_bounded(in_process, settings):
    settings.SCOUT_MAX_STICKY_UNITS = 5
    test = sticky_test()
    for i in range(8):
        decide_for(test, f"unit-{i}")
    test_id = str(test.id)
    assert in_process.zcard(keys.units(test_id)) == 5
    kept = [i for i in range(8) if in_process.exists(keys.unit(test_id, f"unit-{i}"))]
    assert kept == [3, 4, 5, 6, 7]  # the assignments that expire first went
    decide(test, "no-unit")  # a decision without a unit assigns nobody
    assert in_process.zcard(keys.units(test_id)) == 5
    assert selectors.details(test_id)["total_predictions"] == 9


def test_a_ranking_puts_a_units_variant_first(api, make_test):
    test_id = make_test(variants=THREE, **STICKY)["cb_model_id"]
    held = fetch(api, test_id, unit_id="v")["variant_id"]
    for _ in range(5):
        response = api.post(
            "/api/fetch_ranked_variants", json={"cb_model_id": test_id, "unit_id": "v"}
        )
        ranking = [entry["variant_id"] for entry in response.json()["variants"]]
        assert ranking[0] == held and sorted(ranking) == [0, 1, 2]
