"""Fixtures: one real Scout server for the session, reached over HTTP like any client would."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.live import ADMIN, Backends, ScoutServer


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
    from project.observability.logs import RedisStreamHandler

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, RedisStreamHandler):
            root.removeHandler(handler)
