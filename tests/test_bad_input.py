"""Hostile and broken requests: each gets a clear 4xx, changes nothing, and leaves the server
answering everyone else."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import details
from tests.live import Backends, ScoutServer


def raw(api: httpx.Client, path: str, body: bytes, content_type: str = "application/json"):
    return api.post(path, content=body, headers={"content-type": content_type})


def assert_error(response: httpx.Response, status: int, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert mentions in response.json()["detail"]


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until its response ends (or the connection closes)."""
    answer = b""
    while not answer.endswith(b"0\r\n\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def test_nan_infinity_and_huge_numbers(api, make_test):
    test_id = make_test()["cb_model_id"]
    fetch = "/api/fetch_recommended_variant"
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"cb_model_id": "%s", "context": {"x": %s}}' % (test_id.encode(), token)
        assert_error(raw(api, fetch, body), 400, "Invalid JSON")
        body = b'{"updates": [{"variant_id": 0, "reward": %s}]}' % token
        assert_error(raw(api, f"/api/update_model/{test_id}", body), 400, "Invalid JSON")
    huge = b"1" + b"0" * 400
    body = b'{"cb_model_id": "%s", "context": {"x": %s}}' % (test_id.encode(), huge)
    assert_error(raw(api, fetch, body), 400, "magnitude")
    rewards = raw(
        api,
        f"/api/update_model/{test_id}",
        b'{"updates": [{"variant_id": 0, "reward": %s}, {"variant_id": %s, "reward": 1},'
        b' {"variant_id": 0, "reward": 1e400}]}' % (huge, huge),
    )
    assert rewards.status_code == 200
    reasons = [error["reason"] for error in rewards.json()["errors"]]
    assert "magnitude" in reasons[0] and "not a variant" in reasons[1] and "finite" in reasons[2]
    assert details(api, test_id)["total_updates"] == 0
    assert details(api, test_id)["total_predictions"] == 0


def test_deep_nesting_is_refused(api, make_test):
    test_id = make_test()["cb_model_id"]
    depth = 100_000
    nested = b'{"cb_model_id": "%s", "context": ' % test_id.encode()
    nested += b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    assert_error(raw(api, "/api/fetch_recommended_variant", nested), 400, "nested too deeply")
    shallow = b'{"cb_model_id": "%s", "context": {"a": {"b": {"c": 1}}}}' % test_id.encode()
    assert_error(raw(api, "/api/fetch_recommended_variant", shallow), 400, "nested")
    assert details(api, test_id)["total_predictions"] == 0


def test_ten_thousand_context_keys_are_refused(api, make_test):
    test_id = make_test()["cb_model_id"]
    context = {f"key{i}": i for i in range(10_000)}
    response = api.post(
        "/api/fetch_recommended_variant", json={"cb_model_id": test_id, "context": context}
    )
    assert_error(response, 400, "limit is 100")
    assert details(api, test_id)["total_predictions"] == 0


def test_a_ten_megabyte_body_is_refused_before_it_is_read(server):
    """Only the headers and a few bytes are sent: the 413 must come without the rest."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/create_model HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n" + b"{" * 1000
        )
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than the limit" in answer


def test_invalid_utf8_and_wrong_content_types(api, make_test):
    test_id = make_test()["cb_model_id"]
    body = b'{"cb_model_id": "%s", "context": {"x": "\xff\xfe"}}' % test_id.encode()
    assert_error(raw(api, "/api/fetch_recommended_variant", body), 400)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = raw(api, "/api/fetch_recommended_variant", b'{"cb_model_id": "x"}', content_type)
        assert_error(response, 415, "Unsupported media type")
    assert details(api, test_id)["total_predictions"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/model_details/..%2F..%2Fadmin%2Fget_protection",
        "/api/model_details/%2e%2e",
        "/api/model_details/%252e%252e%252f",
        "/api/model_details/00000000-0000-0000-0000-000000000000%00",
        "/api/model_details/" + "a" * 3000,
    ],
)
def test_ids_with_path_tricks_find_nothing(api, path):
    response = api.get(path)
    assert response.status_code in (400, 404)
    assert response.json()["detail"]


def test_a_request_line_over_the_server_limit_gets_414(api):
    assert api.get("/api/model_details/" + "a" * 5000).status_code == 414


@pytest.fixture
def slow_server(backends: Backends) -> Iterator[ScoutServer]:
    server = ScoutServer.dedicated(
        backends,
        "slow",
        workers=1,
        extra_env={"SCOUT_THREADS": "2", "SCOUT_CLIENT_TIMEOUT_SECONDS": "1.5"},
    )
    yield server.start()
    server.stop()


def test_slow_clients_get_408_and_do_not_starve_others(slow_server):
    """More stalled clients than the worker has threads: each is cut off after the client
    timeout, and a normal request is still answered."""
    with slow_server.client() as api:
        before = len(api.get("/api/models").json())
    stalled = []
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", slow_server.port), timeout=10)
        sock.sendall(
            b"POST /api/create_model HTTP/1.1\r\nHost: localhost\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na'
        )
        stalled.append(sock)
    headers_only = socket.create_connection(("127.0.0.1", slow_server.port), timeout=10)
    headers_only.sendall(b"GET /api/models HTTP/1.1\r\nHost: loc")
    started = time.monotonic()
    with slow_server.client() as api:
        assert api.get("/api/models").status_code == 200
        assert time.monotonic() - started < 8
        for sock in stalled:
            answer = read_response(sock)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
            assert b"did not arrive in time" in answer
            sock.close()
        assert headers_only.recv(100) == b""  # closed without a request to answer
        assert len(api.get("/api/models").json()) == before  # nothing was created
