"""`/healthz` and `/readyz`, for load balancers and orchestrators."""

from __future__ import annotations

import httpx
import pytest

from tests.live import ScoutServer, free_port


def test_healthz_answers_while_the_process_runs(server):
    for path in ("/healthz", "/healthz/"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_readyz_checks_the_database_and_redis(server):
    response = httpx.get(f"{server.url}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_is_503_with_the_reason_when_redis_is_unreachable(backends, tmp_path):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    scout = ScoutServer(backends, workers=2, data_dir=tmp_path, extra_env={"REDIS_URL": nowhere})
    scout.start(wait_for="/healthz")
    try:
        assert httpx.get(f"{scout.url}/healthz").status_code == 200
        response = httpx.get(f"{scout.url}/readyz", timeout=10)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert "redis" in body["detail"]
        assert "onnect" in body["reasons"]["redis"]
        assert "database" not in body["reasons"]
        # Logging with Redis down never fails a request: this one logs a warning, and answers
        # the API's 503.
        created = httpx.post(
            f"{scout.url}/api/create_model",
            json={"name": "x", "variants": {"0": "a", "1": "b"}},
            timeout=10,
        )
        assert created.status_code == 503
        assert "Redis" in created.json()["detail"]
        assert httpx.get(f"{scout.url}/metrics", timeout=10).status_code == 200
    finally:
        scout.stop()


def test_readyz_is_503_with_the_reason_when_the_database_is_unreachable(backends, tmp_path):
    if backends.database_url:
        pytest.skip("the embedded SQLite database is what this test can take away")
    scout = ScoutServer(backends, workers=2, data_dir=tmp_path / "data").start()
    try:
        database = scout.data_dir / "scout.sqlite3"
        database.rename(scout.data_dir / "elsewhere.sqlite3")
        database.mkdir()  # a directory where the database file was: it cannot be opened
        response = httpx.get(f"{scout.url}/readyz", timeout=10)
        assert response.status_code == 503
        body = response.json()
        assert list(body["reasons"]) == ["database"]
        assert "database" in body["detail"]
    finally:
        scout.stop()
