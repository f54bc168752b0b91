"""Two Scout hosts on one database and one Redis behave as one service."""

from __future__ import annotations

from tests.live import ADMIN, Backends, ScoutServer


def test_two_hosts_share_decisions_rewards_rollouts_and_tokens(tmp_path):
    backends = Backends()
    first = ScoutServer(backends, workers=2, data_dir=tmp_path / "a", extra_env=ADMIN.env())
    first.start()
    # The second host uses the first one's database and Redis, embedded ones included.
    shared = {}
    if backends.database_url is None:
        shared["DATABASE_URL"] = f"sqlite:///{tmp_path / 'a' / 'scout.sqlite3'}"
    if backends.embedded:
        shared["REDIS_URL"] = f"unix://{tmp_path / 'a' / 'redis.sock'}"
    second = ScoutServer(backends, workers=2, data_dir=tmp_path / "b", extra_env=shared)
    second.env.update(shared)
    second.start()
    try:
        with first.client() as a, second.client() as b:
            test_id = a.post(
                "/api/create_model", json={"name": "Shared", "variants": {"0": "x", "1": "y"}}
            ).json()["cb_model_id"]
            assert test_id in {t["cb_model_id"] for t in b.get("/api/models").json()}

            served = {}
            for i in range(20):
                decision = a.post(
                    "/api/fetch_recommended_variant",
                    json={"cb_model_id": test_id, "request_id": f"two-{i}", "context": {"c": i}},
                ).json()
                served[f"two-{i}"] = decision["variant_id"]
            rewarded = b.post(
                f"/api/update_model/{test_id}",
                json={"updates": [{"request_id": rid, "reward": 1} for rid in served]},
            ).json()
            assert rewarded["processed_updates"] == 20
            summary = a.get(f"/api/model_details/{test_id}").json()
            assert summary["total_updates"] == 20 and summary["total_predictions"] == 20
            for variant in ("0", "1"):
                expected = sum(1 for v in served.values() if str(v) == variant)
                assert summary["performance_summary"][variant]["updates"] == expected

            b.post(f"/api/rollout_global_variant/{test_id}", json={"variant": "y"})
            for _ in range(10):
                answer = a.post("/api/fetch_recommended_variant", json={"cb_model_id": test_id})
                assert answer.json()["variant_id"] == 1 and answer.json()["is_global_rollout"]
            a.post(f"/api/clear_global_variant/{test_id}")
            assert b.get(f"/api/model_details/{test_id}").json()["is_active"] is True

            old = a.post("/admin/generate_token", auth=ADMIN.credentials).json()["auth_token"]
            a.post("/admin/set_protection", json={"protected_api": True}, auth=ADMIN.credentials)
            assert b.get("/api/models").status_code == 401
            assert b.get("/api/models", headers={"Authorization": f"Bearer {old}"}).is_success
            new = a.post("/admin/generate_token", auth=ADMIN.credentials).json()["auth_token"]
            for _ in range(10):
                stale = b.get("/api/models", headers={"Authorization": f"Bearer {old}"})
                assert stale.status_code == 401
                fresh = b.get("/api/models", headers={"Authorization": f"Bearer {new}"})
                assert fresh.status_code == 200
            a.post("/admin/set_protection", json={"protected_api": False}, auth=ADMIN.credentials)
            assert b.get("/api/models").status_code == 200
    finally:
        second.stop()
        first.stop()
        backends.cleanup()
