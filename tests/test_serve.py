"""`scout serve`: several workers, clean stops, data kept across restarts, strict settings."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.live import SCOUT, Backends, ScoutServer


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _is_redis(pid: int) -> bool:
    return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_restart_keeps_tests_and_learned_state(tmp_path):
    backends = Backends()
    try:
        first = ScoutServer(backends, workers=3, data_dir=tmp_path / "data").start()
        with first.client() as api:
            test_id = api.post(
                "/api/create_model", json={"name": "Kept", "variants": {"0": "a", "1": "b"}}
            ).json()["cb_model_id"]
            for i in range(20):
                fetched = api.post(
                    "/api/fetch_recommended_variant",
                    json={"cb_model_id": test_id, "request_id": f"keep-{i}"},
                )
                assert fetched.status_code == 200
            rewarded = api.post(
                f"/api/update_model/{test_id}",
                json={"updates": [{"request_id": f"keep-{i}", "reward": 1} for i in range(12)]},
            )
            assert rewarded.json()["processed_updates"] == 12
            before = api.get(f"/api/model_details/{test_id}").json()
        workers = [pid for pid in _children(first.process.pid) if not _is_redis(pid)]
        assert len(workers) == 3
        assert first.stop(signal.SIGTERM) == 0
        if backends.embedded:  # the embedded Redis shut down with the server
            assert not (tmp_path / "data" / "redis.sock").exists()
            assert (tmp_path / "data" / "redis.aof").stat().st_size > 0

        second = ScoutServer(backends, workers=2, data_dir=tmp_path / "data").start()
        try:
            with second.client() as api:
                after = api.get(f"/api/model_details/{test_id}").json()
                assert after["total_predictions"] == before["total_predictions"] == 20
                assert after["total_updates"] == before["total_updates"] == 12
                assert after["performance_summary"] == before["performance_summary"]
                duplicate = api.post(
                    f"/api/update_model/{test_id}",
                    json={"updates": [{"request_id": "keep-0", "reward": 1}]},
                ).json()
                assert duplicate["processed_updates"] == 0
                assert duplicate["duplicate_updates"] == 1
        finally:
            assert second.stop(signal.SIGINT) == 0
    finally:
        backends.cleanup()


def test_bad_settings_stop_the_start_with_a_clear_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOUT_")}
    env.update(SCOUT_DATA_DIR=str(tmp_path), SCOUT_PORT="eighty")
    result = subprocess.run([SCOUT, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "SCOUT_PORT must be an integer" in result.stderr


def test_protection_and_a_token_from_the_environment(tmp_path):
    token = "from-a-secret-store-" + "k" * 32
    backends = Backends()
    server = ScoutServer(
        backends,
        data_dir=tmp_path / "data",
        extra_env={"SCOUT_PROTECTED_API": "true", "SCOUT_API_TOKEN": token},
    )
    server.env["SCOUT_REDIS_KEY_PREFIX"] = backends.prefix
    try:
        server.start_when(lambda client: client.get("/api/models").status_code == 401)
        with server.client() as api:
            refused = api.get("/api/models")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            allowed = api.get("/api/models", headers={"Authorization": f"Bearer {token}"})
            assert allowed.status_code == 200
        assert token not in server.log()
    finally:
        server.stop()
        backends.cleanup()
