"""Propensities, the holdout and the decision log, over HTTP as a product backend and an
operator use them; and, in this process, that moving the log into the database twice is
harmless."""

from __future__ import annotations

import csv
import io
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django import db
from django.db import transaction

from bandit import decision_log, services
from bandit.models import LoggedDecision, LoggedReward, Test
from bandit.state import keys, log
from system import config
from tests.conftest import details, fetch, reward
from tests.live import ScoutServer
from tests.test_services import create, decide, entry
from tests.test_services import reward as reward_in_process

UNIFORM = {"minimum_update_requests": 1_000_000}
THREE = {"0": "A", "1": "B", "2": "C"}
# How long a decision may take to reach the database (SCOUT_DECISION_LOG_SECONDS is 1 s).
LOG_SECONDS = 30.0


def exported(api: httpx.Client, test_id: str, **params: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/decision_log/{test_id}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def logged(
    api: httpx.Client, test_id: str, decisions: int, rewards: int = 0
) -> list[dict[str, Any]]:
    """The exported log once it holds `decisions` decisions and `rewards` rewards."""
    deadline = time.monotonic() + LOG_SECONDS
    while True:
        records = exported(api, test_id)
        done = sum(record["reward"] is not None for record in records)
        if (len(records), done) == (decisions, rewards) or time.monotonic() > deadline:
            assert (len(records), done) == (decisions, rewards)
            return records
        time.sleep(0.2)


# --- Propensities ---------------------------------------------------------------------------


def test_propensities_are_exact_while_uniform_and_under_a_rollout(api, make_test):
    test_id = make_test(variants=THREE, **UNIFORM)["cb_model_id"]
    answers = [fetch(api, test_id) for _ in range(20)]
    assert {answer["propensity"] for answer in answers} == {1 / 3}
    assert not any(answer["holdout"] for answer in answers)
    among = fetch(api, test_id, eligible_variants=[0, 2])
    assert among["propensity"] == 0.5 and among["variant_id"] in (0, 2)
    assert api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 1}).is_success
    rolled = fetch(api, test_id, request_id="during-rollout")
    assert (rolled["variant_id"], rolled["propensity"], rolled["is_global_rollout"]) == (
        1,
        1.0,
        True,
    )
    # A retry answers the decision as it was made, propensity included.
    assert fetch(api, test_id, request_id="during-rollout")["propensity"] == 1.0
    assert api.post(f"/api/clear_global_variant/{test_id}").is_success
    assert fetch(api, test_id)["propensity"] == 1 / 3


def test_thompson_propensities_match_how_often_each_variant_is_chosen(api, make_test):
    """With the posterior fixed (no more rewards), a variant chosen with propensity p is
    chosen in a share p of the decisions."""
    test_id = make_test(variants=THREE, minimum_update_requests=0)["cb_model_id"]
    rates = {0: 0.5, 1: 0.4, 2: 0.3}
    updates = [
        {"variant_id": variant, "reward": float(i < rate * 40)}
        for variant, rate in rates.items()
        for i in range(40)
    ]
    reward(api, test_id, *updates)
    time.sleep(1.5)  # every worker's snapshot has learned them
    answers = [fetch(api, test_id) for _ in range(600)]
    chosen = Counter(answer["variant_id"] for answer in answers)
    for variant in rates:
        said = [a["propensity"] for a in answers if a["variant_id"] == variant]
        if not said:
            continue
        assert all(0 < p <= 1 for p in said)
        share = chosen[variant] / len(answers)
        p = sum(said) / len(said)
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / len(answers)) + 0.03, (
            variant,
            share,
            p,
        )


def test_a_unit_keeps_the_propensity_it_was_assigned_with(api, make_test):
    test_id = make_test(variants=THREE, sticky_assignment=True, **UNIFORM)["cb_model_id"]
    first = fetch(api, test_id, unit_id="visitor")
    again = fetch(api, test_id, unit_id="visitor")
    assert again["variant_id"] == first["variant_id"]
    assert again["propensity"] == first["propensity"] == 1 / 3


# --- The holdout ----------------------------------------------------------------------------


def test_holdout_decisions_are_uniform_flagged_and_teach_the_model(api, make_test):
    test_id = make_test(variants=THREE, minimum_update_requests=0, holdout_share=0.5)["cb_model_id"]
    assert details(api, test_id)["holdout_share"] == 0.5
    answers = [fetch(api, test_id, request_id=f"r-{i}") for i in range(200)]
    held = [answer for answer in answers if answer["holdout"]]
    assert 60 <= len(held) <= 140  # half, give or take 5.6 standard deviations
    assert {answer["propensity"] for answer in held} == {1 / 3}
    assert {answer["variant_id"] for answer in held} == {0, 1, 2}
    replay = fetch(api, test_id, request_id=held[0]["request_id"])
    assert (replay["holdout"], replay["propensity"]) == (True, 1 / 3)
    report = reward(api, test_id, *({"request_id": a["request_id"], "reward": 1.0} for a in held))
    assert report["processed_updates"] == len(held)
    assert details(api, test_id)["total_updates"] == len(held)


def test_the_holdout_share_is_checked_and_changes_from_the_next_decision(api, make_test):
    response = api.post(
        "/api/create_model", json={"name": "x", "variants": THREE, "holdout_share": 0.7}
    )
    assert response.status_code == 400 and "holdout_share" in response.json()["detail"]
    test_id = make_test(variants=THREE, **UNIFORM)["cb_model_id"]
    for bad in (0.51, -0.1, "half", None, True):
        response = api.post(f"/api/set_holdout_share/{test_id}", json={"holdout_share": bad})
        assert response.status_code == 400, (bad, response.text)
        assert "holdout_share" in response.json()["detail"]
    assert api.post(f"/api/set_holdout_share/{test_id}", json={}).status_code == 400
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        api.post(f"/api/set_holdout_share/{missing}", json={"holdout_share": 0.1}).status_code
        == 404
    )
    assert not any(fetch(api, test_id)["holdout"] for _ in range(30))
    response = api.post(f"/api/set_holdout_share/{test_id}", json={"holdout_share": 0.5})
    assert response.status_code == 200 and response.json()["holdout_share"] == 0.5
    assert details(api, test_id)["holdout_share"] == 0.5
    assert any(fetch(api, test_id)["holdout"] for _ in range(60))  # misses with p = 2^-60


def test_the_lift_over_the_holdout_is_measured_from_the_log(api, make_test):
    """Variant 0 always earns 1, the others 0: the bandit learns it, the holdout cannot."""
    test_id = make_test(variants=THREE, minimum_update_requests=10, holdout_share=0.3)[
        "cb_model_id"
    ]
    for i in range(300):
        answer = fetch(api, test_id, request_id=f"visit-{i}")
        reward(
            api,
            test_id,
            {"request_id": answer["request_id"], "reward": float(answer["variant_id"] == 0)},
        )
    records = logged(api, test_id, 300, 300)
    evaluation = details(api, test_id)["evaluation"]
    assert (evaluation["logged_decisions"], evaluation["logged_rewards"]) == (300, 300)
    holdout = evaluation["holdout"]
    held = [r["reward"] for r in records if r["holdout"]]
    bandit = [r["reward"] for r in records if not r["holdout"]]
    assert (holdout["holdout_rewards"], holdout["bandit_rewards"]) == (len(held), len(bandit))
    assert holdout["holdout"]["value"] == pytest.approx(sum(held) / len(held))
    assert holdout["bandit"]["value"] == pytest.approx(sum(bandit) / len(bandit))
    # Uniform among three, one of which earns 1: a mean of 1/3, within four standard errors.
    spread = holdout["holdout"]["high"] - holdout["holdout"]["low"]  # about four of them
    assert abs(holdout["holdout"]["value"] - 1 / 3) < spread
    lift = holdout["lift"]
    assert lift["value"] == pytest.approx(holdout["bandit"]["value"] - holdout["holdout"]["value"])
    assert 0 < lift["low"] < lift["value"] < lift["high"]
    assert holdout["relative_lift"]["value"] > 0.5


# --- The decision log -----------------------------------------------------------------------


def test_the_log_holds_every_decision_and_reward_with_what_decided_it(api, make_test):
    test_id = make_test(variants=THREE, **UNIFORM)["cb_model_id"]
    started = time.time()
    answers = {}
    for i in range(40):
        context = {"device": ["mobile", "desktop"][i % 2], "age": i, "new": i % 3 == 0}
        answers[f"visit-{i}"] = (
            fetch(api, test_id, request_id=f"visit-{i}", context=context),
            context,
        )
    rewarded = {f"visit-{i}": float(i % 4) for i in range(0, 40, 2)}
    reward(api, test_id, *({"request_id": rid, "reward": value} for rid, value in rewarded.items()))
    records = logged(api, test_id, 40, 20)
    assert [r["request_id"] for r in records] == list(answers)  # oldest first
    for record in records:
        answer, context = answers[record["request_id"]]
        assert record["variant_id"] == answer["variant_id"]
        assert record["variant_label"] == THREE[str(answer["variant_id"])]
        assert record["propensity"] == answer["propensity"] == 1 / 3
        assert record["context"] == context
        assert record["holdout"] is False and record["is_global_rollout"] is False
        assert record["learning"]["sampling"] == "focused"
        assert record["learning"]["holdout_share"] == 0.0
        assert record["reward"] == rewarded.get(record["request_id"])
        decided = record["decided_at"]
        assert decided.endswith("Z") and started - 5 < _epoch(decided) < time.time() + 5
        assert (record["rewarded_at"] is None) == (record["request_id"] not in rewarded)

    as_csv = api.get(f"/api/decision_log/{test_id}", params={"format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["request_id"] for row in rows] == list(answers)
    assert json.loads(rows[1]["context"]) == answers["visit-1"][1]
    assert rows[0]["reward"] == "0.0" and rows[1]["reward"] == ""

    middle = records[20]["decided_at"]
    assert len(exported(api, test_id, to=records[0]["decided_at"])) == 0
    later = exported(api, test_id, **{"from": middle})
    assert later == [r for r in records if _epoch(r["decided_at"]) >= _epoch(middle)]
    assert exported(api, test_id, **{"from": "2999-01-01T00:00:00Z"}) == []


def test_the_log_refuses_bad_queries_with_a_clear_error(api, make_test):
    test_id = make_test()["cb_model_id"]
    for params in (
        {"from": "yesterday"},
        {"to": "2026-13-01"},
        {"format": "xml"},
    ):
        response = api.get(f"/api/decision_log/{test_id}", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["detail"]
    # A range that ends before it starts holds nothing.
    assert exported(api, test_id, **{"from": "2026-02-02T00:00:00Z", "to": "2026-02-01"}) == []
    assert api.get("/api/decision_log/00000000-0000-4000-8000-000000000000").status_code == 404
    assert api.get("/api/decision_log/not-a-test").status_code == 404


def test_the_log_keeps_what_was_acknowledged_across_a_restart(backends):
    server = ScoutServer.dedicated(backends, "decision-log-restart").start()
    try:
        with server.client() as client:
            test_id = client.post(
                "/api/create_model", json={"name": "restart", "variants": THREE, **UNIFORM}
            ).json()["cb_model_id"]
            served = [fetch(client, test_id, request_id=f"r-{i}") for i in range(30)]
            reward(
                client,
                test_id,
                *({"request_id": a["request_id"], "reward": 1.0} for a in served[:10]),
            )
        server.stop()  # at once: what the workers had not moved yet waits in Redis
        server.start()
        with server.client() as client:
            records = logged(client, test_id, 30, 10)
        assert sorted(r["request_id"] for r in records) == sorted(a["request_id"] for a in served)
    finally:
        server.stop()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- Moving it into the database, in this process -------------------------------------------


def test_moving_the_log_twice_writes_each_decision_and_reward_once(in_process):
    test = create(variants={0: "Blue", 1: "Green"}, holdout_share=0.2)
    for i in range(5):
        decide(test, f"visit-{i}", colour="red")
    reward_in_process(
        test, entry(0, 1.0, request_id="visit-1"), entry(1, 0.5, request_id="visit-3")
    )
    found = log.read([str(test.id)], 100)
    assert [e.kind for e in found[str(test.id)]] == ["d"] * 5 + ["r", "r"]
    decision_log._write(found)
    decision_log._write(found)  # a worker that stopped before trimming: written again
    assert LoggedDecision.objects.filter(test=test).count() == 5
    assert LoggedReward.objects.filter(test=test).count() == 2
    records = list(decision_log.records(test, None, None))
    assert [r["request_id"] for r in records] == [f"visit-{i}" for i in range(5)]
    assert [r["reward"] for r in records] == [None, 1.0, None, 0.5, None]
    assert records[0]["context"] == {"colour": "red"}
    assert records[0]["learning"]["holdout_share"] == 0.2
    assert in_process.xlen(keys.log(str(test.id))) == 0  # trimmed once written
    assert decision_log.move_all() == 0


def test_a_round_reads_the_streams_appended_to_and_a_sweep_reads_every_stream(
    in_process, monkeypatch
):
    """A worker notes the Tests it appended to and shares them; the mover reads those, and
    every stream now and then, which finds what a worker that stopped never shared."""
    shared, forgotten = create(name="shared"), create(name="forgotten")
    monkeypatch.setattr(decision_log, "_swept_at", time.monotonic())  # no sweep this round
    decide(shared, "s-1")
    decide(forgotten, "f-1")
    log._appended.discard(str(forgotten.id))  # its worker stopped before sharing
    assert decision_log.move_all() == 1
    assert LoggedDecision.objects.filter(test=shared).count() == 1
    assert in_process.xlen(keys.log(str(forgotten.id))) == 1  # waiting, not lost
    assert log.take_appended() == []  # nothing left to read
    monkeypatch.setattr(decision_log, "_swept_at", -math.inf)  # the sweep is due
    assert decision_log.move_all() == 1
    assert LoggedDecision.objects.filter(test=forgotten).count() == 1
    assert in_process.xlen(keys.log(str(forgotten.id))) == 0


def test_what_a_round_could_not_move_is_read_first_in_the_next(in_process, monkeypatch):
    test = create()
    monkeypatch.setattr(decision_log, "_swept_at", time.monotonic())
    decide(test, "late-1")
    monkeypatch.setattr(decision_log, "ROUND_SECONDS", 0.0)  # a round with no time left
    assert decision_log.move_all() == 0
    assert log.take_appended() == [str(test.id)]  # said again, for the next round
    log.mark_appended([str(test.id)])
    monkeypatch.setattr(decision_log, "ROUND_SECONDS", 5.0)
    assert decision_log.move_all() == 1


def test_a_ranked_decision_logs_the_reward_of_its_first_variant(in_process):
    test = create(variants={0: "Blue", 1: "Green", 2: "Red"})
    ranking = services.recommend(
        str(test.id), context={}, request_id="ranked", settings_in_force=config.known(), ranked=True
    ).ranking
    assert ranking is not None
    first, second = ranking[0][0], ranking[1][0]
    reward_in_process(
        test,
        entry(0, 0.25, request_id="ranked", variant=second),
        entry(1, 1.0, request_id="ranked", variant=first),
    )
    decision_log.move_all()
    [record] = decision_log.records(test, None, None)
    assert record["variant_id"] == first and record["reward"] == 1.0
    assert record["ranking"] == [variant for variant, _ in ranking]
    assert LoggedReward.objects.filter(test=test).count() == 1


def test_no_log_when_it_is_turned_off(in_process, settings):
    settings.SCOUT_DECISION_LOG_DAYS = 0
    test = create()
    decide(test, "visit-1")
    reward_in_process(test, entry(0, 1.0, request_id="visit-1"))
    assert not in_process.exists(keys.log(str(test.id)))


# --- Off-policy evaluation ------------------------------------------------------------------


def evaluation(api: httpx.Client, test_id: str, **params: str) -> dict[str, Any]:
    response = api.get(f"/api/evaluation/{test_id}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_evaluation_estimates_each_policy_from_the_log(api, make_test):
    """Uniform decisions; variant 2 always earns 1, the others 0. Self-normalised IPS weighs
    only the decisions a policy would have made, so it is exact here; IPS is unbiased."""
    test_id = make_test(variants=THREE, **UNIFORM)["cb_model_id"]
    earned = []
    for i in range(300):
        answer = fetch(api, test_id, request_id=f"e-{i}", context={"device": "mobile"})
        earned.append(float(answer["variant_id"] == 2))
        reward(api, test_id, {"request_id": f"e-{i}", "reward": earned[-1]})
    assert api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 0}).is_success
    for i in range(20):  # rolled out: left out of the evaluation
        fetch(api, test_id, request_id=f"rolled-{i}")
        reward(api, test_id, {"request_id": f"rolled-{i}", "reward": 0.0})
    logged(api, test_id, 320, 320)
    result = evaluation(api, test_id)
    assert result["decisions"] == 300
    by_name = {(p["policy"], p.get("variant_id")): p for p in result["policies"]}
    as_run = by_name[("as_run", None)]
    assert as_run["snips"]["value"] == pytest.approx(sum(earned) / 300)
    assert as_run["ips"]["value"] == pytest.approx(sum(earned) / 300)
    assert as_run["doubly_robust"] is None
    assert by_name[("variant", 2)]["snips"]["value"] == pytest.approx(1.0)
    assert by_name[("variant", 0)]["snips"]["value"] == pytest.approx(0.0)
    assert by_name[("greedy", None)]["snips"]["value"] == pytest.approx(1.0)
    for name, truth in [(("variant", 2), 1.0), (("uniform", None), 1 / 3), (("greedy", None), 1.0)]:
        for estimator in ("ips", "doubly_robust"):
            estimate = by_name[name][estimator]
            half = (estimate["high"] - estimate["low"]) / 2
            assert estimate["low"] <= estimate["value"] <= estimate["high"]
            assert abs(estimate["value"] - truth) <= 2 * half + 1e-9, (name, estimator, estimate)
    # Doubly robust with a model that learned the rewards is nearly exact.
    assert by_name[("variant", 2)]["doubly_robust"]["value"] == pytest.approx(1.0, abs=0.05)
    assert evaluation(api, test_id, **{"from": "2999-01-01T00:00:00Z"})["decisions"] == 0
    # Replayed with the Test's minimum of rewards, every setting stays uniform: one row.
    assert result["replay_skipped"] is None
    [replayed] = [p for p in result["policies"] if p["policy"] == "replay"]
    assert len(replayed["settings"]) == 12 and replayed["as_configured"]
    assert replayed["snips"] == by_name[("uniform", None)]["snips"]


def test_evaluation_replays_the_learning_settings_on_the_log(api, make_test):
    """Decisions of a Test without a context; variant 2 always earns 1, the others 0. Every
    replayed setting learns that from the log, and would have earned far more than a split."""
    variants = {str(i): f"V{i}" for i in range(5)}
    test_id = make_test(variants=variants, minimum_update_requests=20)["cb_model_id"]
    for i in range(400):
        answer = fetch(api, test_id, request_id=f"r-{i}")
        reward(api, test_id, {"request_id": f"r-{i}", "reward": float(answer["variant_id"] == 2)})
    logged(api, test_id, 400, 400)
    result = evaluation(api, test_id)
    assert result["replay_skipped"] is None
    replays = [p for p in result["policies"] if p["policy"] == "replay"]
    named = [(s["sampling"], s["prior"], s["forgetting"]) for p in replays for s in p["settings"]]
    assert sorted(named) == sorted(
        (sampling, prior, forgetting)
        for sampling in ("focused", "optimistic", "standard")
        for prior in ("pooled", "flat")
        for forgetting in ("on_change", "never")
    )
    [configured] = [p for p in replays if p["as_configured"]]
    configured_setting = {"sampling": "focused", "prior": "pooled", "forgetting": "on_change"}
    assert configured_setting in configured["settings"]
    for replayed in replays:
        assert replayed["description"].endswith(("replayed on the log.", "alike here)."))
        for estimator in ("ips", "snips", "doubly_robust"):
            assert replayed[estimator]["value"] > 0.5, replayed  # a plain split earns 0.2


def test_evaluation_replays_a_contextual_test_on_each_decisions_context(api, make_test):
    """Two segments, each with its own best variant: a replay learns which variant each
    segment calls for, from the log, and would earn far more than a plain split's 0.5."""
    test_id = make_test(variants={"0": "A", "1": "B"}, minimum_update_requests=20)["cb_model_id"]
    for i in range(400):
        segment = "north" if i % 2 else "south"
        answer = fetch(api, test_id, request_id=f"c-{i}", context={"segment": segment})
        earned = float(answer["variant_id"] == (1 if segment == "north" else 0))
        reward(api, test_id, {"request_id": f"c-{i}", "reward": earned})
    logged(api, test_id, 400, 400)
    result = evaluation(api, test_id)
    assert result["replay_skipped"] is None
    replays = [p for p in result["policies"] if p["policy"] == "replay"]
    # No prior and no forgetting for a contextual model: a row per sampling rule at most.
    assert 1 <= len(replays) <= 3
    assert sorted(s["sampling"] for p in replays for s in p["settings"]) == sorted(
        ["focused", "optimistic", "standard"] * 4
    )
    for replayed in replays:
        for estimator in ("ips", "snips", "doubly_robust"):
            assert replayed[estimator]["value"] > 0.75, replayed


def test_evaluation_refuses_bad_queries(api, make_test):
    test_id = make_test()["cb_model_id"]
    empty = evaluation(api, test_id)
    assert empty["decisions"] == 0 and all(p["ips"] is None for p in empty["policies"])
    assert api.get(f"/api/evaluation/{test_id}", params={"to": "soon"}).status_code == 400
    assert api.get("/api/evaluation/00000000-0000-4000-8000-000000000000").status_code == 404


# --- The winner -----------------------------------------------------------------------------


def test_a_winner_is_named_once_it_is_likely_enough_over_enough_rewards(backends):
    server = ScoutServer.dedicated(
        backends, "winner", extra_env={"SCOUT_WINNER_MINIMUM_REWARDS": "100"}
    ).start()
    try:
        with server.client() as client:
            test_id = client.post(
                "/api/create_model", json={"name": "winner", "variants": THREE, **UNIFORM}
            ).json()["cb_model_id"]
            # Variant 1 converts at 60%, the others at 10%, 30 rewards each: not enough yet.
            updates = [
                {"variant_id": v, "reward": float(i < (18 if v == 1 else 3))}
                for v in (0, 1, 2)
                for i in range(30)
            ]
            reward(client, test_id, *updates)
            assert details(client, test_id)["winner"] is None  # 90 rewards of the 100 needed
            reward(client, test_id, *updates)
            time.sleep(1.5)  # every worker's snapshot has learned them
            winner = details(client, test_id)["winner"]
            assert winner is not None
            assert (winner["variant_id"], winner["variant_label"]) == (1, "B")
            assert winner["probability_best"] >= 0.95 and winner["rewards"] == 180
    finally:
        server.stop()


def test_no_winner_while_the_variants_are_alike(api, make_test):
    test_id = make_test(variants=THREE, **UNIFORM)["cb_model_id"]
    for _ in range(2):
        reward(api, test_id, *({"variant_id": i % 3, "reward": float(i % 2)} for i in range(600)))
    assert details(api, test_id)["winner"] is None


def test_a_reward_for_a_decision_the_log_does_not_hold_is_not_logged(in_process):
    test = create()
    reward_in_process(
        test, entry(0, 1.0, request_id="never-decided", variant=1, context={"a": "b"}, inline=True)
    )
    assert not in_process.exists(keys.log(str(test.id)))


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    """Run `work` on a connection of its own, as another worker would; answer the thread and
    where an exception it raised ends up."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the test, which fails on it
            errors.append(exc)
        finally:
            db.connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.skipif(
    db.connection.vendor == "sqlite", reason="SQLite runs one writing transaction at a time"
)
def test_a_test_deleted_while_its_log_is_written_keeps_no_rows_and_neither_side_fails(
    in_process, transactional_db, monkeypatch
):
    first = create()
    for i in range(3):
        decide(first, f"visit-{i}")
    found = log.read([str(first.id)], 100)

    # The writer has checked that the Test exists, and not yet written: the deletion waits.
    checked, go_on = threading.Event(), threading.Event()
    lock_existing = decision_log.lock_existing

    def check_then_pause(test_ids: list[str]) -> list[Any]:
        existing = lock_existing(test_ids)
        checked.set()
        go_on.wait(10)
        return existing

    monkeypatch.setattr(decision_log, "lock_existing", check_then_pause)
    writer, writer_errors = _in_thread(lambda: decision_log._write(found))
    assert checked.wait(10)
    deleter, deleter_errors = _in_thread(lambda: services.delete_test(str(first.id)))
    deleter.join(0.5)
    assert deleter.is_alive()
    go_on.set()
    writer.join(10), deleter.join(10)
    assert writer_errors == deleter_errors == []
    assert not Test.objects.filter(pk=first.id).exists()
    assert not LoggedDecision.objects.filter(test_id=first.id).exists()

    # The deletion has locked the Test: the writer waits, then finds it gone.
    monkeypatch.setattr(decision_log, "lock_existing", lock_existing)
    second = create()
    decide(second, "visit-0")
    found = log.read([str(second.id)], 100)
    with transaction.atomic():
        Test.objects.select_for_update().get(pk=second.id)
        writer, writer_errors = _in_thread(lambda: decision_log._write(found))
        writer.join(0.5)
        assert writer.is_alive()
        services.delete_test(str(second.id))
    writer.join(10)
    assert writer_errors == []
    assert not LoggedDecision.objects.filter(test_id=second.id).exists()
