"""`/logs/stream`: every worker's structured logs, live over Server-Sent Events, for staff."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import redis

from tests.live import Backends, ScoutServer

HEARTBEAT = 0.5
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass
class Staff:
    server: ScoutServer
    auth: tuple[str, str]
    viewer: tuple[str, str]  # a user without staff rights


@pytest.fixture(scope="module")
def logs(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Staff]:
    scout = ScoutServer(
        backends,
        workers=3,
        data_dir=tmp_path_factory.mktemp("logs"),
        extra_env={"SCOUT_LOG_STREAM_HEARTBEAT_SECONDS": str(HEARTBEAT)},
    ).start()
    suffix = uuid.uuid4().hex[:8]
    staff = ("ops-" + suffix, "staff-pass-1")
    viewer = ("viewer-" + suffix, "viewer-pass-1")
    scout.create_user(*staff, staff=True)
    scout.create_user(*viewer, staff=False)
    yield Staff(scout, staff, viewer)
    scout.stop()


@dataclass
class Event:
    id: str | None
    data: dict | None
    comment: str | None = None


def events(response: httpx.Response) -> Iterator[Event]:
    """Parse an SSE body: yields each event and each comment line."""
    event_id, data = None, []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield Event(None, None, line[1:].strip())
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            yield Event(event_id, json.loads("\n".join(data)))
            event_id, data = None, []


@contextmanager
def stream(staff: Staff, **params: str) -> Iterator[Iterator[Event]]:
    headers = {}
    if "last_event_id_header" in params:
        headers["Last-Event-ID"] = params.pop("last_event_id_header")
    with httpx.stream(
        "GET",
        f"{staff.server.url}/logs/stream",
        params=params,
        headers=headers,
        auth=staff.auth,
        timeout=httpx.Timeout(10.0),
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield events(response)


def until(source: Iterator[Event], predicate, *, seconds: float = 20.0) -> list[Event]:
    """Events (not comments) read until one satisfies `predicate`, that one included."""
    seen: list[Event] = []
    deadline = time.monotonic() + seconds
    for event in source:
        if time.monotonic() > deadline:
            break
        if event.data is None:
            continue
        seen.append(event)
        if predicate(event):
            return seen
    pytest.fail(f"the awaited event never came; saw {[e.data['message'] for e in seen]}")


def create(server: ScoutServer, name: str) -> str:
    """Create a Test over a fresh connection (so that any worker may answer)."""
    response = httpx.post(
        f"{server.url}/api/create_model",
        json={"name": name, "variants": {"0": "a", "1": "b"}},
        headers={"Connection": "close"},
    )
    assert response.status_code == 200
    return response.json()["cb_model_id"]


def test_stream_is_for_staff_only(logs):
    url = f"{logs.server.url}/logs/stream"
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert anonymous.json()["detail"]
    assert httpx.get(url, auth=(logs.auth[0], "wrong")).status_code == 401
    not_staff = httpx.get(url, auth=logs.viewer, headers={"Accept": "text/event-stream"})
    assert not_staff.status_code == 403
    assert not_staff.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("params", "headers", "message"),
    [
        ({"level": "loud"}, {}, "level must be one of"),
        ({}, {"Last-Event-ID": "yesterday"}, "Last-Event-ID"),
        ({"last_event_id": "1-2-3"}, {}, "Last-Event-ID"),
    ],
)
def test_bad_parameters_are_a_json_400(logs, params, headers, message):
    response = httpx.get(
        f"{logs.server.url}/logs/stream", params=params, headers=headers, auth=logs.auth
    )
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_stream_shows_other_workers_logs_as_json_entries(logs):
    created: list[str] = []
    stop = threading.Event()

    def make_tests() -> None:
        while not stop.is_set() and len(created) < 100:
            created.append(create(logs.server, f"streamed-{len(created)}"))
            time.sleep(0.02)

    with stream(logs) as source:
        opened = until(source, lambda e: e.data["message"] == "Log stream opened")[-1].data
        assert opened["user"] == logs.auth[0]
        stream_pid = opened["pid"]
        maker = threading.Thread(target=make_tests)
        maker.start()
        try:
            seen = until(
                source,
                lambda e: e.data["message"] == "Test created" and e.data["pid"] != stream_pid,
            )
        finally:
            stop.set()
            maker.join()
    entry = seen[-1].data
    assert TIMESTAMP.match(entry["timestamp"]), entry
    assert entry["level"] == "INFO"
    assert re.fullmatch(r"bandit\.services:services:\d+", entry["service"]), entry
    assert entry["test_id"] in created
    assert entry["test_name"].startswith("streamed-")
    assert entry["variants"] == 2
    assert all(re.fullmatch(r"\d+-\d+", event.id) for event in seen)


def test_resuming_with_last_event_id_misses_nothing(logs, backends):
    with stream(logs) as source:
        first = create(logs.server, "before the break")
        resume_from = until(source, lambda e: e.data.get("test_id") == first)[-1].id
    # While no one is connected, more happens.
    missed = [create(logs.server, f"during the break {i}") for i in range(5)]
    for use_header in (True, False):
        key = "last_event_id_header" if use_header else "last_event_id"
        with stream(logs, **{key: resume_from}) as source:
            seen = until(source, lambda e: e.data.get("test_id") == missed[-1])
        got = [event.id for event in seen]
        # Exactly what the shared stream holds after that id, in order: nothing skipped.
        held = backends.redis(logs.server.data_dir).xrange(
            f"{backends.prefix}:logs", min=f"({resume_from}", max=got[-1]
        )
        assert got == [entry_id.decode() for entry_id, _ in held]
        created_ids = [e.data["test_id"] for e in seen if e.data["message"] == "Test created"]
        assert [test_id for test_id in created_ids if test_id in missed] == missed


def test_level_and_test_filters(logs):
    quiet = create(logs.server, "quiet")
    loud = create(logs.server, "loud")
    with stream(logs, level="warning") as source:
        create(logs.server, "an INFO entry the filter hides")
        missing = str(uuid.uuid4())
        assert httpx.get(f"{logs.server.url}/api/model_details/{missing}").status_code == 404
        seen = until(source, lambda e: missing in e.data["message"])
    assert {event.data["level"] for event in seen} <= {"WARNING", "ERROR", "CRITICAL"}

    with stream(logs, test_id=loud) as source:
        for test_id in (quiet, loud):
            httpx.post(
                f"{logs.server.url}/api/rollout_global_variant/{test_id}", json={"variant": 1}
            )
        seen = until(source, lambda e: e.data["message"] == "Global rollout set")
    assert {event.data.get("test_id") for event in seen} == {loud}


def open_streams(server: ScoutServer) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{server.url}/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "scout_log_streams_open":
            return sum(sample.value for sample in family.samples)
    raise AssertionError("scout_log_streams_open is missing")


def stream_connections(backends: Backends, server: ScoutServer) -> int:
    client = backends.redis(server.data_dir)
    if isinstance(client, redis.RedisCluster):  # connections to every node of the cluster
        nodes = client.get_nodes()
        clients = [c for node in nodes for c in node.redis_connection.client_list()]
    else:
        clients = client.client_list()
    return sum(1 for client in clients if client["name"] == f"{backends.prefix}:log-stream")


def wait_until_released(backends: Backends, server: ScoutServer, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if open_streams(server) == 0 and stream_connections(backends, server) == 0:
            return
        time.sleep(0.2)
    assert open_streams(server) == 0
    assert stream_connections(backends, server) == 0


def test_heartbeat_and_a_closed_stream_is_released(logs, backends):
    wait_until_released(backends, logs.server)  # streams of earlier tests
    with stream(logs) as source:
        comments = []
        for event in source:
            if event.comment == "keep-alive":
                comments.append(time.monotonic())
                if len(comments) == 2:
                    break
        assert comments[1] - comments[0] < HEARTBEAT * 4
        assert open_streams(logs.server) == 1
        assert stream_connections(backends, logs.server) == 1
    # The client is gone; a heartbeat write fails and the server frees the thread, the slot
    # and the Redis connection.
    wait_until_released(backends, logs.server, seconds=HEARTBEAT * 10)


def test_streams_per_worker_are_capped_so_the_api_keeps_threads(backends, tmp_path):
    scout = ScoutServer(
        backends,
        workers=1,
        data_dir=tmp_path,
        extra_env={"SCOUT_THREADS": "2", "SCOUT_LOG_STREAM_HEARTBEAT_SECONDS": str(HEARTBEAT)},
    ).start()
    try:
        auth = ("capped-" + uuid.uuid4().hex[:8], "capped-pass-1")
        scout.create_user(*auth, staff=True)
        staff = Staff(scout, auth, auth)
        with stream(staff) as source:
            until(source, lambda e: e.data["message"] == "Log stream opened")
            second = httpx.get(f"{scout.url}/logs/stream", auth=auth, timeout=10)
            assert second.status_code == 503
            assert second.json()["limit_per_worker"] == 1
            # The worker's other thread still answers the API.
            assert httpx.get(f"{scout.url}/api/models", timeout=10).status_code == 200
            # A graceful stop does not wait out its grace period for an open stream.
            started = time.monotonic()
            assert scout.stop() == 0
            assert time.monotonic() - started < 10
    finally:
        scout.stop()


def test_stdout_carries_the_same_entries_as_json_lines(logs):
    test_id = create(logs.server, "printed")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [
            line
            for line in logs.server.log_path.read_text().splitlines()
            if test_id in line and '"Test created"' in line
        ]
        if lines:
            break
        time.sleep(0.1)
    entry = json.loads(lines[0])
    assert entry["message"] == "Test created"
    assert entry["test_id"] == test_id
    assert TIMESTAMP.match(entry["timestamp"])
    assert {"level", "service", "pid", "host"} <= set(entry)
