"""Variants that change while a Test runs: added, retired, over HTTP against a server of two
workers (a change holds on both from the next request), and in this process for a worker whose
copy of the variants is stale."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bandit import changes, defaults, selectors, snapshots
from bandit.models import Test
from system.models import AuditEntry
from tests.conftest import details, fetch, reward
from tests.live import ScoutServer
from tests.test_services import OPERATOR, create, decide, entry
from tests.test_services import reward as reward_in_process

UNIFORM = {"minimum_update_requests": 1_000_000}  # every decision chooses uniformly
UNIFORM_SETTINGS = defaults.TestSettings(
    trail_time_window_minutes=60, trail_bucket_granularity_seconds=60, **UNIFORM
)


def fresh_fetches(server: ScoutServer, test_id: str, count: int) -> list[int]:
    """Decisions each on a new connection, so that both workers answer some of them."""
    chosen = []
    for _ in range(count):
        with server.client() as client:
            chosen.append(fetch(client, test_id)["variant_id"])
    return chosen


def test_added_variants_are_served_and_what_was_learned_is_kept(server, api, make_test):
    test_id = make_test(variants={"0": "A", "1": "B"}, **UNIFORM)["cb_model_id"]
    fresh_fetches(server, test_id, 6)  # both workers know the Test as it was
    assert reward(api, test_id, *[{"variant_id": 0, "reward": 1}] * 5)["processed_updates"] == 5
    response = api.post(f"/api/add_variants/{test_id}", json={"variants": {"7": "C", "3": "D"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["added"] == [3, 7] and body["retired_variants"] == []
    assert body["variants"] == {"0": "A", "1": "B", "3": "D", "7": "C"}
    info = details(api, test_id)
    assert info["num_variants"] == 4 and set(info["performance_summary"]) == {"0", "1", "3", "7"}
    assert info["performance_summary"]["0"]["updates"] == 5  # kept
    assert info["performance_summary"]["7"]["retired"] is False
    served = fresh_fetches(server, test_id, 60)
    assert {3, 7} <= set(served), served
    # A reward names a new variant by id or by label, on any worker.
    counted = reward(api, test_id, {"variant_id": 7, "reward": 1}, {"decision": "D", "reward": 0})
    assert counted["processed_updates"] == 2, counted


def test_a_retired_variant_is_never_served_and_keeps_its_figures(server, api, make_test):
    test_id = make_test(variants={"0": "A", "1": "B", "2": "C"}, **UNIFORM)["cb_model_id"]
    # Uniform choices: a dozen decisions miss B now and then, so go on until one is B.
    made_before = [fetch(api, test_id, request_id=f"before-{i}") for i in range(12)]
    while not any(d["variant_id"] == 1 for d in made_before) and len(made_before) < 200:
        made_before.append(fetch(api, test_id, request_id=f"before-{len(made_before)}"))
    fresh_fetches(server, test_id, 6)
    predicted = details(api, test_id)["performance_summary"]["1"]["predictions"]
    response = api.post(f"/api/retire_variant/{test_id}", json={"variant": "B"})  # by label
    assert response.status_code == 200, response.text
    assert response.json()["retired_variant_id"] == 1
    assert response.json()["retired_variant_label"] == "B"
    assert response.json()["retired_variants"] == [1]
    assert 1 not in fresh_fetches(server, test_id, 80)
    # A reward for a decision made before the variant was retired still counts.
    of_b = [d for d in made_before if d["variant_id"] == 1]
    assert of_b, "no decision for B before it was retired"
    result = reward(api, test_id, {"request_id": of_b[0]["request_id"], "reward": 1})
    assert result["processed_updates"] == 1
    info = details(api, test_id)
    assert info["retired_variants"] == [1] and info["variants"]["1"] == "B"
    retired = info["performance_summary"]["1"]
    assert retired["retired"] is True and retired["updates"] == 1
    assert retired["predictions"] == predicted  # none since it was retired
    # A replay of a decision made before answers that decision, retired variant or not.
    assert fetch(api, test_id, request_id=of_b[0]["request_id"])["variant_id"] == 1


def assert_unchanged(api: httpx.Client, test_id: str, before: dict[str, Any]) -> None:
    after = details(api, test_id)
    for field in ("variants", "retired_variants", "global_variant_rollout"):
        assert after[field] == before[field], field


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 400, "variant is required"),
        ({"variant": None}, 400, "variant is required"),
        ({"variant": True}, 400, "string or an integer"),
        ({"variant": 9}, 400, "not a variant of this Test"),
        ({"variant": "Z"}, 400, "not a variant of this Test"),
        ([], 400, "JSON object"),
    ],
)
def test_bad_retirements_are_refused_and_change_nothing(api, make_test, body, status, says):
    test_id = make_test(variants={"0": "A", "1": "B", "2": "C"})["cb_model_id"]
    before = details(api, test_id)
    response = api.post(f"/api/retire_variant/{test_id}", json=body)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    assert_unchanged(api, test_id, before)


def test_the_rules_of_retirement(api, make_test):
    test_id = make_test(variants={"0": "A", "1": "B", "2": "C"})["cb_model_id"]
    assert api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 2}).is_success
    rolled_out = api.post(f"/api/retire_variant/{test_id}", json={"variant": 2})
    assert rolled_out.status_code == 400 and "clear the rollout" in rolled_out.json()["detail"]
    assert api.post(f"/api/clear_global_variant/{test_id}").is_success
    assert api.post(f"/api/retire_variant/{test_id}", json={"variant": 0}).status_code == 200
    again = api.post(f"/api/retire_variant/{test_id}", json={"variant": 0})
    assert again.status_code == 400 and "retired already" in again.json()["detail"]
    before = details(api, test_id)
    last_two = api.post(f"/api/retire_variant/{test_id}", json={"variant": 1})
    assert last_two.status_code == 400 and "at least 2 variants" in last_two.json()["detail"]
    no_rollout = api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 0})
    assert no_rollout.status_code == 400 and "retired" in no_rollout.json()["detail"]
    assert_unchanged(api, test_id, before)
    # Ids are never reused, a retired variant's label stays taken.
    for variants in ({"0": "New"}, {"5": "A"}):
        taken = api.post(f"/api/add_variants/{test_id}", json={"variants": variants})
        assert taken.status_code == 409, taken.text
    assert_unchanged(api, test_id, before)
    unknown = "00000000-0000-0000-0000-000000000000"
    assert api.post(f"/api/retire_variant/{unknown}", json={"variant": 0}).status_code == 404
    assert api.post(f"/api/add_variants/{unknown}", json={"variants": {"9": "X"}}).status_code == (
        404
    )


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 400, "variants is required"),
        ({"variants": {}}, 400, "between 1 and"),
        ({"variants": ["C"]}, 400, "object mapping variant ids to labels"),
        ({"variants": {"-1": "C"}}, 400, "not a non-negative integer variant id"),
        ({"variants": {"x": "C"}}, 400, "not a non-negative integer variant id"),
        ({"variants": {"2": ""}}, 400, "must not be empty"),
        ({"variants": {"2": True}}, 400, "string or an integer"),
        ({"variants": {"2": "C", "3": "C"}}, 409, "labels must be unique"),
        ({"variants": {"1": "C"}}, 409, "never reused"),
        ({"variants": {"2": "A"}}, 409, "labels must be unique"),
        ({"variants": {str(i): f"v{i}" for i in range(2, 1001)}}, 400, "at most 1000 variants"),
    ],
)
def test_bad_additions_are_refused_and_change_nothing(api, make_test, body, status, says):
    test_id = make_test(variants={"0": "A", "1": "B"})["cb_model_id"]
    before = details(api, test_id)
    response = api.post(f"/api/add_variants/{test_id}", json=body)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    assert_unchanged(api, test_id, before)


# --- In this process ------------------------------------------------------------------------


@pytest.mark.usefixtures("in_process")
def test_a_worker_with_a_stale_copy_of_the_variants_reads_them_again():
    """Another worker retired a variant: this worker's snapshot still has it in service. The
    decision script refuses the stale copy, and the worker decides again with the new one."""
    test = create(variants={0: "A", 1: "B", 2: "C"}, test_settings=UNIFORM_SETTINGS)
    decide(test, "warm")
    stale = snapshots._snapshots[str(test.id)]
    changes.retire_variant(str(test.id), 2, actor=OPERATOR)
    for _ in range(30):
        snapshots._snapshots[str(test.id)] = stale  # as another worker's copy would be
        assert decide(test, None).variant_id != 2
    snapshots._snapshots[str(test.id)] = stale
    report = reward_in_process(test, entry(0, 1.0, variant=2))  # a retired variant still counts
    assert report.processed == 1
    assert snapshots._snapshots[str(test.id)].definition.version == 1
    assert selectors.details(str(test.id))["performance_summary"]["2"]["updates"] == 1


@pytest.mark.usefixtures("in_process")
def test_changes_of_the_variants_are_audited():
    test = create()
    changes.add_variants(str(test.id), {5: "Purple"}, maximum=1000, actor=OPERATOR)
    changes.retire_variant(str(test.id), "Blue", actor=OPERATOR)
    entries = {e.action: e for e in AuditEntry.objects.filter(target=str(test.id))}
    assert entries["variants_added"].details == {"variants": {"5": "Purple"}}
    assert entries["variant_retired"].details == {"variant_id": 0}
    assert entries["variant_retired"].actor == OPERATOR.name
    stored = Test.objects.get(pk=test.pk)
    assert stored.retired_variants == [0] and stored.definition_version == 2
    assert stored.variants_in_service() == [1, 5]
