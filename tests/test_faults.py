"""Scout keeps answering when its backing services fail, and never loses an acknowledged reward.

Each test here runs its own multi-worker server. Against the embedded default the faults hit
the embedded Redis and SQLite themselves; with REDIS_URL/DATABASE_URL set, a Redis of the test's
own and a TCP proxy in front of PostgreSQL take the faults, so shared servers are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse, urlunparse

import httpx
import pytest

from tests.live import ADMIN, Backends, RedisProcess, ScoutServer, TcpProxy


class Answer(NamedTuple):
    """One request of a Load and its answer (status 0: no answer), on the monotonic clock."""

    kind: str  # "decision" or "reward"
    started: float
    ended: float
    status: int
    degraded: bool = False

    @property
    def normal(self) -> bool:
        return self.status == 200 and not self.degraded


class Load:
    """Client threads doing what a product backend does: a decision, then its reward, retrying
    the reward on 503 as the API asks. Records every answer, and when it came (`answers`).

    A thread waiting out an outage in its reward retries asks for no decisions meanwhile, so
    `probes` more threads only ask for decisions: some are always in flight during a fault.
    """

    def __init__(
        self, url: str, test_id: str, threads: int = 4, probes: int = 2, pause: float = 0.02
    ) -> None:
        self.url, self.test_id, self.threads, self.probes = url, test_id, threads, probes
        self.pause = pause  # between two decisions of a probe
        self.fetch_statuses: list[int] = []
        self.reward_statuses: list[int] = []
        self.degraded = 0
        self.acknowledged: set[str] = set()
        self.failures: list[str] = []
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _run(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                request_id = f"load-{worker}-{i}-{uuid.uuid4().hex[:6]}"
                context = {"worker": str(worker)}
                try:
                    response = self._post(
                        client, "/api/fetch_recommended_variant",
                        {"cb_model_id": self.test_id, "request_id": request_id,
                         "context": context},
                    )  # fmt: skip
                except httpx.HTTPError as exc:
                    self.failures.append(f"fetch transport error: {exc!r}")
                    continue
                self.fetch_statuses.append(response.status_code)
                if response.status_code != 200:
                    continue
                decision = response.json()
                self.degraded += bool(decision.get("degraded"))
                entry = {
                    "request_id": request_id,
                    "variant_id": decision["variant_id"],
                    "reward": i % 2,
                    "context": context,
                }
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    try:
                        answer = self._post(
                            client, f"/api/update_model/{self.test_id}", {"updates": [entry]}
                        )
                    except httpx.HTTPError:
                        time.sleep(0.1)
                        continue
                    self.reward_statuses.append(answer.status_code)
                    if answer.status_code == 200:
                        body = answer.json()
                        if body["processed_updates"] + body["duplicate_updates"] == 1:
                            self.acknowledged.add(request_id)
                        else:
                            self.failures.append(f"reward refused: {body}")
                        break
                    time.sleep(0.1)

    def _probe(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                time.sleep(self.pause)
                try:
                    response = self._post(
                        client, "/api/fetch_recommended_variant", {"cb_model_id": self.test_id}
                    )
                except httpx.HTTPError as exc:
                    self.failures.append(f"fetch transport error: {exc!r}")
                    continue
                self.fetch_statuses.append(response.status_code)
                if response.status_code == 200:
                    self.degraded += bool(response.json().get("degraded"))

    def _post(self, client: httpx.Client, path: str, body: dict) -> httpx.Response:
        kind = "reward" if path.startswith("/api/update_model/") else "decision"
        started = time.monotonic()
        try:
            response = client.post(path, json=body)
        except httpx.HTTPError:
            self.answers.append(Answer(kind, started, time.monotonic(), 0))
            raise
        degraded = response.status_code == 200 and bool(response.json().get("degraded"))
        self.answers.append(Answer(kind, started, time.monotonic(), response.status_code, degraded))
        return response

    def __enter__(self) -> Load:
        self._workers = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.threads)
        ] + [threading.Thread(target=self._probe, daemon=True) for _ in range(self.probes)]
        for thread in self._workers:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(60)


def _children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:  # it just ended
        return []


def _redis_pid(server: ScoutServer) -> int:
    """The embedded redis-server: a child of its supervisor, which is a child of the server."""
    for child in _children(server.process.pid):
        for pid in [child, *_children(child)]:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "redis-server":
                    return pid
            except OSError:
                continue
    raise AssertionError("no embedded Redis under the server")


@pytest.fixture
def own_backends(tmp_path) -> Iterator[tuple[Backends, RedisProcess | None]]:
    """Backends for a faulty server: with REDIS_URL set, a Redis of the test's own instead."""
    backends = Backends()
    redis_process = None
    if not backends.embedded:
        redis_process = RedisProcess(tmp_path / "redis").start()
        backends.redis_url = redis_process.url
    yield backends, redis_process
    backends.cleanup()
    if redis_process:
        redis_process.stop()


def _new_test(api: httpx.Client) -> str:
    return api.post(
        "/api/create_model", json={"name": "Faults", "variants": {"0": "a", "1": "b", "2": "c"}}
    ).json()["cb_model_id"]


def test_redis_stopping_and_restarting_under_load(own_backends, tmp_path):
    backends, redis_process = own_backends
    server = ScoutServer(backends, workers=3, data_dir=tmp_path / "data").start()
    try:
        with server.client() as api:
            test_id = _new_test(api)
            with Load(server.url, test_id) as load:
                time.sleep(1.5)
                # Redis freezes (unreachable: requests to it time out) ...
                pid = _redis_pid(server) if redis_process is None else redis_process.process.pid
                os.kill(pid, signal.SIGSTOP)
                time.sleep(2.0)
                os.kill(pid, signal.SIGCONT)
                time.sleep(1.5)
                # ... then restarts (a clean stop; the embedded one is restarted by scout serve)
                if redis_process is None:
                    os.kill(_redis_pid(server), signal.SIGTERM)
                else:
                    redis_process.stop()
                    time.sleep(1.0)
                    redis_process.start()
                time.sleep(2.5)
            # recovered by itself: decisions are stored again
            deadline = time.monotonic() + 5
            while (
                api.post("/api/fetch_recommended_variant", json={"cb_model_id": test_id})
                .json()
                .get("degraded")
                and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            details = api.get(f"/api/model_details/{test_id}").json()
        assert load.failures == []
        assert load.fetch_statuses and set(load.fetch_statuses) == {200}
        assert 500 not in load.reward_statuses
        assert set(load.reward_statuses) <= {200, 503}
        assert load.degraded > 0, "the outage should have produced degraded decisions"
        assert 503 in load.reward_statuses
        assert len(load.acknowledged) > 50
        assert details["total_updates"] == len(load.acknowledged)
        assert sum(v["updates"] for v in details["performance_summary"].values()) == len(
            load.acknowledged
        )
    finally:
        server.stop()


def _recovery(answers: list[Answer], since: float, until: float) -> float:
    """How long after `since` the last answer that was not normal (a 503, a degraded decision)
    came, among the requests sent after `since` and answered before `until`; 0 if none."""
    late = [a.ended for a in answers if since <= a.started and a.ended < until and not a.normal]
    return max(late, default=since) - since


def test_a_killed_embedded_redis_is_back_within_a_second(tmp_path):
    """kill -9 of the embedded Redis under load: its supervisor says how it died and starts it
    again at once, decisions and rewards are answered normally again within a second, and the
    append-only file keeps every acknowledged reward."""
    backends = Backends()
    if not backends.embedded:
        backends.cleanup()
        pytest.skip("REDIS_URL is set: Scout uses that Redis and starts no embedded one")
    server = ScoutServer(backends, workers=2, data_dir=tmp_path / "data").start()
    kills: list[tuple[int, float]] = []
    try:
        with server.client() as api:
            test_id = _new_test(api)
            with Load(server.url, test_id, threads=4, probes=2) as load:
                time.sleep(1.5)
                for _ in range(2):  # the restarted Redis is supervised as the first one was
                    pid = _redis_pid(server)
                    os.kill(pid, signal.SIGKILL)
                    kills.append((pid, time.monotonic()))
                    time.sleep(2.0)
                    assert _redis_pid(server) != pid
                ended = time.monotonic()
            details = api.get(f"/api/model_details/{test_id}").json()
        log = server.log_path.read_text()
        until = [killed_at for _, killed_at in kills[1:]] + [ended]
        for (pid, killed_at), next_kill in zip(kills, until, strict=True):
            assert f"the embedded Redis (pid {pid}) was killed by SIGKILL" in log
            recovered = _recovery(load.answers, killed_at, next_kill)
            assert recovered < 1.0, f"answered normally again only {recovered:.2f} s after"
        assert log.count("the embedded Redis answers again") == 2
        assert load.failures == []
        assert 500 not in load.fetch_statuses + load.reward_statuses
        assert len(load.acknowledged) > 50
        assert details["total_updates"] == len(load.acknowledged)
    finally:
        server.stop()
        backends.cleanup()


def test_a_hung_redis_holds_each_decision_no_longer_than_its_timeout(tmp_path):
    """SIGSTOP of Redis under concurrent load: every decision is answered (degraded) within
    SCOUT_REDIS_TIMEOUT_SECONDS and a little, every reward with 503 as fast; after SIGCONT Scout
    recovers by itself within a second and has lost no acknowledged reward."""
    timeout, slack = 0.5, 0.4
    backends = Backends()
    redis_process = RedisProcess(tmp_path / "redis").start()  # the test's own, to freeze
    backends.redis_url = redis_process.url
    server = ScoutServer(
        backends,
        workers=2,
        data_dir=tmp_path / "data",
        # More threads than client threads, so no request waits for a thread: what is measured
        # is how long a decision waits for Redis.
        extra_env={"SCOUT_REDIS_TIMEOUT_SECONDS": str(timeout), "SCOUT_THREADS": "16"},
    ).start()
    pid = redis_process.process.pid
    try:
        with server.client() as api:
            test_id = _new_test(api)
            for _ in range(20):  # new connections, so that each worker has seen the Test
                httpx.post(
                    f"{server.url}/api/fetch_recommended_variant", json={"cb_model_id": test_id}
                )
            # Eight clients asking for decisions at once, but not so fast that two cores are
            # saturated: what is measured is the wait for Redis, not for a CPU.
            with Load(server.url, test_id, threads=4, probes=8, pause=0.05) as load:
                time.sleep(1.0)
                os.kill(pid, signal.SIGSTOP)
                hung = time.monotonic()
                time.sleep(3.0)
                os.kill(pid, signal.SIGCONT)
                resumed = time.monotonic()
                time.sleep(2.0)
                ended = time.monotonic()
            details = api.get(f"/api/model_details/{test_id}").json()
        during = [a for a in load.answers if hung <= a.started < resumed]
        decisions = [a for a in during if a.kind == "decision"]
        rewards = [a for a in during if a.kind == "reward"]
        assert len(decisions) > 100
        slowest = max(a.ended - a.started for a in during)
        assert slowest < timeout + slack, f"a request waited {slowest:.2f} s for a hung Redis"
        assert {a.status for a in decisions} == {200}
        assert len(rewards) > 10 and {a.status for a in rewards} <= {200, 503}
        # Sent once the freeze had surely taken hold, answered before it ended: from the snapshot.
        frozen = [a for a in during if a.started > hung + 0.05 and a.ended < resumed]
        assert all(a.degraded for a in frozen if a.kind == "decision")
        assert {a.status for a in frozen if a.kind == "reward"} == {503}
        recovered = _recovery(load.answers, resumed, ended)
        assert recovered < 1.0, f"answered normally again only {recovered:.2f} s after SIGCONT"
        assert load.failures == []
        assert 500 not in load.fetch_statuses + load.reward_statuses
        assert len(load.acknowledged) > 20
        assert details["total_updates"] == len(load.acknowledged)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        server.stop()
        backends.cleanup()
        redis_process.stop()


def test_a_redis_that_lost_its_data_is_refilled_from_the_checkpoint(own_backends, tmp_path):
    backends, redis_process = own_backends
    server = ScoutServer(
        backends,
        workers=2,
        data_dir=tmp_path / "data",
        extra_env={"SCOUT_CHECKPOINT_SECONDS": "1"},
    ).start()
    try:
        with server.client() as api:
            test_id = _new_test(api)
            for i in range(30):
                api.post(
                    "/api/fetch_recommended_variant",
                    json={"cb_model_id": test_id, "request_id": f"cp-{i}", "context": {"k": "v"}},
                )
            api.post(
                f"/api/update_model/{test_id}",
                json={"updates": [{"request_id": f"cp-{i}", "reward": 1} for i in range(20)]},
            )
            api.post(f"/api/rollout_global_variant/{test_id}", json={"variant": 2})
            before = api.get(f"/api/model_details/{test_id}").json()
            time.sleep(2.5)  # at least one checkpoint
            client = redis_process.client() if redis_process else backends.redis(server.data_dir)
            client.flushall()  # our own Redis: a data loss, as after a crash without persistence
            answer = api.post("/api/fetch_recommended_variant", json={"cb_model_id": test_id})
            assert answer.status_code == 200
            assert answer.json()["variant_id"] == 2 and answer.json()["is_global_rollout"]
            after = api.get(f"/api/model_details/{test_id}").json()
        assert after["total_updates"] == before["total_updates"] == 20
        assert (
            after["performance_summary"]["0"]["updates"]
            == (before["performance_summary"]["0"]["updates"])
        )
        assert after["total_predictions"] >= before["total_predictions"]
        assert after["context_feature_analysis"]["features"][0]["key"] == "k"
        assert "Restored a Test that Redis had lost" in server.log()
        with server.client() as api:
            scrape = api.get("/metrics").text
        assert "scout_state_restores_total 1.0" in scrape
    finally:
        server.stop()


def test_every_test_is_checkpointed_and_a_changed_one_again(own_backends, tmp_path):
    """More Tests than one checkpoint chunk holds; a reward after a checkpoint is in the next;
    after a data loss, reading a Test shows what it had learned."""
    backends, redis_process = own_backends
    server = ScoutServer(
        backends, workers=1, data_dir=tmp_path / "data", extra_env={"SCOUT_CHECKPOINT_SECONDS": "1"}
    ).start()
    try:
        with server.client() as api:
            test_ids = [_new_test(api) for _ in range(130)]
            for n, test_id in enumerate(test_ids):
                update = {"variant_id": n % 3, "reward": 1, "context": {"n": n}}
                answer = api.post(f"/api/update_model/{test_id}", json={"updates": [update]})
                assert answer.is_success
            time.sleep(2.5)  # at least one checkpoint
            last = test_ids[-1]
            one_more = {"updates": [{"variant_id": 0, "reward": 1}]}
            assert api.post(f"/api/update_model/{last}", json=one_more).is_success
            time.sleep(2.5)  # the next checkpoint, which copies the changed Test again
            client = redis_process.client() if redis_process else backends.redis(server.data_dir)
            client.flushall()  # our own Redis: a data loss
            # Reading refills the Tests: the list all of them, the details one.
            listed = {row["cb_model_id"]: row for row in api.get("/api/models").json()}
            client.flushall()
            details = api.get(f"/api/model_details/{test_ids[7]}").json()
        assert [listed[t]["total_updates"] for t in test_ids] == [1] * 129 + [2]
        assert details["total_updates"] == 1
        assert details["performance_summary"]["1"]["updates"] == 1
    finally:
        server.stop()


def test_decisions_and_rewards_continue_without_the_database(tmp_path):
    backends = Backends()
    proxy = None
    if backends.database_url:
        parts = urlparse(backends.env()["DATABASE_URL"])
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
        through_proxy = parts._replace(netloc=f"{parts.username or 'root'}@127.0.0.1:{proxy.port}")
        extra = {"DATABASE_URL": urlunparse(through_proxy)}
    else:
        extra = {}
    server = ScoutServer(
        backends, workers=2, data_dir=tmp_path / "data", extra_env={**extra, **ADMIN.env()}
    )
    server.env.update(extra)
    server.start()
    moved = tmp_path / "moved"
    try:
        with server.client() as api:
            test_id = _new_test(api)
            for _ in range(10):  # every worker learns the Test while the database is there
                api.post("/api/fetch_recommended_variant", json={"cb_model_id": test_id})
            # the database goes away
            if proxy:
                proxy.cut()
            else:
                moved.mkdir()
                for path in (tmp_path / "data").glob("scout.sqlite3*"):
                    shutil.move(path, moved / path.name)
            for i in range(10):
                decision = api.post(
                    "/api/fetch_recommended_variant",
                    json={"cb_model_id": test_id, "request_id": f"nodb-{i}"},
                )
                assert decision.status_code == 200, decision.text
                assert "degraded" not in decision.json()
                reward = api.post(
                    f"/api/update_model/{test_id}",
                    json={"updates": [{"request_id": f"nodb-{i}", "reward": 1}]},
                )
                assert reward.status_code == 200, reward.text
                assert reward.json()["processed_updates"] == 1
            created = api.post(
                "/api/create_model", json={"name": "x", "variants": {"0": "a", "1": "b"}}
            )
            assert created.status_code == 503
            assert "database" in created.json()["detail"]
            assert api.post(f"/api/delete_model/{test_id}").status_code == 503
            admin = api.get("/admin/get_protection", auth=ADMIN.credentials)
            assert admin.status_code == 503
            # it comes back
            if proxy:
                proxy.start()
            else:
                for path in (tmp_path / "data").glob("scout.sqlite3*"):
                    path.unlink()
                for path in moved.iterdir():
                    shutil.move(path, tmp_path / "data" / path.name)
            time.sleep(0.5)
            details = api.get(f"/api/model_details/{test_id}")
            assert details.status_code == 200
            assert details.json()["total_updates"] == 10
    finally:
        server.stop()
        if proxy:
            proxy.cut()
        backends.cleanup()


def test_sigterm_drains_requests_and_a_restart_loses_no_acknowledged_reward(tmp_path):
    backends = Backends()
    data = tmp_path / "data"
    server = ScoutServer(backends, workers=3, data_dir=data).start()
    try:
        with server.client() as api:
            test_id = _new_test(api)
        load = Load(server.url, test_id, threads=4)
        with load:
            time.sleep(1.5)
            server.stop(signal.SIGTERM)
        server = ScoutServer(backends, workers=2, data_dir=data)
        server.start()
        with server.client() as api:
            details = api.get(f"/api/model_details/{test_id}").json()
        assert len(load.acknowledged) > 20
        assert 500 not in load.fetch_statuses + load.reward_statuses
        assert details["total_updates"] == len(load.acknowledged)
    finally:
        server.stop()
        backends.cleanup()


def test_waiting_decisions_survive_a_restart_of_scout_and_a_killed_redis(tmp_path):
    """Decisions waiting for their reward window when Scout stops and its embedded Redis is
    killed: the restarted server closes each of them once, with the default reward."""
    backends = Backends()
    if not backends.embedded:
        backends.cleanup()
        pytest.skip("REDIS_URL is set: Scout uses that Redis and starts no embedded one")
    data = tmp_path / "data"
    server = ScoutServer(backends, workers=2, data_dir=data).start()
    try:
        with server.client() as api:
            created = api.post(
                "/api/create_model",
                json={
                    "name": "Windows",
                    "variants": {"0": "a", "1": "b"},
                    "reward_window_seconds": 3,
                    "default_reward": 0,
                },
            )
            test_id = created.json()["cb_model_id"]
            for i in range(30):
                api.post(
                    "/api/fetch_recommended_variant",
                    json={"cb_model_id": test_id, "request_id": f"visit-{i}"},
                )
            updates = [{"request_id": f"visit-{i}", "reward": 1} for i in range(10)]
            answer = api.post(f"/api/update_model/{test_id}", json={"updates": updates})
            assert answer.json()["processed_updates"] == 10
            pid = _redis_pid(server)
            os.kill(pid, signal.SIGKILL)  # restarted by its supervisor from its append-only file
            deadline = time.monotonic() + 10
            while api.get(f"/api/model_details/{test_id}").status_code != 200:
                assert time.monotonic() < deadline, "the embedded Redis did not come back"
                time.sleep(0.1)
            assert _redis_pid(server) != pid
        server.stop(signal.SIGTERM)
        time.sleep(3)  # the windows close while no worker runs
        server = ScoutServer(backends, workers=2, data_dir=data).start()
        with server.client() as api:
            deadline = time.monotonic() + 20
            while True:
                details = api.get(f"/api/model_details/{test_id}").json()
                if details["decisions_awaiting_reward"] == 0:
                    break
                assert time.monotonic() < deadline, details["decisions_awaiting_reward"]
                time.sleep(0.2)
        summary = details["performance_summary"].values()
        assert details["total_updates"] == 30
        assert sum(v["default_rewards"] for v in summary) == 20
        assert sum(v["reward_sum"] for v in summary) == 10
    finally:
        server.stop()
        backends.cleanup()
