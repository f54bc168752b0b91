"""A Test's metric history over HTTP: the metrics listed, series that add up to the traffic
sent, the step of each length of range, bad ranges refused, the history read back after Redis
lost its data, and the endpoints protected like the rest of /api/. In this process: series
over snapshots days old, and totals that went back.

The module's server is its own (protection is switched on here), with a history snapshot due
every second.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bandit import history
from bandit.models import MetricSnapshot
from tests.conftest import details, fetch, reward
from tests.live import ADMIN, Backends, ScoutServer
from tests.test_services import create

FAST = {"SCOUT_CHECKPOINT_SECONDS": "0.5", "SCOUT_HISTORY_SECONDS": "1"}
METRICS = ["predictions", "rewards", "mean_reward", "traffic_share"]


@pytest.fixture(scope="module")
def scout(backends: Backends) -> Iterator[ScoutServer]:
    server = ScoutServer.dedicated(backends, "history", extra_env=FAST).start()
    yield server
    server.stop()


@pytest.fixture
def api(scout: ScoutServer) -> Iterator[httpx.Client]:
    with scout.client() as client:
        yield client


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def series(api: httpx.Client, test_id: str, metric: str, **query: str) -> dict[str, Any]:
    response = api.get(f"/api/metrics/{test_id}/{metric}", params=query)
    assert response.status_code == 200, response.text
    return response.json()


def total(body: dict[str, Any], variant: str) -> float:
    return sum(value or 0 for _, value in body["series"][variant])


def traffic(api: httpx.Client, test_id: str) -> dict[int, list[int]]:
    """60 decisions, and a reward of 1 for every third of them: answers each variant's
    (decisions, rewards, reward sum)."""
    sent: dict[int, list[int]] = {0: [0, 0, 0], 1: [0, 0, 0]}
    updates = []
    for i in range(60):
        variant = fetch(api, test_id, request_id=f"h-{i}")["variant_id"]
        sent[variant][0] += 1
        if i % 2 == 0:
            updates.append({"request_id": f"h-{i}", "reward": 1 if i % 3 == 0 else 0})
            sent[variant][1] += 1
            sent[variant][2] += 1 if i % 3 == 0 else 0
    assert reward(api, test_id, *updates)["processed_updates"] == len(updates)
    return sent


def wait_for_history(api: httpx.Client, test_id: str, decisions: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = series(api, test_id, "predictions")
        if sum(total(body, v) for v in body["series"]) >= decisions:
            return body
        time.sleep(0.3)
    raise AssertionError(f"the history never reached {decisions} decisions: {body}")


def test_the_metrics_are_listed(api, make_test):
    test_id = make_test()["cb_model_id"]
    response = api.get(f"/api/metrics/{test_id}")
    assert response.status_code == 200
    body = response.json()
    assert [m["name"] for m in body["metrics"]] == METRICS
    assert all(m["description"] for m in body["metrics"])
    assert body["longest_range_days"] == 14 and body["kept_days"] >= 14


def test_series_add_up_to_the_traffic_sent(api, make_test):
    test_id = make_test(minimum_update_requests=1_000_000)["cb_model_id"]
    sent = traffic(api, test_id)
    body = wait_for_history(api, test_id, 60)
    assert body["metric"] == "predictions" and body["step_seconds"] == 60
    assert set(body["series"]) == {"0", "1"}
    for variant in (0, 1):
        assert total(body, str(variant)) == sent[variant][0]
    deadline = time.monotonic() + 10
    while (
        total(series(api, test_id, "rewards"), "0") + total(series(api, test_id, "rewards"), "1")
        < 30
        and time.monotonic() < deadline
    ):
        time.sleep(0.3)
    rewards = series(api, test_id, "rewards")
    for variant in (0, 1):
        assert total(rewards, str(variant)) == sent[variant][1]
    # All in the last minute or two: the means and shares of those steps are the traffic's.
    means = series(api, test_id, "mean_reward")
    shares = series(api, test_id, "traffic_share")
    for variant in ("0", "1"):
        rewarded = [v for v in rewards["series"][variant] if v[1]]
        for (moment, value), (_, count) in zip(
            means["series"][variant], rewards["series"][variant], strict=True
        ):
            assert (value is None) == (count == 0), (moment, value, count)
        if rewarded:
            weighted = sum(
                (m[1] or 0) * r[1]
                for m, r in zip(means["series"][variant], rewards["series"][variant], strict=True)
            )
            assert weighted == pytest.approx(sent[int(variant)][2])
    for i, (moment, share) in enumerate(shares["series"]["0"]):
        other = shares["series"]["1"][i][1]
        if share is None:
            assert other is None
        else:
            assert share + other == pytest.approx(1.0), moment


@pytest.mark.parametrize(
    ("length", "step"),
    [
        (dt.timedelta(minutes=30), 60),
        (dt.timedelta(minutes=60), 60),
        (dt.timedelta(minutes=61), 120),
        (dt.timedelta(hours=3), 120),
        (dt.timedelta(hours=6), 300),
        (dt.timedelta(hours=12), 300),
        (dt.timedelta(days=1), 600),
        (dt.timedelta(days=3), 1800),
        (dt.timedelta(days=7), 3600),
        (dt.timedelta(days=14), 7200),
    ],
)
def test_each_length_of_range_has_its_step(api, make_test, length, step):
    test_id = make_test()["cb_model_id"]
    end = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    body = series(api, test_id, "rewards", **{"from": stamp(end - length), "to": stamp(end)})
    assert body["step_seconds"] == step
    points = body["series"]["0"]
    # Steps are aligned to the epoch: the first holds `from`, the last the moment before `to`.
    first = dt.datetime.fromisoformat(points[0][0])
    last = dt.datetime.fromisoformat(points[-1][0])
    assert first <= end - length < first + dt.timedelta(seconds=step)
    assert last < end <= last + dt.timedelta(seconds=step)
    assert all(value == 0 for _, value in points)
    gaps = {
        (dt.datetime.fromisoformat(b[0]) - dt.datetime.fromisoformat(a[0])).total_seconds()
        for a, b in zip(points, points[1:], strict=False)
    }
    assert gaps <= {float(step)}


def test_a_range_that_is_not_aligned_gets_the_steps_that_cover_it(api, make_test):
    test_id = make_test()["cb_model_id"]
    query = {"from": "2026-11-30T10:00:30Z", "to": "2026-11-30T10:30:00Z"}
    points = series(api, test_id, "predictions", **query)["series"]["1"]
    assert points[0][0] == "2026-11-30T10:00:00.000Z" and len(points) == 30


def test_an_offset_sent_unencoded_in_the_query_string_is_read_as_one(api, make_test):
    test_id = make_test()["cb_model_id"]
    # A `+` left as it is in a URL arrives as a space.
    query = "from=2026-11-30T10:00:00+01:00&to=2026-11-30T10:30:00%2B01:00"
    response = api.get(f"/api/metrics/{test_id}/predictions?{query}")
    assert response.status_code == 200, response.text
    assert response.json()["from"] == "2026-11-30T09:00:00.000Z"
    assert response.json()["to"] == "2026-11-30T09:30:00.000Z"


@pytest.mark.parametrize(
    ("path", "query", "status", "says"),
    [
        (
            "predictions",
            {"from": "2026-11-01T00:00:00Z", "to": "2026-11-15T00:00:01Z"},
            400,
            "at most 14 days",
        ),
        (
            "predictions",
            {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
            400,
            "must be before",
        ),
        ("predictions", {"from": "yesterday"}, 400, "ISO 8601"),
        ("clicks", {}, 404, "No metric 'clicks'"),
    ],
)
def test_bad_ranges_and_unknown_metrics_are_refused(api, make_test, path, query, status, says):
    test_id = make_test()["cb_model_id"]
    response = api.get(f"/api/metrics/{test_id}/{path}", params=query)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]


def test_an_unknown_test_is_a_404(api):
    for path in ("", "/predictions"):
        response = api.get(f"/api/metrics/6b1c9f7e-0000-4000-8000-000000000000{path}")
        assert response.status_code == 404 and "not found" in response.json()["detail"]


def test_the_history_is_read_back_after_redis_lost_its_data(scout, api, make_test):
    test_id = make_test(minimum_update_requests=1_000_000)["cb_model_id"]
    sent = traffic(api, test_id)
    before = wait_for_history(api, test_id, 60)
    redis = scout.backends.redis(scout.data_dir)
    prefix = scout.env["SCOUT_REDIS_KEY_PREFIX"]
    lost = list(redis.scan_iter(match=f"{prefix}:*", count=1000))
    assert lost
    redis.delete(*lost)
    assert series(api, test_id, "predictions")["series"] == before["series"]
    # Refilled from its checkpoint on the next request, the Test goes on counting from there.
    assert details(api, test_id)["total_predictions"] == 60
    fetch(api, test_id, request_id="after-the-loss")
    after = wait_for_history(api, test_id, 61)
    assert sum(total(after, v) for v in after["series"]) == 61
    assert total(after, "0") + total(after, "1") == sent[0][0] + sent[1][0] + 1


def test_the_history_is_protected_like_the_api(scout):
    with scout.client(auth=ADMIN.credentials) as staff, scout.client() as anonymous:
        test_id = anonymous.post(
            "/api/create_model", json={"name": "Guarded history", "variants": {"0": "a", "1": "b"}}
        ).json()["cb_model_id"]
        token = staff.post("/admin/generate_token").json()["auth_token"]
        assert staff.post("/admin/set_protection", json={"protected_api": True}).is_success
        try:
            time.sleep(1.0)  # every worker sees the change
            for path in (f"/api/metrics/{test_id}", f"/api/metrics/{test_id}/rewards"):
                assert anonymous.get(path).status_code == 401
                bearer = {"Authorization": f"Bearer {token}"}
                assert anonymous.get(path, headers=bearer).status_code == 200
        finally:
            staff.post("/admin/set_protection", json={"protected_api": False})


# --- In this process ------------------------------------------------------------------------


def snapshot(test_id: str, at: dt.datetime, totals: dict[str, list[float]]) -> None:
    MetricSnapshot.objects.create(test_id=test_id, taken_at=at, totals=totals)


def test_a_fortnight_of_snapshots_makes_two_hour_steps(in_process):
    test = create(name="Old")
    end = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    start = end - dt.timedelta(days=14)
    snapshot(test.id, start - dt.timedelta(days=1), {"0": [100, 10, 5.0]})  # the base
    snapshot(test.id, start + dt.timedelta(minutes=30), {"0": [130, 20, 9.0], "1": [5, 5, 5.0]})
    snapshot(test.id, start + dt.timedelta(hours=1), {"0": [150, 30, 10.0], "1": [5, 5, 5.0]})
    snapshot(test.id, end - dt.timedelta(minutes=1), {"0": [160, 40, 10.0], "1": [45, 5, 5.0]})
    snapshot(test.id, end, {"0": [999, 99, 99.0]})  # outside: `to` is excluded
    body = history.series(test, "predictions", start, end)
    assert body["step_seconds"] == 7200 and len(body["series"]["0"]) == 168
    assert body["series"]["0"][0][1] == 50 and body["series"]["1"][0][1] == 5
    assert body["series"]["0"][-1][1] == 10 and body["series"]["1"][-1][1] == 40
    assert sum(v for _, v in body["series"]["0"]) == 60
    mean = history.series(test, "mean_reward", start, end)["series"]["0"]
    assert mean[0][1] == pytest.approx(5.0 / 20) and mean[1][1] is None
    share = history.series(test, "traffic_share", start, end)["series"]
    assert share["0"][-1][1] == pytest.approx(10 / 50) and share["1"][-1][1] == pytest.approx(0.8)


def test_totals_that_went_back_count_from_zero_and_history_without_a_base_starts_later(
    in_process,
):
    test = create(name="Reset")
    MetricSnapshot.objects.filter(test=test).delete()  # as for a Test made before history
    start = dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC)
    snapshot(test.id, start + dt.timedelta(minutes=1), {"0": [500, 50, 20.0]})  # the base
    snapshot(test.id, start + dt.timedelta(minutes=2), {"0": [510, 55, 21.0]})
    snapshot(test.id, start + dt.timedelta(minutes=3), {"0": [4, 1, 1.0]})  # Redis emptied
    body = history.series(test, "predictions", start, start + dt.timedelta(minutes=10))
    assert [v for _, v in body["series"]["0"]][:4] == [0, 0, 10, 4]
