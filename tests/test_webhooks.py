"""Webhooks over HTTP, with real receivers on loopback: the staff endpoints, signed events in
order, retries, a receiver that hangs, a restart between a change and its delivery, Redis going
away and coming back, and a winner announced.

The module runs on a database, a data directory and a Redis key prefix of its own (in the
PostgreSQL run, a database of its own), so that only its servers send its webhooks' events.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from scout_client import Client, validate_webhook_payload

from tests.live import ADMIN, Backends, RedisProcess, ScoutServer, free_port
from tests.test_console_pages import session

TEST_EVENTS = [
    "TEST_CREATED",
    "ROLLOUT_SET",
    "ROLLOUT_CLEARED",
    "VARIANT_ADDED",
    "VARIANT_RETIRED",
    "TEST_DELETED",
]
# Fast retries and a short timeout, so that the tests wait seconds, not minutes.
SENDER = {
    "SCOUT_WEBHOOK_FIRST_RETRY_SECONDS": "0.5",
    "SCOUT_WEBHOOK_TIMEOUT_SECONDS": "1",
    "SCOUT_WEBHOOK_POLL_SECONDS": "0.2",
    "SCOUT_WINNER_CHECK_SECONDS": "0.5",
    "SCOUT_WINNER_MINIMUM_REWARDS": "100",
}
WAIT_SECONDS = 30.0
CONSOLE_PAGE = "/admin/scout_webhooks/webhook/"


class Receiver:
    """An HTTP endpoint on loopback that records what it is sent and answers with `answer`
    (a status code, or a callable that gets the request number and answers one)."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answer: Callable[[int], int] = lambda number: 200
        self.hang = threading.Event()  # set: requests wait until it is cleared (or 10 s)
        self.location: str | None = None  # sent as Location (a redirect's target)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                    number = len(receiver.received)
                deadline = time.monotonic() + 10
                while receiver.hang.is_set() and time.monotonic() < deadline:
                    time.sleep(0.05)
                status = receiver.answer(number)
                try:
                    self.send_response(status)
                    if receiver.location:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # Scout gave up first
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def payloads(self, secret: str) -> list[dict[str, Any]]:
        """What was received, each checked as a receiver would check it."""
        with self.lock:
            received = list(self.received)
        return [
            validate_webhook_payload(secret, headers.get("Scout-Signature"), body)
            for headers, body in received
        ]

    def wait_for(
        self, secret: str, count: int, seconds: float = WAIT_SECONDS
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        payloads = self.payloads(secret)
        assert len(payloads) >= count, payloads
        return payloads

    def close(self) -> None:
        self.hang.clear()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def own_backends() -> Iterator[Backends]:
    backends = Backends()
    yield backends
    backends.cleanup()


@pytest.fixture(scope="module")
def scout(own_backends: Backends) -> Iterator[ScoutServer]:
    server = ScoutServer(own_backends, extra_env={**ADMIN.env(), **SENDER}).start()
    yield server
    server.stop()


@pytest.fixture
def staff(scout: ScoutServer) -> Iterator[httpx.Client]:
    with scout.client(auth=ADMIN.credentials) as client:
        yield client


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    opened: list[Receiver] = []

    def open_one(port: int = 0) -> Receiver:
        opened.append(Receiver(port))
        return opened[-1]

    yield open_one
    for receiver in opened:
        receiver.close()


@pytest.fixture
def subscribe(staff: httpx.Client) -> Iterator[Callable[..., dict[str, Any]]]:
    """Create a webhook; every one made is deleted at the end."""
    made: list[int] = []

    def create(url: str, events: list[str], **fields: Any) -> dict[str, Any]:
        response = staff.post("/admin/webhooks", json={"url": url, "events": events, **fields})
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
        return response.json()

    yield create
    for webhook_id in made:
        staff.post(f"/admin/webhooks/{webhook_id}/delete")


def create_test(api: httpx.Client, name: str = "Webhooks") -> str:
    response = api.post(
        "/api/create_model", json={"name": name, "variants": {"0": "Blue", "1": "Green"}}
    )
    assert response.status_code == 200, response.text
    return response.json()["cb_model_id"]


def deliveries(staff: httpx.Client, webhook_id: int) -> list[dict[str, Any]]:
    response = staff.get(f"/admin/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


def wait_until(check: Callable[[], bool], seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# --- The staff endpoints --------------------------------------------------------------------


def test_webhooks_are_created_listed_and_deleted_by_staff_only(scout, staff, subscribe):
    created = subscribe("https://hooks.example.com/scout", ["TEST_CREATED", "PING"])
    assert re.fullmatch(r"[0-9a-f]{64}", created["secret"])
    assert created["events"] == ["TEST_CREATED", "PING"] and created["verify_tls"] is True
    listed = staff.get("/admin/webhooks").json()["webhooks"]
    shown = next(hook for hook in listed if hook["id"] == created["id"])
    assert "secret" not in shown and shown["url"] == "https://hooks.example.com/scout"
    insecure = subscribe("https://self-signed.test/x", ["PING"], verify_tls=False)
    assert insecure["verify_tls"] is False and insecure["secret"] != created["secret"]

    with scout.client() as anonymous:
        assert anonymous.get("/admin/webhooks").status_code in (401, 403)
        refused = anonymous.post("/admin/webhooks", json={"url": "https://x.test", "events": []})
        assert refused.status_code in (401, 403)

    deleted = staff.post(f"/admin/webhooks/{created['id']}/delete")
    assert deleted.status_code == 200 and deleted.json()["id"] == created["id"]
    assert created["id"] not in [
        hook["id"] for hook in staff.get("/admin/webhooks").json()["webhooks"]
    ]
    assert staff.post(f"/admin/webhooks/{created['id']}/delete").status_code == 404
    assert staff.post(f"/admin/webhooks/{created['id']}/ping").status_code == 404
    for path in ("/admin/webhooks/abc/ping", "/admin/webhooks/-1/delete"):
        missing = staff.post(path)
        assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    assert staff.get("/admin/webhooks/99999999/deliveries").status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"url": "ftp://example.com/x", "events": ["PING"]}, "url"),
        ({"url": "not a url", "events": ["PING"]}, "url"),
        ({"url": "https://", "events": ["PING"]}, "url"),
        ({"url": 5, "events": ["PING"]}, "url"),
        ({"events": ["PING"]}, "url"),
        ({"url": "https://example.com/x", "events": ["TEST_EXPLODED"]}, "TEST_EXPLODED"),
        ({"url": "https://example.com/x", "events": []}, "events"),
        ({"url": "https://example.com/x", "events": "PING"}, "events"),
        ({"url": "https://example.com/x"}, "events"),
        ({"url": "https://example.com/x", "events": ["PING"], "verify_tls": "no"}, "verify_tls"),
    ],
)
def test_a_bad_webhook_is_refused_with_a_400_that_says_why(staff, body, says):
    before = staff.get("/admin/webhooks").json()["webhooks"]
    response = staff.post("/admin/webhooks", json=body)
    assert response.status_code == 400, response.text
    assert says in response.json()["detail"]
    assert staff.get("/admin/webhooks").json()["webhooks"] == before


# --- Delivery -------------------------------------------------------------------------------


def test_a_tests_events_arrive_signed_and_in_order(scout, staff, subscribe, receivers):
    receiver = receivers()
    hook = subscribe(receiver.url, TEST_EVENTS)
    with scout.client() as api:
        test_id = create_test(api)
        assert api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 1}).is_success
        assert api.post(f"/api/clear_global_variant/{test_id}").is_success
        added = api.post(f"/api/add_variants/{test_id}", json={"variants": {"2": "Red"}})
        assert added.is_success, added.text
        retired = api.post(f"/api/retire_variant/{test_id}", json={"variant": 0})
        assert retired.is_success, retired.text
        assert api.post("/api/fetch_recommended_variant", json={"cb_model_id": test_id}).is_success
        assert api.post(f"/api/delete_model/{test_id}").is_success

    payloads = receiver.wait_for(hook["secret"], len(TEST_EVENTS))
    assert [payload["type"] for payload in payloads] == TEST_EVENTS
    assert {payload["data"]["test_id"] for payload in payloads} == {test_id}
    assert len({payload["uuid"] for payload in payloads}) == len(payloads)
    created, rollout, _, added_event, retired_event, _ = (p["data"] for p in payloads)
    assert created["variants"] == {"0": "Blue", "1": "Green"} and created["name"] == "Webhooks"
    assert (rollout["variant_id"], rollout["variant_label"]) == (1, "Green")
    assert added_event["variants"] == {"2": "Red"}
    assert (retired_event["variant_id"], retired_event["variant_label"]) == (0, "Blue")
    for headers, _ in receiver.received:
        assert headers["Content-Type"] == "application/json"
    times = [payload["time"] for payload in payloads]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)

    # A signature made with another secret, or over another body, is refused.
    headers, body = receiver.received[0]
    with pytest.raises(ValueError):
        validate_webhook_payload("0" * 64, headers["Scout-Signature"], body)
    with pytest.raises(ValueError):
        validate_webhook_payload(hook["secret"], headers["Scout-Signature"], body + b" ")

    assert all(d["state"] == "delivered" for d in deliveries(staff, hook["id"]))


def test_an_event_goes_only_to_the_webhooks_that_subscribed(scout, subscribe, receivers):
    listening, deaf = receivers(), receivers()
    hook = subscribe(listening.url, ["TEST_DELETED"])
    subscribe(deaf.url, ["ROLLOUT_SET"])
    with scout.client() as api:
        test_id = create_test(api)
        assert api.post(f"/api/delete_model/{test_id}").is_success
    [payload] = listening.wait_for(hook["secret"], 1)
    assert payload["type"] == "TEST_DELETED" and payload["data"]["test_id"] == test_id
    time.sleep(1.0)
    assert deaf.received == [] and len(listening.received) == 1


def test_a_failing_receiver_is_retried_and_a_hanging_one_holds_up_no_other(
    staff, subscribe, receivers
):
    failing, hanging, healthy = receivers(), receivers(), receivers()
    failing.answer = lambda number: 500 if number <= 2 else 204
    hanging.hang.set()
    hooks = [subscribe(r.url, ["PING"]) for r in (failing, hanging, healthy)]
    started = time.monotonic()
    for hook in hooks:
        assert staff.post(f"/admin/webhooks/{hook['id']}/ping").status_code == 200

    [ping] = healthy.wait_for(hooks[2]["secret"], 1)
    assert ping["type"] == "PING" and ping["data"]["webhook_id"] == hooks[2]["id"]
    assert time.monotonic() - started < 5  # not after the hanging receiver's timeouts

    failing.wait_for(hooks[0]["secret"], 3)
    wait_until(lambda: deliveries(staff, hooks[0]["id"])[0]["state"] == "delivered")
    [retried] = deliveries(staff, hooks[0]["id"])
    assert retried["attempts"] == 3 and retried["last_status"] == 204
    assert retried["event"]["uuid"] == failing.payloads(hooks[0]["secret"])[0]["uuid"]
    # The same event each time, signed anew.
    assert len({p["uuid"] for p in failing.payloads(hooks[0]["secret"])}) == 1

    wait_until(lambda: deliveries(staff, hooks[1]["id"])[0]["attempts"] >= 1)
    [stuck] = deliveries(staff, hooks[1]["id"])
    assert stuck["state"] == "pending" and "No answer within" in stuck["last_error"]
    assert stuck["next_attempt_at"] is not None
    hanging.hang.clear()
    wait_until(lambda: deliveries(staff, hooks[1]["id"])[0]["state"] == "delivered")


def test_a_redirect_is_not_followed(staff, subscribe, receivers):
    target = receivers()
    redirecting = receivers()
    redirecting.answer = lambda number: 302
    redirecting.location = target.url
    hook = subscribe(redirecting.url, ["PING"])
    staff.post(f"/admin/webhooks/{hook['id']}/ping")
    wait_until(lambda: deliveries(staff, hook["id"])[0]["attempts"] >= 1)
    [attempted] = deliveries(staff, hook["id"])
    assert attempted["state"] == "pending" and attempted["last_status"] == 302
    assert "not followed" in attempted["last_error"] and target.url in attempted["last_error"]
    assert target.received == []


@pytest.fixture
def alone() -> Iterator[Backends]:
    """A database of the test's own: no other server sends its events."""
    backends = Backends()
    yield backends
    backends.cleanup()


def test_nothing_is_lost_when_scout_stops_between_a_change_and_its_delivery(alone, receivers):
    """Every process of Scout is killed (no clean stop) while the receiver is down; the event
    waits in the outbox and is delivered by the next start."""
    port = free_port()
    server = ScoutServer(alone, extra_env={**ADMIN.env(), **SENDER}).start()
    try:
        with server.client(auth=ADMIN.credentials) as staff:
            url = f"http://127.0.0.1:{port}/hook"
            hook = staff.post("/admin/webhooks", json={"url": url, "events": ["TEST_CREATED"]})
            assert hook.status_code == 201
            secret, hook_id = hook.json()["secret"], hook.json()["id"]
            test_id = create_test(staff, "Survives a restart")
            wait_until(lambda: deliveries(staff, hook_id)[0]["attempts"] >= 1)
        server.crash()
        receiver = receivers(port)
        time.sleep(1.0)
        assert receiver.received == []  # nobody sends while Scout is down
        server.start()
        [payload] = receiver.wait_for(secret, 1)
        assert payload["type"] == "TEST_CREATED" and payload["data"]["test_id"] == test_id
        with server.client(auth=ADMIN.credentials) as staff:
            staff.post(f"/admin/webhooks/{hook_id}/delete")
    finally:
        server.stop()


def test_redis_going_away_and_coming_back_is_announced(alone, receivers, tmp_path):
    redis_server = RedisProcess(tmp_path / "redis").start()
    env = {**ADMIN.env(), **SENDER, "REDIS_URL": redis_server.url}
    server = ScoutServer(alone, extra_env=env).start()
    receiver = receivers()
    try:
        with server.client(auth=ADMIN.credentials) as staff:
            events = ["REDIS_UNAVAILABLE", "REDIS_RECOVERED", "ROLLOUT_SET"]
            hook = staff.post("/admin/webhooks", json={"url": receiver.url, "events": events})
            secret = hook.json()["secret"]
            test_id = create_test(staff, "Redis goes away")
            redis_server.stop()
            [down] = receiver.wait_for(secret, 1)
            assert down["type"] == "REDIS_UNAVAILABLE" and down["data"]["error"]
            assert str(redis_server.port) in down["data"]["redis"]
            # A change that cannot be made is not announced.
            refused = staff.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 1})
            assert refused.status_code == 503
            time.sleep(1.5)
            assert len(receiver.received) == 1  # announced once, not once a second
            redis_server.start()
            down_then_up = receiver.wait_for(secret, 2)
            assert [p["type"] for p in down_then_up] == ["REDIS_UNAVAILABLE", "REDIS_RECOVERED"]
            assert down_then_up[1]["data"]["unavailable_seconds"] > 0
            time.sleep(1.0)
            assert len(receiver.received) == 2
            hook = hook.json()
            staff.post(f"/admin/webhooks/{hook['id']}/delete")
    finally:
        server.stop()
        redis_server.stop()


def test_a_winner_is_announced_once_found(scout, subscribe, receivers):
    receiver = receivers()
    hook = subscribe(receiver.url, ["WINNER_FOUND"])
    with scout.client() as api:
        test_id = create_test(api, "Winner")
        updates = []
        for i in range(300):
            decision = api.post(
                "/api/fetch_recommended_variant",
                json={"cb_model_id": test_id, "request_id": f"visit-{i}"},
            ).json()
            updates.append(
                {"request_id": f"visit-{i}", "reward": 1 if decision["variant_id"] == 1 else 0}
            )
        for start in range(0, len(updates), 100):
            sent = api.post(
                f"/api/update_model/{test_id}", json={"updates": updates[start : start + 100]}
            )
            assert sent.status_code == 200, sent.text
        [payload] = receiver.wait_for(hook["secret"], 1)
        assert payload["type"] == "WINNER_FOUND" and payload["data"]["test_id"] == test_id
        assert (payload["data"]["variant_id"], payload["data"]["variant_label"]) == (1, "Green")
        assert payload["data"]["probability_best"] >= 0.95 and payload["data"]["rewards"] >= 100
        time.sleep(1.5)
        assert len(receiver.received) == 1  # the same winner is not announced again
        api.post(f"/api/delete_model/{test_id}")


# --- The Python client ----------------------------------------------------------------------


def test_the_python_client_manages_webhooks(scout, receivers):
    receiver = receivers()
    with Client(scout.url, auth=ADMIN.credentials) as client:
        created = client.create_webhook(receiver.url, ["PING"], verify_tls=True)
        assert created.secret is not None and len(created.secret) == 64
        assert created.id in [hook.id for hook in client.list_webhooks()]
        assert all(hook.secret is None for hook in client.list_webhooks())
        client.ping_webhook(created.id)
        [payload] = receiver.wait_for(created.secret, 1)
        assert payload["type"] == "PING"
        wait_until(lambda: client.webhook_deliveries(created.id)[0].state == "delivered")
        client.delete_webhook(created.id)
        assert created.id not in [hook.id for hook in client.list_webhooks()]


def test_staff_reads_the_delivery_history_as_json(staff, subscribe, receivers):
    receiver = receivers()
    hook = subscribe(receiver.url, ["PING"])
    for _ in range(3):
        staff.post(f"/admin/webhooks/{hook['id']}/ping")
    receiver.wait_for(hook["secret"], 3)
    wait_until(lambda: all(d["state"] == "delivered" for d in deliveries(staff, hook["id"])))
    history = deliveries(staff, hook["id"])
    assert len(history) == 3
    assert [d["event"]["uuid"] for d in history] == [
        p["uuid"] for p in reversed(receiver.payloads(hook["secret"]))
    ]  # newest first
    assert all(d["attempts"] == 1 and d["last_status"] == 200 for d in history)
    json.dumps(history)


# --- The console ----------------------------------------------------------------------------


def submit(browser: httpx.Client, fields: dict[str, Any]) -> httpx.Response:
    """Post the Webhooks page's form as a browser does, with the CSRF token."""
    data = {**fields, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    return browser.post(CONSOLE_PAGE, data=data)


def test_the_console_adds_pings_shows_and_deletes_a_webhook(scout, staff, receivers):
    receiver = receivers()
    page = CONSOLE_PAGE
    browser = session(scout)
    try:
        refused = submit(
            browser,
            {"action": "create", "webhook-url": "ftp://nowhere.test/x", "webhook-events": ["PING"]},
        )
        assert refused.status_code == 200 and "http or https URL" in refused.text
        assert staff.get("/admin/webhooks").json()["webhooks"] == []

        added = submit(
            browser,
            {
                "action": "create",
                "webhook-url": receiver.url,
                "webhook-events": ["PING", "TEST_CREATED"],
                "webhook-verify_tls": "on",
            },
        )
        assert added.status_code == 200
        secret = re.search(r'id="new-webhook-secret"[^>]*value="([0-9a-f]{64})"', added.text)
        assert secret, added.text[:2000]
        [hook] = staff.get("/admin/webhooks").json()["webhooks"]
        assert hook["url"] == receiver.url and hook["events"] == ["TEST_CREATED", "PING"]
        assert hook["created_by"] == ADMIN.username
        assert secret.group(1) not in browser.get(page).text  # shown that once

        pinged = submit(browser, {"action": "ping", "webhook_id": hook["id"]})
        assert pinged.status_code == 302
        [payload] = receiver.wait_for(secret.group(1), 1)
        assert payload["type"] == "PING"
        wait_until(lambda: "delivered" in browser.get(page).text)
        assert payload["uuid"] in browser.get(page).text

        deleted = submit(browser, {"action": "delete", "webhook_id": hook["id"]})
        assert deleted.status_code == 302
        assert staff.get("/admin/webhooks").json()["webhooks"] == []
        missing = submit(browser, {"action": "delete", "webhook_id": hook["id"]})
        assert missing.status_code == 200 and "not found" in missing.text
    finally:
        browser.close()
