"""`/metrics`: one scrape of a multi-worker server sees the whole host, in both formats."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from core.observability.metrics import WRITE_INTERVAL_SECONDS
from tests.live import Backends, ScoutServer

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def busy(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoutServer]:
    """Three workers, every decision logged, a small feature vocabulary."""
    scout = ScoutServer(
        backends,
        workers=3,
        data_dir=tmp_path_factory.mktemp("metrics"),
        extra_env={
            "SCOUT_DEBUG": "true",
            "SCOUT_MAX_FEATURES": "4",
            "SCOUT_METRICS_MAX_VARIANTS": "5",
        },
    ).start()
    yield scout
    scout.stop()


def scrape(server: ScoutServer, **headers: str) -> dict[tuple[str, tuple], float]:
    """Every sample of one scrape, keyed by name and sorted labels, once every worker has
    written what it queued (core.observability.metrics: at most WRITE_INTERVAL_SECONDS)."""
    time.sleep(2 * WRITE_INTERVAL_SECONDS)
    response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def worker_pids(server: ScoutServer) -> set[int]:
    """The gunicorn workers of a server (its children other than the embedded Redis)."""
    pid = server.process.pid
    pids = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if b"redis-server" not in Path(f"/proc/{child}/cmdline").read_bytes():
                pids.add(int(child))
        except OSError:
            continue  # it just ended
    return pids


def test_one_scrape_counts_every_workers_requests_exactly(busy):
    with busy.client() as api:
        test_id = api.post(
            "/api/create_model", json={"name": "Counted", "variants": {"0": "a", "1": "b"}}
        ).json()["cb_model_id"]
    before = scrape(busy)
    requests = 60
    for i in range(requests):
        # A new connection each time, so the kernel spreads the requests over the workers.
        response = httpx.post(
            f"{busy.url}/api/fetch_recommended_variant",
            json={"cb_model_id": test_id, "request_id": f"m-{i}"},
            headers={"Connection": "close"},
        )
        assert response.status_code == 200
    rewards = [{"request_id": f"m-{i}", "reward": 1} for i in range(10)]
    rewards += [{"request_id": "m-0", "reward": 1}, {"request_id": "never-issued", "reward": 1}]
    rewards += [{"request_id": "also-never", "variant_id": 0, "reward": 0.5, "context": {}}]
    report = httpx.post(
        f"{busy.url}/api/update_model/{test_id}", json={"updates": rewards}, timeout=30
    ).json()
    assert (report["processed_updates"], report["duplicate_updates"]) == (11, 1)
    assert report["failed_updates"] == 1

    # The decisions really were answered by several workers: their JSON log lines say which.
    pids = set()
    for line in busy.log_path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("message") == "Decision" and entry.get("test_id") == test_id:
                pids.add(entry["pid"])
    assert len(pids) >= 2, "the requests all landed on one worker"

    after = scrape(busy)
    for _ in range(2):  # and again after a worker was killed and replaced
        fetch_labels = {"method": "POST", "route": "/api/fetch_recommended_variant"}
        delta = value(after, "http_requests_total", **fetch_labels, status="200") - value(
            before, "http_requests_total", **fetch_labels, status="200"
        )
        assert delta == requests
        predictions = sum(
            value(after, "model_predictions_total", model_id=test_id, variant=v) for v in "01"
        )
        assert predictions == requests
        assert (
            value(after, "redis_operations_total", operation="record_decision")
            - value(before, "redis_operations_total", operation="record_decision")
            == requests
        )
        assert value(after, "model_rewards_total", model_id=test_id) == len(rewards)
        updates = sum(
            value(after, "model_updates_total", model_id=test_id, variant=v) for v in "01"
        )
        assert updates == 11
        assert value(after, "model_reward_count", model_id=test_id) == 11
        assert value(after, "model_reward_sum", model_id=test_id) == 10.5
        assert (
            value(after, "scout_duplicate_rewards_total")
            - value(before, "scout_duplicate_rewards_total")
            == 1
        )
        for outcome in ("failed", "inline_context"):
            name = "scout_contexts_expired_total"
            assert value(after, name, outcome=outcome) - value(before, name, outcome=outcome) == 1
        stored = "scout_contexts_stored_total"
        assert value(after, stored) - value(before, stored) == requests
        assert value(after, "active_models") >= 1
        assert value(after, "scout_degraded_decisions_total") == 0
        # django-prometheus counts console pages (the API's requests are in http_requests).
        assert httpx.get(f"{busy.url}/admin/login/", timeout=10).status_code == 200
        console = scrape(busy)
        assert ("django_http_requests_total_by_method_total", (("method", "GET"),)) in console

        victim = min(worker_pids(busy))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pids_now = worker_pids(busy)
            if victim not in pids_now and len(pids_now) == 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not replace the killed worker")
        after = scrape(busy)


def test_a_test_with_many_variants_adds_a_bounded_number_of_series(busy):
    """Per-variant series stop at SCOUT_METRICS_MAX_VARIANTS (5 here) per Test; the other
    variants share `variant="other"`, and every decision and reward is still counted."""
    with busy.client() as api:
        test_id = api.post(
            "/api/create_model",
            json={"name": "Wide", "variants": {str(i * 3): f"v{i}" for i in range(40)}},
        ).json()["cb_model_id"]
        request_ids = [f"wide-{i}" for i in range(200)]
        for request_id in request_ids:
            body = {"cb_model_id": test_id, "request_id": request_id}
            assert api.post("/api/fetch_recommended_variant", json=body).status_code == 200
        rewards = {"updates": [{"request_id": rid, "reward": 1} for rid in request_ids]}
        assert api.post(f"/api/update_model/{test_id}", json=rewards).status_code == 200
    samples = scrape(busy)
    for name in ("model_predictions_total", "model_updates_total"):
        series = {
            dict(labels)["variant"]: count
            for (sample, labels), count in samples.items()
            if sample == name and dict(labels).get("model_id") == test_id
        }
        assert set(series) <= {"0", "3", "6", "9", "12", "other"}, series
        assert "other" in series  # 200 uniform decisions over 40 variants reach the others
        assert sum(series.values()) == 200


def test_feature_vocabulary_overflow_is_counted(busy):
    with busy.client() as api:
        test_id = api.post(
            "/api/create_model", json={"name": "Wide", "variants": {"0": "a", "1": "b"}}
        ).json()["cb_model_id"]
        before = scrape(busy)
        context = {f"key{i}": "on" for i in range(7)}  # 7 features, room for 4
        response = api.post(
            "/api/fetch_recommended_variant", json={"cb_model_id": test_id, "context": context}
        )
        assert response.status_code == 200
    after = scrape(busy)
    overflow = "scout_feature_overflow_total"
    assert value(after, overflow) - value(before, overflow) == 3


def test_route_labels_are_templates_never_ids(busy):
    with busy.client() as api:
        test_id = api.post(
            "/api/create_model", json={"name": "Labels", "variants": {"0": "a", "1": "b"}}
        ).json()["cb_model_id"]
        assert api.get(f"/api/model_details/{test_id}").status_code == 200
        assert api.get(f"/api/model_details/{test_id}/").status_code == 200
        assert api.post(f"/api/update_model/{test_id}", json={"updates": []}).status_code == 200
        assert api.get(f"/no/such/{test_id}").status_code == 404
    samples = scrape(busy)
    routes = {
        dict(labels)["route"]
        for name, labels in samples
        if name in ("http_requests_total", "http_request_duration_seconds_count")
    }
    assert not [route for route in routes if UUID.search(route)], routes
    assert {"/api/model_details/{cb_model_id}", "/api/update_model/{cb_model_id}"} <= routes
    assert "unmatched" in routes
    assert (
        value(
            samples,
            "http_requests_total",
            method="GET",
            route="/api/model_details/{cb_model_id}",
            status="200",
        )
        == 2
    )


def test_openmetrics_when_the_scraper_asks_for_it(busy):
    response = httpx.get(
        f"{busy.url}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(response.text)}
    assert families["http_requests"].type == "counter"
    assert families["http_request_duration_seconds"].type == "histogram"
    assert families["active_models"].type == "gauge"
    for name in ("model_predictions", "model_updates", "model_rewards", "redis_operations"):
        assert families[name].type == "counter"
    assert families["model_reward"].type == "histogram"


def test_metrics_token_is_required_when_set(backends, tmp_path):
    token = "scrape-secret-42"
    scout = ScoutServer(
        backends, workers=2, data_dir=tmp_path, extra_env={"SCOUT_METRICS_TOKEN": token}
    ).start()
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            refused = httpx.get(f"{scout.url}/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "SCOUT_METRICS_TOKEN" in refused.json()["detail"]
        # The refused requests are counted by whichever worker answered them, which writes its
        # metrics within WRITE_INTERVAL_SECONDS.
        time.sleep(2 * WRITE_INTERVAL_SECONDS)
        allowed = httpx.get(f"{scout.url}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200
        assert "http_requests_total" in allowed.text
        # Only /metrics is guarded by it.
        assert httpx.get(f"{scout.url}/healthz").status_code == 200
    finally:
        scout.stop()


def test_metrics_refuses_other_methods_with_json(server):
    response = httpx.post(f"{server.url}/metrics")
    assert response.status_code == 405
    assert response.json()["detail"]
