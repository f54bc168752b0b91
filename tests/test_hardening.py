"""What an adversarial pass against a running Scout found, each reproduced through HTTP: text
that cannot be stored, hosts that are not hosts, chunked bodies, the API docs under protection,
stalled and trickling clients, credentials in the log, and the limits the schema states."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.live import ADMIN, Backends, ScoutServer
from tests.test_logs import events

VARIANTS = '{"0": "a", "1": "b"}'


def post_raw(client: httpx.Client, path: str, body: str) -> httpx.Response:
    """POST `body` exactly as written: JSON escapes such as \\ud800 or \\u0000 reach the server
    as the client sent them (a JSON library would refuse to encode a lone surrogate)."""
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


def assert_refused(response: httpx.Response, field: str, why: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert field in detail and why in detail, detail


# --- 1 and 2: a lone surrogate, a NUL character ----------------------------------------------

SURROGATE, NUL = r"\ud800", r"\u0000"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/create_model", '{"name": "X", "variants": ' + VARIANTS + "}", "name"),
        ("/api/create_model", '{"name": "ok", "variants": {"0": "X", "1": "b"}}', "variants.0"),
        ("/admin/system_config", '{"host": "X"}', "host"),
        ("/admin/redis_config", '{"host": "X", "port": 6379}', "host"),
    ],
)
@pytest.mark.parametrize(("character", "why"), [(SURROGATE, "surrogate"), (NUL, "NUL")])
def test_text_that_cannot_be_stored_is_refused_naming_the_field(
    api, staff, path, body, field, character, why
):
    client = staff if path.startswith("/admin/") else api
    tests_before = api.get("/api/models").json()
    system_before = staff.get("/admin/system_config").json()
    answer = post_raw(client, path, body.replace("X", f"a{character}"))
    assert_refused(answer, field, why)
    assert api.get("/api/models").json() == tests_before
    assert staff.get("/admin/system_config").json() == system_before


@pytest.mark.parametrize(
    "context",
    [
        '{"colour": "a' + SURROGATE + '"}',
        '{"a' + SURROGATE + '": "blue"}',
    ],
)
def test_a_lone_surrogate_in_a_context_is_refused(api, make_test, context):
    test_id = make_test()["cb_model_id"]
    request_id = f"r-{uuid.uuid4().hex}"
    body = f'{{"cb_model_id": "{test_id}", "request_id": "{request_id}", "context": {context}}}'
    assert_refused(post_raw(api, "/api/fetch_recommended_variant", body), "context", "surrogate")
    assert api.get(f"/api/model_details/{test_id}").json()["total_predictions"] == 0


# --- 3: a Redis host must be a host ------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1" + NUL, "exa mple.org", "-leading.example", "a..b", "[::1]", "h/x"]
)
def test_redis_config_refuses_a_host_that_is_no_host_name_or_address(staff, host):
    before = staff.get("/admin/redis_health").json()
    answer = post_raw(staff, "/admin/redis_config", f'{{"host": "{host}", "port": 6379}}')
    assert answer.status_code == 400, answer.text
    assert "host" in answer.json()["detail"]
    after = staff.get("/admin/redis_health").json()
    assert after["redis_is_connected"] is True
    for key in ("redis_host", "redis_port"):
        assert after[key] == before[key]


# --- 4: chunked request bodies ----------------------------------------------------------------


def chunked(*pieces: bytes) -> Iterator[bytes]:
    """A body httpx sends with Transfer-Encoding: chunked, one chunk per piece."""
    yield from pieces


def test_a_chunked_body_is_read_like_any_other(api):
    name = f"chunked-{uuid.uuid4().hex[:8]}"
    body = f'{{"name": "{name}", "variants": {VARIANTS}}}'.encode()
    answer = api.post(
        "/api/create_model",
        content=chunked(body[:10], body[10:25], body[25:]),
        headers={"content-type": "application/json"},
    )
    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert answer.status_code == 200, answer.text
    test_id = answer.json()["cb_model_id"]
    decision = api.post(
        "/api/fetch_recommended_variant",
        content=chunked(f'{{"cb_model_id": "{test_id}", "request_id": "c-1"}}'.encode()),
        headers={"content-type": "application/json"},
    )
    assert decision.status_code == 200, decision.text
    reward = api.post(
        f"/api/update_model/{test_id}",
        content=chunked(b'{"updates": [{"request_id": "c-1", ', b'"reward": 1}]}'),
        headers={"content-type": "application/json"},
    )
    assert reward.status_code == 200, reward.text
    assert api.get(f"/api/model_details/{test_id}").json()["total_updates"] == 1


def test_a_chunked_body_over_the_limit_gets_413(api):
    limit = 1_048_576  # SCOUT_MAX_BODY_BYTES's default
    before = len(api.get("/api/models").json())
    piece = b" " * 65536
    body = [b'{"name": "big", "variants": ' + VARIANTS.encode()] + [piece] * (limit // len(piece))
    answer = api.post(
        "/api/create_model",
        content=chunked(*body, b"}"),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413, answer.text
    assert answer.json()["limit_bytes"] == limit
    assert len(api.get("/api/models").json()) == before


def test_a_client_that_expects_100_continue_gets_it_before_sending_its_body(server):
    """Clients that send `Expect: 100-continue` wait for the 100 before their body: the worker,
    which waits for the whole request, must answer it, once."""
    body = f'{{"name": "expecting", "variants": {VARIANTS}}}'.encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/create_model HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body
        sock.sendall(body)
        answer = b""
        while b"cb_model_id" not in answer:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"100 Continue" not in answer


# --- 5: the API docs under protection ---------------------------------------------------------


@pytest.fixture  # each test's own: protection must be off again before other servers start
def protected(backends: Backends) -> Iterator[tuple[ScoutServer, str]]:
    server = ScoutServer.dedicated(backends, "hardening-protected").start()
    with server.client(auth=ADMIN.credentials) as staff:
        token = staff.post("/admin/generate_token").json()["auth_token"]
        assert staff.post("/admin/set_protection", json={"protected_api": True}).status_code == 200
    yield server, token
    # On PostgreSQL the test servers share one database: leave protection as it was found.
    with server.client(auth=ADMIN.credentials) as staff:
        assert staff.post("/admin/set_protection", json={"protected_api": False}).status_code == 200
    server.stop()


@pytest.mark.parametrize("page", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_the_api_docs_need_a_token_while_protection_is_on(protected, page):
    server, token = protected
    with server.client() as anonymous:
        refused = anonymous.get(page)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/json")
        assert "protection" in refused.json()["detail"]
        assert refused.headers["www-authenticate"].startswith("Bearer")
        wrong = anonymous.get(page, headers={"Authorization": "Bearer not-a-token"})
        assert wrong.status_code == 401
    with server.client(headers={"Authorization": f"Bearer {token}"}) as caller:
        assert caller.get(page).status_code == 200


def test_a_staff_session_reads_the_docs_while_protection_is_on(protected):
    server, _ = protected
    with server.client() as browser:
        login = browser.get("/admin/login/")
        csrf = browser.cookies["csrftoken"]
        signed_in = browser.post(
            "/admin/login/?next=/admin/",
            data={
                "username": ADMIN.username,
                "password": ADMIN.password,
                "csrfmiddlewaretoken": csrf,
            },
            headers={"Referer": f"{server.url}/admin/login/"},
        )
        assert login.status_code == 200 and signed_in.status_code in (200, 302)
        assert "sessionid" in browser.cookies
        assert browser.get("/api/docs/").status_code == 200
        schema = browser.get("/api/schema/", params={"format": "json"})
        assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")


# --- 7: stalled and trickling clients ---------------------------------------------------------


@pytest.fixture(scope="module")
def few_threads(backends: Backends) -> Iterator[ScoutServer]:
    """One worker with four threads, so that a handful of bad clients could take them all."""
    server = ScoutServer.dedicated(
        backends,
        "hardening-threads",
        workers=1,
        extra_env={"SCOUT_THREADS": "4", "SCOUT_CLIENT_TIMEOUT_SECONDS": "30"},
    ).start()
    yield server
    server.stop()


def stalled_connections(server: ScoutServer, count: int) -> list[socket.socket]:
    """Connections that send half a request (all headers, part of the body) and then wait."""
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(
            b"POST /api/create_model HTTP/1.1\r\nHost: localhost\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na'
        )
        opened.append(sock)
    return opened


class Trickle:
    """Connections that send their headers one byte at a time, a byte a second each."""

    def __init__(self, server: ScoutServer, count: int) -> None:
        self.request = b"GET /api/models HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"x" * 200
        self.sockets = [
            socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(count)
        ]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)

    def _drip(self) -> None:
        for byte in self.request:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.send(bytes([byte]))
            if self.stopped.wait(1.0):
                return

    def __enter__(self) -> Trickle:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def decision_seconds(server: ScoutServer, test_id: str, count: int) -> list[float]:
    """How long each of `count` decisions took, from four clients at once."""

    def one(index: int) -> float:
        started = time.perf_counter()
        answer = httpx.post(
            f"{server.url}/api/fetch_recommended_variant",
            json={"cb_model_id": test_id, "request_id": f"s-{uuid.uuid4().hex}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return time.perf_counter() - started

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def test_stalled_and_trickling_clients_do_not_hold_up_decisions(few_threads):
    with few_threads.client() as api:
        test_id = api.post(
            "/api/create_model", json={"name": "Stalled", "variants": {"0": "a", "1": "b"}}
        ).json()["cb_model_id"]
    stalled = stalled_connections(few_threads, 16)  # four times the worker's threads
    try:
        with Trickle(few_threads, 200):
            time.sleep(1.0)  # every bad connection has sent something
            seconds = decision_seconds(few_threads, test_id, 80)
    finally:
        for sock in stalled:
            sock.close()
    # Before the event loop read requests whole, each of these waited for a stalled client
    # to time out (seconds, not milliseconds): a decision must not wait for anyone else.
    assert max(seconds) < 1.0, sorted(seconds)[-5:]


def test_a_request_that_does_not_arrive_in_time_is_cut_off(backends):
    server = ScoutServer.dedicated(
        backends, "hardening-timeout", workers=1, extra_env={"SCOUT_CLIENT_TIMEOUT_SECONDS": "1"}
    ).start()
    try:
        (body,) = stalled_connections(server, 1)
        headers = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        headers.sendall(b"GET /api/models HTTP/1.1\r\nHost: loc")
        trickle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        started = time.monotonic()
        for byte in b"GET /api/models HTTP/1.1\r\n":  # a byte every 0.2 s never finishes in 1 s
            try:
                trickle.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.2)
        answer = body.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"did not arrive in time" in answer
        assert headers.recv(100) == b""
        assert trickle.recv(100) == b""
        assert time.monotonic() - started < 8
        with server.client() as api:
            assert api.get("/api/models").status_code == 200
    finally:
        server.stop()


# --- 10: credentials never reach the log ------------------------------------------------------


def test_credentials_in_a_query_string_or_header_are_never_logged(protected):
    server, token = protected
    secrets = {
        "query token": f"qs{uuid.uuid4().hex}",
        "api key": f"ak{uuid.uuid4().hex}",
        "password": f"pw{uuid.uuid4().hex}",
        "bearer": f"br{uuid.uuid4().hex}",
        "bad request line": f"rl{uuid.uuid4().hex}",
    }
    with httpx.stream(
        "GET",
        f"{server.url}/logs/stream",
        auth=ADMIN.credentials,
        timeout=httpx.Timeout(10.0),
    ) as response:
        assert response.status_code == 200
        source = events(response)
        with server.client() as anonymous:
            anonymous.get("/api/models", params={"token": secrets["query token"]})
            anonymous.get("/api/models", params={"x": "1", "api_key": secrets["api key"]})
            anonymous.get(f"/api/models?password={secrets['password']}&auth={token}")
            anonymous.get("/api/models", headers={"Authorization": f"Bearer {secrets['bearer']}"})
            # A request line the web server itself refuses, and logs.
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                line = f"GET /api/mo\x00dels?token={secrets['bad request line']} HTTP/1.1\r\n"
                sock.sendall(line.encode() + b"Host: x\r\n\r\n")
                assert sock.recv(100).startswith(b"HTTP/1.1 400")
            anonymous.get("/api/models/?done=1")
        streamed = []
        for event in source:
            if event.data is None:
                continue
            streamed.append(str(event.data))
            if "done=1" in str(event.data):
                break
    logged = "\n".join(streamed)
    assert "[REDACTED]" in logged
    printed = server.log_path.read_text()
    assert "Invalid HTTP request line" in printed
    for value in [*secrets.values(), token]:
        assert value not in logged
        assert value not in printed


# --- 11: the schema states the limits it enforces ---------------------------------------------


def test_the_schema_states_what_the_server_accepts(staff):
    schema = staff.get("/api/schema/", params={"format": "json"}).json()
    components = schema["components"]["schemas"]
    create = components["CreateTestRequestRequest"]
    variants = create["properties"]["variants"]
    assert variants["minProperties"] == 2 and variants["maxProperties"] == 1000
    assert variants["propertyNames"]["pattern"]
    assert create["properties"]["trail_time_window_minutes"]["minimum"] == 1
    trail, share = create["allOf"]
    assert trail["anyOf"]  # the trail's bucket limit, as ranges
    assert {"properties": {"minimum_variant_share": {"maximum": 0.001}}} in share["anyOf"]
    assert create["properties"]["minimum_variant_share"]["maximum"] == 0.5
    context = components["FetchRequestRequest"]["properties"]["context"]["additionalProperties"]
    number = next(kind for kind in context["oneOf"] if kind.get("type") == "number")
    assert (number["minimum"], number["maximum"]) == (-1e12, 1e12)
    for name, path in [
        ("SystemConfigChangeRequest", "/admin/system_config"),
        ("TestDefaultsChangeRequest", "/admin/model_config"),
        ("RedisConfigChangeRequest", "/admin/redis_config"),
    ]:
        assert components[name]["minProperties"] == 1
        assert schema["paths"][path]["post"]["requestBody"]["required"] is True
