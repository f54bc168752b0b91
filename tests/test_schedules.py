"""Schedules over HTTP: a Test that waits for its start, starts and ends on time, does what
`on_end` says, fires each once across two hosts and after a restart that missed both, and
refuses schedules that cannot run.

The module runs on backends of its own, so that only its servers fire its schedules and send
their webhooks.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import details, fetch, reward
from tests.live import ADMIN, Backends, ScoutServer
from tests.test_webhooks import SENDER, Receiver

FAST = {**SENDER, "SCOUT_SCHEDULE_CHECK_SECONDS": "0.5"}
# How late a start or an end may fire: the check's interval and a worker's turn, with room
# for a slow machine.
ON_TIME_SECONDS = 3.0


def moment(seconds_from_now: float) -> str:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parsed(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def wait_until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def own_backends() -> Iterator[Backends]:
    backends = Backends()
    yield backends
    backends.cleanup()


@pytest.fixture(scope="module")
def scout(own_backends: Backends) -> Iterator[ScoutServer]:
    server = ScoutServer(own_backends, extra_env={**ADMIN.env(), **FAST}).start()
    yield server
    server.stop()


@pytest.fixture
def api(scout: ScoutServer) -> Iterator[httpx.Client]:
    with scout.client() as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    opened = Receiver()
    yield opened
    opened.close()


def subscribe(server: ScoutServer, url: str) -> tuple[int, str]:
    with server.client(auth=ADMIN.credentials) as staff:
        made = staff.post(
            "/admin/webhooks", json={"url": url, "events": ["TEST_STARTED", "TEST_ENDED"]}
        )
        assert made.status_code == 201, made.text
        return made.json()["id"], made.json()["secret"]


def unsubscribe(server: ScoutServer, hook_id: int) -> None:
    with server.client(auth=ADMIN.credentials) as staff:
        assert staff.post(f"/admin/webhooks/{hook_id}/delete").status_code == 200


def create(api: httpx.Client, **fields: Any) -> str:
    body = {"name": "Weekend campaign", "variants": {"0": "Control", "1": "Bold"}, **fields}
    response = api.post("/api/create_model", json=body)
    assert response.status_code == 200, response.text
    return response.json()["cb_model_id"]


def test_a_test_waits_for_its_start_serving_its_first_variant_and_learning_nothing(api, scout):
    starts = moment(4)
    test_id = create(api, starts_at=starts, variants={"3": "Control", "5": "Bold", "9": "New"})
    info = details(api, test_id)
    assert info["schedule"] == "scheduled" and info["is_active"] is False
    assert info["started_at"] is None and parsed(info["starts_at"]) == parsed(starts)
    assert info["global_variant_rollout"] is None  # no operator's rollout: the schedule's wait
    for i in range(20):
        decision = fetch(api, test_id, request_id=f"early-{i}")
        assert decision["variant_id"] == 3 and decision["is_global_rollout"] is True
    early = reward(api, test_id, *[{"request_id": f"early-{i}", "reward": 1} for i in range(5)])
    assert early["processed_updates"] == 0
    assert len(early["errors"]) == 5 and "not started" in early["errors"][0]["reason"]
    assert details(api, test_id)["total_updates"] == 0

    wait_until(lambda: details(api, test_id)["schedule"] == "running")
    info = details(api, test_id)
    late = (parsed(info["started_at"]) - parsed(starts)).total_seconds()
    assert 0 <= late <= ON_TIME_SECONDS, info
    assert info["is_active"] is True and info["global_variant_rollout"] is None
    # Every worker serves the started Test from then on: decisions on new connections.
    served = []
    for _ in range(60):
        with scout.client() as fresh:
            decision = fetch(fresh, test_id)
        assert decision["is_global_rollout"] is False, decision
        served.append(decision["variant_id"])
    assert set(served) == {3, 5, 9}  # uniform choices among all three, from the start on
    counted = reward(api, test_id, {"variant_id": 5, "reward": 1})
    assert counted["processed_updates"] == 1


def test_a_start_that_is_not_in_the_future_starts_the_test_as_it_is_created(api, scout, receiver):
    hook_id, secret = subscribe(scout, receiver.url)
    try:
        test_id = create(api, starts_at=moment(-60))
        info = details(api, test_id)
        assert info["schedule"] == "running" and info["is_active"] is True
        assert parsed(info["started_at"]) > parsed(info["starts_at"])
        assert fetch(api, test_id)["is_global_rollout"] is False
        assert reward(api, test_id, {"variant_id": 0, "reward": 1})["processed_updates"] == 1
        assert events_about(receiver, secret, [test_id], 1) == [("TEST_STARTED", test_id)]
    finally:
        unsubscribe(scout, hook_id)


def test_an_operator_may_roll_out_before_the_start_and_clear_it_back_to_the_wait(api):
    test_id = create(api, starts_at=moment(3600), variants={"0": "A", "1": "B", "2": "C"})
    assert api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 1}).is_success
    assert fetch(api, test_id)["variant_id"] == 1
    assert api.post(f"/api/clear_global_variant/{test_id}").is_success
    decision = fetch(api, test_id)
    assert decision["variant_id"] == 0 and decision["is_global_rollout"] is True
    assert details(api, test_id)["is_active"] is False
    retire = api.post(f"/api/retire_variant/{test_id}", json={"variant": 0})
    assert retire.status_code == 400 and "until the Test starts" in retire.json()["detail"]


@pytest.mark.parametrize(
    ("on_end", "rolled_out"),
    [("keep", None), ("rollout_best", 1), ("Control", 0), (1, 1)],
)
def test_at_its_end_a_test_does_what_on_end_says(api, scout, receiver, on_end, rolled_out):
    hook_id, secret = subscribe(scout, receiver.url)
    try:
        ends = moment(4)
        test_id = create(api, ends_at=ends, on_end=on_end, minimum_update_requests=1)
        info = details(api, test_id)
        assert info["schedule"] == "running" and info["is_active"] is True
        assert info["on_end"] == (on_end if on_end in ("keep", "rollout_best") else rolled_out)
        # Bold converts, Control does not: the best is variant 1.
        updates = [{"variant_id": 1, "reward": 1}] * 40 + [{"variant_id": 0, "reward": 0}] * 40
        assert reward(api, test_id, *updates)["processed_updates"] == 80

        wait_until(lambda: details(api, test_id)["schedule"] == "ended")
        info = details(api, test_id)
        late = (parsed(info["ended_at"]) - parsed(ends)).total_seconds()
        assert 0 <= late <= ON_TIME_SECONDS, info
        assert info["global_variant_rollout"] == rolled_out
        assert info["is_active"] is (rolled_out is None)
        if rolled_out is not None:
            assert {fetch(api, test_id)["variant_id"] for _ in range(10)} == {rolled_out}
        assert events_about(receiver, secret, [test_id], 1) == [("TEST_ENDED", test_id)]
        [ended] = [p for p in receiver.payloads(secret) if p["data"]["test_id"] == test_id]
        assert ended["data"]["by"] == "schedule"
        assert ended["data"]["on_end"] == (
            on_end if on_end in ("keep", "rollout_best") else "variant"
        )
        assert ended["data"].get("variant_id") == rolled_out
    finally:
        unsubscribe(scout, hook_id)


def test_retiring_the_variant_to_roll_out_at_the_end_is_refused(api):
    test_id = create(
        api, ends_at=moment(3600), on_end="Bold", variants={"0": "A", "1": "Bold", "2": "C"}
    )
    refused = api.post(f"/api/retire_variant/{test_id}", json={"variant": "Bold"})
    assert refused.status_code == 400 and "on_end" in refused.json()["detail"]
    assert api.post(f"/api/retire_variant/{test_id}", json={"variant": "C"}).is_success


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"ends_at": "2001-01-01T00:00:00Z"}, "not in the future"),
        ({"starts_at": "+01:00", "ends_at": None}, "ISO 8601"),
        ({"starts_at": 1767225600}, "ISO 8601"),
        ({"starts_at": "2027-02-30T00:00:00Z"}, "ISO 8601"),
        ({"starts_at": "next friday"}, "ISO 8601"),
        ({"on_end": "rollout_best"}, "needs an ends_at"),
        ({"on_end": "b"}, "on_end 'b' needs an ends_at"),
        ({"on_end": "Nope", "ends_at": "2099-01-01T00:00:00Z"}, "not a variant"),
        ({"on_end": 7, "ends_at": "2099-01-01T00:00:00Z"}, "not a variant"),
        ({"on_end": True, "ends_at": "2099-01-01T00:00:00Z"}, "on_end must be"),
        ({"on_end": None, "ends_at": "2099-01-01T00:00:00Z"}, "on_end must be"),
    ],
)
def test_a_schedule_that_cannot_run_is_refused_and_nothing_is_created(api, fields, says):
    before = len(api.get("/api/models").json())
    body = {"name": "Refused", "variants": {"0": "a", "1": "b"}, **fields}
    response = api.post("/api/create_model", json=body)
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"], response.json()
    assert len(api.get("/api/models").json()) == before


def test_an_end_not_after_the_start_is_refused(api):
    body = {
        "name": "Backwards",
        "variants": {"0": "a", "1": "b"},
        "starts_at": "2099-01-02T00:00:00+02:00",
        "ends_at": "2099-01-01T22:00:00Z",  # the same moment
    }
    response = api.post("/api/create_model", json=body)
    assert response.status_code == 400 and "must be after starts_at" in response.json()["detail"]


def test_a_moment_without_an_offset_is_utc_and_one_with_an_offset_is_converted(api):
    test_id = create(api, starts_at="2099-06-01T12:00:00", ends_at="2099-06-02T12:00:00+02:00")
    info = details(api, test_id)
    assert info["starts_at"] == "2099-06-01T12:00:00.000Z"
    assert info["ends_at"] == "2099-06-02T10:00:00.000Z"


def started_and_ended(receiver: Receiver, secret: str, test_ids: list[str]) -> list[tuple]:
    """The schedule events received about these Tests, in the order received."""
    return [
        (p["type"], p["data"]["test_id"])
        for p in receiver.payloads(secret)
        if p["data"].get("test_id") in test_ids
    ]


def events_about(receiver: Receiver, secret: str, test_ids: list[str], count: int) -> list[tuple]:
    """Wait for `count` events about these Tests, then for anything that would come twice."""
    wait_until(lambda: len(started_and_ended(receiver, secret, test_ids)) >= count, 30.0)
    time.sleep(1.5)
    return started_and_ended(receiver, secret, test_ids)


def test_starts_and_ends_fire_once_across_two_hosts(own_backends, scout, receiver, tmp_path):
    # The second host uses the first one's database and Redis, embedded ones included.
    shared = {}
    if own_backends.database_url is None:
        shared["DATABASE_URL"] = f"sqlite:///{scout.data_dir / 'scout.sqlite3'}"
    if own_backends.embedded:
        shared["REDIS_URL"] = f"unix://{scout.data_dir / 'redis.sock'}"
    second = ScoutServer(own_backends, data_dir=tmp_path / "b", extra_env={**FAST, **shared})
    second.env.update(shared)
    second.start()
    hook_id, secret = subscribe(scout, receiver.url)
    try:
        with scout.client() as a:
            test_ids = [
                create(a, name=f"Both hosts {i}", starts_at=moment(3), ends_at=moment(5))
                for i in range(6)
            ]
        fired = events_about(receiver, secret, test_ids, 2 * len(test_ids))
        for test_id in test_ids:
            assert fired.count(("TEST_STARTED", test_id)) == 1, fired
            assert fired.count(("TEST_ENDED", test_id)) == 1, fired
            assert fired.index(("TEST_STARTED", test_id)) < fired.index(("TEST_ENDED", test_id))
        with second.client() as b:
            assert {details(b, t)["schedule"] for t in test_ids} == {"ended"}
    finally:
        unsubscribe(scout, hook_id)
        second.stop()


def test_a_start_and_an_end_missed_while_scout_was_down_fire_once_it_is_back(scout, receiver):
    hook_id, secret = subscribe(scout, receiver.url)
    try:
        with scout.client() as api:
            test_id = create(api, starts_at=moment(2), ends_at=moment(4), on_end="rollout_best")
        scout.stop()
        time.sleep(5.0)  # both moments pass while no host is up
        back_at = dt.datetime.now(dt.UTC)
        scout.start()
        with scout.client() as api:
            wait_until(lambda: details(api, test_id)["schedule"] == "ended")
            info = details(api, test_id)
        assert parsed(info["started_at"]) >= back_at and parsed(info["ended_at"]) >= back_at
        assert info["global_variant_rollout"] in (0, 1)
        fired = events_about(receiver, secret, [test_id], 2)
        assert fired == [("TEST_STARTED", test_id), ("TEST_ENDED", test_id)]
    finally:
        unsubscribe(scout, hook_id)
