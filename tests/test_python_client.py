"""The Python client (clients/python, `scout_client`) against a real `scout serve`, used as a
product would use it: decide, reward, read the figures back.

Where a real server cannot be made to misbehave on demand (a slow answer, a 503 at a given
moment), a small HTTP server on loopback plays that part, and forwards to the real server
where the test needs Scout's own answer. The Redis outage test freezes a real Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from scout_client import (
    AsyncClient,
    Client,
    LogEntry,
    QueueOptions,
    RejectedReward,
    RetryPolicy,
    ScoutConnectionError,
    ScoutError,
    WebhookSignatureError,
    sign_webhook_payload,
    validate_webhook_payload,
)

from tests.live import ADMIN, Backends, ScoutServer, free_port

CLIENT_README = Path(__file__).resolve().parent.parent / "clients" / "python" / "README.md"
PROJECT_README = Path(__file__).resolve().parent.parent / "README.md"
FAST_RETRY = RetryPolicy(attempts=5, first_delay=0.02, max_delay=0.1, total_seconds=10)


@pytest.fixture
def scout(server: ScoutServer) -> Iterator[Client]:
    with Client(server.url) as client:
        yield client


@pytest.fixture
def test_id(scout: Client) -> Iterator[str]:
    created = scout.create_model("Python client", {0: "Blue", 1: "Green"})
    yield created.test_id
    scout.delete_model(created.test_id)


# --- Loopback stand-ins for a misbehaving Scout -----------------------------------------------


class Loopback:
    """An HTTP server on 127.0.0.1 that answers every request with `answer(request)`."""

    def __init__(self, answer: Callable[[Request], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                with contextlib.suppress(OSError):  # the client gave up first
                    answer(Request(self))

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.release = threading.Event()  # ends the waits of slow answers at teardown
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self.handler = handler
        self.path = handler.path
        self.method = handler.command
        length = int(handler.headers.get("Content-Length") or 0)
        self.body = handler.rfile.read(length) if length else b""

    def reply(self, status: int, body: object) -> None:
        self.send(status, json.dumps(body).encode())

    def send(self, status: int, content: bytes) -> None:
        self.handler.send_response(status)
        self.handler.send_header("Content-Type", "application/json")
        self.handler.send_header("Content-Length", str(len(content)))
        self.handler.end_headers()
        self.handler.wfile.write(content)

    def forward(self, target: str) -> None:
        """Have the real server answer."""
        answer = httpx.request(
            self.method,
            target + self.path,
            content=self.body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        self.send(answer.status_code, answer.content)


@pytest.fixture
def loopback() -> Iterator[Callable[[Callable[[Request], None]], Loopback]]:
    started: list[Loopback] = []

    def start(answer: Callable[[Request], None]) -> Loopback:
        started.append(Loopback(answer))
        return started[-1]

    yield start
    for stub in started:
        stub.close()


def unavailable_then(target: str, failures: int) -> tuple[Callable[[Request], None], list[str]]:
    """An answer that is a 503 for the first `failures` rewards, then the real server's."""
    rewards: list[str] = []
    lock = threading.Lock()

    def answer(request: Request) -> None:
        if "/update_model/" in request.path:
            with lock:
                rewards.append(request.path)
                failing = len(rewards) <= failures
            if failing:
                request.reply(503, {"detail": "Redis is unavailable; retry shortly."})
                return
        request.forward(target)

    return answer, rewards


# --- Decisions and rewards --------------------------------------------------------------------


def test_a_decision_and_its_reward_show_in_the_details(scout, test_id):
    decision = scout.fetch_recommended_variant(test_id, {"device": "mobile"})
    assert decision.test_id == test_id
    assert decision.variant_id in (0, 1)
    assert decision.variant_label == {0: "Blue", 1: "Green"}[decision.variant_id]
    assert decision.request_id and decision.propensity == 0.5
    assert (decision.fallback, decision.degraded, decision.holdout) == (False, False, False)
    assert decision.raw["cb_model_id"] == test_id

    result = scout.update_model(test_id, [{"request_id": decision.request_id, "reward": 1}])
    assert (result.processed, result.failed, result.duplicated, result.attempts) == (1, 0, 0, 1)

    details = scout.model_details(test_id)
    assert details.total_predictions == 1 and details.total_updates == 1
    assert details.variants == {0: "Blue", 1: "Green"}
    figures = details.performance[decision.variant_id]
    assert (figures.predictions, figures.updates, figures.reward_sum) == (1, 1, 1.0)
    assert details.raw["update_trail"], "the raw body keeps what is not typed"
    assert test_id in [summary.test_id for summary in scout.models()]


def test_a_schedule_a_metric_series_and_health_warnings(scout):
    starts = datetime.now(UTC) + timedelta(days=1)
    created = scout.create_model(
        "Scheduled",
        ["Blue", "Green"],
        starts_at=starts,
        ends_at="2099-01-01T00:00:00Z",
        on_end="Green",
    )
    try:
        details = scout.model_details(created.test_id)
        assert details.schedule == "scheduled" and details.is_active is False
        assert abs((details.starts_at - starts).total_seconds()) < 0.001
        assert details.ends_at == datetime(2099, 1, 1, tzinfo=UTC)
        assert details.raw["on_end"] == 1 and details.health_warnings == ()
        series = scout.metric_series(
            created.test_id, "predictions", start=starts - timedelta(hours=2), end=starts
        )
        assert series["step_seconds"] == 120 and set(series["series"]) == {"0", "1"}
        listed = [metric["name"] for metric in scout.metrics(created.test_id)["metrics"]]
        assert listed == ["predictions", "rewards", "mean_reward", "traffic_share"]
        with pytest.raises(ScoutError) as refused:
            scout.metric_series(created.test_id, "clicks")
        assert refused.value.status_code == 404
    finally:
        scout.delete_model(created.test_id)


def test_a_request_id_is_counted_once_and_bad_entries_fail_alone(scout, test_id):
    decision = scout.fetch_recommended_variant(test_id, request_id="visit-1")
    again = scout.fetch_recommended_variant(test_id, request_id="visit-1")
    assert again.variant_id == decision.variant_id  # the same decision

    entry = {"request_id": "visit-1", "reward": 1}
    result = scout.update_model(test_id, [entry, {"request_id": "nobody", "reward": 1}, entry])
    assert (result.processed, result.failed, result.duplicated) == (1, 1, 1)
    assert result.errors[0].index == 1 and "unknown" in result.errors[0].reason
    assert result.duplicates[0].index == 2 and result.duplicates[0].request_id == "visit-1"

    retried = scout.update_model(test_id, [entry])
    assert (retried.processed, retried.duplicated) == (0, 1)
    assert scout.model_details(test_id).total_updates == 1


def test_a_ranking_and_its_rewards(scout, test_id):
    ranking = scout.fetch_ranked_variants(test_id, {"device": "desktop"})
    assert sorted(variant.variant_id for variant in ranking.variants) == [0, 1]
    shown = ranking.variants[0].variant_id
    result = scout.update_model(
        test_id, [{"request_id": ranking.request_id, "variant_id": shown, "reward": 1}]
    )
    assert result.processed == 1


def test_errors_raise_scout_error_with_scouts_detail_and_status(scout, test_id):
    with pytest.raises(ScoutError) as missing:
        scout.model_details("00000000-0000-0000-0000-000000000000")
    assert missing.value.status_code == 404
    assert "not found" in missing.value.detail
    assert missing.value.body["detail"] == missing.value.detail

    with pytest.raises(ScoutError) as bad:
        scout.create_model("One variant", ["Only"])
    assert bad.value.status_code == 400 and "variant" in bad.value.detail

    with pytest.raises(ScoutError) as bad_context:
        scout.fetch_recommended_variant(test_id, {"nested": {"no": 1}}, fallback="Blue")
    assert bad_context.value.status_code == 400, "a 4xx raises even with a fallback"

    with pytest.raises(ScoutError) as unknown:
        scout.fetch_recommended_variant("no-such-test", fallback="Blue")
    assert unknown.value.status_code == 404

    with pytest.raises(ScoutError) as unknown_rewards:
        scout.update_model("no-such-test", [{"request_id": "r", "reward": 1}])
    assert unknown_rewards.value.status_code == 404

    with pytest.raises(ScoutError) as anonymous:
        scout.get_protection()
    assert anonymous.value.status_code == 401 and "Authentication" in anonymous.value.detail


def test_the_fallback_when_scout_is_unreachable(scout, test_id):
    with Client(f"http://127.0.0.1:{free_port()}", decision_timeout=0.5) as down:
        by_label = down.fetch_recommended_variant(test_id, {"device": "mobile"}, fallback="Blue")
        by_id = down.fetch_recommended_variant(test_id, fallback=1, request_id="visit-9")
        with pytest.raises(ScoutConnectionError) as error:
            down.fetch_recommended_variant(test_id)
    assert by_label.fallback and by_label.variant_label == "Blue" and by_label.variant_id is None
    assert by_label.request_id and by_label.propensity is None
    assert "Could not reach Scout" in (by_label.detail or "")
    assert by_id.fallback and by_id.variant_id == 1 and by_id.request_id == "visit-9"
    assert error.value.status_code is None and error.value.request_sent is False


def test_the_fallback_when_scout_is_too_slow(loopback):
    def slow(request: Request) -> None:
        stub.release.wait(5)
        request.reply(200, {})

    stub = loopback(slow)
    with Client(stub.url, decision_timeout=0.3) as client:
        started = time.monotonic()
        decision = client.fetch_recommended_variant("any-test", fallback="Blue")
        waited = time.monotonic() - started
        with pytest.raises(ScoutConnectionError) as error:
            client.fetch_recommended_variant("any-test", timeout=0.2)
    assert decision.fallback and decision.variant_label == "Blue"
    assert waited < 2, waited
    assert "did not answer" in (decision.detail or "") and "0.3 s" in (decision.detail or "")
    assert error.value.timed_out


def test_the_fallback_when_scout_answers_5xx(loopback):
    stub = loopback(lambda request: request.reply(503, {"detail": "Redis is unavailable."}))
    with Client(stub.url) as client:
        decision = client.fetch_recommended_variant("any-test", fallback=0)
    assert decision.fallback and decision.variant_id == 0
    assert decision.detail == "Redis is unavailable."


def test_rewards_are_retried_after_a_503(server, scout, test_id, loopback):
    answer, rewards = unavailable_then(server.url, failures=2)
    stub = loopback(answer)
    with Client(stub.url, retry=FAST_RETRY) as client:
        decision = client.fetch_recommended_variant(test_id)
        result = client.update_model(test_id, [{"request_id": decision.request_id, "reward": 1}])
    assert result.attempts == 3 and len(rewards) == 3
    assert result.processed == 1
    assert scout.model_details(test_id).total_updates == 1


def test_retries_are_bounded_in_attempts_and_in_time(loopback):
    calls: list[float] = []

    def always_503(request: Request) -> None:
        calls.append(time.monotonic())
        request.reply(503, {"detail": "Redis is unavailable; retry shortly."})

    stub = loopback(always_503)
    entry = {"request_id": "r-1", "reward": 1}
    with Client(stub.url) as client:
        with pytest.raises(ScoutError) as error:
            client.update_model("t", [entry], retry=RetryPolicy(attempts=3, first_delay=0.01))
        assert error.value.status_code == 503 and "Redis" in error.value.detail
        assert len(calls) == 3

        calls.clear()
        patient = RetryPolicy(attempts=1000, first_delay=0.2, max_delay=0.2, total_seconds=0.6)
        started = time.monotonic()
        with pytest.raises(ScoutError):
            client.update_model("t", [entry], retry=patient)
        assert time.monotonic() - started < 1.5
        assert 1 < len(calls) < 20

        calls.clear()  # without a request_id a second send could count twice: no retry
        with pytest.raises(ScoutError):
            client.update_model("t", [{"variant_id": 0, "reward": 1, "context": {}}])
        assert len(calls) == 1


def _redis_pid(server: ScoutServer) -> int:
    """The server's embedded redis-server, among its descendants."""
    for pid in server.processes():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "redis-server":
                return pid
    raise AssertionError("no embedded Redis under the server")


# --- The background queue ---------------------------------------------------------------------


def test_queued_rewards_are_sent_at_close(server, scout, test_id):
    with Client(server.url, reward_queue=QueueOptions(flush_interval=60)) as client:
        for visit in range(3):
            decision = client.fetch_recommended_variant(test_id, request_id=f"visit-{visit}")
            client.queue_reward(test_id, request_id=decision.request_id, reward=1.0)
        assert client.queue_stats().queued == 3
        assert scout.model_details(test_id).total_updates == 0, "sent only when closing"
    assert client.queue_stats().sent == 3
    assert scout.model_details(test_id).total_updates == 3
    with pytest.raises(RuntimeError):
        client.queue_reward(test_id, request_id="late", reward=1.0)


def test_the_queue_sends_batches_per_test(server, scout, test_id):
    sent: list[tuple[str, int]] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append((request.url.path, len(json.loads(request.content)["updates"])))
            return super().handle_request(request)

    other = scout.create_model("Python client, second", ["A", "B"]).test_id
    options = QueueOptions(batch_size=100, flush_interval=60)
    with Client(server.url, reward_queue=options, transport=Counting()) as client:
        for index in range(250):  # inline contexts: no decision needed
            client.queue_reward(
                test_id, request_id=f"inline-{index}", reward=1, variant_id=0, context={"k": "v"}
            )
        client.queue_reward(other, request_id="o-1", reward=0, variant_id=1, context={})
        assert client.flush(timeout=30)
        assert client.queue_stats().sent == 251
    sizes = [size for path, size in sent if test_id in path]
    assert sum(sizes) == 250 and max(sizes) == 100, sizes
    assert [size for path, size in sent if other in path] == [1]
    assert scout.model_details(test_id).total_updates == 250
    scout.delete_model(other)


def test_rewards_scout_refuses_are_reported_and_not_retried(server, scout, test_id):
    rejected: list[RejectedReward] = []
    options = QueueOptions(flush_interval=60, on_rejected=rejected.append)
    with Client(server.url, reward_queue=options) as client:
        client.queue_reward(test_id, request_id="never-decided", reward=1.0)
        client.queue_reward("00000000-0000-0000-0000-000000000000", request_id="r", reward=1.0)
        assert client.flush(timeout=30)
        assert client.flush(timeout=30)
        stats = client.queue_stats()
    assert (stats.sent, stats.rejected, stats.queued) == (0, 2, 0)
    by_request = {entry.entry["request_id"]: entry for entry in rejected}
    assert "unknown" in by_request["never-decided"].reason
    assert by_request["never-decided"].status_code is None
    assert by_request["r"].status_code == 404 and "not found" in by_request["r"].reason


def test_a_full_queue_drops_its_oldest_rewards(scout, test_id):
    rejected: list[RejectedReward] = []
    options = QueueOptions(max_size=3, flush_interval=60, on_rejected=rejected.append)
    down = f"http://127.0.0.1:{free_port()}"
    with Client(down, retry=RetryPolicy(attempts=1), reward_queue=options) as client:
        for index in range(5):
            client.queue_reward(test_id, request_id=f"r-{index}", reward=1.0)
        stats = client.queue_stats()
        assert (stats.queued, stats.dropped) == (3, 2)
    assert client.queue_stats().rejected == 3
    assert [entry.entry["request_id"] for entry in rejected] == ["r-2", "r-3", "r-4"]
    assert all("before the client closed" in entry.reason for entry in rejected)


def test_the_queue_tries_again_after_an_outage(server, scout, test_id, loopback):
    answer, rewards = unavailable_then(server.url, failures=3)
    stub = loopback(answer)
    retry = RetryPolicy(attempts=2, first_delay=0.01)
    options = QueueOptions(flush_interval=0.1)
    with Client(stub.url, retry=retry, reward_queue=options) as client:
        decision = client.fetch_recommended_variant(test_id)
        client.queue_reward(test_id, request_id=decision.request_id, reward=1.0)
        assert client.flush(timeout=20)
        assert client.queue_stats().sent == 1
    # a round of two failed attempts, then one whose first attempt failed and second counted
    assert len(rewards) == 4
    assert scout.model_details(test_id).total_updates == 1


def test_queued_rewards_are_sent_when_the_program_exits(server, scout, test_id):
    decision = scout.fetch_recommended_variant(test_id)
    program = (
        "import sys\n"
        "from scout_client import Client, QueueOptions\n"
        "client = Client(sys.argv[1], reward_queue=QueueOptions(flush_interval=60))\n"
        "client.queue_reward(sys.argv[2], request_id=sys.argv[3], reward=1.0)\n"
    )
    subprocess.run(
        [sys.executable, "-c", program, server.url, test_id, decision.request_id],
        check=True,
        timeout=60,
    )
    assert scout.model_details(test_id).total_updates == 1


# --- The async client -------------------------------------------------------------------------


def test_the_async_client_decides_and_rewards(server, scout):
    async def product() -> tuple[str, int]:
        options = QueueOptions(flush_interval=60)
        async with AsyncClient(server.url, reward_queue=options) as client:
            test_id = (await client.create_model("Async", ["Blue", "Green"])).test_id
            first = await client.fetch_recommended_variant(test_id, {"device": "mobile"})
            result = await client.update_model(
                test_id, [{"request_id": first.request_id, "reward": 1}]
            )
            second = await client.fetch_recommended_variant(test_id)
            client.queue_reward(test_id, request_id=second.request_id, reward=0.0)
            ranking = await client.fetch_ranked_variants(test_id)
            assert len(ranking.variants) == 2
            async with AsyncClient(f"http://127.0.0.1:{free_port()}") as down:
                fallback = await down.fetch_recommended_variant(test_id, fallback="Green")
            assert fallback.fallback and fallback.variant_label == "Green"
            return test_id, result.processed

    test_id, processed = asyncio.run(product())  # leaving `async with` sent the queued reward
    assert processed == 1
    details = scout.model_details(test_id)
    assert details.total_predictions == 3 and details.total_updates == 2  # a ranking is one
    scout.delete_model(test_id)


def test_the_async_queue_flushes_and_reports(server, test_id):
    rejected: list[RejectedReward] = []

    async def product() -> None:
        options = QueueOptions(flush_interval=0.05, on_rejected=rejected.append)
        async with AsyncClient(server.url, reward_queue=options) as client:
            decision = await client.fetch_recommended_variant(test_id)
            client.queue_reward(test_id, request_id=decision.request_id, reward=1.0)
            client.queue_reward(test_id, request_id="never-decided", reward=1.0)
            assert await client.flush(timeout=30)
            stats = client.queue_stats()
            assert (stats.sent, stats.rejected) == (1, 1)

    asyncio.run(product())
    assert [entry.entry["request_id"] for entry in rejected] == ["never-decided"]


# --- Changing a Test, and reading its log -----------------------------------------------------


def test_variants_rollouts_and_the_holdout(scout, test_id):
    added = scout.add_variants(test_id, {2: "Red"})
    assert added["added"] == [2]
    assert scout.retire_variant(test_id, "Blue")["retired_variant_id"] == 0
    rollout = scout.rollout_global_variant(test_id, "Red")
    assert rollout["global_variant_id"] == 2
    decision = scout.fetch_recommended_variant(test_id)
    assert decision.is_global_rollout and decision.variant_label == "Red"
    scout.clear_global_variant(test_id)
    assert not scout.fetch_recommended_variant(test_id).is_global_rollout
    assert scout.set_holdout_share(test_id, 0.2)["holdout_share"] == 0.2
    details = scout.model_details(test_id)
    assert details.retired_variants == (0,) and details.performance[0].retired
    assert {policy["policy"] for policy in scout.evaluation(test_id)["policies"]} >= {"as_run"}


def test_the_decision_log_streams(scout, test_id):
    decision = scout.fetch_recommended_variant(test_id, {"plan": "pro"}, request_id="logged-1")
    scout.update_model(test_id, [{"request_id": "logged-1", "reward": 1}])
    deadline = time.monotonic() + 15
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # decisions reach the log within about a second
        records = list(scout.decision_log(test_id))
        if records and records[0]["reward"] is not None:
            break
        time.sleep(0.2)
    assert records[0]["request_id"] == "logged-1" and records[0]["context"] == {"plan": "pro"}
    assert records[0]["variant_id"] == decision.variant_id and records[0]["reward"] == 1
    csv = "".join(scout.decision_log_csv(test_id, start="2000-01-01T00:00:00Z"))
    assert csv.splitlines()[0].startswith("decided_at,request_id,variant_id")
    assert "logged-1" in csv
    assert list(scout.decision_log(test_id, end="2000-01-01T00:00:00Z")) == []
    with pytest.raises(ScoutError) as error:
        list(scout.decision_log(test_id, start="yesterday"))
    assert error.value.status_code == 400


# --- The system endpoints ---------------------------------------------------------------------


def test_admin_reads_with_staff_credentials(server):
    with Client(server.url, auth=ADMIN.credentials) as staff:
        assert staff.get_protection() == {"protected_api": False}
        system = staff.system_config()
        # The port stored for the next start, not necessarily this one's (SCOUT_PORT wins).
        assert {"host", "port", "debug", "protected_api", "auth_token"} <= set(system)
        assert isinstance(system["port"], int)
        assert system["protected_api"] is False
        defaults = staff.model_config()
        assert set(defaults) == {
            "trail_time_window_minutes",
            "trail_bucket_granularity_seconds",
            "minimum_update_requests",
        }
        same = staff.set_model_config(minimum_update_requests=defaults["minimum_update_requests"])
        assert same["config"] == defaults
        assert staff.redis_health()["redis_is_connected"] is True
        with pytest.raises(ScoutError) as error:
            staff.set_model_config()
        assert error.value.status_code == 400 and "Send at least one" in error.value.detail
    # Another user name: failed logins lock a user name out for a while.
    stranger = Client(server.url, auth=("nobody", "wrong"))
    with stranger, pytest.raises(ScoutError) as refused:
        stranger.system_config()
    assert refused.value.status_code == 401


# Each operation of the schema Scout serves, and the method of both clients that calls it: an
# endpoint added to Scout fails this table until the client has a method for it.
CLIENT_METHODS = {
    ("/api/create_model", "post"): "create_model",
    ("/api/delete_model/{cb_model_id}", "post"): "delete_model",
    ("/api/models", "get"): "models",
    ("/api/model_details/{cb_model_id}", "get"): "model_details",
    ("/api/fetch_recommended_variant", "post"): "fetch_recommended_variant",
    ("/api/fetch_ranked_variants", "post"): "fetch_ranked_variants",
    ("/api/update_model/{cb_model_id}", "post"): "update_model",
    ("/api/rollout_global_variant/{cb_model_id}", "post"): "rollout_global_variant",
    ("/api/clear_global_variant/{cb_model_id}", "post"): "clear_global_variant",
    ("/api/add_variants/{cb_model_id}", "post"): "add_variants",
    ("/api/retire_variant/{cb_model_id}", "post"): "retire_variant",
    ("/api/set_holdout_share/{cb_model_id}", "post"): "set_holdout_share",
    ("/api/evaluation/{cb_model_id}", "get"): "evaluation",
    ("/api/metrics/{cb_model_id}", "get"): "metrics",
    ("/api/metrics/{cb_model_id}/{metric}", "get"): "metric_series",
    ("/api/decision_log/{cb_model_id}", "get"): "decision_log",
    ("/api/token/check", "get"): "check_token",
    ("/admin/get_protection", "get"): "get_protection",
    ("/admin/set_protection", "post"): "set_protection",
    ("/admin/generate_token", "post"): "generate_token",
    ("/admin/redis_health", "get"): "redis_health",
    ("/admin/model_config", "get"): "model_config",
    ("/admin/model_config", "post"): "set_model_config",
    ("/admin/system_config", "get"): "system_config",
    ("/admin/system_config", "post"): "set_system_config",
    ("/admin/redis_config", "post"): "redis_config",
    ("/admin/webhooks", "get"): "list_webhooks",
    ("/admin/webhooks", "post"): "create_webhook",
    ("/admin/webhooks/{webhook_id}/delete", "post"): "delete_webhook",
    ("/admin/webhooks/{webhook_id}/ping", "post"): "ping_webhook",
    ("/admin/webhooks/{webhook_id}/deliveries", "get"): "webhook_deliveries",
    ("/logs/stream", "get"): "stream_logs",
}


def test_every_endpoint_has_a_method_in_both_clients(server):
    schema = httpx.get(f"{server.url}/api/schema/", params={"format": "json"}, timeout=30)
    assert schema.status_code == 200
    served = {
        (path, method)
        for path, operations in schema.json()["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert served - set(CLIENT_METHODS) == set(), "endpoints the client cannot call"
    assert set(CLIENT_METHODS) - served == set(), "client methods for endpoints Scout lacks"
    for name in set(CLIENT_METHODS.values()):
        assert callable(getattr(Client, name, None)), f"Client.{name}"
        assert callable(getattr(AsyncClient, name, None)), f"AsyncClient.{name}"


def first_entry(entries: Iterator[LogEntry], match: Callable[[LogEntry], bool]) -> LogEntry:
    """The first entry that matches, read in a thread so that a missing one fails in 20 s
    rather than waiting on the stream's keep-alives for ever."""
    found: list[LogEntry] = []

    def read() -> None:
        for entry in entries:
            if match(entry):
                found.append(entry)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(20)
    assert found, "the expected log entry did not arrive within 20 s"
    return found[0]


def test_the_live_log_streams_filters_and_resumes(server, scout):
    with Client(server.url, auth=ADMIN.credentials) as staff:
        entries = staff.stream_logs()
        opened = first_entry(entries, lambda entry: entry.message == "Log stream opened")
        assert opened.level == "INFO" and opened.event_id and opened.timestamp is not None
        test_id = scout.create_model("Logged", ["A", "B"]).test_id
        created = first_entry(
            entries, lambda entry: entry.message == "Test created" and entry.test_id == test_id
        )
        assert created.raw["test_name"] == "Logged" and created.service
        entries.close()  # closes the connection
        # Resumed after the opening, for that Test only: its creation comes first.
        resumed = staff.stream_logs(test_id=test_id, last_event_id=opened.event_id)
        again = first_entry(resumed, lambda entry: True)
        resumed.close()
        assert again.event_id == created.event_id and again.test_id == test_id
        scout.delete_model(test_id)
    with pytest.raises(ScoutError) as refused:
        next(scout.stream_logs())
    assert refused.value.status_code == 401


def test_the_async_client_streams_the_live_log(server):
    async def run() -> LogEntry:
        async with AsyncClient(server.url, auth=ADMIN.credentials) as staff:
            async with asyncio.timeout(20):
                async for entry in staff.stream_logs(level="info"):
                    if entry.message == "Log stream opened":
                        return entry
        raise AssertionError("the stream ended")

    opened = asyncio.run(run())
    assert opened.level == "INFO" and opened.raw["user"] == ADMIN.username


@pytest.fixture(scope="module")
def own_server(backends: Backends) -> Iterator[ScoutServer]:
    """A server of this module's own, for protection, tokens and a Redis outage."""
    scout = ScoutServer.dedicated(backends, "python-client", workers=1).start()
    yield scout
    scout.stop()


def test_protection_and_tokens(own_server):
    with Client(own_server.url, auth=ADMIN.credentials) as staff:
        try:
            assert staff.set_protection(True)["protected_api"] is True
            token = staff.generate_token()["auth_token"]
            with pytest.raises(ScoutError) as refused:
                staff.models()  # staff credentials are for /admin/ only
            assert refused.value.status_code == 401 and "Bearer" in refused.value.detail
            with Client(own_server.url, token) as product:
                assert product.check_token()["valid"] is True
                test_id = product.create_model("Protected", ["A", "B"]).test_id
                decision = product.fetch_recommended_variant(test_id, fallback="A")
                assert not decision.fallback
                stranger = Client(own_server.url, "not-the-token")
                with stranger, pytest.raises(ScoutError) as refused_token:
                    stranger.fetch_recommended_variant(test_id, fallback="A")
                assert refused_token.value.status_code == 401
                assert "Invalid" in refused_token.value.detail
                product.delete_model(test_id)
        finally:
            staff.set_protection(False)
    with Client(own_server.url) as anonymous:
        assert isinstance(anonymous.models(), list)


def test_rewards_ride_out_a_real_redis_outage(own_server):
    if not own_server.backends.embedded:
        pytest.skip("freezes the server's embedded Redis; this run shares REDIS_URL's")
    with Client(own_server.url) as scout:
        test_id = scout.create_model("Outage", ["A", "B"]).test_id
        decision = scout.fetch_recommended_variant(test_id)
        redis_pid = _redis_pid(own_server)
        os.kill(redis_pid, signal.SIGSTOP)
        thaw = threading.Timer(3.0, os.kill, (redis_pid, signal.SIGCONT))
        thaw.start()
        try:
            during = scout.fetch_recommended_variant(test_id, timeout=5)
            patient = RetryPolicy(attempts=30, first_delay=0.2, max_delay=0.5, total_seconds=30)
            result = scout.update_model(
                test_id, [{"request_id": decision.request_id, "reward": 1}], retry=patient
            )
        finally:
            thaw.join()
            os.kill(redis_pid, signal.SIGCONT)
        assert during.degraded and not during.fallback
        assert result.processed == 1 and result.attempts > 1
        assert scout.model_details(test_id).total_updates == 1
        scout.delete_model(test_id)


# --- Webhook signatures -----------------------------------------------------------------------

SECRET = "5f" * 32
BODY = b'{"uuid":"e1","type":"PING","time":"2030-01-01T00:00:00Z","data":{}}'


def signed(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    """The header as the spec says Scout computes it, independently of the client's code."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def test_a_correct_webhook_signature_is_accepted():
    now = int(time.time())
    payload = validate_webhook_payload(SECRET, signed(BODY, now), BODY)
    assert payload["type"] == "PING" and payload["data"] == {}
    assert validate_webhook_payload(SECRET, signed(BODY, now), BODY.decode()) == payload
    several = f"t={now},v1={'0' * 64},scheme=v9,{signed(BODY, now).split(',')[1]}"
    assert validate_webhook_payload(SECRET, several, BODY) == payload
    assert validate_webhook_payload(SECRET, sign_webhook_payload(SECRET, BODY), BODY) == payload


@pytest.mark.parametrize(
    ("header", "body", "message"),
    [
        (lambda now: signed(BODY, now, "6a" * 32), BODY, "No signature matches"),
        (lambda now: signed(BODY, now), BODY.replace(b"PING", b"TEST_DELETED"), "No signature"),
        (lambda now: signed(BODY, now - 301), BODY, "replayed"),
        (lambda now: signed(BODY, now + 301), BODY, "future"),
        (lambda now: "", BODY, "no Scout-Signature header"),
        (lambda now: "garbage", BODY, "Malformed"),
        (lambda now: f"t=soon,v1={'0' * 64}", BODY, "not unix seconds"),
        (lambda now: f"v1={'0' * 64}", BODY, "no timestamp"),
        (lambda now: f"t={now}", BODY, "no v1 signature"),
        (lambda now: signed(b"[1]", now), b"[1]", "not a JSON object"),
    ],
    ids=[
        "wrong secret",
        "tampered body",
        "old timestamp",
        "future timestamp",
        "no header",
        "not key=value",
        "bad timestamp",
        "no timestamp",
        "no signature",
        "not an object",
    ],
)
def test_a_bad_webhook_request_is_refused(header, body, message):
    with pytest.raises(WebhookSignatureError, match=message):
        validate_webhook_payload(SECRET, header(int(time.time())), body)


def test_the_tolerance_is_the_callers():
    old = int(time.time()) - 1000
    assert validate_webhook_payload(SECRET, signed(BODY, old), BODY, tolerance_seconds=2000)


# --- The README -------------------------------------------------------------------------------


@pytest.mark.parametrize("readme", [CLIENT_README, PROJECT_README], ids=["client", "project"])
def test_the_readme_example_works_as_written(server, scout, readme):
    text = readme.read_text()
    block = re.search(r"```python\n(# A product's request path.*?)```", text, re.S)
    assert block, f"{readme.name} lost the client's example"
    program = block.group(1).replace("http://127.0.0.1:8000", server.url)
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "counted: 1" in result.stdout, result.stdout
    assert "signature ok: PING" in result.stdout, result.stdout
