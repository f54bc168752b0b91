"""Fixtures: one real Scout server for the session, reached over HTTP like any client would;
and, for the fast in-process tests, Scout's own code on a test database and a real Redis."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.live import ADMIN, Backends, ScoutServer, redis_at


@pytest.fixture(scope="session")
def backends() -> Iterator[Backends]:
    shared = Backends()
    yield shared
    shared.cleanup()


@pytest.fixture(scope="session")
def server(backends: Backends) -> Iterator[ScoutServer]:
    scout = ScoutServer(backends, workers=2, extra_env=ADMIN.env()).start()
    yield scout
    scout.stop()


@pytest.fixture
def staff(server: ScoutServer) -> Iterator[httpx.Client]:
    """A script's client with the staff user's HTTP Basic credentials."""
    with server.client(auth=ADMIN.credentials) as client:
        yield client


@pytest.fixture
def api(server: ScoutServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def make_test(api: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Create a Test over the API and answer the create response."""

    def create(
        name: str = "Checkout button", variants: dict | None = None, **settings: Any
    ) -> dict[str, Any]:
        response = api.post(
            "/api/create_model",
            json={"name": name, "variants": variants or {"0": "Blue", "1": "Green"}, **settings},
        )
        assert response.status_code == 200, response.text
        return response.json()

    return create


def fetch(api: httpx.Client, test_id: str, **body: Any) -> dict[str, Any]:
    response = api.post("/api/fetch_recommended_variant", json={"cb_model_id": test_id, **body})
    assert response.status_code == 200, response.text
    return response.json()


def reward(api: httpx.Client, test_id: str, *updates: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/api/update_model/{test_id}", json={"updates": list(updates)})
    assert response.status_code == 200, response.text
    return response.json()


def details(api: httpx.Client, test_id: str) -> dict[str, Any]:
    response = api.get(f"/api/model_details/{test_id}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session", autouse=True)
def _no_log_shipping_from_the_test_process() -> None:
    """The servers under test ship their logs; this process (the client) has nothing to ship
    and no Redis of its own to ship to."""
    from core.observability.logs import RedisStreamHandler

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, RedisStreamHandler):
            root.removeHandler(handler)


# --- In-process tests: services, scripts and selectors against a real Redis and database ------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """On a shared PostgreSQL server, the in-process tests' database gets a name of its own
    (pytest-django would otherwise take `test_<name>`, and drop one that exists)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.postgresql":
        database.setdefault("TEST", {})["NAME"] = f"scout_inprocess_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def process_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real Redis for tests that call Scout's code in this process, and a key prefix of
    their own: REDIS_URL's when it is set (only keys under that prefix are touched, and they
    are removed at the end), else an embedded Redis of their own."""
    from project.embedded_redis import EmbeddedRedis

    prefix = f"scout-inprocess-{uuid.uuid4().hex[:12]}"
    url = os.environ.get("REDIS_URL", "").strip()
    embedded = None
    if not url:
        # A short path: a Unix socket's path is limited to about a hundred characters.
        directory = Path(tempfile.mkdtemp(prefix="scout-r-"))
        embedded = EmbeddedRedis(directory, directory / "redis.sock")
        embedded.start()
        url = f"unix://{directory / 'redis.sock'}"
    yield url, prefix
    client = redis_at(url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.unlink(key)
    client.close()
    if embedded is not None:
        embedded.stop()


@pytest.fixture
def in_process(settings: Any, process_redis: tuple[str, str], db: None) -> Iterator[redis.Redis]:
    """Scout's code in this process, on the test database and a Redis key prefix of this
    test's own (so nothing one test leaves behind, such as a published configuration version,
    reaches the next); answers a client of that Redis, to look at what the code wrote."""
    from core import redis_client
    from system import config

    url, prefix = process_redis
    settings.REDIS_URL = url
    settings.SCOUT_REDIS_KEY_PREFIX = f"{prefix}-{uuid.uuid4().hex[:8]}"
    redis_client.use_redis(url)
    config.reset()
    client = redis_at(url, decode_responses=True)
    yield client
    client.close()
    config.reset()
